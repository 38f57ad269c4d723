"""File cache faults: truncated or garbage file, a lock holder killed, disk full on write."""

from __future__ import annotations

# Inspecting and damaging small temporary files inline is fine in a test (ASYNC240).
# ruff: noqa: ASYNC240
import json
import logging
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from msal_async import ConfidentialClientApplication, FilePersistence, PersistedTokenCache
from msal_async._cache.persistence import unsaved
from msal_async.testing import AuthorityEmulator

pytestmark = pytest.mark.anyio

Make = Callable[..., ConfidentialClientApplication]
SCOPES = [f"api://fault-{i}/.default" for i in range(6)]


def targets(path: Path) -> set[str]:
    """The AT targets stored in a readable cache file."""
    return {e["target"] for e in json.loads(path.read_text()).get("AccessToken", {}).values()}


async def fill(make_cca: Make, path: Path, scopes: list[str]) -> None:
    app = make_cca(token_cache=PersistedTokenCache(FilePersistence(path)))
    for scope in scopes:
        assert "access_token" in await app.acquire_token_for_client([scope])


async def test_truncated_file_keeps_every_readable_token(
    make_cca: Make, emulator: AuthorityEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cache.json"
    await fill(make_cca, path, SCOPES)
    original = path.read_bytes()
    cut = original.index(b'"AppMetadata"') - 200  # into the last access token
    path.write_bytes(original[:cut])
    survivors = SCOPES[:-1]
    app = make_cca(token_cache=PersistedTokenCache(FilePersistence(path)))
    with caplog.at_level(logging.ERROR, logger="msal_async"):
        for scope in survivors:
            assert (await app.acquire_token_for_client([scope]))["token_source"] == "cache"
    assert "could not be read" in caplog.text
    assert f"kept the {len(survivors)} entries" in caplog.text
    (aside,) = tmp_path.glob("cache.json.corrupt-*")
    assert aside.read_bytes() == original[:cut]
    assert targets(path) == set(survivors)  # the salvaged tokens were written back at once
    assert emulator.counts["client_credentials"] == len(SCOPES)


async def test_garbage_file_is_moved_aside_and_replaced(
    make_cca: Make, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cache.json"
    garbage = os.urandom(4096)
    path.write_bytes(garbage)
    app = make_cca(token_cache=PersistedTokenCache(FilePersistence(path)))
    with caplog.at_level(logging.ERROR, logger="msal_async"):
        assert "access_token" in await app.acquire_token_for_client([SCOPES[0]])
    assert "could not be read" in caplog.text
    (aside,) = tmp_path.glob("cache.json.corrupt-*")
    assert aside.read_bytes() == garbage
    assert targets(path) == {SCOPES[0]}


HOLD_AND_WAIT = """
import sys, anyio
from msal_async._cache.file_lock import hold_lock

async def main():
    async with hold_lock(sys.argv[1], wait=5, stale_after=3600):
        print("locked", flush=True)
        await anyio.sleep(3600)

anyio.run(main)
"""


def kill_a_lock_holder(lockfile: Path) -> int:
    """Start a process that takes the lock, SIGKILL it while it holds it; return its pid."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLD_AND_WAIT, str(lockfile)], stdout=subprocess.PIPE, text=True
    ) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "locked"
        finally:
            holder.send_signal(signal.SIGKILL)
            holder.wait(10)
    return holder.pid


def dead_pid() -> int:
    """A pid no process can have (above the kernel's pid_max), so it cannot be reused.

    (A just-exited child's pid was used first; on a busy machine it was once reused at once.)
    """
    try:
        with open("/proc/sys/kernel/pid_max") as limit:
            return int(limit.read()) + 1
    except OSError:  # not Linux: an exited child's pid, as good as it gets
        with subprocess.Popen([sys.executable, "-c", "pass"]) as process:
            process.wait(10)
        return process.pid


async def test_lock_of_a_killed_process_is_recovered(
    make_cca: Make, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cache.json"
    lockfile = tmp_path / "cache.json.lockfile"
    pid = kill_a_lock_holder(lockfile)
    assert lockfile.exists()
    app = make_cca(token_cache=PersistedTokenCache(FilePersistence(path, lock_timeout=10)))
    with caplog.at_level(logging.WARNING, logger="msal_async"):
        assert "access_token" in await app.acquire_token_for_client([SCOPES[0]])
    assert f"holder pid {pid} is not running" in caplog.text
    assert targets(path) == {SCOPES[0]}
    assert not lockfile.exists()


async def test_msal_extensions_style_lock_of_a_dead_pid_is_recovered(
    make_cca: Make, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cache.json"
    (tmp_path / "cache.json.lockfile").write_text(f"{dead_pid()} some_app.py")  # no flock held
    app = make_cca(token_cache=PersistedTokenCache(FilePersistence(path)))
    with caplog.at_level(logging.WARNING, logger="msal_async"):
        assert "access_token" in await app.acquire_token_for_client([SCOPES[0]])
    assert "stale token cache lock file" in caplog.text
    assert targets(path) == {SCOPES[0]}


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (needs root: CI runs as root); skips where it cannot be mounted."""
    mount_point = tmp_path / f"tiny-{uuid.uuid4().hex[:6]}"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to simulate a full disk: {done.stderr!r}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill_disk(folder: Path) -> Path:
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while os.write(fd, b"\0" * 512):
            pass
    except OSError:
        pass  # ENOSPC: the disk is full now
    finally:
        os.close(fd)
    return filler


async def test_disk_full_keeps_tokens_in_memory_and_the_old_file(
    make_cca: Make, emulator: AuthorityEmulator, tiny_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tiny_disk / "cache.json"
    cache = PersistedTokenCache(FilePersistence(path))
    app = make_cca(token_cache=cache)
    assert "access_token" in await app.acquire_token_for_client([SCOPES[0]])
    before = path.read_bytes()
    filler = fill_disk(tiny_disk)
    with caplog.at_level(logging.ERROR, logger="msal_async"):
        assert "access_token" in await app.acquire_token_for_client([SCOPES[1]])
    assert "Could not save the token cache" in caplog.text
    assert "No space left on device" in caplog.text
    assert path.read_bytes() == before  # the old file is intact
    assert not list(tiny_disk.glob("*.tmp-*"))
    assert unsaved(cache)
    for scope in SCOPES[:2]:  # both tokens still served, from memory
        assert (await app.acquire_token_for_client([scope]))["token_source"] == "cache"
    filler.unlink()
    assert "access_token" in await app.acquire_token_for_client([SCOPES[2]])
    assert targets(path) == set(SCOPES[:3])  # the failed save's token was retried
    assert emulator.counts["client_credentials"] == 3


def user_event(secret: str) -> dict[str, Any]:
    """A token response for a user (an access token, a refresh token and an account)."""
    return {
        "client_id": "c",
        "scope": ["s"],
        "token_endpoint": "https://login.microsoftonline.com/t/oauth2/v2.0/token",
        "environment": "login.microsoftonline.com",
        "response": {
            "access_token": secret,
            "refresh_token": "rt-" + secret,
            "expires_in": 3600,
            "client_info": "eyJ1aWQiOiJ1IiwidXRpZCI6InQifQ",
        },
        "data": {},
    }


async def test_an_empty_file_read_without_the_lock_is_read_again_under_it(tmp_path: Path) -> None:
    from msal_extensions.cache_lock import CrossPlatLock

    path = tmp_path / "cache.json"
    cache = PersistedTokenCache(FilePersistence(path, lock_timeout=0.2))
    cache.add(user_event("AT"))
    await cache.save("u.t")
    held = cache._entry_count()
    content = path.read_bytes()
    # msal-extensions' save: take the lock, truncate the file in place, then write it.
    with CrossPlatLock(f"{path}.lockfile"):
        os.close(os.open(path, os.O_RDWR | os.O_TRUNC))
        await cache.load("u.t")  # reads b"": maybe mid-write, and the lock is taken
        assert cache._entry_count() == held  # memory kept (the reload gave up on the lock)
        path.write_bytes(content)
    await cache.load("u.t")
    assert cache._entry_count() == held
    path.write_bytes(b"")  # an empty file read under a free lock is an empty cache
    await cache.load("u.t")
    assert cache._entry_count() == 0


async def test_temporary_files_of_an_interrupted_write_are_removed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cache.json"
    dead = tmp_path / f"cache.json.tmp-{dead_pid()}-0123abcd"
    old = tmp_path / f"cache.json.tmp-{os.getpid()}-89abcdef"
    live = tmp_path / f"cache.json.tmp-{os.getpid()}-00ff00ff"  # ours, recent: maybe in flight
    other_cache = tmp_path / f"other.json.tmp-{dead_pid()}-0123abcd"
    for leftover in (dead, old, live, other_cache):
        leftover.write_text('{"RefreshToken": {"k": {"secret": "rt"}}}')
    os.utime(old, (0, 0))
    cache = PersistedTokenCache(FilePersistence(path, stale_lock_after=60))
    cache.add(user_event("AT"))
    with caplog.at_level(logging.WARNING, logger="msal_async"):
        await cache.save("u.t")
    assert not dead.exists()
    assert not old.exists()
    assert live.exists()
    assert other_cache.exists()
    assert caplog.text.count("Removed a temporary token cache file") == 2
