"""An encrypted cache cannot be forged: plain JSON planted in its file or Redis key is refused.

Issue 10, finding 1: with ``encryption_key=`` set, FilePersistence and RedisPersistence read a
plain-JSON document someone without the key wrote, and the app served its token with
``token_source: cache``. Now such a document is refused like one of another key (logged once,
read as nothing, never overwritten), and a plain cache is encrypted only by an explicit call.
"""

from __future__ import annotations

# Inspecting small temporary files inline is fine in a test (ASYNC240).
# ruff: noqa: ASYNC240
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from msal_async import (
    ConfidentialClientApplication,
    FilePersistence,
    PersistedTokenCache,
    RedisPersistence,
)
from msal_async._cache import codec
from msal_async._cache.partitions import app_partition
from msal_async._cache.redis_layout import cache_key
from msal_async.testing import DEMO_CLIENT_ID, DEMO_TENANT_ID, AuthorityEmulator

from .conftest import RedisServer

pytestmark = pytest.mark.anyio

Make = Callable[..., ConfidentialClientApplication]
SCOPE = "api://planted/.default"
PLANTED = "ATTACKER-PLANTED-TOKEN"
KEY = AESGCM.generate_key(bit_length=256)


def planted_document() -> dict[str, Any]:
    """A plain msal cache holding, for exactly the app's lookup, the attacker's token."""
    at = {
        "credential_type": "AccessToken",
        "secret": PLANTED,
        "home_account_id": None,
        "environment": "login.microsoftonline.com",
        "client_id": DEMO_CLIENT_ID,
        "target": SCOPE,
        "realm": DEMO_TENANT_ID,
        "token_type": "Bearer",
        "cached_at": "1700000000",
        "expires_on": "9999999999",
        "extended_expires_on": "9999999999",
    }
    key = f"-login.microsoftonline.com-accesstoken-{DEMO_CLIENT_ID}-{DEMO_TENANT_ID}-{SCOPE}"
    return {"AccessToken": {key: at}}


def planted_bytes() -> bytes:
    return json.dumps(planted_document(), indent=4).encode()


def test_the_codec_refuses_plain_json_under_a_key() -> None:
    with pytest.raises(codec.PlaintextDocument, match="plain JSON"):
        codec.decode(planted_bytes(), KEY)
    assert isinstance(codec.PlaintextDocument("x"), codec.UndecryptableDocument)
    assert codec.salvage(planted_bytes(), KEY) == {}
    assert codec.decode(planted_bytes(), None) == planted_document()  # no key: msal's format
    assert codec.decode(planted_bytes(), KEY, allow_plaintext=True) == planted_document()
    assert codec.decode(b"", KEY) == {}  # nothing stored yet
    sealed = codec.encode(planted_document(), KEY)
    assert codec.decode(sealed, KEY) == planted_document()


async def test_a_planted_plain_file_is_never_served_nor_overwritten(
    make_cca: Make, emulator: AuthorityEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cache.bin"
    path.write_bytes(planted_bytes())
    app = make_cca(token_cache=PersistedTokenCache(FilePersistence(path, encryption_key=KEY)))
    with caplog.at_level(logging.WARNING, logger="msal_async"):
        first = await app.acquire_token_for_client([SCOPE])
        again = await app.acquire_token_for_client([SCOPE])
    assert first["access_token"] != PLANTED
    assert first["token_source"] == "identity_provider"
    assert again["access_token"] == first["access_token"]  # from memory, not from the file
    assert path.read_bytes() == planted_bytes()  # left for the key holder to decide
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.bin"]
    assert caplog.text.count("is not encrypted") == 1
    assert PLANTED not in caplog.text
    assert emulator.counts["client_credentials"] == 1


async def test_encrypting_a_plain_cache_is_one_explicit_call(
    make_cca: Make, emulator: AuthorityEmulator, tmp_path: Path
) -> None:
    path = tmp_path / "cache.json"
    plain = make_cca(token_cache=PersistedTokenCache(FilePersistence(path)))
    token = (await plain.acquire_token_for_client([SCOPE]))["access_token"]
    store = FilePersistence(path, encryption_key=KEY)
    assert await store.encrypt_plaintext_cache() == [str(path)]
    assert b"AccessToken" not in path.read_bytes()
    assert await store.encrypt_plaintext_cache() == []  # once: already encrypted
    app = make_cca(token_cache=PersistedTokenCache(store))
    served = await app.acquire_token_for_client([SCOPE])
    assert served["token_source"] == "cache"
    assert served["access_token"] == token
    assert emulator.counts["client_credentials"] == 1
    with pytest.raises(ValueError, match="encryption_key"):
        await FilePersistence(path).encrypt_plaintext_cache()


async def test_encrypting_a_folder_of_plain_partitions(make_cca: Make, tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    plain = make_cca(token_cache=PersistedTokenCache(FilePersistence(folder)))
    await plain.acquire_token_for_client([SCOPE])
    (folder / "notes.txt").write_text("not a partition")
    store = FilePersistence(folder, encryption_key=KEY)
    [encrypted] = await store.encrypt_plaintext_cache()
    assert Path(encrypted).parent == folder
    assert b"AccessToken" not in Path(encrypted).read_bytes()
    assert (folder / "notes.txt").read_text() == "not a partition"
    app = make_cca(token_cache=PersistedTokenCache(store))
    assert (await app.acquire_token_for_client([SCOPE]))["token_source"] == "cache"


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # redis-py's client is asyncio-only
async def test_a_planted_plain_redis_value_is_never_served_nor_overwritten(
    make_cca: Make,
    emulator: AuthorityEmulator,
    redis: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    redis_asyncio = pytest.importorskip("redis.asyncio", reason="pip install redis")
    raw = redis_asyncio.from_url(redis.url)
    name = cache_key("msal_async", app_partition(DEMO_CLIENT_ID, DEMO_TENANT_ID))
    await raw.hset(name, mapping={"v": "attacker", "d": planted_bytes()})
    store = RedisPersistence(redis.url, encryption_key=KEY)
    app = make_cca(token_cache=PersistedTokenCache(store))
    try:
        with caplog.at_level(logging.WARNING, logger="msal_async"):
            first = await app.acquire_token_for_client([SCOPE])
            again = await app.acquire_token_for_client([SCOPE])
        assert first["access_token"] != PLANTED
        assert first["token_source"] == "identity_provider"
        assert again["access_token"] == first["access_token"]
        assert await raw.hgetall(name) == {b"v": b"attacker", b"d": planted_bytes()}
        assert "plain JSON" in caplog.text
        assert PLANTED not in caplog.text
        assert emulator.counts["client_credentials"] == 1
    finally:
        await store.aclose()
        await raw.aclose()


def client_event(client_id: str, secret: str) -> dict[str, Any]:
    """A client-credentials event for ``client_id`` in the demo tenant."""
    return {
        "client_id": client_id,
        "scope": [SCOPE],
        "token_endpoint": f"https://login.microsoftonline.com/{DEMO_TENANT_ID}/oauth2/v2.0/token",
        "environment": "login.microsoftonline.com",
        "response": {"access_token": secret, "expires_in": 3600},
        "data": {},
    }


async def save_event(store: RedisPersistence, client_id: str, secret: str) -> str:
    """Store one token of ``client_id`` through ``store``; the Redis key of its partition."""
    cache = PersistedTokenCache(store)
    cache.add(client_event(client_id, secret))
    partition = app_partition(client_id, DEMO_TENANT_ID)
    await cache.save(partition)
    return store.key_of(partition)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # redis-py's client is asyncio-only
async def test_encrypting_a_plain_redis_cache_is_one_explicit_call(
    make_cca: Make, emulator: AuthorityEmulator, redis: RedisServer
) -> None:
    redis_asyncio = pytest.importorskip("redis.asyncio", reason="pip install redis")
    raw = redis_asyncio.from_url(redis.url)
    plain = RedisPersistence(redis.url, tracking=False)
    elsewhere = RedisPersistence(redis.url, namespace="other*", tracking=False)
    foreign = RedisPersistence(redis.url, encryption_key=AESGCM.generate_key(bit_length=128))
    store = RedisPersistence(redis.url, encryption_key=KEY)
    try:
        app = make_cca(token_cache=PersistedTokenCache(plain))
        token = (await app.acquire_token_for_client([SCOPE]))["access_token"]
        mine = store.key_of(app_partition(DEMO_CLIENT_ID, DEMO_TENANT_ID))
        second = await save_event(plain, "second-client", "second-token")
        other_namespace = await save_event(elsewhere, "third-client", "third-token")
        other_key = await save_event(foreign, "fourth-client", "fourth-token")
        await raw.set("msal_async:notes", "not a partition")
        untouched = {k: await raw.dump(k) for k in (other_namespace, other_key)}

        assert await store.encrypt_plaintext_cache() == sorted([mine, second])
        for key in (mine, second):
            stored = await raw.hget(key, "d")
            assert not codec.is_plaintext(stored)
            assert b"token" not in stored
        assert {k: await raw.dump(k) for k in untouched} == untouched
        assert await raw.get("msal_async:notes") == b"not a partition"
        assert await store.encrypt_plaintext_cache() == []  # once: encrypted now

        served = await make_cca(token_cache=PersistedTokenCache(store)).acquire_token_for_client(
            [SCOPE]
        )
        assert (served["token_source"], served["access_token"]) == ("cache", token)
        assert emulator.counts["client_credentials"] == 1
        with pytest.raises(ValueError, match="encryption_key"):
            await plain.encrypt_plaintext_cache()
    finally:
        for persistence in (plain, elsewhere, foreign, store):
            await persistence.aclose()
        await raw.aclose()
