"""acquire_token_silent (spec 7.5): cached AT, else refresh tokens (FOCI first), aliases.

Two things msal does not do: concurrent silent calls that need the same refresh share one
request (:class:`RefreshFlights`), and a call that finds an aging token (past ``refresh_on``,
still valid) can hand the refresh to a background task and return the cached token at once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio

from .. import _log
from .._cache.schema import CredentialType, compute_ext_cache_key
from .._errors import MsalServiceError, MsalTransportError
from .._oauth2.claims import merge_capabilities, merge_claims
from .._oauth2.oidc import add_id_token_claims
from .._oauth2.requests import build_token_request
from .._oauth2.responses import cache_hit_result, clean_result
from .._oauth2.scopes import decorate_scopes
from .._oauth2.user_tokens import (
    REFRESH_TOKEN,
    anchor_from_home_account_id,
    classify,
    event_scopes,
    refresh_scopes,
    token_event,
)
from .._telemetry import AT_ABSENT, AT_AGING, AT_EXPIRED, FORCE_REFRESH
from .context import AppContext, send_token_request

__all__ = ["API_ID", "EXPIRY_BUFFER", "RefreshFlights", "SilentRequest", "acquire_token_silent"]

logger = logging.getLogger(_log.APPLICATION)

#: msal's telemetry API id of acquire_token_silent.
API_ID = "84"
#: A token with less than this many seconds left counts as expired (msal: 5 minutes).
EXPIRY_BUFFER = 300

Result = dict[str, Any]
Spawn = Callable[[Callable[[], Awaitable[None]]], None]


class _Flight:
    __slots__ = ("cancelled", "done", "error", "value")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.value: Result | None = None
        self.error: Exception | None = None
        self.cancelled = False


class RefreshFlights:
    """One refresh in flight per key, for the user-token refreshes of one app.

    Unlike the app-token single flight, the leader's request is not shielded: cancelling the
    leader cancels its request before anything reaches the cache, and the callers that were
    waiting on it start a new flight instead of seeing the cancellation.
    """

    def __init__(self) -> None:
        self._flights: dict[Hashable, _Flight] = {}

    def running(self, key: Hashable) -> bool:
        """Tell whether a refresh for ``key`` is in flight.

        Args:
            key: the flight key.

        Returns:
            True when one is running.
        """
        return key in self._flights

    async def run(
        self, key: Hashable, call: Callable[[], Awaitable[Result | None]]
    ) -> Result | None:
        """Await ``call()`` once for all concurrent callers with the same ``key``.

        Args:
            key: what makes two refreshes the same request.
            call: the refresh.

        Returns:
            The shared result.

        Raises:
            Exception: whatever ``call()`` raised, in every waiter.
        """
        while True:
            flight = self._flights.get(key)
            if flight is None:
                break
            await flight.done.wait()
            if flight.cancelled:
                continue  # the leader was cancelled: lead a new flight
            if flight.error is not None:
                raise flight.error
            return flight.value
        flight = self._flights[key] = _Flight()
        try:
            flight.value = await call()
        except anyio.get_cancelled_exc_class():
            flight.cancelled = True
            raise
        except Exception as exc:
            flight.error = exc
            raise
        finally:
            del self._flights[key]
            flight.done.set()
        return flight.value


@dataclass
class SilentRequest:
    """One silent acquisition, validated by the app.

    The decorated scopes and the correlation id are made only when a refresh needs them, so a
    cache hit stays cheap (and, as in msal, a cache hit never decorates).
    """

    scopes: list[str]
    account: Mapping[str, Any]
    exclude_scopes: list[str] = field(default_factory=list)
    force_refresh: bool = False
    claims_challenge: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def decorated(self) -> list[str]:
        """The scopes of a refresh request: ``openid profile offline_access`` added."""
        return decorate_scopes(self.scopes, self.exclude_scopes)

    @cached_property
    def correlation_id(self) -> str:
        """One ``client-request-id`` for every refresh attempt of this call (msal)."""
        return str(uuid.uuid4())

    @property
    def home_account_id(self) -> str | None:
        """The account's ``home_account_id``."""
        value = self.account.get("home_account_id")
        return value if isinstance(value, str) else None

    @property
    def bypass_cache(self) -> bool:
        """``force_refresh`` or a claims challenge skip the AT cache (msal)."""
        return bool(self.force_refresh or self.claims_challenge)


def _lookup(
    ctx: AppContext, req: SilentRequest, environment: str, realm: str
) -> tuple[Result | None, int]:
    """The best cached AT: (result or None, refresh reason; 0 means fresh)."""
    now = ctx.clock()
    reason = AT_ABSENT
    for entry in ctx.cache.access_token_candidates(
        client_id=ctx.client_id,
        environment=environment,
        realm=realm,
        scopes=req.scopes,
        home_account_id=req.home_account_id,
        ext_cache_key=compute_ext_cache_key(req.data) or None,
        key_id=req.data.get("key_id"),
    ):
        if int(entry["expires_on"]) - now < EXPIRY_BUFFER:
            reason = AT_EXPIRED
            continue
        result = cache_hit_result(entry, now=now)
        if "refresh_on" in entry and int(entry["refresh_on"]) < now:
            return result, AT_AGING
        return result, 0
    return None, reason


def flight_key(ctx: AppContext, req: SilentRequest, realm: str) -> Hashable:
    """Everything that shapes a refresh request and where its result goes."""
    return (
        ctx.authority.instance,
        realm,
        req.home_account_id,
        tuple(sorted(req.scopes)),
        req.claims_challenge,
        bool(req.force_refresh),
        tuple(sorted((k, repr(v)) for k, v in req.data.items())),
    )


async def acquire_token_silent(
    ctx: AppContext,
    req: SilentRequest,
    *,
    flights: RefreshFlights,
    spawn: Spawn | None = None,
) -> Result | None:
    """msal's ``acquire_token_silent_with_error`` algorithm (spec 7.5).

    Args:
        ctx: the app's context.
        req: the request.
        flights: the app's refresh flights.
        spawn: starts a background task; when given, an aging token is returned at once and
            refreshed in the background.

    Returns:
        A token result, None (nothing cached), or an error dict (with ``classification``).

    Raises:
        MsalTransportError: the refresh could not reach the authority and no token is cached.
    """
    realm = await ctx.realm()
    await ctx.cache_before_lookup(realm=realm, home_account_id=req.home_account_id)
    fallback: Result | None = None
    reason = FORCE_REFRESH
    if not req.bypass_cache:
        fallback, reason = _lookup(ctx, req, ctx.authority.instance, realm)
        if fallback is not None and reason == 0:
            ctx.telemetry.hit()
            return fallback
    key = flight_key(ctx, req, realm)

    async def refresh() -> Result | None:
        return await _refresh_everywhere(ctx, req, realm, reason)

    if fallback is not None and spawn is not None:
        if not flights.running(key):
            spawn(lambda: _background(flights, key, refresh))
        return fallback
    try:
        result = await flights.run(key, refresh)
    except (MsalTransportError, MsalServiceError):
        if fallback is None:
            raise
        logger.warning("Refreshing an aging token failed to connect; serving the cached one")
        return fallback
    if fallback is not None and (result is None or "error" in result):
        logger.warning(
            "Refreshing an aging token failed (%s); serving the cached one",
            (result or {}).get("error"),
        )
        return fallback
    return classify(dict(result)) if result is not None else None


async def _background(
    flights: RefreshFlights, key: Hashable, refresh: Callable[[], Awaitable[Result | None]]
) -> None:
    try:
        result = await flights.run(key, refresh)
    except Exception as exc:  # noqa: BLE001 (a background task must not crash the app's group)
        logger.warning(
            "Background token refresh failed (%s); the cached token stays", type(exc).__name__
        )
        return
    if result is None or "error" in result:
        logger.warning(
            "Background token refresh failed (%s); the cached token stays",
            (result or {}).get("error", "no refresh token"),
        )


async def _refresh_everywhere(
    ctx: AppContext, req: SilentRequest, realm: str, reason: int
) -> Result | None:
    """Refresh at the app's authority, then at each alias that has refresh tokens."""
    if not req.bypass_cache:  # a flight that just ended may have filled the cache
        again, again_reason = _lookup(ctx, req, ctx.authority.instance, realm)
        if again is not None and again_reason == 0:
            return again
    endpoint = (await ctx.endpoints()).token_endpoint
    result = await _refresh_account(ctx, req, ctx.authority.instance, endpoint, reason)
    if result is not None and "error" not in result:
        return result
    final = result
    try:
        aliases = await ctx.discovery.aliases(ctx.authority.instance, authority=ctx.authority)
    except (MsalServiceError, MsalTransportError, ValueError) as exc:
        logger.info("Looking up authority aliases failed (%s); not retrying there", type(exc))
        aliases = []
    for alias in aliases:
        if not any(ctx.cache.search(CredentialType.REFRESH_TOKEN, query={"environment": alias})):
            continue
        if not req.bypass_cache:
            hit, hit_reason = _lookup(ctx, req, alias, realm)
            if hit is not None and hit_reason == 0:
                return hit
        parts = urlsplit(endpoint)
        alias_endpoint = urlunsplit(parts._replace(netloc=alias))
        result = await _refresh_account(ctx, req, alias, alias_endpoint, reason)
        if result is not None:
            if "error" not in result:
                return result
            final = result
    return final


def _app_metadata(ctx: AppContext, environment: str) -> Mapping[str, Any] | None:
    for entry in ctx.cache.search(
        CredentialType.APP_METADATA,
        query={"environment": environment, "client_id": ctx.client_id},
    ):
        return entry
    return None


async def _refresh_account(
    ctx: AppContext, req: SilentRequest, environment: str, endpoint: str, reason: int
) -> Result | None:
    """msal's FOCI order (spec 7.7): family RTs first, then this app's own."""
    query = {"environment": environment, "home_account_id": req.home_account_id}
    metadata = _app_metadata(ctx, environment)
    args = (ctx, req, environment, endpoint, reason)
    if metadata is None:  # first use of this app: maybe it is in family "1"
        result = await _try_rts(*args, {**query, "family_id": "1"}, stop_on_mismatch=True)
        if result is not None and "error" not in result:
            return result
    last: Result | None = None
    family = (metadata or {}).get("family_id")
    if family:
        last = result = await _try_rts(*args, {**query, "family_id": family})
        if result is not None and "error" not in result:
            return result
    own = await _try_rts(*args, {**query, "client_id": ctx.client_id})
    return own or last


def _newest_first(entry: Mapping[str, Any]) -> int:
    try:
        return int(entry.get("last_modification_time", "0"))
    except (TypeError, ValueError):
        return 0


async def _try_rts(
    ctx: AppContext,
    req: SilentRequest,
    environment: str,
    endpoint: str,
    reason: int,
    query: Mapping[str, Any],
    *,
    stop_on_mismatch: bool = False,
) -> Result | None:
    """Try each matching RT, newest first; an RT that fails is kept (msal since 1.10)."""
    matches = sorted(
        ctx.cache.search(CredentialType.REFRESH_TOKEN, query=query), key=_newest_first, reverse=True
    )
    if not matches:
        return None
    telemetry = ctx.telemetry.context(
        API_ID, refresh_reason=reason, correlation_id=req.correlation_id
    )
    claims = merge_claims(
        merge_capabilities(ctx.client_capabilities, req.claims_challenge),
        req.data.get("client_claims"),
    )
    headers = {}
    if req.home_account_id:
        headers["X-AnchorMailbox"] = anchor_from_home_account_id(req.home_account_id)
    credential = await ctx.credential_fields(endpoint)
    response: Result | None = None
    for entry in matches:
        scopes = refresh_scopes(req.decorated, entry.get("target"), oidc=ctx.authority.is_oidc)
        request = build_token_request(
            endpoint,
            client_id=ctx.client_id,
            grant_type=REFRESH_TOKEN,
            scopes=scopes,
            credential_fields=credential,
            fields={**req.data, REFRESH_TOKEN: entry["secret"]},
            claims=claims,
            headers=headers,
        )
        raw = await send_token_request(ctx, request, telemetry)
        if "error" not in raw:
            return await _commit(ctx, req, raw, entry, scopes, endpoint, environment)
        logger.debug("Refresh with one cached refresh token failed: %s", raw.get("error"))
        response = raw
        if stop_on_mismatch and "client_mismatch" in (raw.get("error_additional_info") or []):
            break
    return clean_result(response, now=ctx.clock()) if response is not None else None


async def _commit(
    ctx: AppContext,
    req: SilentRequest,
    raw: Result,
    rt_entry: Mapping[str, Any],
    scopes: list[str],
    endpoint: str,
    environment: str,
) -> Result:
    """Store a refresh response in one synchronous step: tokens added, the RT updated in place.

    A refresh that lands after the account signed out (``remove_account`` removed the refresh
    token while the request was in flight, a round trip that a background refresh makes long)
    is not stored: the sign-out sticks. The caller still gets the tokens it asked for.
    """
    now = ctx.clock()
    bad = add_id_token_claims(raw)
    if bad is not None:
        return bad
    if not ctx.cache.holds(CredentialType.REFRESH_TOKEN, rt_entry):
        logger.info("A refresh finished after its account was removed; its tokens are not cached")
        return clean_result(raw, now=now)
    event = token_event(
        client_id=ctx.client_id,
        scopes=event_scopes(raw, scopes),
        token_endpoint=endpoint,
        grant_type=REFRESH_TOKEN,
        response=raw,
        data=req.data,
        environment=environment,
        keep_refresh_token=False,
        skip_account_creation=True,  # a concurrent remove_account() stays removed (msal 1.5.1)
    )
    ctx.cache.add(event, now=now)
    if isinstance(raw.get(REFRESH_TOKEN), str):
        ctx.cache.update_rt(rt_entry, raw[REFRESH_TOKEN])
    await ctx.cache_after_change(realm=event_realm(endpoint), home_account_id=req.home_account_id)
    return clean_result(raw, now=now)


def event_realm(endpoint: str) -> str:
    """The tenant path segment of a token endpoint (the realm its tokens are stored under)."""
    segments = [s for s in urlsplit(endpoint).path.split("/") if s]
    return segments[0] if segments else ""
