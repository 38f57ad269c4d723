"""CacheSession: the one way every flow goes into and out of the token cache.

``async with cache.session(partition) as s:`` makes the partition current (a persistent cache
reloads it if it changed elsewhere; in memory nothing happens), then the flow looks up and
commits synchronously, and on the way out what it committed is stored (a persistent cache
merges it into its store) even if the task was cancelled meanwhile. With a ``fleet_key`` and a
store that locks across machines, the session also holds the fleet lock for that request: one
worker of the fleet sends it, and the others wait, reload, and find its token.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

if sys.version_info >= (3, 11):
    from typing import Self
else:  # typing_extensions comes with anyio on Python < 3.13
    from typing_extensions import Self

from msal_async import _clock
from msal_async._cache.freshness import CachedToken, TokenQuery
from msal_async._cache.partitions import partition_of
from msal_async._cache.schema import CredentialType, Entry

if TYPE_CHECKING:
    from msal_async._cache.token_cache import TokenCache

__all__ = ["CacheSession", "Cached", "Outcome", "look_up"]


#: A cached-token flow's answer: msal's result (None: nothing usable cached, no refresh token)
#: and the cache key of the access token it carries, for the app's hot path.
Outcome = tuple[dict[str, Any] | None, str | None]


@dataclass(frozen=True)
class Cached:
    """What the cache holds for a query, by the one freshness rule, read at ``now``."""

    token: CachedToken | None
    reason: int  # 0: fresh; else msal's telemetry refresh reason
    now: float
    version: int  # the cache's entries' version when read (see CacheSession.cached)

    @property
    def fresh(self) -> Outcome | None:
        """The answer to serve as it is, when the token is fresh."""
        if self.token is None or self.reason:
            return None
        return self.token.result(self.now), self.token.key

    @property
    def fallback(self) -> Outcome | None:
        """The aging token to serve if its refresh fails (None when fresh or absent)."""
        if self.token is None or not self.reason:
            return None
        return self.token.result(self.now), self.token.key


async def look_up(cache: TokenCache, partition: str, query: TokenQuery) -> Cached:
    """Look ``query`` up in its own short session (before any request is decided).

    Returns:
        What the cache holds, by the freshness rule.
    """
    async with cache.session(partition) as session:
        return session.cached(query)


class CacheSession:
    """One flow's visit to the cache: make current, look up, commit, store."""

    __slots__ = ("_cache", "_fleet_key", "_held", "_partition", "_satisfied", "_written")

    def __init__(
        self,
        cache: TokenCache,
        partition: str | None,
        fleet_key: Hashable | None,
        satisfied: Callable[[], bool] | None = None,
    ) -> None:
        self._cache = cache
        self._partition = partition
        self._fleet_key = fleet_key
        self._satisfied = satisfied
        self._held: object = None
        self._written: set[str] = set()

    async def __aenter__(self) -> Self:
        if self._cache._session_io:
            self._held = await self._cache._open(self._partition, self._fleet_key, self._satisfied)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._cache._session_io:
            import anyio  # loaded with the persistence that needs it

            with anyio.CancelScope(shield=True):  # a cancelled flow still stores its commits
                await self._cache._close(self._written, self._held)

    # --- lookups ------------------------------------------------------------------------------

    def access_token(self, query: TokenQuery, now: float) -> tuple[CachedToken | None, int]:
        """Find the access token to serve, by the one freshness rule.

        Args:
            query: what is asked for.
            now: epoch seconds.

        Returns:
            ``(token, reason)``: reason 0 for a fresh token, else msal's telemetry reason
            (``AT_AGING`` with the token as a fallback; ``AT_ABSENT`` / ``AT_EXPIRED`` with
            None).
        """
        return self._cache._find_access_token(query, now)

    def cached(self, query: TokenQuery, since: int | None = None) -> Cached:
        """:meth:`access_token` at the clock's now, as a :class:`Cached`.

        Args:
            query: what is asked for.
            since: a :attr:`Cached.version` seen earlier: when the cache's entries have not
                changed since, nothing is looked up (so a subclass's ``search`` is called as
                often as msal calls it) and the answer holds no token.

        Returns:
            What the cache holds for ``query``.
        """
        now = _clock.now()
        version = self._cache._version
        if since is not None and since == version:
            return Cached(None, 0, now, version)
        return Cached(*self.access_token(query, now), now, version)

    def search(
        self, credential_type: str, query: Mapping[str, Any], target: Iterable[str] | None = None
    ) -> list[Entry]:
        """msal's ``search`` of one section, as a list (refresh tokens, accounts, metadata).

        Returns:
            The matching entries (do not mutate them).
        """
        return list(self._cache.search(credential_type, target=target, query=query))

    def app_metadata(self, environment: str, client_id: str) -> Entry | None:
        """The AppMetadata entry of ``client_id`` at ``environment``, if any.

        Returns:
            The entry, or None.
        """
        # One read by key, as msal's (never through a subclass's search()).
        key = self._cache.key_makers[CredentialType.APP_METADATA](
            environment=environment.lower(), client_id=client_id
        )
        with self._cache._lock:
            entry = (self._cache._cache.get(CredentialType.APP_METADATA) or {}).get(key)
        return entry if isinstance(entry, dict) else None

    def accounts_named(self, environment: str, username: str) -> list[Entry]:
        """Every Account entry of the home accounts whose username matches (any case).

        Returns:
            The entries, in the cache's order.
        """
        return self._cache._accounts_for_username(environment, username)

    # --- writes -------------------------------------------------------------------------------

    def commit(
        self,
        event: Mapping[str, Any],
        now: float,
        *,
        rotate: tuple[Mapping[str, Any], str] | None = None,
        require: Mapping[str, Any] | None = None,
    ) -> str | None:
        """The one commit: the event's entries (and a rotated refresh token) in one step.

        Args:
            event: msal's cache event.
            now: epoch seconds.
            rotate: ``(refresh token entry, new secret)`` to update in place.
            require: an entry that must still be stored, else nothing is written (a refresh
                that lands after a sign-out).

        Returns:
            The key of the access token written, if any (for the app's hot path).

        Raises:
            ValueError: the event is malformed; nothing was written.
        """
        key, partitions = self._cache._write(event, now, rotate=rotate, require=require)
        self._written.update(partitions)
        return key

    def remove(self, credential_type: str, entries: Iterable[Mapping[str, Any]]) -> None:
        """Delete entries through msal's ``remove_*`` methods (so subclasses see them)."""
        remover = {
            CredentialType.REFRESH_TOKEN: self._cache.remove_rt,
            CredentialType.ACCESS_TOKEN: self._cache.remove_at,
            CredentialType.ID_TOKEN: self._cache.remove_idt,
            CredentialType.ACCOUNT: self._cache.remove_account,
        }[credential_type]
        for entry in list(entries):
            remover(entry)
            self._written.add(partition_of(credential_type, entry))

    def remove_app_tokens(self, *, client_id: str, environments: Iterable[str]) -> None:
        """Delete this client's app-only access tokens, any realm, at these environments."""
        self._written.update(
            self._cache._remove_app_tokens(client_id=client_id, environments=environments)
        )
