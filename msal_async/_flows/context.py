"""What every flow needs from its app, in one object (so flows never import apps)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import _log
from .._authority import Authority, AuthorityEndpoints
from .._cache.persistence import PersistedTokenCache, partition_key
from .._cache.schema import parse_account
from .._cache.token_cache import TokenCache
from .._credentials import ClientCredential
from .._discovery import Discovery
from .._oauth2.oidc import add_id_token_claims
from .._oauth2.requests import TokenRequest
from .._oauth2.responses import clean_result, parse_token_response
from .._oauth2.user_tokens import event_scopes, token_event
from .._singleflight import SingleFlight
from .._telemetry import TelemetryBuffer, TelemetryContext
from .._transport import Transport

__all__ = ["AppContext", "obtain_token", "send_token_request", "without"]

logger = logging.getLogger(_log.APPLICATION)


@dataclass
class AppContext:
    """The shared services and settings of one application."""

    client_id: str
    authority: Authority
    transport: Transport
    discovery: Discovery
    cache: TokenCache
    telemetry: TelemetryBuffer
    credential: ClientCredential | None = None
    client_capabilities: list[str] | None = None
    exclude_scopes: list[str] = field(default_factory=list)
    clock: Callable[[], float] = time.time
    flights: SingleFlight[dict[str, Any]] = field(default_factory=SingleFlight)
    _realm: str | None = field(default=None, init=False, repr=False)

    async def endpoints(self) -> AuthorityEndpoints:
        """Resolve the authority's endpoints (lazily, once, shared by concurrent callers)."""
        return await self.discovery.resolve(self.authority)

    async def realm(self) -> str:
        """The cache realm: known without network when the tenant says it, else discovered."""
        known = self._realm
        if known is not None:
            return known
        hint = self.authority.realm_hint
        realm = hint if hint is not None else (await self.endpoints()).tenant
        self._realm = realm  # the authority never changes, and discovery is memoised anyway
        return realm

    async def credential_fields(self, token_endpoint: str) -> dict[str, str]:
        """The client credential's form fields for one request (none for public clients)."""
        if self.credential is None:
            return {}
        return await self.credential.form_fields(
            client_id=self.client_id, token_endpoint=token_endpoint
        )

    async def cache_before_lookup(self, *, realm: str, home_account_id: str | None = None) -> None:
        """Let a persistent cache load the partition that may have changed (no-op in memory).

        Flows call this before every cache lookup; the partition is the tenant for app tokens
        and the home account for user tokens. Never raises for a store failure (it is logged).
        """
        if isinstance(self.cache, PersistedTokenCache):
            await self.cache.load(partition_key(self.client_id, realm, home_account_id))

    async def cache_after_change(self, *, realm: str, home_account_id: str | None = None) -> None:
        """Let a persistent cache save the partition a flow just changed (no-op in memory)."""
        if isinstance(self.cache, PersistedTokenCache):
            await self.cache.save(partition_key(self.client_id, realm, home_account_id))

    async def shared(
        self,
        key: Hashable,
        call: Callable[[], Any],
        *,
        spawn: Callable[[Callable[[], Awaitable[None]]], None] | None = None,
    ) -> dict[str, Any]:
        """Run ``call`` once for all concurrent callers with the same ``key``.

        With ``spawn`` (the app's task group) the call runs as a task of the app and every
        caller may be cancelled at once; see :class:`SingleFlight`. With a persistent cache
        whose store locks across machines (Redis), one worker of the fleet runs it and the
        others pick its token up from the store (that path runs in the first caller, which
        carries the partition the lock is taken for).
        """
        cache = self.cache
        if isinstance(cache, PersistedTokenCache) and cache.persistence.supports_locks:
            fleet: dict[str, Any] = await self.flights.run(
                key, lambda: cache.fleet_flight(key, call)
            )
            return fleet
        result: dict[str, Any] = await self.flights.run(key, call, spawn=spawn)
        return result


async def send_token_request(
    ctx: AppContext, request: TokenRequest, telemetry: TelemetryContext
) -> dict[str, Any]:
    """POST a token request and parse the answer into msal's raw response or error dict.

    Returns:
        The raw response dict (with ``refresh_in`` still in it), or an error dict.

    Raises:
        MsalTransportError: the request could not be sent or answered.
    """
    headers = dict(request.headers)
    headers.update(telemetry.headers())
    response = await ctx.transport.post(request.url, data=request.form, headers=headers)
    raw = parse_token_response(
        response.status_code,
        response.text,
        content_type=response.headers.get("content-type", ""),
        too_large=response.too_large,
        correlation_id=telemetry.correlation_id,
    )
    telemetry.record(raw)
    if "error" in raw:
        logger.info(
            "Token request to %s failed: %s (correlation id %s)",
            request.url,
            raw.get("error"),
            raw.get("correlation_id"),
        )
    return raw


async def obtain_token(
    ctx: AppContext,
    request: TokenRequest,
    telemetry: TelemetryContext,
    *,
    scopes: Sequence[str],
    data: Mapping[str, Any] | None = None,
    event_extra: Mapping[str, Any] | None = None,
    check_id_token: Callable[[dict[str, Any], float], None] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Send a token request, commit a success to the cache (and its store), build the result.

    The one send-parse-commit step of every user-token grant. ``request.form`` must already
    hold the credential fields. The cache event records the response's ``scope`` when it has
    one, else ``scopes`` (msal's rule); ``data`` shapes the entry (msal's ``data=``:
    ``key_id``, ``fmi_path``...); ``event_extra`` adds event fields such as
    ``skip_account_creation`` or ``username``; ``check_id_token(claims, now)`` may raise
    before anything is cached (the auth code flow's nonce and max_age checks).

    Returns:
        ``(raw, result)``: the raw response (``refresh_in`` kept, ``id_token_claims`` added)
        and the cleaned result for the caller; both are error dicts on failure.

    Raises:
        MsalTransportError: the request could not be sent or answered.
    """
    raw = await send_token_request(ctx, request, telemetry)
    now = ctx.clock()
    if "error" in raw:
        return raw, clean_result(raw, now=now)
    bad = add_id_token_claims(raw, correlation_id=telemetry.correlation_id)
    if bad is not None:
        return bad, dict(bad)
    if check_id_token is not None and "id_token_claims" in raw:
        check_id_token(raw["id_token_claims"], now)
    event = token_event(
        client_id=ctx.client_id,
        scopes=event_scopes(raw, scopes),
        token_endpoint=request.url,
        grant_type=request.form.get("grant_type", ""),
        response=raw,
        data=data or {},
        environment=ctx.authority.instance,
        **(event_extra or {}),
    )
    ctx.cache.add(event, now=now)
    _, home_account_id = parse_account(raw, raw.get("id_token_claims") or {})
    await ctx.cache_after_change(realm=await ctx.realm(), home_account_id=home_account_id)
    return raw, clean_result(raw, now=now)


def without(mapping: Mapping[str, str], *keys: str) -> dict[str, str]:
    """A copy of ``mapping`` without ``keys``."""
    return {k: v for k, v in mapping.items() if k not in keys}
