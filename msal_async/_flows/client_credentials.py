"""The client_credentials grant (spec 5.2): cache first, then one shared request per key."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any

from .. import _log
from .._cache.schema import compute_ext_cache_key
from .._oauth2.claims import merge_capabilities, merge_claims
from .._oauth2.requests import CLIENT_CREDENTIALS, build_token_request
from .._oauth2.responses import cache_hit_result, clean_result
from .._telemetry import AT_ABSENT, AT_AGING, AT_EXPIRED, FORCE_REFRESH
from .context import AppContext, send_token_request

__all__ = ["API_ID", "EXPIRY_BUFFER", "acquire_token_for_client"]

logger = logging.getLogger(_log.APPLICATION)

#: msal's telemetry API id of acquire_token_for_client.
API_ID = "730"
#: A token with less than this many seconds left counts as expired (msal: 5 minutes).
EXPIRY_BUFFER = 300


def _lookup(
    ctx: AppContext, scopes: list[str], realm: str, ext_cache_key: str | None, key_id: str | None
) -> tuple[dict[str, Any] | None, int, float]:
    """Find a usable cached token: (result or None, refresh reason, now)."""
    now = ctx.clock()
    reason = AT_ABSENT
    # The exact key first (O(1), the usual hit), the rest of the partition only if it fails.
    for exact_only in (True, False):
        for entry in ctx.cache.access_token_candidates(
            client_id=ctx.client_id,
            environment=ctx.authority.instance,
            realm=realm,
            scopes=scopes,
            ext_cache_key=ext_cache_key,
            key_id=key_id,
            exact_only=exact_only,
        ):
            if int(entry["expires_on"]) - now < EXPIRY_BUFFER:
                reason = AT_EXPIRED
                continue
            result = cache_hit_result(entry, now=now)
            if "refresh_on" in entry and int(entry["refresh_on"]) < now:
                return result, AT_AGING, now
            return result, 0, now
    return None, reason, now


async def acquire_token_for_client(
    ctx: AppContext,
    scopes: list[str],
    *,
    claims_challenge: str | None = None,
    data: Mapping[str, Any] | None = None,
    region: str | None = None,
    spawn: Callable[[Callable[[], Awaitable[None]]], None] | None = None,
) -> dict[str, Any]:
    """Return a cached app token, or fetch one (once for all concurrent callers).

    With ``region``, the request goes to the regional (ESTS-R) token endpoint; the client
    assertion still names the central endpoint (as msal's) and the token is cached under
    the central environment. With ``spawn`` (the app's task group, while it is used as
    ``async with app:``), a token past its ``refresh_on`` but still valid is returned at once
    and refreshed in the background; without it the refresh happens inline. Either way a
    failed refresh keeps the cached token.

    Returns:
        msal's result dict: a token, or an error dict.

    Raises:
        MsalTransportError: the token endpoint could not be reached and no token is cached.
    """
    data = dict(data or {})
    ext_cache_key = compute_ext_cache_key(data) or None
    key_id = data.get("key_id")
    realm = await ctx.realm()
    await ctx.cache_before_lookup(realm=realm)
    fallback: dict[str, Any] | None = None
    reason = FORCE_REFRESH
    if not claims_challenge:
        fallback, reason, _ = _lookup(ctx, scopes, realm, ext_cache_key, key_id)
        if fallback is not None and reason == 0:
            ctx.telemetry.hit()
            return fallback
    claims = merge_capabilities(ctx.client_capabilities, claims_challenge)
    if data.get("client_claims"):
        claims = merge_claims(claims, data["client_claims"])
    endpoints = await ctx.endpoints()
    token_endpoint = endpoints.token_endpoint
    if region is not None:
        regional = await ctx.discovery.resolve_regional(ctx.authority, region)
        token_endpoint = regional.token_endpoint
    request = build_token_request(
        token_endpoint,
        client_id=ctx.client_id,
        grant_type=CLIENT_CREDENTIALS,
        scopes=scopes,
        fields=data,
        claims=claims,
    )
    # The key is the request itself minus the credential: every field that shapes it.
    key = (request.url, tuple(sorted(request.form.items())), ext_cache_key)

    async def fetch() -> dict[str, Any]:
        if not claims_challenge:  # a flight that just ended may have filled the cache
            again, again_reason, _ = _lookup(ctx, scopes, realm, ext_cache_key, key_id)
            if again is not None and again_reason == 0:
                return again
        telemetry = ctx.telemetry.context(API_ID, refresh_reason=reason)
        form = dict(request.form)
        if ctx.credential is not None:
            form.update(
                await ctx.credential.form_fields(
                    client_id=ctx.client_id,
                    token_endpoint=endpoints.token_endpoint,
                    fmi_path=data.get("fmi_path"),
                )
            )
        raw = await send_token_request(ctx, request.__class__(request.url, form), telemetry)
        now = ctx.clock()
        if "error" not in raw:
            ctx.cache.add(
                {
                    "client_id": ctx.client_id,
                    "scope": scopes,
                    "token_endpoint": request.url,
                    "grant_type": CLIENT_CREDENTIALS,
                    "response": raw,
                    "params": {},
                    "data": data,
                    "environment": ctx.authority.instance,
                },
                now=now,
            )
            await ctx.cache_after_change(realm=realm)
        return clean_result(raw, now=now)

    if fallback is not None and spawn is not None:
        if not ctx.flights.running(key):
            spawn(lambda: _refresh_in_background(ctx, key, fetch))
        ctx.telemetry.hit()
        return fallback
    try:
        result = await ctx.shared(key, fetch, spawn=spawn)
    except Exception:
        if fallback is None:
            raise
        logger.warning("Refreshing an aging token failed; serving the cached one", exc_info=True)
        return fallback
    if "error" in result and fallback is not None:
        logger.warning(
            "Refreshing an aging token failed (%s); serving the cached one", result["error"]
        )
        return fallback
    return dict(result)


async def _refresh_in_background(
    ctx: AppContext, key: Hashable, fetch: Callable[[], Awaitable[dict[str, Any]]]
) -> None:
    try:
        result = await ctx.shared(key, fetch)
    except Exception as exc:  # noqa: BLE001 (a background task must not crash the app's group)
        logger.warning(
            "Background token refresh failed (%s); the cached token stays", type(exc).__name__
        )
        return
    if "error" in result:
        logger.warning(
            "Background token refresh failed (%s); the cached token stays", result["error"]
        )
