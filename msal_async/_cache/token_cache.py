"""TokenCache and SerializableTokenCache: msal's public surface over an indexed store.

The serialized dict (``{"AccessToken": {key: entry}, ...}``, msal's format) is the source of
truth; indexes over it are updated by every write, under one lock, and no write ever awaits.
Flows reach the cache only through :meth:`TokenCache.session` (see ``session.py``). When a
subclass overrides one of msal's methods (``search``, ``add``, ``modify``...), as
msal-extensions and auditing hooks do, every lookup and write goes through those methods with
msal's call pattern; our own classes take the indexed fast paths.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import warnings
from collections.abc import Generator, Iterable, Mapping
from typing import Any

from msal_async import _clock, _json
from msal_async._cache import schema
from msal_async._cache.engine import SessionEngineMixin
from msal_async._cache.freshness import CachedToken
from msal_async._cache.indexes import AccessTokenIndex, FoldedIndex, Index
from msal_async._cache.partitioned import PartitionedCacheMixin
from msal_async._cache.partitions import PartitionBook, partition_of
from msal_async._cache.schema import Entry

from .. import _log

__all__ = ["SerializableTokenCache", "TokenCache"]

logger = logging.getLogger(_log.TOKEN_CACHE)

_USERNAME_FIELDS = ("environment", "username")
_AT = schema.CredentialType.ACCESS_TOKEN
_APP_METADATA = schema.CredentialType.APP_METADATA
#: msal's methods a subclass may override to see every lookup and write.
_MSAL_HOOKS = (
    "search",
    "find",
    "add",
    "modify",
    "remove_rt",
    "update_rt",
    "remove_at",
    "remove_idt",
    "remove_account",
)


#: Fields whose values repeat across many entries (one app, a few tenants, a few accounts):
#: each entry holds the one interned copy instead of its own (a realm parsed from every
#: token endpoint, a ``token_type`` parsed from every response).
_SHARED_FIELDS = (
    "credential_type",
    "home_account_id",
    "environment",
    "client_id",
    "realm",
    "token_type",
    "authority_type",
)


def _share_strings(entry: Entry) -> Entry:
    """Swap the repeated string values of a new entry for their interned copies."""
    for field in _SHARED_FIELDS:
        value = entry.get(field)
        if type(value) is str:
            entry[field] = sys.intern(value)
    # Entra usually sends ext_expires_in == expires_in: one string serves both fields.
    expires_on = entry.get("expires_on")
    if type(expires_on) is str and entry.get("extended_expires_on") == expires_on:
        entry["extended_expires_on"] = expires_on
    return entry


def _uses_msal_hooks(cls: type) -> bool:
    """Whether a class (not ours) overrides one of msal's cache methods."""
    for name in _MSAL_HOOKS:
        for klass in cls.__mro__:
            if name in vars(klass):
                if not klass.__module__.startswith("msal_async._cache."):
                    return True
                break
    return False


class TokenCache(SessionEngineMixin, PartitionedCacheMixin):
    """An in-memory token cache in msal's unified schema, indexed for O(1) lookups.

    Thread-safe: every write holds one lock and never awaits, so a cancelled task or a failed
    request never leaves half an entry behind.
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
        self._ats = AccessTokenIndex()
        self._parsed: dict[str, CachedToken] = {}
        self._book = PartitionBook(evicting=max_entries is not None)
        self._max_entries = max_entries
        self._evicted_partitions: set[str] = set()
        self._msal_hooks = _uses_msal_hooks(type(self))
        #: Changes with every change of the entries (writes, removals, loads).
        self._version = 0
        #: The key maker of each section, as msal's public ``key_makers``.
        self.key_makers = dict(schema.KEY_MAKERS)
        self._rebuild_indexes()

    # --- the only writers of self._cache -------------------------------------------------------

    def _rebuild_indexes(self) -> None:
        self._version += 1
        self._indexes = {
            ct: tuple(Index(f) for f in fields) for ct, fields in schema.INDEX_FIELDS.items()
        }
        # get_accounts(username=...) is case-insensitive; a folded index keeps it O(matches).
        account = self.CredentialType.ACCOUNT
        self._indexes[account] = (*self._indexes[account], FoldedIndex(_USERNAME_FIELDS))
        self._ats = AccessTokenIndex()
        self._parsed.clear()
        self._book.clear()
        for ct, section in self._cache.items():
            if isinstance(section, dict):
                for key, entry in section.items():
                    if isinstance(entry, dict):
                        _share_strings(entry)
                        self._index(ct, key, entry)
                        self._book.added(ct, key, entry, record=False)

    def _index(self, credential_type: str, key: str, entry: Entry) -> None:
        if credential_type == _AT:
            self._ats.add(key, entry)
        for index in self._indexes.get(credential_type, ()):
            index.add(key, entry)

    def _unindex(self, credential_type: str, key: str, entry: Entry) -> None:
        if credential_type == _AT:
            self._ats.discard(key, entry)
            self._parsed.pop(key, None)
        for index in self._indexes.get(credential_type, ()):
            index.discard(key, entry)

    def _put(self, credential_type: str, key: str, entry: Entry, *, record: bool = True) -> None:
        self._version += 1
        section = self._cache.setdefault(credential_type, {})
        old = section.get(key)
        section[key] = entry  # an existing key keeps its position, as in msal
        if isinstance(old, dict):
            self._unindex(credential_type, key, old)
            if partition_of(credential_type, old) != partition_of(credential_type, entry):
                self._book.removed(credential_type, key, old, record=record)
        self._index(credential_type, key, entry)
        self._book.added(credential_type, key, entry, record=record)
        if record:
            self._note_change()

    def _delete(self, credential_type: str, key: str, *, record: bool = True) -> None:
        self._version += 1
        old = self._cache.setdefault(credential_type, {}).pop(key, None)  # msal makes the section
        if isinstance(old, dict):
            self._unindex(credential_type, key, old)
            self._book.removed(credential_type, key, old, record=record)
        if record:
            self._note_change()

    def _note_change(self) -> None:
        """Called after every change a caller made (not after loads from a persistence)."""

    # --- msal's public surface: reading ---------------------------------------------------------

    def _candidates(
        self, credential_type: str, query: Mapping[str, Any]
    ) -> list[tuple[str, Entry]]:
        """Snapshot the (key, entry) pairs that may match; call with the lock held."""
        section = self._cache.get(credential_type) or {}
        keys: Iterable[str] | None = None
        if credential_type == _AT:
            keys = self._ats.keys_for(query)
        else:
            usable = [
                index
                for index in self._indexes.get(credential_type, ())
                if all(f in query for f in index.fields)
            ]
            if usable:
                keys = max(usable, key=lambda i: len(i.fields)).keys_for(query)
        if keys is None:  # the query lacks the partition fields: scan, as msal always does
            pairs = list(section.items())
        else:
            pairs = [(k, section[k]) for k in keys if k in section]
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

        Yields:
            The live entry dicts (do not mutate them; use :meth:`modify`).
        """
        wanted = sorted(target or [])
        normalized = schema.normalize_query(query)
        preferred_key = self._exact_at_key(credential_type, normalized, wanted)
        if preferred_key is not None:
            with self._lock:
                preferred = (self._cache.get(credential_type) or {}).get(preferred_key)
            if isinstance(preferred, dict) and schema.entry_matches(
                credential_type, preferred, normalized
            ):  # the key already pins the target, case-insensitively (as msal)
                yield preferred
        now_int = int(_clock.now() if now is None else now)
        is_at = credential_type == _AT
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
        self, credential_type: str, query: Mapping[str, Any], wanted: list[str]
    ) -> str | None:
        fields = ("home_account_id", "environment", "client_id", "realm")
        if credential_type != _AT or not wanted or not all(f in query for f in fields):
            return None
        return self.key_makers[credential_type](
            **{f: query[f] for f in fields},
            target=" ".join(wanted),
            ext_cache_key=query.get("ext_cache_key"),
        )

    def _purge(self, expired: list[tuple[str, Entry]]) -> None:
        with self._lock:
            section = self._cache.get(_AT) or {}
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

    # --- msal's public surface: writing ---------------------------------------------------------

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
        self._store(event, int(_clock.now() if now is None else now))

    def _store(self, event: Mapping[str, Any], now: int) -> list[tuple[str, str, Entry]]:
        """Write an event's entries; through ``modify`` (msal's pattern) for hooked subclasses.

        Returns:
            The ``(section, key, entry)`` written.
        """
        entries = schema.entries_from_event(event, now=now)
        with self._lock:  # keys first: a failing key maker leaves the cache untouched
            keyed = [(ct, self.key_makers[ct](**entry), entry) for ct, entry in entries]
            if self._msal_hooks:
                for ct, _, entry in keyed:
                    self.modify(ct, _share_strings(entry), entry)
            else:
                for ct, key, entry in keyed:
                    if ct == _APP_METADATA and self._cache.get(ct, {}).get(key) == entry:
                        self._note_change()  # msal rewrites it with every token; same entry
                        continue
                    self._put(ct, key, _share_strings(entry))
            self._enforce_limit(now=now)
        return keyed

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
        new = {"secret": new_rt, "last_modification_time": str(int(_clock.now()))}
        self.modify(self.CredentialType.REFRESH_TOKEN, rt_item, new)

    def remove_at(self, at_item: Mapping[str, Any]) -> None:
        """Delete an access token.

        Args:
            at_item: An AccessToken entry.

        Raises:
            ValueError: It is not an AccessToken entry.
        """
        self._check(at_item, _AT, "at_item")
        self.modify(_AT, at_item)

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


class SerializableTokenCache(TokenCache):
    """A :class:`TokenCache` that round-trips msal's JSON format and tracks changes.

    Attributes:
        has_state_changed: True after a change since the last serialize() or deserialize().
    """

    has_state_changed: bool = False

    def _note_change(self) -> None:
        self.has_state_changed = True

    def deserialize(self, state: str | bytes | None) -> None:
        """Replace the whole cache with a state from :meth:`serialize` (or another MSAL).

        Args:
            state: The JSON text; None or empty means an empty cache.

        Raises:
            ValueError: It is not JSON, or not an object of sections (the cache is unchanged).
        """
        loaded = _json.loads(state, limit=_json.MAX_DOCUMENT_BYTES) if state else {}
        if not isinstance(loaded, dict) or any(
            not isinstance(loaded.get(ct, {}), dict) for ct in schema.KEY_MAKERS
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
