"""acquire_token_by_refresh_token (spec 5.4): migrate a refresh token from elsewhere."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._oauth2.claims import merge_capabilities, merge_claims
from .._oauth2.requests import build_token_request
from .._oauth2.user_tokens import REFRESH_TOKEN
from .._telemetry import FORCE_REFRESH
from .context import AppContext, obtain_token

__all__ = ["API_ID", "acquire_token_by_refresh_token"]

#: msal's telemetry API id of acquire_token_by_refresh_token.
API_ID = "85"


async def acquire_token_by_refresh_token(
    ctx: AppContext,
    refresh_token: str,
    decorated: list[str],
    *,
    data: Mapping[str, Any],
) -> dict[str, Any]:
    """Redeem a refresh token; always network; its new RT is stored as a new entry (as msal).

    Args:
        ctx: the app's context.
        refresh_token: the refresh token.
        decorated: the decorated scopes.
        data: extra form fields.

    Returns:
        msal's result dict or an error dict.

    Raises:
        MsalTransportError: the authority could not be reached.
    """
    endpoint = (await ctx.endpoints()).token_endpoint
    telemetry = ctx.telemetry.context(API_ID, refresh_reason=FORCE_REFRESH)
    claims = merge_claims(
        merge_capabilities(ctx.client_capabilities, None), data.get("client_claims")
    )
    request = build_token_request(
        endpoint,
        client_id=ctx.client_id,
        grant_type=REFRESH_TOKEN,
        scopes=decorated,
        credential_fields=await ctx.credential_fields(endpoint),
        fields={**data, REFRESH_TOKEN: refresh_token},
        claims=claims,
    )
    _, result = await obtain_token(ctx, request, telemetry, scopes=decorated, data=data)
    return result
