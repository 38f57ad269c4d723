"""The on-behalf-of grant (spec 5.6): a middle-tier API trades its caller's token for another.

As msal: always a network request (no cache lookup first), scopes decorated with
``openid profile offline_access`` so a refresh token and an ID token come back, and the
result cached under the user's account (from ``client_info`` / the ID token).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._oauth2.grants import ON_BEHALF_OF
from .._oauth2.requests import NO_OPTIONS, CallOptions
from .context import AppContext, obtain_token

__all__ = ["acquire_token_on_behalf_of"]


async def acquire_token_on_behalf_of(
    ctx: AppContext,
    user_assertion: str,
    scopes: list[str],
    *,
    claims_challenge: str | None = None,
    data: Mapping[str, Any] | None = None,
    options: CallOptions = NO_OPTIONS,
) -> dict[str, Any]:
    """Exchange ``user_assertion`` for a token to ``scopes`` for the same user.

    Args:
        ctx: the app's context.
        user_assertion: the access token the middle tier received.
        scopes: the decorated scopes.
        claims_challenge: a claims JSON from a resource's 401.
        data: extra form fields; ``client_claims`` (forwarded client claims) merges into
            ``claims`` and partitions the cache but is never sent.
        options: per-call transport options.

    Returns:
        msal's result dict, or an error dict.

    Raises:
        MsalTransportError: the token endpoint could not be reached.
    """
    request, _ = await ctx.token_request(
        ON_BEHALF_OF,
        scopes=scopes,
        fields={"assertion": user_assertion, "requested_token_use": "on_behalf_of"},
        data=data,
        claims_challenge=claims_challenge,
        options=options,
    )
    telemetry = ctx.telemetry.context(ON_BEHALF_OF.api_id)
    _, result = await obtain_token(
        ctx, request, telemetry, scopes=scopes, data=data, options=options
    )
    return result
