"""msal + msal-extensions and msal_async share one cache file from separate processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from msal_async.testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

from ..conftest import HttpsAuthority

pytest.importorskip("msal_extensions", reason="pip install msal-extensions (in the test extra)")

ROOT = Path(__file__).resolve().parents[2]
MODULE = "tests.cache.test_file_store_interop"


def run_msal(path: str, authority: str, ca_file: str, scopes: list[str]) -> dict[str, str]:
    """In this process: real msal with msal-extensions' PersistedTokenCache on ``path``."""
    import msal
    import msal_extensions
    import requests

    session = requests.Session()
    session.trust_env = False
    session.verify = ca_file
    cache = msal_extensions.PersistedTokenCache(msal_extensions.FilePersistence(path))
    app = msal.ConfidentialClientApplication(
        DEMO_CLIENT_ID,
        client_credential=DEMO_CLIENT_SECRET,
        authority=authority,
        instance_discovery=False,
        http_client=session,
        token_cache=cache,
    )
    out = {}
    for scope in scopes:
        result = app.acquire_token_for_client([scope])
        out[scope] = str(result.get("token_source", result.get("error")))
    return out


def run_ours(path: str, authority: str, ca_file: str, scopes: list[str]) -> dict[str, str]:
    """In this process: msal_async with FilePersistence on ``path`` (concurrent acquisitions)."""
    import anyio

    from msal_async import ConfidentialClientApplication, FilePersistence, PersistedTokenCache

    out: dict[str, str] = {}

    async def main() -> None:
        async with ConfidentialClientApplication(
            DEMO_CLIENT_ID,
            client_credential=DEMO_CLIENT_SECRET,
            authority=authority,
            instance_discovery=False,
            verify=ca_file,
            token_cache=PersistedTokenCache(FilePersistence(path)),
        ) as app:

            async def one(scope: str) -> None:
                result = await app.acquire_token_for_client([scope])
                out[scope] = str(result.get("token_source", result.get("error")))

            async with anyio.create_task_group() as tg:
                for scope in scopes:
                    tg.start_soon(one, scope)

    anyio.run(main)
    return out


def spawn(kind: str, path: Path, served: HttpsAuthority, scopes: list[str]) -> Any:
    return subprocess.Popen(
        [sys.executable, "-m", MODULE, kind, str(path), served.authority, served.ca_file, *scopes],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


def collect(process: Any) -> dict[str, str]:
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0, out
    result: dict[str, str] = json.loads(out.strip().splitlines()[-1])
    return result


def test_msal_extensions_and_msal_async_share_one_file(
    https_authority: HttpsAuthority, tmp_path: Path
) -> None:
    https_authority.emulator.reset()
    path = tmp_path / "shared_cache.json"
    theirs = [f"api://msal-ext-{i}/.default" for i in range(8)]
    ours = [f"api://msal-async-{i}/.default" for i in range(8)]
    # Both write the same file at the same time.
    first = [
        spawn("msal", path, https_authority, theirs),
        spawn("ours", path, https_authority, ours),
    ]
    for process in first:
        assert set(collect(process).values()) == {"identity_provider"}
    # Each now sees the other's tokens, and its own.
    seen_by_msal = collect(spawn("msal", path, https_authority, ours + theirs))
    seen_by_ours = collect(spawn("ours", path, https_authority, theirs + ours))
    assert set(seen_by_msal.values()) == {"cache"}, seen_by_msal
    assert set(seen_by_ours.values()) == {"cache"}, seen_by_ours
    assert https_authority.emulator.counts["client_credentials"] == 16
    state = json.loads(path.read_text())
    targets = {e["target"] for e in state["AccessToken"].values()}
    assert targets == set(theirs + ours)
    assert not path.with_name(path.name + ".lockfile").exists()


def app_event(client_id: str, secret: str) -> dict[str, Any]:
    """A client-credentials token response, as msal's ``TokenCache.add`` takes it."""
    return {
        "client_id": client_id,
        "scope": ["s"],
        "token_endpoint": "https://login.microsoftonline.com/t/oauth2/v2.0/token",
        "environment": "login.microsoftonline.com",
        "response": {"access_token": secret, "expires_in": 3600},
        "data": {},
    }


def stored_secrets(path: Path) -> set[str]:
    """The access tokens in a cache file."""
    return {e["secret"] for e in json.loads(path.read_text()).get("AccessToken", {}).values()}


@pytest.mark.anyio
async def test_a_peer_that_reloaded_during_our_write_sees_it_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import msal
    import msal_extensions

    from msal_async import FilePersistence, PersistedTokenCache

    path = tmp_path / "cache.json"
    path.write_text("{}")
    peer = msal_extensions.PersistedTokenCache(msal_extensions.FilePersistence(str(path)))
    real_fsync = os.fsync
    peer_saw: list[list[Any]] = []

    def fsync(fd: int) -> None:
        real_fsync(fd)
        if not peer_saw:  # our temporary file is written and not yet renamed: the peer reloads
            at = msal.TokenCache.CredentialType.ACCESS_TOKEN
            peer_saw.append(list(peer.search(at, query={})))

    monkeypatch.setattr(os, "fsync", fsync)
    cache = PersistedTokenCache(FilePersistence(path))
    cache.add(app_event("ours", "OUR-TOKEN"))
    await cache.save("any")
    monkeypatch.undo()
    assert peer_saw == [[]]  # it reloaded the old file, during our write
    assert peer._last_sync < path.stat().st_mtime  # msal-extensions' reload rule
    peer.add(app_event("peer", "PEER-TOKEN"))  # lock, reload if newer, write everything it has
    assert stored_secrets(path) == {"OUR-TOKEN", "PEER-TOKEN"}


if __name__ == "__main__":
    kind, location, authority_url, ca, *wanted = sys.argv[1:]
    runner = run_msal if kind == "msal" else run_ours
    print(json.dumps(runner(location, authority_url, ca, wanted)))
