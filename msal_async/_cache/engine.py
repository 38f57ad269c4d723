"""The engine behind CacheSession: what flows reach through a session, not msal's surface.

A mixin so that token_cache.py keeps msal's surface; it works on TokenCache's state, under its
lock, and never awaits (except the session hooks, which persistent caches override).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator, Hashable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, cast

from msal_async import _clock
from msal_async._cache import schema
from msal_async._cache.freshness import AGING, EXPIRING, CachedToken, TokenQuery
from msal_async._cache.indexes import AccessTokenIndex, Index
from msal_async._cache.partitions import PartitionBook, partition_of
from msal_async._cache.schema import Entry
from msal_async._cache.session import CacheSession
from msal_async._telemetry import AT_ABSENT, AT_AGING, AT_EXPIRED

from .. import _log

if TYPE_CHECKING:
    from msal_async._cache.token_cache import TokenCache

__all__ = ["SessionEngineMixin"]

logger = logging.getLogger(_log.TOKEN_CACHE)

_AT = schema.CredentialType.ACCESS_TOKEN


class SessionEngineMixin:
    """Sessions, the access-token lookup by the freshness rule, and the one commit."""

    if TYPE_CHECKING:
        _lock: threading.RLock
        _cache: dict[str, Any]
        _indexes: dict[str, tuple[Index, ...]]
        _ats: AccessTokenIndex
        _parsed: dict[str, CachedToken]
        _book: PartitionBook
        _max_entries: int | None
        _msal_hooks: bool
        key_makers: dict[str, schema.KeyMaker]
        CredentialType: type[schema.CredentialType]

        def search(
            self,
            credential_type: str,
            target: Iterable[str] | None = None,
            query: Mapping[str, Any] | None = None,
            *,
            now: float | None = None,
        ) -> Generator[Entry, None, None]: ...

        def add(self, event: Mapping[str, Any], now: float | None = None) -> None: ...

        def update_rt(self, rt_item: Mapping[str, Any], new_rt: str) -> None: ...

        def remove_at(self, at_item: Mapping[str, Any]) -> None: ...

        def _candidates(
            self, credential_type: str, query: Mapping[str, Any]
        ) -> list[tuple[str, Entry]]: ...

        def _purge(self, expired: list[tuple[str, Entry]]) -> None: ...

        def _store(self, event: Mapping[str, Any], now: int) -> list[tuple[str, str, Entry]]: ...

    def session(
        self,
        partition: str | None,
        *,
        fleet_key: Hashable | None = None,
        answers: TokenQuery | None = None,
    ) -> CacheSession:
        """The one way a flow reads and writes this cache (see :class:`CacheSession`).

        Args:
            partition: The partition the flow reads (its account, or its app tenant); None
                for a flow that only writes (it learns the account from the response).
            fleet_key: With a store that locks across machines, the request this session
                may send: one worker of the fleet sends it, the others wait and read its result.
            answers: The lookup that, once fresh, makes the request unnecessary (a worker
                that waited for another's fetch then goes on without contending for the lock).

        Returns:
            An async context manager.
        """
        satisfied = None
        if answers is not None and fleet_key is not None and self._session_io:
            query = answers

            def satisfied() -> bool:
                token, reason = self._find_access_token(query, _clock.now())
                return token is not None and reason == 0

        return CacheSession(cast("TokenCache", self), partition, fleet_key, satisfied)

    #: Whether sessions load and store (a persistent cache); in memory they cost nothing.
    _session_io: ClassVar[bool] = False

    async def _open(
        self,
        partition: str | None,
        fleet_key: Hashable | None,
        satisfied: Callable[[], bool] | None = None,
    ) -> object:
        """Make ``partition`` current before a session reads it (nothing to do in memory).

        Returns:
            Whatever :meth:`_close` needs to release (a fleet lock), or None.
        """
        return None

    async def _close(self, written: set[str], held: object) -> None:
        """Store what a session wrote, then release what :meth:`_open` took (memory: nothing)."""

    def _current(self, partition: str) -> bool:
        """Whether the in-memory copy of ``partition`` is certainly current (cheap, no I/O).

        Returns:
            Always True in memory; a persistent cache asks its store.
        """
        return True

    def _find_access_token(self, query: TokenQuery, now: float) -> tuple[CachedToken | None, int]:
        """msal's AT lookup under the one freshness rule.

        Returns:
            ``(token, reason)``: a FRESH token and 0, an AGING token and ``AT_AGING``, or None
            and ``AT_ABSENT`` / ``AT_EXPIRED`` (a token in the buffer, or expired, was seen).
        """
        reason = AT_ABSENT
        for key, entry in self._access_token_candidates(query, now):
            if not query.key_id and entry.get("key_id"):
                # Bound to a key (SSH certificate, PoP): never a Bearer answer. msal serves it.
                continue
            token = CachedToken.parse(key, entry, partition_of(_AT, entry))
            state = EXPIRING if token is None else token.state(now)
            if state == EXPIRING:
                reason = AT_EXPIRED
                continue
            return token, AT_AGING if state == AGING else 0
        return None, reason

    def _access_token_candidates(
        self, query: TokenQuery, now: float
    ) -> Iterable[tuple[str, Entry]]:
        if self._msal_hooks:
            # A hooked cache sees msal's exact call; its entries carry their own keys.
            for entry in self.search(_AT, target=query.scopes, query=query.search_query()):
                yield self.key_makers[_AT](**entry), entry
            return
        query_fields = query.search_query()
        target = " ".join(sorted(query.scopes))
        maker = self.key_makers[_AT]
        if maker is schema.KEY_MAKERS[_AT]:  # msal's (a caller may replace key_makers)
            probe_key = schema.access_token_key(
                query.home_account_id,
                query.environment,
                query.client_id,
                query.realm,
                target,
                query.ext_cache_key,
            )
        else:
            probe_key = maker(**query_fields, target=target)
        section = self._cache.get(_AT) or {}
        expired: list[tuple[str, Entry]] = []
        picked: list[tuple[str, Entry]] = []
        now_int = int(now)
        with self._lock:
            keys = self._ats.covering(query.group(), query.scopes)
            probe = section.get(probe_key)
            # msal's exact-key probe is case-insensitive and yields an expired entry too
            # (which then counts as AT_EXPIRED for telemetry).
            if (
                isinstance(probe, dict)
                and probe_key not in keys
                and schema.entry_matches(_AT, probe, query_fields)
            ):
                picked.append((probe_key, probe))
            for key in reversed(keys):  # the newest write first
                found = section.get(key)
                if not isinstance(found, dict):
                    continue
                if schema.is_expired(found, now_int):
                    expired.append((key, found))
                    if key == probe_key:
                        picked.append((key, found))
                elif schema.entry_matches(_AT, found, query_fields, query.scopes):
                    picked.append((key, found))
            if self._max_entries is not None:
                self._book.touch_access_tokens([k for k, _ in picked], self._max_entries)
        if len(picked) > 1:
            picked.sort(key=_cached_at, reverse=True)  # newest first; ties keep write order
        yield from picked
        if expired:  # reached only on a miss: msal purges when its search runs to the end
            self._purge(expired)

    def _hot_token(self, key: str) -> CachedToken | None:
        """The parsed AT stored under ``key`` for the hot path, or None (absent or changed).

        A parsed token is dropped whenever its entry is rewritten, removed or evicted.
        """
        token = self._parsed.get(key)
        if token is None:
            entry = (self._cache.get(_AT) or {}).get(key)
            if not isinstance(entry, dict):
                return None
            token = CachedToken.parse(key, entry, partition_of(_AT, entry))
            if token is None:
                return None
            with self._lock:
                if (self._cache.get(_AT) or {}).get(key) is not entry:
                    return None
                self._parsed[key] = token
        if self._max_entries is not None:
            with self._lock:
                self._book.touch_access_tokens([key], self._max_entries)
        return token

    def _holds_access_token(self, key: str) -> bool:
        """Whether an access token is stored under ``key`` (the hot path prunes its slots)."""
        return isinstance((self._cache.get(_AT) or {}).get(key), dict)

    def _write(
        self,
        event: Mapping[str, Any],
        now: float,
        *,
        rotate: tuple[Mapping[str, Any], str] | None = None,
        require: Mapping[str, Any] | None = None,
    ) -> tuple[str | None, set[str]]:
        """The one commit of every flow: an event's entries (and a rotated RT) in one step.

        Args:
            event: The cache event.
            now: Epoch seconds.
            rotate: ``(refresh token entry, new secret)``: the RT a refresh used, updated in
                place (msal's refresh grant).
            require: An entry that must still be stored (a refresh's RT: a sign-out that
                happened meanwhile sticks, and nothing is written).

        Returns:
            ``(access token key or None, partitions written)``.

        Raises:
            ValueError: The event is malformed; nothing was written.
        """
        rt = self.CredentialType.REFRESH_TOKEN
        with self._lock:
            if require is not None and not self._holds(rt, require):
                logger.info("A refresh finished after its account was removed; not cached")
                return None, set()
            if self._msal_hooks:
                self.add(event, now=now)
                written = schema.entries_from_event(event, now=int(now))
                keyed = [(ct, self.key_makers[ct](**e), e) for ct, e in written]
            else:
                keyed = self._store(event, int(now))
            if rotate is not None:
                self.update_rt(rotate[0], rotate[1])
                keyed.append((rt, self.key_makers[rt](**rotate[0]), dict(rotate[0])))
        at_key = next((key for ct, key, _ in keyed if ct == _AT), None)
        return at_key, {partition_of(ct, e) for ct, _, e in keyed if ct != "AppMetadata"}

    def _holds(self, credential_type: str, entry: Mapping[str, Any]) -> bool:
        key = self.key_makers[credential_type](**entry)
        return isinstance((self._cache.get(credential_type) or {}).get(key), dict)

    def _accounts_for_username(self, environment: str, username: str) -> list[Entry]:
        """Every Account entry (of one environment) of the home accounts whose username
        matches ``username`` ignoring case, in the cache's order."""
        account = self.CredentialType.ACCOUNT
        env = environment.lower()
        with self._lock:
            indexes = self._indexes[account]
            section = self._cache.get(account) or {}
            keys = indexes[-1].keys_for({"environment": env, "username": username})
            homes = dict.fromkeys(section[k].get("home_account_id") for k in keys if k in section)
            by_home = indexes[0]  # ("home_account_id", "environment")
            keys = [
                k
                for home in homes
                for k in by_home.keys_for({"home_account_id": home, "environment": env})
            ]
            return [section[k] for k in keys if isinstance(section.get(k), dict)]

    def _remove_app_tokens(self, *, client_id: str, environments: Iterable[str]) -> set[str]:
        """Delete this client's app-only ATs (``home_account_id`` None), any realm.

        Returns:
            The partitions changed.
        """
        changed: set[str] = set()
        with self._lock:
            for environment in environments:
                query = {
                    "home_account_id": None,
                    "environment": environment.lower(),
                    "client_id": client_id,
                }
                # Unlike msal's search, atext entries (ext_cache_key) go as well.
                found = {
                    key: entry
                    for key, entry in self._candidates(_AT, query)
                    if all(k in entry and entry[k] == v for k, v in query.items())
                }
                if self._msal_hooks:  # msal's own call first, for a subclass's search()
                    searched = self.search(_AT, query={**query, "environment": environment})
                    found = {self.key_makers[_AT](**e): e for e in searched} | found
                for entry in list(found.values()):
                    self.remove_at(entry)
                    changed.add(partition_of(_AT, entry))
        return changed


def _cached_at(pair: tuple[str, Entry]) -> int:
    try:
        return int(pair[1].get("cached_at", 0))
    except (TypeError, ValueError):
        return 0
