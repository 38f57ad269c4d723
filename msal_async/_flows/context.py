"""What every flow needs from its app, in one object (so flows never import apps).

The context holds the app's services (transport, discovery, cache, telemetry, credential), the
one :class:`SingleFlight` registry of every network call, and the starter of the app's
background jobs (``_jobs``). It builds every token request (:meth:`AppContext.token_request`),
sends it (:meth:`AppContext.send`) and, for grants that always ask the authority, commits the
answer through a cache session (:func:`obtain_token`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

import anyio
import anyio.lowlevel

from .. import _clock, _log, _observe
from .._authority import Authority, AuthorityEndpoints
from .._cache.freshness import TokenQuery
from .._cache.schema import compute_ext_cache_key
from .._cache.session import Outcome
from .._cache.token_cache import TokenCache
from .._credentials import ClientCredential
from .._discovery import Discovery
from .._oauth2.claims import merge_capabilities, merge_claims
from .._oauth2.grants import Grant
from .._oauth2.oidc import add_id_token_claims
from .._oauth2.requests import NO_OPTIONS, CallOptions, TokenRequest, build_token_request
from .._oauth2.responses import clean_result, parse_token_response
from .._oauth2.user_tokens import event_scopes, token_event
from .._singleflight import SingleFlight, Spawn, current_loop
from .._telemetry import TelemetryBuffer, TelemetryContext
from .._transport import Transport

__all__ = ["AppContext", "Outcome", "obtain_token", "refresh_or_fall_back"]

logger = logging.getLogger(_log.APPLICATION)
T = TypeVar("T")


#: OAuth errors that are the protocol working as intended (device-code polling): DEBUG, not INFO.
_EXPECTED_ERRORS = frozenset({"authorization_pending", "slow_down"})


class AppContext:
    """The shared services and settings of one application.

    Args:
        client_id: the application id.
        authority: the parsed authority.
        transport: the app's HTTP seam.
        discovery: the app's discovery service.
        cache: the token cache.
        telemetry: the app's telemetry buffer.
        credential: the client credential (None for public clients).
        client_capabilities: e.g. ``["CP1"]``.
        exclude_scopes: scopes never added to user-token requests.
        flights: the single-flight registry (the discovery service's, so both share one).
    """

    def __init__(
        self,
        *,
        client_id: str,
        authority: Authority,
        transport: Transport,
        discovery: Discovery,
        cache: TokenCache,
        telemetry: TelemetryBuffer,
        credential: ClientCredential | None = None,
        client_capabilities: list[str] | None = None,
        exclude_scopes: Sequence[str] = (),
        flights: SingleFlight | None = None,
    ) -> None:
        self.client_id = client_id
        self.authority = authority
        self.transport = transport
        self.discovery = discovery
        self.cache = cache
        self.telemetry = telemetry
        self.credential = credential
        self.client_capabilities = client_capabilities
        self.exclude_scopes = list(exclude_scopes)
        self.flights = flights if flights is not None else SingleFlight()
        self.environment = authority.instance.lower()
        self._realm: str | None = None
        self._group: tuple[object, Spawn] | None = None

    def derive(self, *, authority: Authority, client_capabilities: list[str] | None) -> AppContext:
        """A sibling context for another authority or capability set: the same client,
        credential, cache, transport and discovery; its own telemetry and in-flight calls.

        Returns:
            The new context.
        """
        return AppContext(
            client_id=self.client_id,
            authority=authority,
            transport=self.transport,
            discovery=self.discovery,
            cache=self.cache,
            telemetry=TelemetryBuffer(),
            credential=self.credential,
            client_capabilities=client_capabilities,
            exclude_scopes=self.exclude_scopes,
        )

    # --- the authority ----------------------------------------------------------------------

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

    def query(
        self,
        scopes: Sequence[str],
        realm: str,
        *,
        home_account_id: str | None = None,
        data: Mapping[str, Any] | None = None,
        environment: str | None = None,
    ) -> TokenQuery:
        """The access-token lookup of a request (its ``data`` shapes the extended key)."""
        data = data or {}
        key_id = data.get("key_id")
        return TokenQuery(
            client_id=self.client_id,
            environment=(environment or self.environment).lower(),
            realm=realm,
            scopes=tuple(scopes),
            home_account_id=home_account_id,
            ext_cache_key=compute_ext_cache_key(data) or None,
            key_id=key_id if isinstance(key_id, str) else None,
        )

    # --- background work ---------------------------------------------------------------------

    def attach_group(self, spawn: Spawn | None) -> None:
        """Run shared requests and background refreshes through ``spawn`` (None: stop)."""
        self._group = None if spawn is None else (current_loop(), spawn)

    def spawn(self) -> Spawn | None:
        """The app's job starter, when the caller runs on the event loop its jobs run on."""
        group = self._group
        if group is None or group[0] is not current_loop():
            return None
        return group[1]

    async def shared(self, key: Hashable, call: Callable[[], Awaitable[T]]) -> T:
        """Run ``call`` once for all concurrent callers of this event loop with ``key``."""
        _observe.joining(self.flights.running, key)
        return await self.flights.run(key, call, spawn=self.spawn())

    async def refresh(
        self, key: Hashable, fetch: Callable[[], Awaitable[Outcome]], fallback: Outcome | None
    ) -> Outcome:
        """Fetch once for all concurrent callers, keeping an aging fallback (see
        :func:`refresh_or_fall_back`); inside ``async with app:`` as a job of the app."""
        _observe.joining(self.flights.running, key)
        return await refresh_or_fall_back(
            self.flights, key, fetch, fallback, spawn=self.spawn(), on_hit=self.telemetry.hit
        )

    # --- token requests ------------------------------------------------------------------------

    async def token_request(
        self,
        grant: Grant,
        *,
        scopes: Sequence[str] | None,
        fields: Mapping[str, object] | None = None,
        data: Mapping[str, Any] | None = None,
        claims_challenge: str | None = None,
        headers: Mapping[str, str] | None = None,
        options: CallOptions = NO_OPTIONS,
        endpoint: str | None = None,
        audience: str | None = None,
        grant_type: str | None = None,
    ) -> tuple[TokenRequest, Hashable]:
        """Build an (unsigned) token request of ``grant``, with the claims merged.

        Args:
            grant: the grant (its own fields win over ``data``).
            scopes: the scopes to send (None: no ``scope`` field).
            fields: the grant's own field values.
            data: the caller's ``data=`` (``client_claims`` merges into ``claims``).
            claims_challenge: a claims JSON; merged with the app's client capabilities.
            headers: extra headers of the grant (``X-AnchorMailbox``...).
            options: the caller's per-call transport options.
            endpoint: where to POST; the authority's token endpoint when None.
            audience: the token endpoint a client assertion names (default ``endpoint``).
            grant_type: the grant type, for a grant whose type is chosen per request.

        Returns:
            ``(request, flight key)``: the key is every field that shapes the request (the
            credential, a fresh assertion per request, is added by :meth:`sign`).
        """
        data = data or {}
        if endpoint is None:
            endpoint = (await self.endpoints()).token_endpoint
        claims = merge_claims(
            merge_capabilities(self.client_capabilities, claims_challenge),
            data.get("client_claims"),
        )
        request = build_token_request(
            endpoint,
            grant=grant,
            grant_type=grant_type,
            client_id=self.client_id,
            scopes=scopes,
            data=data,
            fields=fields,
            claims=claims,
            headers=headers,
            options=options,
            audience=audience,
        )
        return request, request.flight_key(compute_ext_cache_key(data))

    async def sign(self, request: TokenRequest) -> TokenRequest:
        """Add the client credential's fields (a fresh assertion) to a request.

        Returns:
            The request to send (unchanged for a public client).
        """
        if self.credential is None:
            return request
        fields = await self.credential.form_fields(
            client_id=self.client_id,
            token_endpoint=request.audience or request.url,
            fmi_path=request.form.get("fmi_path"),
        )
        return request.signed(fields)

    async def send(
        self, request: TokenRequest, telemetry: TelemetryContext, options: CallOptions = NO_OPTIONS
    ) -> dict[str, Any]:
        """POST a token request and parse the answer into msal's raw response or error dict.

        Returns:
            The raw response dict (with ``refresh_in`` still in it), or an error dict.

        Raises:
            MsalTransportError: the request could not be sent or answered.
        """
        raw = await _observe.token_request(
            request.form.get("grant_type", ""),
            telemetry.api_id,
            telemetry.refresh_reason,
            partial(self._post, request, telemetry, options),
        )
        telemetry.record(raw)
        if "error" in raw:
            level = logging.DEBUG if raw["error"] in _EXPECTED_ERRORS else logging.INFO
            logger.log(
                level,
                "Token request to %s failed: %s (correlation id %s)",
                request.url,
                raw.get("error"),
                raw.get("correlation_id"),
            )
        return raw

    async def _post(
        self, request: TokenRequest, telemetry: TelemetryContext, options: CallOptions
    ) -> dict[str, Any]:
        headers = dict(request.headers)
        headers.update(telemetry.headers())
        response = await self.transport.post(
            request.url,
            data=request.form,
            params=request.params or None,
            headers=headers,
            timeout=options.timeout,
        )
        return parse_token_response(
            response.status_code,
            response.text,
            content_type=response.headers.get("content-type", ""),
            too_large=response.too_large,
            correlation_id=telemetry.correlation_id,
        )

    def event(
        self,
        raw: Mapping[str, Any],
        request: TokenRequest,
        scopes: Sequence[str],
        *,
        data: Mapping[str, Any] | None = None,
        environment: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """msal's cache event for a token response to ``request``.

        The event records the response's ``scope`` when it has one, else ``scopes`` (msal's
        rule), and the caller's ``data`` (its extra fields shape the extended cache key).
        """
        return token_event(
            client_id=self.client_id,
            scopes=event_scopes(raw, scopes),
            token_endpoint=request.url,
            grant_type=request.form.get("grant_type", ""),
            response=raw,
            data=data or {},
            environment=environment or self.authority.instance,
            **extra,
        )


async def obtain_token(
    ctx: AppContext,
    request: TokenRequest,
    telemetry: TelemetryContext,
    *,
    scopes: Sequence[str],
    data: Mapping[str, Any] | None = None,
    options: CallOptions = NO_OPTIONS,
    event_extra: Mapping[str, Any] | None = None,
    check_id_token: Callable[[dict[str, Any], float], None] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Send a token request and commit a success, for grants that always ask the authority.

    The round trip and the commit run shielded (bounded by the transport timeout): once the
    server has answered, a cancelled caller cannot lose the tokens it issued. ``data`` shapes
    the entries (msal's ``data=``: ``key_id``, ``fmi_path``...); ``event_extra`` adds event
    fields (``skip_account_creation``, ``username``); ``check_id_token(claims, now)`` may raise
    before anything is cached (the auth code flow's nonce and max_age checks).

    Returns:
        ``(raw, result)``: the raw response (``refresh_in`` kept, ``id_token_claims`` added)
        and the cleaned result for the caller; both are error dicts on failure.

    Raises:
        MsalTransportError: the request could not be sent or answered.
    """
    with anyio.CancelScope(shield=True):
        raw, result = await _obtain(
            ctx, request, telemetry, scopes, data, options, event_extra, check_id_token
        )
    await anyio.lowlevel.checkpoint_if_cancelled()
    return raw, result


async def _obtain(
    ctx: AppContext,
    request: TokenRequest,
    telemetry: TelemetryContext,
    scopes: Sequence[str],
    data: Mapping[str, Any] | None,
    options: CallOptions,
    event_extra: Mapping[str, Any] | None,
    check_id_token: Callable[[dict[str, Any], float], None] | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    raw = await ctx.send(await ctx.sign(request), telemetry, options)
    now = _clock.now()
    if "error" in raw:
        return raw, clean_result(raw, now=now)
    bad = add_id_token_claims(raw, correlation_id=telemetry.correlation_id)
    if bad is not None:
        return bad, dict(bad)
    if check_id_token is not None and "id_token_claims" in raw:
        check_id_token(raw["id_token_claims"], now)
    event = ctx.event(raw, request, scopes, data=data, **(event_extra or {}))
    async with ctx.cache.session(None) as session:
        session.commit(event, now)
    return raw, clean_result(raw, now=now)


async def refresh_or_fall_back(
    flights: SingleFlight,
    key: Hashable,
    fetch: Callable[[], Awaitable[Outcome]],
    fallback: Outcome | None,
    *,
    spawn: Spawn | None = None,
    on_hit: Callable[[], None] | None = None,
) -> Outcome:
    """Fetch a token once for all concurrent callers; an aging ``fallback`` survives.

    With a ``fallback`` (a cached token past its ``refresh_on``) and a task group (``spawn``),
    the fallback is returned at once and the fetch runs in the background; otherwise the fetch
    runs now, and a failure (an exception or an error dict) returns the fallback.

    Returns:
        The fetch's outcome, or the fallback.

    Raises:
        Exception: the fetch failed and there is no fallback.
    """
    if fallback is not None and spawn is not None:
        if not flights.running(key):
            spawn.start(partial(_refresh_in_background, flights, key, fetch))
        if on_hit is not None:
            on_hit()
        return fallback
    try:
        result, token_key = await flights.run(key, fetch, spawn=spawn)
    except Exception:
        if fallback is None:
            raise
        logger.warning("Refreshing an aging token failed; serving the cached one", exc_info=True)
        return fallback
    if fallback is not None and (result is None or "error" in result):
        logger.warning(
            "Refreshing an aging token failed (%s); serving the cached one",
            (result or {}).get("error", "no refresh token"),
        )
        return fallback
    return (None if result is None else dict(result)), token_key


async def _refresh_in_background(
    flights: SingleFlight, key: Hashable, fetch: Callable[[], Awaitable[Outcome]]
) -> None:
    try:
        result, _ = await flights.run(key, fetch)
    except Exception as exc:  # noqa: BLE001 (a background task must not crash the app's group)
        logger.warning(
            "Background token refresh failed (%s); the cached token stays", type(exc).__name__
        )
        _background_outcome("failure")
        return
    if result is None or "error" in result:
        logger.warning(
            "Background token refresh failed (%s); the cached token stays",
            (result or {}).get("error", "no refresh token"),
        )
        _background_outcome("failure")
        return
    _background_outcome("success")


def _background_outcome(outcome: str) -> None:
    observer = _observe.observer
    if observer is not None:
        observer.background_refresh(outcome)
