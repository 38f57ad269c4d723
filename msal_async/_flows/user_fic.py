"""The ``user_fic`` grant (spec 5.8): an agent trades a federated identity credential for a
user-scoped token, naming the user by UPN or object id."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._oauth2.claims import merge_capabilities, merge_claims
from .._oauth2.requests import build_token_request
from .context import AppContext, obtain_token

__all__ = ["API_ID", "USER_FIC", "acquire_token_by_user_fic"]

#: msal's telemetry API id of acquire_token_by_user_federated_identity_credential.
API_ID = "950"
USER_FIC = "user_fic"


async def acquire_token_by_user_fic(
    ctx: AppContext,
    scopes: list[str],
    assertion: str,
    *,
    username: str | None,
    user_object_id: str | None,
    claims_challenge: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Redeem ``assertion`` for a token of the named user (always network, as msal).

    Args:
        ctx: the app's context.
        scopes: the decorated scopes.
        assertion: the federated identity credential (an agent instance token).
        username: the user's UPN (exclusive with ``user_object_id``).
        user_object_id: the user's object id.
        claims_challenge: a claims JSON from a resource's 401.
        data: extra form fields (``client_claims`` merges into ``claims``, never sent).

    Returns:
        msal's result dict, or an error dict.

    Raises:
        MsalTransportError: the token endpoint could not be reached.
    """
    fields: dict[str, Any] = dict(data or {})
    claims = merge_capabilities(ctx.client_capabilities, claims_challenge)
    if fields.get("client_claims"):
        claims = merge_claims(claims, fields["client_claims"])
    fields["user_federated_identity_credential"] = assertion
    if user_object_id:
        fields["user_id"] = str(user_object_id)
        anchor = f"Oid:{user_object_id}@{ctx.authority.tenant}"
    else:
        fields["username"] = username
        anchor = f"upn:{username}"
    endpoint = (await ctx.endpoints()).token_endpoint
    request = build_token_request(
        endpoint,
        client_id=ctx.client_id,
        grant_type=USER_FIC,
        scopes=scopes,
        credential_fields=await ctx.credential_fields(endpoint),
        fields=fields,
        claims=claims,
        headers={"X-AnchorMailbox": anchor},
    )
    telemetry = ctx.telemetry.context(API_ID)
    _, result = await obtain_token(ctx, request, telemetry, scopes=scopes, data=fields)
    return result
