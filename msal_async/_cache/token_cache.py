"""TokenCache and SerializableTokenCache: msal's serialized dict, secondary indexes, one lock."""

from __future__ import annotations

import json
import logging
import threading
import time
import warnings
from collections.abc import Generator, Iterable, Mapping
from typing import Any

from msal_async._cache import schema
from msal_async._cache.indexes import FoldedIndex, Index
from msal_async._cache.partitioned import PartitionedCacheMixin
from msal_async._cache.partitions import PartitionBook, Slot, partition_of
from msal_async._cache.schema import Entry

from .. import _log

__all__ = ["SerializableTokenCache", "TokenCache"]

logger = logging.getLogger(_log.TOKEN_CACHE)

_USERNAME_FIELDS = ("environment", "username")


class TokenCache(PartitionedCacheMixin):
    """An in-memory token cache in msal's unified schema, indexed for O(partition) lookups.

    The serialized dict (``{"AccessToken": {key: entry}, ...}``) is the source of truth; indexes
    over it are updated by every mutation. All work is synchronous and guarded by one RLock.
    """

    CredentialType = schema.CredentialType
    AuthorityType = schema.AuthorityType

    def __init__(self, *, max_entries: int | None = None) -> None:
        """Create an empty cache.

        Args:
            max_entries: Keep at most this many entries in memory (all sections together).
                Past it, expired access tokens go first, then the least recently used access
                tokens, then the least recently used partitions (accounts / app tenants).
                The default, None, never evicts (as msal). A persistent cache reloads an
                evicted partition on its next use.

        Raises:
            TypeError: ``max_entries`` is not an int or None.
            ValueError: ``max_entries`` is less than 1.
        """
        if max_entries is not None and (
            not isinstance(max_entries, int) or isinstance(max_entries, bool)
        ):
            msg = f"max_entries must be an int or None, got {type(max_entries).__name__}"
            raise TypeError(msg)
        if max_entries is not None and max_entries < 1:
            msg = f"max_entries must be at least 1 (or None for no limit), got {max_entries}"
            raise ValueError(msg)
        self._lock = threading.RLock()
        self._cache: dict[str, Any] = {}
        self._indexes: dict[str, tuple[Index, ...]] = {}
        self._book = PartitionBook()
        self._max_entries = max_entries
        #: Partitions dropped by the entry limit since a persistence last looked (it reloads them).
        self.evicted_partitions: set[str] = set()
        #: The key maker of each section, as msal's public ``key_makers``.
        self.key_makers = dict(schema.KEY_MAKERS)
        self._rebuild_indexes()

    # --- the only writers of self._cache -------------------------------------------------------

    def _rebuild_indexes(self) -> None:
        self._indexes = {
            ct: tuple(Index(f) for f in fields) for ct, fields in schema.INDEX_FIELDS.items()
        }
        # get_accounts(username=...) is case-insensitive; a folded index keeps it O(matches).
        account = self.CredentialType.ACCOUNT
        self._indexes[account] = (*self._indexes[account], FoldedIndex(_USERNAME_FIELDS))
        self._book.clear()
        for ct, section in self._cache.items():
            if isinstance(section, dict):
                indexes = self._indexes.get(ct, ())
                for key, entry in section.items():
                    if isinstance(entry, dict):
                        for index in indexes:
                            index.add(key, entry)
                        self._book.added(ct, key, entry, record=False)

    def _put(self, credential_type: str, key: str, entry: Entry, *, record: bool = True) -> None:
        section = self._cache.setdefault(credential_type, {})
        old = section.get(key)
        section[key] = entry  # an existing key keeps its position, as in msal
        had = isinstance(old, dict)
        for index in self._indexes.get(credential_type, ()):
            if not had or index.bucket_of(old) != index.bucket_of(entry):
                if had:
                    index.discard(key, old)
                index.add(key, entry)
        if had and partition_of(credential_type, old) != partition_of(credential_type, entry):
            self._book.removed(credential_type, key, old, record=record)
        self._book.added(credential_type, key, entry, record=record)

    def _delete(self, credential_type: str, key: str, *, record: bool = True) -> None:
        old = self._cache.setdefault(credential_type, {}).pop(key, None)  # msal makes the section
        if isinstance(old, dict):
            for index in self._indexes.get(credential_type, ()):
                index.discard(key, old)
            self._book.removed(credential_type, key, old, record=record)

    # --- reading --------------------------------------------------------------------------------

    def _candidates(
        self, credential_type: str, query: Mapping[str, Any]
    ) -> list[tuple[str, Entry]]:
        """Snapshot the (key, entry) pairs that may match; call with the lock held."""
        section = self._cache.get(credential_type) or {}
        usable = [
            index
            for index in self._indexes.get(credential_type, ())
            if all(f in query for f in index.fields)
        ]
        if not usable:  # the query lacks the partition fields: scan, as msal always does
            pairs = list(section.items())
        else:
            index = max(usable, key=lambda i: len(i.fields))
            pairs = [(k, section[k]) for k in index.keys_for(query) if k in section]
        return [(k, e) for k, e in pairs if isinstance(e, dict)]

    def search(
        self,
        credential_type: str,
        target: Iterable[str] | None = None,
        query: Mapping[str, Any] | None = None,
        *,
        now: float | None = None,
    ) -> Generator[Entry, None, None]:
        """Yield the entries of one section that match a query (a generator, as msal).

        The lock is held only while the candidates are snapshotted, never across a ``yield``.
        Expired ATs among the candidates are removed once the generator is exhausted (as msal).

        Args:
            credential_type: A :class:`CredentialType` value.
            target: Scopes that an entry's ``target`` must all contain (case-sensitive).
            query: Field values an entry must have; ``environment`` is compared lowercased.
            now: Epoch seconds for the expiry check; defaults to the current time.

        Returns:
            A generator of the live entry dicts (do not mutate them; use :meth:`modify`).
        """
        wanted = sorted(target or [])
        normalized = schema.normalize_query(query)
        preferred_key = self._exact_at_key(credential_type, query, wanted)
        if preferred_key is not None:
            with self._lock:
                preferred = (self._cache.get(credential_type) or {}).get(preferred_key)
            if isinstance(preferred, dict) and schema.entry_matches(
                credential_type, preferred, normalized
            ):  # the key already pins the target, case-insensitively (as msal)
                yield preferred
        now_int = int(time.time() if now is None else now)
        is_at = credential_type == self.CredentialType.ACCESS_TOKEN
        matches: list[Entry] = []
        expired: list[tuple[str, Entry]] = []
        with self._lock:
            for key, entry in self._candidates(credential_type, normalized):
                if is_at and schema.is_expired(entry, now_int):
                    expired.append((key, entry))
                elif key != preferred_key and schema.entry_matches(
                    credential_type, entry, normalized, wanted
                ):
                    matches.append(entry)
        yield from matches
        if expired:
            self._purge(expired)

    def _exact_at_key(
        self, credential_type: str, query: Mapping[str, Any] | None, wanted: list[str]
    ) -> str | None:
        fields = ("home_account_id", "environment", "client_id", "realm")
        if credential_type != self.CredentialType.ACCESS_TOKEN or not wanted or query is None:
            return None
        if not all(f in query for f in fields):
            return None
        return self.key_makers[credential_type](
            **{f: query[f] for f in fields},
            target=" ".join(wanted),
            ext_cache_key=query.get("ext_cache_key"),
        )

    def _purge(self, expired: list[tuple[str, Entry]]) -> None:
        with self._lock:
            section = self._cache.get(self.CredentialType.ACCESS_TOKEN) or {}
            for key, entry in expired:
                if section.get(key) is entry:  # not replaced or removed since the snapshot
                    self.remove_at(entry)

    def find(
        self,
        credential_type: str,
        target: Iterable[str] | None = None,
        query: Mapping[str, Any] | None = None,
        *,
        now: float | None = None,
    ) -> list[Entry]:
        """Return ``list(search(...))``; deprecated as in msal.

        Args:
            credential_type: A :class:`CredentialType` value.
            target: Scopes an entry must contain.
            query: Field values an entry must have.
            now: Epoch seconds.

        Returns:
            The matching entries.
        """
        warnings.warn(
            "Use list(search(...)) instead to explicitly get a list.",
            DeprecationWarning,
            stacklevel=2,
        )
        return list(self.search(credential_type, target=target, query=query, now=now))

    def access_token_candidates(
        self,
        *,
        client_id: str,
        environment: str,
        realm: str,
        scopes: Iterable[str],
        home_account_id: str | None = None,
        ext_cache_key: str | None = None,
        key_id: str | None = None,
        exact_only: bool = False,
    ) -> list[Entry]:
        """List the ATs that could serve a request, touching only their partition.

        The exact-key probe (sorted requested scopes) comes first, then superset matches within
        ``(home_account_id, environment, client_id, realm)``. Expiry is not checked and nothing is
        purged: the caller applies its own clock and buffer. With ``exact_only`` only the probe
        is made (O(1) whatever the partition holds); callers fall back to the full list when it
        yields nothing usable.

        Args:
            client_id: The application id.
            environment: The authority host.
            realm: The tenant.
            scopes: The requested scopes (undecorated).
            home_account_id: The account, or None for app tokens.
            ext_cache_key: The request's extended cache key, if any.
            key_id: The SSH-cert / PoP key id to require, if any.
            exact_only: Probe the exact key only.

        Returns:
            Live entry dicts, best first.
        """
        wanted = sorted(scopes)
        query: dict[str, Any] = {
            "home_account_id": home_account_id,
            "environment": environment.lower(),
            "client_id": client_id,
            "realm": realm,
        }
        if key_id is not None:
            query["key_id"] = key_id
        if ext_cache_key:
            query["ext_cache_key"] = ext_cache_key
        at = self.CredentialType.ACCESS_TOKEN
        probe_key = self._exact_at_key(at, query, wanted)
        out: list[Entry] = []
        with self._lock:
            section = self._cache.get(at) or {}
            probe = section.get(probe_key)
            used: list[Slot] = []
            if isinstance(probe, dict) and schema.entry_matches(at, probe, query):
                out.append(probe)
                used.append((at, str(probe_key)))
            for key, entry in () if exact_only else self._candidates(at, query):
                if key != probe_key and schema.entry_matches(at, entry, query, wanted):
                    out.append(entry)
                    used.append((at, key))
            if self._max_entries is not None:
                self._book.touch(partition_of(at, query), used)
        return out

    def accounts_for_username(
        self, environment: str, username: str, *, whole_accounts: bool = False
    ) -> list[Entry]:
        """The Account entries of one environment whose username matches, ignoring case.

        Args:
            environment: The authority host.
            username: The username, any case.
            whole_accounts: Return every Account entry (of this environment) of the home
                accounts that matched, in the cache's order, as ``get_accounts`` groups them.

        Returns:
            The live entry dicts (do not mutate them).
        """
        account = self.CredentialType.ACCOUNT
        env = environment.lower()
        with self._lock:
            indexes = self._indexes[account]
            section = self._cache.get(account) or {}
            keys = indexes[-1].keys_for({"environment": env, "username": username})
            if whole_accounts:
                by_home = indexes[0]  # ("home_account_id", "environment")
                homes = dict.fromkeys(
                    section[k].get("home_account_id") for k in keys if k in section
                )
                keys = [
                    k
                    for home in homes
                    for k in by_home.keys_for({"home_account_id": home, "environment": env})
                ]
            return [section[k] for k in keys if isinstance(section.get(k), dict)]

    def holds(self, credential_type: str, entry: Mapping[str, Any]) -> bool:
        """Whether an entry with ``entry``'s key is still stored (it may have been removed).

        Returns:
            True when the key is present.
        """
        key = self.key_makers[credential_type](**entry)
        with self._lock:
            return isinstance((self._cache.get(credential_type) or {}).get(key), dict)

    def exact_access_token_key(
        self,
        *,
        client_id: str,
        environment: str,
        realm: str,
        scopes: Iterable[str],
        home_account_id: str | None = None,
    ) -> str:
        """The key under which an AT for exactly these scopes is stored (no extended key).

        Returns:
            The cache key, as msal makes it.
        """
        return self.key_makers[self.CredentialType.ACCESS_TOKEN](
            home_account_id=home_account_id,
            environment=environment.lower(),
            client_id=client_id,
            realm=realm,
            target=" ".join(sorted(scopes)),
        )

    def peek_access_token(self, key: str) -> Entry | None:
        """The AT stored under ``key``, or None: one dict lookup, for hot paths.

        Returns:
            The live entry dict (do not mutate it).
        """
        section = self._cache.get("AccessToken")
        entry = section.get(key) if section else None
        if entry.__class__ is not dict:  # absent, or an odd value read from a foreign cache
            return None
        if self._max_entries is not None:
            at = self.CredentialType.ACCESS_TOKEN
            with self._lock:
                self._book.touch(partition_of(at, entry), [(at, key)])
        return entry

    # --- writing --------------------------------------------------------------------------------

    def add(self, event: Mapping[str, Any], now: float | None = None) -> None:
        """Store the tokens of a token-obtaining event (spec 7.3), all or nothing.

        Args:
            event: ``{client_id, scope, token_endpoint, environment, grant_type, response, data}``.
            now: Epoch seconds; defaults to the current time.

        Raises:
            ValueError: The event's endpoint, ``client_info`` or ``id_token`` is malformed; the
                cache is then unchanged.
        """
        if logger.isEnabledFor(logging.DEBUG):
            redacted = schema.redact_event(event)
            logger.debug("event=%s", json.dumps(redacted, indent=4, sort_keys=True, default=str))
        entries = schema.entries_from_event(event, now=int(time.time() if now is None else now))
        with self._lock:  # keys first: a failing key maker leaves the cache untouched
            keyed = [(ct, self.key_makers[ct](**entry), entry) for ct, entry in entries]
            for ct, key, entry in keyed:
                self._put(ct, key, entry)
            self._enforce_limit(now=int(time.time() if now is None else now))

    def modify(
        self,
        credential_type: str,
        old_entry: Mapping[str, Any],
        new_key_value_pairs: Mapping[str, Any] | None = None,
    ) -> None:
        """Update ``old_entry`` with new fields, or delete it when there are none.

        Args:
            credential_type: The section.
            old_entry: The entry (its key is recomputed from it).
            new_key_value_pairs: Fields to set; None (or empty) deletes the entry.
        """
        key = self.key_makers[credential_type](**old_entry)
        with self._lock:
            if new_key_value_pairs:
                self._put(credential_type, key, {**old_entry, **new_key_value_pairs})
            else:
                self._delete(credential_type, key)

    def _check(self, entry: Mapping[str, Any], credential_type: str, name: str) -> None:
        if entry.get("credential_type") != credential_type:
            msg = f"{name} must be a {credential_type} entry, got {entry.get('credential_type')!r}"
            raise ValueError(msg)

    def remove_rt(self, rt_item: Mapping[str, Any]) -> None:
        """Delete a refresh token.

        Args:
            rt_item: A RefreshToken entry.

        Raises:
            ValueError: It is not a RefreshToken entry.
        """
        self._check(rt_item, self.CredentialType.REFRESH_TOKEN, "rt_item")
        self.modify(self.CredentialType.REFRESH_TOKEN, rt_item)

    def update_rt(self, rt_item: Mapping[str, Any], new_rt: str) -> None:
        """Replace a refresh token's secret and stamp ``last_modification_time`` with now.

        Args:
            rt_item: A RefreshToken entry.
            new_rt: The new refresh token.

        Raises:
            ValueError: It is not a RefreshToken entry.
        """
        self._check(rt_item, self.CredentialType.REFRESH_TOKEN, "rt_item")
        new = {"secret": new_rt, "last_modification_time": str(int(time.time()))}
        self.modify(self.CredentialType.REFRESH_TOKEN, rt_item, new)

    def remove_at(self, at_item: Mapping[str, Any]) -> None:
        """Delete an access token.

        Args:
            at_item: An AccessToken entry.

        Raises:
            ValueError: It is not an AccessToken entry.
        """
        self._check(at_item, self.CredentialType.ACCESS_TOKEN, "at_item")
        self.modify(self.CredentialType.ACCESS_TOKEN, at_item)

    def remove_idt(self, idt_item: Mapping[str, Any]) -> None:
        """Delete an ID token.

        Args:
            idt_item: An IdToken entry.

        Raises:
            ValueError: It is not an IdToken entry.
        """
        self._check(idt_item, self.CredentialType.ID_TOKEN, "idt_item")
        self.modify(self.CredentialType.ID_TOKEN, idt_item)

    def remove_account(self, account_item: Mapping[str, Any]) -> None:
        """Delete an Account entry.

        Args:
            account_item: An Account entry (it has an ``authority_type``).

        Raises:
            ValueError: It is not an Account entry.
        """
        if "authority_type" not in account_item:
            msg = "account_item must be an Account entry (it has no authority_type)"
            raise ValueError(msg)
        self.modify(self.CredentialType.ACCOUNT, account_item)

    def remove_app_tokens(self, *, client_id: str, environments: Iterable[str]) -> int:
        """Delete this client's app-only ATs (``home_account_id`` None), any realm.

        Args:
            client_id: The application id.
            environments: Authority hosts to clean.

        Returns:
            How many ATs were removed.
        """
        at = self.CredentialType.ACCESS_TOKEN
        removed = 0
        with self._lock:
            for environment in environments:
                query = {
                    "home_account_id": None,
                    "environment": environment.lower(),
                    "client_id": client_id,
                }
                # Unlike msal's search-based loop, atext entries (ext_cache_key) go as well.
                for _, entry in self._candidates(at, query):
                    if _subset(query, entry):
                        self.remove_at(entry)
                        removed += 1
        return removed


def _subset(small: Mapping[str, Any], big: Mapping[str, Any]) -> bool:
    return all(k in big and big[k] == v for k, v in small.items())


class SerializableTokenCache(TokenCache):
    """A :class:`TokenCache` that round-trips msal's JSON format and tracks changes.

    Attributes:
        has_state_changed: True after a change since the last serialize() or deserialize().
    """

    has_state_changed: bool = False

    def add(self, event: Mapping[str, Any], now: float | None = None) -> None:
        """Store an event's tokens (see :meth:`TokenCache.add`) and flag the state as changed.

        Args:
            event: The token-obtaining event.
            now: Epoch seconds.
        """
        super().add(event, now=now)
        self.has_state_changed = True

    def modify(
        self,
        credential_type: str,
        old_entry: Mapping[str, Any],
        new_key_value_pairs: Mapping[str, Any] | None = None,
    ) -> None:
        """Update or delete an entry (see :meth:`TokenCache.modify`) and flag the change.

        Args:
            credential_type: The section.
            old_entry: The entry.
            new_key_value_pairs: Fields to set; None deletes.
        """
        super().modify(credential_type, old_entry, new_key_value_pairs)
        self.has_state_changed = True

    def deserialize(self, state: str | bytes | None) -> None:
        """Replace the whole cache with a state from :meth:`serialize` (or another MSAL).

        Args:
            state: The JSON text; None or empty means an empty cache.

        Raises:
            ValueError: It is not JSON, or not an object of sections (the cache is unchanged).
        """
        loaded = json.loads(state) if state else {}
        if not isinstance(loaded, dict) or any(
            not isinstance(loaded.get(ct, {}), dict) for ct in schema.INDEX_FIELDS
        ):
            msg = "state must be a JSON object of sections, as written by serialize()"
            raise ValueError(msg)
        with self._lock:
            self._cache = loaded
            self._rebuild_indexes()
            self.has_state_changed = False

    def serialize(self) -> str:
        """Render the cache as msal does (``json.dumps(..., indent=4)``) and clear the flag.

        Returns:
            The JSON text.
        """
        with self._lock:
            self.has_state_changed = False
            return json.dumps(self._cache, indent=4)
