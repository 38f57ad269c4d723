"""The client_credentials grant (spec 5.2): cache first, then one shared request per key."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from functools import partial
from typing import Any, cast

from .. import _clock
from .._cache.freshness import TokenQuery
from .._cache.partitions import app_partition
from .._cache.session import look_up
from .._oauth2.grants import CLIENT_CREDENTIALS
from .._oauth2.requests import NO_OPTIONS, CallOptions, TokenRequest
from .._oauth2.responses import clean_result
from .._telemetry import FORCE_REFRESH
from .context import AppContext, Outcome

__all__ = ["acquire_token_for_client"]


async def acquire_token_for_client(
    ctx: AppContext,
    scopes: Sequence[str],
    *,
    claims_challenge: str | None = None,
    data: Mapping[str, Any] | None = None,
    region: str | None = None,
    options: CallOptions = NO_OPTIONS,
) -> tuple[dict[str, Any], str | None]:
    """Return a cached app token, or fetch one (once for all concurrent callers).

    With ``region``, the request goes to the regional (ESTS-R) token endpoint; the client
    assertion still names the central endpoint (as msal's) and the token is cached under the
    central environment. Inside ``async with app:`` a token past its ``refresh_on`` but still
    valid is returned at once and refreshed in the background; outside, the refresh happens
    inline. Either way a failed refresh keeps the cached token.

    Returns:
        ``(result, key)``: msal's result dict (a token or an error dict) and the cache key of
        the token it carries, if any.

    Raises:
        MsalTransportError: the token endpoint could not be reached and no token is cached.
    """
    data = dict(data or {})
    realm = await ctx.realm()
    partition = app_partition(ctx.client_id, realm)
    query = ctx.query(scopes, realm, data=data)
    fallback: Outcome | None = None
    reason = FORCE_REFRESH
    seen: int | None = None
    if not claims_challenge:
        cached = await look_up(ctx.cache, partition, query)
        if cached.fresh is not None:
            ctx.telemetry.hit()
            return cast("tuple[dict[str, Any], str | None]", cached.fresh)
        fallback, reason, seen = cached.fallback, cached.reason, cached.version
    central = (await ctx.endpoints()).token_endpoint
    endpoint = central
    if region is not None:
        endpoint = (await ctx.discovery.resolve_regional(ctx.authority, region)).token_endpoint
    request, key = await ctx.token_request(
        CLIENT_CREDENTIALS,
        scopes=scopes,
        data=data,
        claims_challenge=claims_challenge,
        options=options,
        endpoint=endpoint,
        audience=central,
    )

    fetch = partial(
        _fetch,
        ctx,
        request,
        key,
        partition,
        query,
        seen,
        reason,
        scopes,
        data,
        claims_challenge,
        options,
    )
    # This flow always answers: a token, a cached fallback or an error dict, never None.
    return cast("tuple[dict[str, Any], str | None]", await ctx.refresh(key, fetch, fallback))


async def _fetch(
    ctx: AppContext,
    request: TokenRequest,
    key: Hashable,
    partition: str,
    query: TokenQuery,
    seen: int | None,
    reason: int,
    scopes: Sequence[str],
    data: Mapping[str, Any],
    claims_challenge: str | None,
    options: CallOptions,
) -> Outcome:
    """The shared request: look again (a flight that just ended may have filled the cache),
    then ask the authority and commit its answer."""
    answers = None if claims_challenge else query
    async with ctx.cache.session(partition, fleet_key=key, answers=answers) as session:
        if not claims_challenge:
            fresh = session.cached(query, seen).fresh
            if fresh is not None:
                return fresh
        telemetry = ctx.telemetry.context(CLIENT_CREDENTIALS.api_id, refresh_reason=reason)
        raw = await ctx.send(await ctx.sign(request), telemetry, options)
        now = _clock.now()
        if "error" in raw:
            return clean_result(raw, now=now), None
        written = session.commit(ctx.event(raw, request, scopes, data=data), now)
        return clean_result(raw, now=now), written
