"""Fuzz the cache documents, in the codec and in both stores (a file and a Redis value).

Properties (issue 10): any stored bytes decode to a document the cache can use, or raise
CorruptDocument / UndecryptableDocument; with a key nothing but this key's ciphertext is ever
read; salvage never raises. In a store, whatever the bytes, an acquisition gets a token (from
the cache or the authority), what a lookup served was really stored, and the store holds a
readable document afterwards (a damaged one moved aside or overwritten).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from msal_async import (
    ConfidentialClientApplication,
    FilePersistence,
    PersistedTokenCache,
    RedisPersistence,
    SerializableTokenCache,
)
from msal_async._cache import codec
from msal_async._cache.partitions import app_partition
from msal_async._cache.redis_layout import cache_key
from msal_async._oauth2.responses import cache_hit_result
from msal_async.testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, AuthorityEmulator

from ..hostile import DEEP, fuzz_settings
from .conftest import RedisServer

KEY = bytes(range(32))
SCOPE = "api://fuzz/.default"
AUTHORITY = f"https://login.microsoftonline.com/{DEMO_TENANT_ID}"
NOW = 1_700_000_000

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
    | st.sampled_from(["9999999999", "1700000000", "abc", "", "-1", " 5 "])
)
JSON_ANY = st.recursive(
    SCALARS,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
    max_leaves=6,
)
# An access token entry for exactly the app's lookup, each field right or bent into anything.
ENTRY_FIELDS = {
    "credential_type": st.just("AccessToken"),
    "secret": st.text(min_size=1, max_size=8),
    "home_account_id": st.none(),
    "environment": st.just("login.microsoftonline.com"),
    "client_id": st.just(DEMO_CLIENT_ID),
    "realm": st.just(DEMO_TENANT_ID),
    "target": st.just(SCOPE),
    "token_type": st.just("Bearer"),
    "cached_at": st.just(str(NOW)),
    "expires_on": st.just("9999999999"),
    "extended_expires_on": st.just("9999999999"),
    "refresh_on": st.just("9999999999"),
}
ENTRIES = st.builds(
    lambda entry, bent: {**entry, **bent},
    st.fixed_dictionaries(ENTRY_FIELDS),
    st.dictionaries(st.sampled_from(list(ENTRY_FIELDS)), JSON_ANY, max_size=2),
)
SECTIONS = st.sampled_from(["AccessToken", "RefreshToken", "IdToken", "Account", "AppMetadata"])
DOCUMENTS = st.dictionaries(
    SECTIONS, st.dictionaries(st.text(max_size=6), ENTRIES | JSON_ANY, max_size=3), max_size=3
)
BLOBS = (
    DOCUMENTS.map(lambda d: json.dumps(d, indent=4).encode())
    | st.builds(
        lambda d, cut: json.dumps(d).encode()[:cut], DOCUMENTS, st.integers(0, 400)
    )  # truncated
    | st.binary(max_size=200)
    | st.sampled_from([DEEP.encode(), b"", b"   ", b"[]", b"{}", b'{"AccessToken": []}'])
    | DOCUMENTS.map(lambda d: codec.encode(d, KEY))
)


def lookup(document: dict[str, Any]) -> None:
    """What the app does with a loaded document: search it and build results from hits."""
    cache = SerializableTokenCache()
    cache.deserialize(json.dumps(document))
    query = {
        "client_id": DEMO_CLIENT_ID,
        "environment": "login.microsoftonline.com",
        "realm": DEMO_TENANT_ID,
        "home_account_id": None,
    }
    for entry in cache.search("AccessToken", target=[SCOPE], query=query, now=NOW):
        cache_hit_result(entry, now=NOW)


@fuzz_settings()
@given(BLOBS, st.sampled_from([None, KEY]))
def test_fuzz_decode(blob: bytes, key: bytes | None) -> None:
    try:
        document = codec.decode(blob, key)
    except (codec.CorruptDocument, codec.UndecryptableDocument):
        assert isinstance(codec.salvage(blob, key), dict)
        return
    if key is not None and blob.strip():
        assert blob.startswith(b"msal_async:aesgcm:1\n")  # only this key's ciphertext is read
    lookup(document)
    assert codec.decode(codec.encode(document, key), key) == document


@fuzz_settings()
@given(BLOBS)
def test_fuzz_salvage_keeps_only_usable_entries(blob: bytes) -> None:
    kept = codec.salvage(blob, None)
    for section, entries in kept.items():
        for entry in entries.values():
            assert codec.entry_problem(section, entry) is None
    lookup(kept)
    assert codec.decode(codec.encode(kept, None), None) == kept


def readable(blob: bytes, key: bytes | None) -> dict[str, Any]:
    """What a store may serve from ``blob``: the document, or what is salvaged from it."""
    try:
        return codec.decode(blob, key)
    except codec.CorruptDocument:
        return codec.salvage(blob, key)
    except codec.UndecryptableDocument:
        return {}


def secrets_of(document: dict[str, Any]) -> set[str]:
    return {entry["secret"] for entry in document.get("AccessToken", {}).values()}


#: One emulator for every example (making one generates a signing key).
EMULATOR = AuthorityEmulator()


async def acquire(store: Any) -> dict[str, Any]:
    """One app with a fresh memory on ``store`` acquires the token for SCOPE."""
    emulator = EMULATOR
    before = emulator.counts["client_credentials"]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as http:
        app = ConfidentialClientApplication(
            DEMO_CLIENT_ID,
            client_credential=DEMO_CLIENT_SECRET,
            authority=AUTHORITY,
            http_client=http,
            token_cache=PersistedTokenCache(store),
        )
        result = dict(await app.acquire_token_for_client([SCOPE]))
        issued = emulator.counts["client_credentials"] - before
    assert "access_token" in result
    assert (result["token_source"] == "cache") == (issued == 0)
    return result


@fuzz_settings()
@given(BLOBS, st.sampled_from([None, KEY]))
def test_fuzz_a_file_cache(tmp_path: Path, blob: bytes, key: bytes | None) -> None:
    path = tmp_path / f"{uuid.uuid4().hex}.json"
    path.write_bytes(blob)
    result = anyio.run(acquire, FilePersistence(path, encryption_key=key))
    if result["token_source"] == "cache":  # served only what was stored, or salvaged from it
        assert result["access_token"] in secrets_of(readable(blob, key))
    try:
        codec.decode(path.read_bytes(), key)  # readable now (or another key's: left alone)
    except codec.UndecryptableDocument:
        assert path.read_bytes() == blob


@fuzz_settings()
@given(blob=BLOBS, key=st.sampled_from([None, KEY]))
def test_fuzz_a_redis_cache(redis: RedisServer, blob: bytes, key: bytes | None) -> None:
    redis_asyncio = pytest.importorskip("redis.asyncio", reason="pip install redis")
    namespace = uuid.uuid4().hex
    name = cache_key(namespace, app_partition(DEMO_CLIENT_ID, DEMO_TENANT_ID))

    async def scenario() -> None:
        raw = redis_asyncio.from_url(redis.url)
        store = RedisPersistence(redis.url, namespace=namespace, encryption_key=key)
        try:
            await raw.hset(name, mapping={"v": "fuzz", "d": blob})
            result = await acquire(store)
            if result["token_source"] == "cache":
                assert result["access_token"] in secrets_of(readable(blob, key))
            try:
                codec.decode(await raw.hget(name, "d") or b"", key)
            except codec.UndecryptableDocument:
                assert await raw.hget(name, "d") == blob  # another key's: left alone
        finally:
            await store.aclose()
            await raw.delete(name)
            await raw.aclose()

    anyio.run(scenario)
