"""acquire_token_by_refresh_token (spec 5.4): migrate a refresh token from elsewhere."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._oauth2.grants import REFRESH_TOKEN
from .._oauth2.requests import NO_OPTIONS, CallOptions
from .context import AppContext, obtain_token

__all__ = ["acquire_token_by_refresh_token"]


async def acquire_token_by_refresh_token(
    ctx: AppContext,
    refresh_token: str,
    decorated: list[str],
    *,
    data: Mapping[str, Any],
    options: CallOptions = NO_OPTIONS,
) -> dict[str, Any]:
    """Redeem a refresh token; always network; its new RT is stored as a new entry (as msal).

    Args:
        ctx: the app's context.
        refresh_token: the refresh token.
        decorated: the decorated scopes.
        data: extra form fields.
        options: per-call transport options.

    Returns:
        msal's result dict or an error dict.

    Raises:
        MsalTransportError: the authority could not be reached.
    """
    request, _ = await ctx.token_request(
        REFRESH_TOKEN,
        scopes=decorated,
        fields={"refresh_token": refresh_token},
        data=data,
        options=options,
    )
    telemetry = ctx.telemetry.context(
        REFRESH_TOKEN.api_id, refresh_reason=REFRESH_TOKEN.refresh_reason
    )
    _, result = await obtain_token(
        ctx, request, telemetry, scopes=decorated, data=data, options=options
    )
    return result
