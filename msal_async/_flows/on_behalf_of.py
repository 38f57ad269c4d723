"""The on-behalf-of grant (spec 5.6): a middle-tier API trades its caller's token for another.

As msal: always a network request (no cache lookup first), scopes decorated with
``openid profile offline_access`` so a refresh token and an ID token come back, and the
result cached under the user's account (from ``client_info`` / the ID token).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._oauth2.claims import merge_capabilities, merge_claims
from .._oauth2.requests import build_token_request
from .context import AppContext, obtain_token

__all__ = ["API_ID", "JWT_BEARER", "acquire_token_on_behalf_of"]

#: msal's telemetry API id of acquire_token_on_behalf_of.
API_ID = "523"
#: RFC 7523 section 2.1: the grant type of an assertion that is a JWT.
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


async def acquire_token_on_behalf_of(
    ctx: AppContext,
    user_assertion: str,
    scopes: list[str],
    *,
    claims_challenge: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Exchange ``user_assertion`` for a token to ``scopes`` for the same user.

    Args:
        ctx: the app's context.
        user_assertion: the access token the middle tier received.
        scopes: the decorated scopes.
        claims_challenge: a claims JSON from a resource's 401.
        data: extra form fields; ``client_claims`` (forwarded client claims) merges into
            ``claims`` and partitions the cache but is never sent.

    Returns:
        msal's result dict, or an error dict.

    Raises:
        MsalTransportError: the token endpoint could not be reached.
    """
    fields: dict[str, Any] = dict(data or {})
    claims = merge_capabilities(ctx.client_capabilities, claims_challenge)
    if fields.get("client_claims"):
        claims = merge_claims(claims, fields["client_claims"])
    fields["assertion"] = user_assertion
    fields["requested_token_use"] = "on_behalf_of"
    endpoints = await ctx.endpoints()
    credential: dict[str, str] = {}
    if ctx.credential is not None:
        credential = await ctx.credential.form_fields(
            client_id=ctx.client_id, token_endpoint=endpoints.token_endpoint
        )
    request = build_token_request(
        endpoints.token_endpoint,
        client_id=ctx.client_id,
        grant_type=JWT_BEARER,
        scopes=scopes,
        credential_fields=credential,
        fields=fields,
        claims=claims,
    )
    telemetry = ctx.telemetry.context(API_ID, refresh_reason=0)
    _, result = await obtain_token(ctx, request, telemetry, scopes=scopes, data=fields)
    return result
