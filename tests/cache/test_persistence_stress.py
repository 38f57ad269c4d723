"""8 processes x 200 acquisitions over 50 scopes share one cache file, then one Redis."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from msal_async.testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID

from ..conftest import HttpsAuthority
from .conftest import RedisServer

ROOT = Path(__file__).resolve().parents[2]
MODULE = "tests.cache.test_persistence_stress"
PROCESSES = 8
ACQUISITIONS = 200
SCOPES = [f"api://stress-{i}/.default" for i in range(50)]
CONCURRENCY = 10  # acquisitions in flight per process


def work(kind: str, location: str, authority: str, ca_file: str, seed: int) -> dict[str, Any]:
    """One process: ACQUISITIONS acquisitions over SCOPES, CONCURRENCY at a time."""
    import anyio

    from msal_async import (
        ConfidentialClientApplication,
        FilePersistence,
        PersistedTokenCache,
        RedisPersistence,
    )

    sources: Counter[str] = Counter()

    async def main() -> None:
        store = FilePersistence(location) if kind == "file" else RedisPersistence(location)
        async with ConfidentialClientApplication(
            DEMO_CLIENT_ID,
            client_credential=DEMO_CLIENT_SECRET,
            authority=authority,
            instance_discovery=False,
            verify=ca_file,
            token_cache=PersistedTokenCache(store),
        ) as app:

            async def one(i: int) -> None:
                scope = SCOPES[(seed * 7 + i * 13) % len(SCOPES)]
                result = await app.acquire_token_for_client([scope])
                sources[str(result.get("token_source", result.get("error")))] += 1

            for start in range(0, ACQUISITIONS, CONCURRENCY):
                async with anyio.create_task_group() as tg:
                    for i in range(start, min(start + CONCURRENCY, ACQUISITIONS)):
                        tg.start_soon(one, i)
        await store.aclose()

    anyio.run(main)
    return dict(sources)


def run_fleet(kind: str, location: str, served: HttpsAuthority) -> list[dict[str, Any]]:
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                MODULE,
                kind,
                location,
                served.authority,
                served.ca_file,
                str(n),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(PROCESSES)
    ]
    outputs = []
    for process in processes:
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0, out
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    return outputs


def check(outputs: list[dict[str, Any]]) -> None:
    total: Counter[str] = Counter()
    for sources in outputs:
        total.update(sources)
    assert sum(total.values()) == PROCESSES * ACQUISITIONS
    assert set(total) <= {"cache", "identity_provider"}, total


def test_file_cache_under_eight_processes(https_authority: HttpsAuthority, tmp_path: Path) -> None:
    https_authority.emulator.reset()
    path = tmp_path / "cache.json"
    check(run_fleet("file", str(path), https_authority))
    state = json.loads(path.read_text())  # parses: not corrupted
    assert {e["target"] for e in state["AccessToken"].values()} == set(SCOPES)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "cache.json"]
    assert leftovers == []  # no temporary file, lock file or corrupt copy
    assert https_authority.emulator.counts["client_credentials"] >= len(SCOPES)


def test_redis_cache_under_eight_processes(
    https_authority: HttpsAuthority, redis: RedisServer
) -> None:
    redis_asyncio = pytest.importorskip("redis", reason="pip install redis")
    https_authority.emulator.reset()
    check(run_fleet("redis", redis.url, https_authority))
    client = redis_asyncio.Redis.from_url(redis.url)
    try:
        key = f"msal_async:cache:{{{DEMO_CLIENT_ID}_{DEMO_TENANT_ID}_AppTokenCache}}"
        state = json.loads(client.hget(key, "d"))
        assert {e["target"] for e in state["AccessToken"].values()} == set(SCOPES)
        assert client.keys("msal_async:lock:*") == []
    finally:
        client.close()
    # The fleet single flight: one token request per scope across all processes.
    assert https_authority.emulator.counts["client_credentials"] == len(SCOPES)


if __name__ == "__main__":
    kind_, location_, authority_, ca_, seed_ = sys.argv[1:]
    print(json.dumps(work(kind_, location_, authority_, ca_, int(seed_))))
