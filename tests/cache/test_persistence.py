"""PersistedTokenCache with FilePersistence: load before lookup, merge on save, partitions, keys."""

from __future__ import annotations

# Inspecting small temporary files inline is fine in a test (ASYNC240).
# ruff: noqa: ASYNC240
import json
import logging
import os
import stat
from collections.abc import Callable, Hashable
from pathlib import Path

import anyio
import anyio.lowlevel
import msal
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from msal_async import (
    ConfidentialClientApplication,
    FilePersistence,
    PersistedTokenCache,
    TokenCache,
)
from msal_async._cache.codec import Document, apply_changes
from msal_async._cache.partitions import app_partition
from msal_async._cache.persistence import unsaved
from msal_async._cache.protocol import AsyncPersistence, Loaded
from msal_async.testing import DEMO_CLIENT_ID, DEMO_TENANT_ID, AuthorityEmulator

pytestmark = pytest.mark.anyio

Make = Callable[..., ConfidentialClientApplication]
SCOPE = "api://persisted/.default"
OTHER_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def cached_scopes(path: Path) -> set[str]:
    """The targets of the ATs stored in a cache file (as msal would read it)."""
    state = json.loads(path.read_text())
    return {entry["target"] for entry in state.get("AccessToken", {}).values()}


async def test_a_second_app_is_served_from_the_file(
    make_cca: Make, emulator: AuthorityEmulator, tmp_path: Path
) -> None:
    path = tmp_path / "cache.json"
    first = make_cca(token_cache=PersistedTokenCache(FilePersistence(path)))
    assert "access_token" in await first.acquire_token_for_client([SCOPE])
    second = make_cca(token_cache=PersistedTokenCache(FilePersistence(path)))
    result = await second.acquire_token_for_client([SCOPE])
    assert result["token_source"] == "cache"
    assert emulator.counts["client_credentials"] == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(tmp_path.glob("*.tmp-*"))
    assert not (tmp_path / "cache.json.lockfile").exists()


async def test_the_file_is_msal_format(make_cca: Make, tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    app = make_cca(token_cache=PersistedTokenCache(FilePersistence(path)))
    await app.acquire_token_for_client([SCOPE])
    theirs = msal.SerializableTokenCache()
    theirs.deserialize(path.read_text())
    found = list(theirs.search(theirs.CredentialType.ACCESS_TOKEN, target=[SCOPE]))
    assert len(found) == 1
    assert path.read_text() == json.dumps(json.loads(path.read_text()), indent=4)


async def test_an_unchanged_file_is_not_read_again(tmp_path: Path) -> None:
    store = FilePersistence(tmp_path / "cache.json")
    saved = await store.save(None, lambda doc: apply_changes(doc, {("AppMetadata", "k"): {}}))
    assert await store.load(None, saved.version) is None
    again = await store.load(None, None)
    assert again is not None
    assert again.document == {"AppMetadata": {"k": {}}}


class CountingFile(FilePersistence):
    """A FilePersistence that counts the loads the cache asks for and the reads they made."""

    def __init__(self, location: Path) -> None:
        super().__init__(location)
        self.loads = 0
        self.reads = 0

    async def load(self, partition: str | None, known: Hashable | None) -> Loaded | None:
        self.loads += 1
        loaded = await super().load(partition, known)
        self.reads += loaded is not None  # None: unchanged, nothing read or parsed
        return loaded


def client_event(secret: str) -> dict[str, object]:
    """A client-credentials event for the demo client's SCOPE, as another process writes it."""
    return {
        "client_id": DEMO_CLIENT_ID,
        "scope": [SCOPE],
        "token_endpoint": f"https://login.microsoftonline.com/{DEMO_TENANT_ID}/oauth2/v2.0/token",
        "environment": "login.microsoftonline.com",
        "response": {"access_token": secret, "expires_in": 3600},
        "data": {},
    }


async def test_a_hit_does_not_read_an_unchanged_file_but_sees_another_writer(
    make_cca: Make, emulator: AuthorityEmulator, tmp_path: Path
) -> None:
    path = tmp_path / "cache.json"
    store = CountingFile(path)
    app = make_cca(token_cache=PersistedTokenCache(store))
    fetched = await app.acquire_token_for_client([SCOPE])
    await app.acquire_token_for_client([SCOPE])
    loads, reads = store.loads, store.reads
    for _ in range(50):
        hit = await app.acquire_token_for_client([SCOPE])
        assert (hit["token_source"], hit["access_token"]) == ("cache", fetched["access_token"])
    assert (store.loads, store.reads) == (loads, reads)  # a stat per hit, no read, no parse
    # Another app (its own memory and store) replaces the token in the file.
    other = PersistedTokenCache(FilePersistence(path))
    other.add(client_event("rotated-by-another-app"))
    await other.save(app_partition(DEMO_CLIENT_ID, DEMO_TENANT_ID))
    seen = await app.acquire_token_for_client([SCOPE])  # the very next call sees it
    assert (seen["token_source"], seen["access_token"]) == ("cache", "rotated-by-another-app")
    assert store.reads == reads + 1
    hit = await app.acquire_token_for_client([SCOPE])  # and the hot path serves it again
    assert (hit["access_token"], store.reads) == ("rotated-by-another-app", reads + 1)
    assert emulator.counts["client_credentials"] == 1


async def test_a_missing_file_is_an_empty_cache(tmp_path: Path) -> None:
    store = FilePersistence(tmp_path / "sub" / "cache.json")
    loaded = await store.load(None, None)
    assert loaded is not None
    assert loaded.document == {}
    assert await store.load(None, loaded.version) is None


async def test_concurrent_writers_keep_each_others_tokens(make_cca: Make, tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    apps = [make_cca(token_cache=PersistedTokenCache(FilePersistence(path))) for _ in range(4)]
    scopes = [f"api://w{i}/.default" for i in range(12)]

    async def run(app: ConfidentialClientApplication, scope: str) -> None:
        assert "access_token" in await app.acquire_token_for_client([scope])

    async with anyio.create_task_group() as tg:
        for i, scope in enumerate(scopes):
            tg.start_soon(run, apps[i % len(apps)], scope)
    assert cached_scopes(path) == set(scopes)


async def test_a_token_written_by_another_process_is_picked_up(
    make_cca: Make, emulator: AuthorityEmulator, tmp_path: Path
) -> None:
    path = tmp_path / "cache.json"
    mine = make_cca(token_cache=PersistedTokenCache(FilePersistence(path)))
    assert "access_token" in await mine.acquire_token_for_client(["api://mine/.default"])
    theirs = make_cca(token_cache=PersistedTokenCache(FilePersistence(path)))
    assert "access_token" in await theirs.acquire_token_for_client(["api://theirs/.default"])
    result = await mine.acquire_token_for_client(["api://theirs/.default"])
    assert result["token_source"] == "cache"
    assert emulator.counts["client_credentials"] == 2


async def test_a_folder_holds_one_file_per_tenant(
    make_cca: Make, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "partitions"
    folder.mkdir()
    cache = PersistedTokenCache(FilePersistence(folder))
    app = make_cca(token_cache=cache)
    assert "access_token" in await app.acquire_token_for_client([SCOPE])
    files = sorted(p.name for p in folder.glob("*.json"))
    client_id = app.client_id
    assert files == [f"{client_id}_{DEMO_TENANT_ID}_AppTokenCache.json"]
    # Another tenant's partition file is never read by this tenant's acquisitions.
    (folder / f"{client_id}_{OTHER_TENANT}_AppTokenCache.json").write_text("garbage{")
    fresh = make_cca(token_cache=PersistedTokenCache(FilePersistence(folder)))
    with caplog.at_level(logging.WARNING, logger="msal_async"):
        result = await fresh.acquire_token_for_client([SCOPE])
    assert result["token_source"] == "cache"
    assert not caplog.records


async def test_encrypted_at_rest_and_readable_with_the_key(
    make_cca: Make, emulator: AuthorityEmulator, tmp_path: Path
) -> None:
    key = AESGCM.generate_key(bit_length=256)
    path = tmp_path / "cache.bin"
    first = make_cca(token_cache=PersistedTokenCache(FilePersistence(path, encryption_key=key)))
    token = (await first.acquire_token_for_client([SCOPE]))["access_token"]
    assert token.encode() not in path.read_bytes()
    assert b"AccessToken" not in path.read_bytes()
    second = make_cca(token_cache=PersistedTokenCache(FilePersistence(path, encryption_key=key)))
    assert (await second.acquire_token_for_client([SCOPE]))["token_source"] == "cache"
    assert emulator.counts["client_credentials"] == 1


async def test_a_wrong_or_missing_key_never_touches_the_file(
    make_cca: Make, emulator: AuthorityEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = AESGCM.generate_key(bit_length=256)
    path = tmp_path / "cache.bin"
    good = FilePersistence(path, encryption_key=key)
    await make_cca(token_cache=PersistedTokenCache(good)).acquire_token_for_client([SCOPE])
    original = path.read_bytes()
    for other_key in (AESGCM.generate_key(bit_length=128), None):
        caplog.clear()
        cache = PersistedTokenCache(FilePersistence(path, encryption_key=other_key))
        app = make_cca(token_cache=cache)
        with caplog.at_level(logging.DEBUG, logger="msal_async"):
            first = await app.acquire_token_for_client([SCOPE])
            again = await app.acquire_token_for_client([SCOPE])
        assert first["token_source"] == "identity_provider"
        assert again["token_source"] == "cache"  # served from memory
        assert unsaved(cache)  # the save failed; its changes are kept
        assert path.read_bytes() == original  # not moved aside, not overwritten
        assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.bin"]
        assert caplog.text.count("cannot be decrypted by this process") == 1
        assert key.hex() not in caplog.text
        assert other_key is None or other_key.hex() not in caplog.text
    again_good = make_cca(
        token_cache=PersistedTokenCache(FilePersistence(path, encryption_key=key))
    )
    assert (await again_good.acquire_token_for_client([SCOPE]))["token_source"] == "cache"
    assert emulator.counts["client_credentials"] == 3


def test_constructor_errors_name_the_parameter(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="persistence"):
        PersistedTokenCache(str(tmp_path))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="encryption_key"):
        FilePersistence(tmp_path / "c", encryption_key=b"short")
    with pytest.raises(TypeError, match="encryption_key"):
        FilePersistence(tmp_path / "c", encryption_key="text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lock_timeout"):
        FilePersistence(tmp_path / "c", lock_timeout=0)
    with pytest.raises(TypeError, match="location"):
        FilePersistence(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_entries"):
        TokenCache(max_entries=0)


async def test_unwritable_location_keeps_tokens_in_memory(
    make_cca: Make, emulator: AuthorityEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    cache = PersistedTokenCache(FilePersistence(blocker / "cache.json"))  # a file as folder
    app = make_cca(token_cache=cache)
    with caplog.at_level(logging.ERROR, logger="msal_async"):
        assert "access_token" in await app.acquire_token_for_client([SCOPE])
    assert "Could not save the token cache" in caplog.text
    assert unsaved(cache)  # kept for the next save
    assert (await app.acquire_token_for_client([SCOPE]))["token_source"] == "cache"
    assert emulator.counts["client_credentials"] == 1


def test_folder_mode_by_trailing_separator(tmp_path: Path) -> None:
    store = FilePersistence(str(tmp_path / "new-folder") + os.sep)
    assert store.partitioned
    assert store.path_of("uid.utid").endswith("uid.utid.json")
    assert Path(store.path_of("../evil")).parent == tmp_path / "new-folder"
    assert not FilePersistence(tmp_path / "file.json").partitioned


async def test_user_tokens_saved_with_whatever_partition_a_flow_names(tmp_path: Path) -> None:
    import base64

    client_info = base64.urlsafe_b64encode(b'{"uid": "u1", "utid": "t1"}').rstrip(b"=").decode()
    folder = tmp_path / "parts"
    folder.mkdir()
    cache = PersistedTokenCache(FilePersistence(folder))
    cache.add(
        {
            "client_id": "c1",
            "scope": ["s1"],
            "token_endpoint": "https://login.microsoftonline.com/t1/oauth2/v2.0/token",
            "environment": "login.microsoftonline.com",
            "grant_type": "refresh_token",
            "data": {},
            "params": {},
            "response": {"refresh_token": "rt", "client_info": client_info},
        }
    )
    await cache.save("c1_t1_AppTokenCache")  # the flow knew only the tenant
    assert (folder / "u1.t1.json").exists()
    assert not unsaved(cache)


class SlowLockStore(AsyncPersistence):
    """A fleet-lock store whose lock is taken before its (delayed) reply comes back."""

    supports_locks = True

    def __init__(self) -> None:
        self.held: dict[str, str] = {}
        self.taken = anyio.Event()
        self.reply = anyio.Event()

    async def load(self, partition: str | None, known: Hashable | None) -> Loaded | None:
        """Nothing stored."""
        return None

    async def save(self, partition: str | None, update: Callable[[Document], Document]) -> Loaded:
        """Nothing stored."""
        return Loaded(1, update({}))

    async def try_lock(self, name: str) -> str | None:
        """Take the lock at once; answer when ``reply`` is set."""
        self.held[name] = "token"
        self.taken.set()
        await self.reply.wait()
        return "token"

    async def unlock(self, name: str, token: str) -> None:
        """Release the lock if ``token`` holds it."""
        if self.held.get(name) == token:
            del self.held[name]


async def test_a_cancelled_fleet_lock_request_does_not_leak_the_lock() -> None:
    store = SlowLockStore()
    cache = PersistedTokenCache(store)

    async def fetch() -> str:
        await anyio.lowlevel.checkpoint()
        return "fetched"

    scope = anyio.CancelScope()

    async def flight() -> None:
        with scope:
            async with cache.session("p", fleet_key="key"):
                await fetch()

    async with anyio.create_task_group() as tg:
        tg.start_soon(flight)
        await store.taken.wait()  # the lock is taken on the server, its reply is on its way
        scope.cancel()
        store.reply.set()
    assert scope.cancelled_caught
    assert store.held == {}  # the reply was received, so the lock was released


class GatedLoadStore(AsyncPersistence):
    """A partitioned store whose first load waits for ``release``; it counts loads."""

    partitioned = True

    def __init__(self) -> None:
        self.loads = 0
        self.reading = anyio.Event()
        self.release = anyio.Event()

    async def load(self, partition: str | None, known: Hashable | None) -> Loaded | None:
        """A new version each time; the first read is held until ``release``."""
        self.loads += 1
        number = self.loads
        if number == 1:
            self.reading.set()
            await self.release.wait()
        return Loaded(number, {})

    async def save(self, partition: str | None, update: Callable[[Document], Document]) -> Loaded:
        """Nothing stored."""
        return Loaded(0, update({}))


async def test_fresh_loads_of_a_burst_share_one_read_that_begins_after_them() -> None:
    # Many fleet locks won or released at once each need a read that begins after they asked:
    # callers arriving while one runs share the next read, not one read each.
    store = GatedLoadStore()
    cache = PersistedTokenCache(store)
    versions: list[Hashable] = []

    async def fresh() -> None:
        await cache._load_partition("p", fresh=True)
        versions.append(cache._versions["p"])

    async with anyio.create_task_group() as tg:
        tg.start_soon(fresh)
        await store.reading.wait()  # the first read is under way
        for _ in range(19):
            tg.start_soon(fresh)
        await anyio.wait_all_tasks_blocked()
        assert store.loads == 1  # the others wait for the read after it, none joined it
        store.release.set()
    assert store.loads == 2
    # Each caller holds what a read begun after its call returned (the first: read 1 or 2).
    assert sorted(versions, key=str)[1:] == [2] * 19
