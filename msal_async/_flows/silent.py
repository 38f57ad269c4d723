"""acquire_token_silent (spec 7.5): cached AT, else refresh tokens (FOCI first), aliases.

Two things msal does not do: concurrent silent calls that need the same refresh share one
request (the app's single flight, shielded, so a refresh token the server rotated is always
stored), and a call that finds an aging token (past ``refresh_on``, still valid) can hand the
refresh to a background task and return the cached token at once.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .. import _clock, _log
from .._cache.freshness import TokenQuery
from .._cache.partitions import partition_key
from .._cache.schema import CredentialType
from .._cache.session import CacheSession, look_up
from .._errors import MsalServiceError, MsalTransportError
from .._oauth2.grants import SILENT_REFRESH
from .._oauth2.oidc import add_id_token_claims
from .._oauth2.requests import NO_OPTIONS, CallOptions, TokenRequest
from .._oauth2.responses import clean_result
from .._oauth2.scopes import decorate_scopes
from .._oauth2.user_tokens import (
    REFRESH_TOKEN,
    anchor_from_home_account_id,
    classify,
    refresh_scopes,
)
from .._telemetry import FORCE_REFRESH, new_correlation_id
from .context import AppContext, Outcome

__all__ = ["SilentRequest", "acquire_token_silent"]

logger = logging.getLogger(_log.APPLICATION)

Result = dict[str, Any]
_NOTHING: Outcome = (None, None)


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
    options: CallOptions = NO_OPTIONS

    @cached_property
    def decorated(self) -> list[str]:
        """The scopes of a refresh request: ``openid profile offline_access`` added."""
        return decorate_scopes(self.scopes, self.exclude_scopes)

    @cached_property
    def correlation_id(self) -> str:
        """One ``client-request-id`` for every refresh attempt of this call (msal)."""
        return new_correlation_id()

    @property
    def home_account_id(self) -> str | None:
        """The account's ``home_account_id``."""
        value = self.account.get("home_account_id")
        return value if isinstance(value, str) else None

    @property
    def bypass_cache(self) -> bool:
        """``force_refresh`` or a claims challenge skip the AT cache (msal)."""
        return bool(self.force_refresh or self.claims_challenge)


def _flight_key(ctx: AppContext, req: SilentRequest, realm: str) -> Hashable:
    """Everything that shapes a refresh request and where its result goes."""
    return (
        "refresh",
        ctx.environment,
        realm,
        req.home_account_id,
        tuple(sorted(req.scopes)),
        req.claims_challenge,
        bool(req.force_refresh),
        tuple(sorted((k, repr(v)) for k, v in req.data.items())),
        tuple(sorted(req.options.params.items())),
        tuple(sorted(req.options.headers.items())),
    )


async def acquire_token_silent(ctx: AppContext, req: SilentRequest) -> Outcome:
    """msal's ``acquire_token_silent_with_error`` algorithm (spec 7.5).

    Returns:
        ``(result, key)``: a token result, None (nothing cached), or an error dict (with
        ``classification``); and the cache key of the token served, if any.

    Raises:
        MsalTransportError: the refresh could not reach the authority and no token is cached.
    """
    realm = await ctx.realm()
    partition = partition_key(ctx.client_id, realm, req.home_account_id)
    query = ctx.query(req.scopes, realm, home_account_id=req.home_account_id, data=req.data)
    fallback: Outcome | None = None
    reason = FORCE_REFRESH
    seen: int | None = None
    if not req.bypass_cache:
        cached = await look_up(ctx.cache, partition, query)
        if cached.fresh is not None:
            ctx.telemetry.hit()
            return cached.fresh
        fallback, reason, seen = cached.fallback, cached.reason, cached.version
    key = _flight_key(ctx, req, realm)

    async def refresh() -> Outcome:
        return await _refresh_everywhere(ctx, req, partition, query, reason, key, seen)

    result, token_key = await ctx.refresh(key, refresh, fallback)
    return classify(result), token_key


async def _refresh_everywhere(
    ctx: AppContext,
    req: SilentRequest,
    partition: str,
    query: TokenQuery,
    reason: int,
    key: Hashable,
    seen: int | None,
) -> Outcome:
    """Refresh at the app's authority, then at each alias that has refresh tokens.

    ``seen`` is the cache's version when the app's authority was looked up (None: not).
    """
    endpoint = (await ctx.endpoints()).token_endpoint
    outcome = await _refresh_at(ctx, req, partition, query, reason, endpoint, key, seen)
    if outcome[0] is not None and "error" not in outcome[0]:
        return outcome
    final = outcome
    try:
        aliases = await ctx.discovery.aliases(ctx.authority.instance, authority=ctx.authority)
    except (MsalServiceError, MsalTransportError, ValueError) as exc:
        logger.info("Looking up authority aliases failed (%s); not retrying there", type(exc))
        aliases = []
    for alias in aliases:
        if not list(ctx.cache.search(CredentialType.REFRESH_TOKEN, query={"environment": alias})):
            continue
        alias_endpoint = urlunsplit(urlsplit(endpoint)._replace(netloc=alias))
        at_alias = replace(query, environment=alias.lower())
        outcome = await _refresh_at(
            ctx, req, partition, at_alias, reason, alias_endpoint, key, None
        )
        if outcome[0] is not None:
            if "error" not in outcome[0]:
                return outcome
            final = outcome
    return final


async def _refresh_at(
    ctx: AppContext,
    req: SilentRequest,
    partition: str,
    query: TokenQuery,
    reason: int,
    endpoint: str,
    key: Hashable,
    seen: int | None,
) -> Outcome:
    """One environment: the cached AT again (a flight that just ended may have stored it),
    else its refresh tokens in msal's FOCI order (spec 7.7): family RTs first, then our own."""
    answers = None if req.bypass_cache else query
    fleet_key = (key, query.environment)
    async with ctx.cache.session(partition, fleet_key=fleet_key, answers=answers) as session:
        if not req.bypass_cache:
            fresh = session.cached(query, seen).fresh
            if fresh is not None:
                return fresh
        attempt = _Attempt(ctx, session, req, query.environment, endpoint, reason)
        owned = {"environment": query.environment, "home_account_id": req.home_account_id}
        metadata = session.app_metadata(query.environment, ctx.client_id)
        if metadata is None:  # first use of this app: maybe it is in family "1"
            outcome = await attempt.try_rts({**owned, "family_id": "1"}, stop_on_mismatch=True)
            if outcome[0] is not None and "error" not in outcome[0]:
                return outcome
        last = _NOTHING
        family = (metadata or {}).get("family_id")
        if family:
            last = outcome = await attempt.try_rts({**owned, "family_id": family})
            if outcome[0] is not None and "error" not in outcome[0]:
                return outcome
        own = await attempt.try_rts({**owned, "client_id": ctx.client_id})
        return own if own[0] is not None else last


def _newest_first(entry: Mapping[str, Any]) -> int:
    try:
        return int(entry.get("last_modification_time", "0"))
    except (TypeError, ValueError):
        return 0


@dataclass
class _Attempt:
    """Refreshing one account at one environment, inside one cache session."""

    ctx: AppContext
    session: CacheSession
    req: SilentRequest
    environment: str
    endpoint: str
    reason: int

    async def try_rts(self, query: Mapping[str, Any], *, stop_on_mismatch: bool = False) -> Outcome:
        """Try each matching RT, newest first; an RT that fails is kept (msal since 1.10)."""
        ctx, req = self.ctx, self.req
        found = self.session.search(CredentialType.REFRESH_TOKEN, query)
        matches = sorted(found, key=_newest_first, reverse=True)
        if not matches:
            return _NOTHING
        telemetry = ctx.telemetry.context(
            SILENT_REFRESH.api_id, refresh_reason=self.reason, correlation_id=req.correlation_id
        )
        headers = {}
        if req.home_account_id:
            headers["X-AnchorMailbox"] = anchor_from_home_account_id(req.home_account_id)
        response: Result | None = None
        for entry in matches:
            scopes = refresh_scopes(req.decorated, entry.get("target"), oidc=ctx.authority.is_oidc)
            request, _ = await ctx.token_request(
                SILENT_REFRESH,
                scopes=scopes,
                fields={REFRESH_TOKEN: entry["secret"]},
                data=req.data,
                claims_challenge=req.claims_challenge,
                headers=headers,
                options=req.options,
                endpoint=self.endpoint,
            )
            raw = await ctx.send(await ctx.sign(request), telemetry, req.options)
            if "error" not in raw:
                return self._commit(raw, entry, scopes, request)
            logger.debug("Refresh with one cached refresh token failed: %s", raw.get("error"))
            response = raw
            if stop_on_mismatch and "client_mismatch" in (raw.get("error_additional_info") or []):
                break
        return (clean_result(response, now=_clock.now()) if response else None), None

    def _commit(
        self, raw: Result, rt_entry: Mapping[str, Any], scopes: list[str], request: TokenRequest
    ) -> Outcome:
        """Store a refresh response in one step: tokens added, the RT rotated in place.

        A refresh that lands after the account signed out (``remove_account`` removed the
        refresh token while the request was in flight) is not stored: the sign-out sticks. The
        caller still gets the tokens it asked for.
        """
        now = _clock.now()
        bad = add_id_token_claims(raw)
        if bad is not None:
            return bad, None
        event = self.ctx.event(
            raw,
            request,
            scopes,
            data=self.req.data,
            environment=self.environment,
            keep_refresh_token=False,
            skip_account_creation=True,  # a concurrent remove_account() stays removed (msal)
            home_account_id=rt_entry.get("home_account_id"),  # when the answer names no one
        )
        new_rt = raw.get(REFRESH_TOKEN)
        rotate = (rt_entry, new_rt) if isinstance(new_rt, str) else None
        key = self.session.commit(event, now, rotate=rotate, require=rt_entry)
        return clean_result(raw, now=now), key
