"""FilePersistence against hostile files, umasks and hung lock holders (issue 10, 4, 6 and 8).

- A cache file nested 200,000 levels deep made every load and save fail with a logged
  RecursionError, forever; it is now damaged like a truncated file: moved aside once, salvaged.
- Folders we create followed the umask (0775 under umask 002): they are 0700, files 0600.
- A live lock holder that never lets go cost every acquisition that writes the whole
  ``lock_timeout``; now it costs one bounded wait, then one attempt per save, and the kept
  changes are saved by a later session once the holder is gone.
"""

from __future__ import annotations

# Inspecting and damaging small temporary files inline is fine in a test (ASYNC240).
# ruff: noqa: ASYNC240
import json
import logging
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest

from msal_async import ConfidentialClientApplication, FilePersistence, PersistedTokenCache
from msal_async._cache.persistence import SAVE_RETRY_DELAY, unsaved
from msal_async.testing import AuthorityEmulator

from ..hostile import DEEP

pytestmark = pytest.mark.anyio

Make = Callable[..., ConfidentialClientApplication]
SCOPES = [f"api://hardening-{i}/.default" for i in range(8)]


def targets(path: Path) -> set[str]:
    """The AT targets stored in a readable (plain) cache file."""
    return {e["target"] for e in json.loads(path.read_text()).get("AccessToken", {}).values()}


async def fill(make_cca: Make, path: Path, scopes: list[str]) -> None:
    app = make_cca(token_cache=PersistedTokenCache(FilePersistence(path)))
    for scope in scopes:
        assert "access_token" in await app.acquire_token_for_client([scope])


def deep_entry() -> str:
    return '{"deep": {"nested": ' + DEEP + "]" * 200_000 + "}}"


@pytest.mark.parametrize("where", ["a section of its own", "the whole file"])
async def test_a_deeply_nested_file_is_moved_aside_once_and_salvaged(
    make_cca: Make,
    emulator: AuthorityEmulator,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    where: str,
) -> None:
    path = tmp_path / "cache.json"
    await fill(make_cca, path, SCOPES[:2])
    good = path.read_text()
    if where == "the whole file":
        damaged, survivors = DEEP, set()
    else:
        damaged = good.rstrip().removesuffix("}") + f', "RefreshToken": {deep_entry()}}}'
        survivors = set(SCOPES[:2])
    path.write_text(damaged)
    app = make_cca(token_cache=PersistedTokenCache(FilePersistence(path)))
    with caplog.at_level(logging.WARNING, logger="msal_async"):
        for scope in SCOPES[:3]:
            result = await app.acquire_token_for_client([scope])
            expected = "cache" if scope in survivors else "identity_provider"
            assert result["token_source"] == expected
    assert caplog.text.count("could not be read") == 1
    assert "nests" in caplog.text
    assert "RecursionError" not in caplog.text
    assert "Traceback" not in caplog.text
    (aside,) = tmp_path.glob("cache.json.corrupt-*")
    assert aside.read_text() == damaged
    assert targets(path) == set(SCOPES[:3])  # rewritten, and saved again since


async def test_an_entry_the_cache_cannot_use_makes_the_file_damaged(
    make_cca: Make, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cache.json"
    await fill(make_cca, path, SCOPES[:2])
    document = json.loads(path.read_text())
    first = next(iter(document["AccessToken"]))
    document["AccessToken"][first]["expires_on"] = "abc"
    path.write_text(json.dumps(document, indent=4))
    app = make_cca(token_cache=PersistedTokenCache(FilePersistence(path)))
    with caplog.at_level(logging.ERROR, logger="msal_async"):
        results = [await app.acquire_token_for_client([scope]) for scope in SCOPES[:2]]
    assert sorted(r["token_source"] for r in results) == ["cache", "identity_provider"]
    assert "expires_on must be an integer" in caplog.text
    assert len(list(tmp_path.glob("cache.json.corrupt-*"))) == 1


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
@pytest.mark.parametrize("mask", [0o002, 0o022, 0o077, 0o777], ids=oct)
async def test_folders_we_create_are_0700_and_files_0600_under_any_umask(
    make_cca: Make, tmp_path: Path, mask: int
) -> None:
    existing = tmp_path / "home"
    existing.mkdir(mode=0o755)
    single = existing / "new" / "nested" / "cache.json"
    folder = existing / "partitions"
    with umask(mask):
        for location in (str(single), str(folder) + os.sep):
            app = make_cca(token_cache=PersistedTokenCache(FilePersistence(location)))
            assert "access_token" in await app.acquire_token_for_client([SCOPES[0]])
    assert mode(existing) == 0o755  # not ours: left alone
    assert mode(existing / "new") == 0o700
    assert mode(single.parent) == 0o700
    assert mode(folder) == 0o700
    assert mode(single) == 0o600
    assert [mode(p) for p in folder.iterdir()] == [0o600]


HUNG_PEER = """
import sys
from msal_extensions.cache_lock import CrossPlatLock

with CrossPlatLock(sys.argv[1]):  # msal-extensions' own lock, held by a process that hangs
    print("locked", flush=True)
    sys.stdin.read()
"""


@contextmanager
def hung_lock_holder(lockfile: Path) -> Iterator[subprocess.Popen[str]]:
    """A live msal-extensions process that takes the lock and never lets go (until killed)."""
    with subprocess.Popen(
        [sys.executable, "-c", HUNG_PEER, str(lockfile)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "locked"
            yield holder
        finally:
            holder.kill()
            holder.wait(10)


@pytest.mark.slow
async def test_a_hung_lock_holder_is_waited_for_once_and_the_save_retried_once_it_is_gone(
    make_cca: Make, emulator: AuthorityEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cache.json"
    store = FilePersistence(path, lock_timeout=0.3)
    cache = PersistedTokenCache(store)
    app = make_cca(token_cache=cache)
    with hung_lock_holder(tmp_path / "cache.json.lockfile"):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="msal_async.persistence"):
            first = await app.acquire_token_for_client([SCOPES[0]])  # one wait, then busy
            assert first["token_source"] == "identity_provider"
            # The store now remembers the stuck holder. Were a later save to wait lock_timeout
            # again, these five would take five times 30 s: they must not take even one (a
            # count of waits with a 1000-fold margin, not a timing; a save runs shielded from
            # cancellation, so fail_after could not stop such a wait).
            store.lock_timeout = 30
            began = time.monotonic()
            for scope in SCOPES[1:6]:
                result = await app.acquire_token_for_client([scope])
                assert result["token_source"] == "identity_provider"
            assert time.monotonic() - began < store.lock_timeout
        assert caplog.text.count("stayed held by a running process") == 1
        assert unsaved(cache)  # kept in memory for a later save
        assert not path.exists()
    # The holder is gone (killed). Plain hits (no token of their own to write) offer the kept
    # changes again once SAVE_RETRY_DELAY has passed: the first such session close saves them.
    with anyio.fail_after(10 + SAVE_RETRY_DELAY):
        while not path.exists():
            hit = await app.acquire_token_for_client([SCOPES[0]])
            assert (hit["token_source"], hit["access_token"]) == ("cache", first["access_token"])
            await anyio.sleep(0.02)
    assert targets(path) == set(SCOPES[:6])
    assert not unsaved(cache)
    assert emulator.counts["client_credentials"] == 6
