"""Cache-hit latency with persistent caches: ``python benchmarks/persistence.py [--quick]``.

``acquire_token_for_client`` served from the cache, with 1 and 10,000 partitions (tenants) stored:

- msal_async + FilePersistence on one file (msal's JSON format: all partitions in one file),
- msal_async + FilePersistence on a folder (one file per partition),
- msal_async + RedisPersistence on a redis-server on 127.0.0.1 (skipped without redis-server),
- real msal + msal-extensions' PersistedTokenCache on the same single file.

Every hit runs the persistence check (a stat or a Redis version round trip). The authority
emulator is served over HTTPS on loopback only for msal's constructor-time discovery; hits send
no request. Benchmarks never assert; the exit status is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio

from msal_async import (
    ConfidentialClientApplication,
    FilePersistence,
    PersistedTokenCache,
    RedisPersistence,
    SerializableTokenCache,
)
from msal_async.testing import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_TENANT_ID,
    AuthorityEmulator,
    generate_tls_files,
    serve_in_thread,
)

SCOPE = "api://bench-persist/.default"
ENV = "login.microsoftonline.com"
SIZES = (1, 10_000)
QUICK_SIZES = (1, 100)


def tenants(count: int) -> list[str]:
    """``count`` tenant ids, the demo tenant first (it holds the token we hit)."""
    return [DEMO_TENANT_ID] + [str(uuid.UUID(int=0xB0000000 + i)) for i in range(count - 1)]


def populated(count: int, host: str) -> SerializableTokenCache:
    """A cache with one app token in each of ``count`` tenants (partitions)."""
    cache = SerializableTokenCache()
    for tenant in tenants(count):
        cache.add(
            {
                "client_id": DEMO_CLIENT_ID,
                "scope": [SCOPE],
                "token_endpoint": f"https://{host}/{tenant}/oauth2/v2.0/token",
                "environment": host,
                "grant_type": "client_credentials",
                "data": {},
                "params": {},
                "response": {"access_token": "x" * 1200, "expires_in": 86400},
            }
        )
    return cache


def summary(samples: list[float]) -> str:
    samples.sort()
    p50 = statistics.median(samples) * 1e6
    p95 = samples[int(len(samples) * 0.95)] * 1e6
    return f"{p50:9.1f} us p50 {p95:9.1f} us p95"


async def time_async(call: Callable[[], Awaitable[Any]], iterations: int) -> list[float]:
    out = []
    for _ in range(iterations):
        start = time.perf_counter()
        result = await call()
        out.append(time.perf_counter() - start)
        assert result.get("token_source") == "cache", result
    return out


def time_sync(call: Callable[[], Any], iterations: int) -> list[float]:
    out = []
    for _ in range(iterations):
        start = time.perf_counter()
        result = call()
        out.append(time.perf_counter() - start)
        assert result.get("token_source") == "cache", result
    return out


async def ours(authority: str, ca_file: str, store: Any, iterations: int) -> list[float]:
    async with ConfidentialClientApplication(
        DEMO_CLIENT_ID,
        client_credential=DEMO_CLIENT_SECRET,
        authority=authority,
        instance_discovery=False,
        verify=ca_file,
        token_cache=PersistedTokenCache(store),
    ) as app:
        await app.acquire_token_for_client([SCOPE])  # warm up: loads the partition
        samples = await time_async(lambda: app.acquire_token_for_client([SCOPE]), iterations)
    await store.aclose()
    return samples


def theirs(authority: str, ca_file: str, path: Path, iterations: int) -> list[float]:
    import msal
    import msal_extensions
    import requests

    with requests.Session() as session:
        session.trust_env = False
        session.verify = ca_file
        persisted = msal_extensions.PersistedTokenCache(msal_extensions.FilePersistence(str(path)))
        app = msal.ConfidentialClientApplication(
            DEMO_CLIENT_ID,
            client_credential=DEMO_CLIENT_SECRET,
            authority=authority,
            instance_discovery=False,
            http_client=session,
            token_cache=persisted,
        )
        app.acquire_token_for_client([SCOPE])
        return time_sync(lambda: app.acquire_token_for_client([SCOPE]), iterations)


@contextmanager
def redis_server(folder: Path) -> Iterator[str | None]:
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(  # noqa: S603 (our own redis-server binary)
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.kill()
        process.wait()


def fill_redis(url: str, cache: SerializableTokenCache, host: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    pipe = client.pipeline(transaction=False)
    state = json.loads(cache.serialize())
    for key, entry in state["AccessToken"].items():
        partition = f"{DEMO_CLIENT_ID}_{entry['realm']}_AppTokenCache"
        doc = {"AccessToken": {key: entry}, "AppMetadata": state["AppMetadata"]}
        pipe.hset(f"msal_async:cache:{partition}", mapping={"v": 1, "d": json.dumps(doc)})
    pipe.execute()
    client.close()


def fill_folder(folder: Path, cache: SerializableTokenCache) -> None:
    state = json.loads(cache.serialize())
    folder.mkdir()
    for key, entry in state["AccessToken"].items():
        doc = {"AccessToken": {key: entry}, "AppMetadata": state["AppMetadata"]}
        name = f"{DEMO_CLIENT_ID}_{entry['realm']}_AppTokenCache.json"
        (folder / name).write_text(json.dumps(doc, indent=4))


def report(quick: bool = False) -> str:
    """Run every row and return the table (``quick``: 100 partitions, not 10,000).

    Args:
        quick: A smoke test: fewer hits and partitions; figures not meaningful.

    Returns:
        The table.
    """
    iterations = 100 if quick else 2000
    lines = [f"Cache-hit latency of acquire_token_for_client ({iterations} hits per row)"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tls = generate_tls_files(root / "tls")
        with serve_in_thread(AuthorityEmulator(), tls=tls) as base_url:
            authority, ca = f"{base_url}/{DEMO_TENANT_ID}", str(tls.ca_file)
            host = base_url.removeprefix("https://")
            with redis_server(root) as redis_url:
                for size in QUICK_SIZES if quick else SIZES:
                    cache = populated(size, host)
                    single = root / f"single-{size}.json"
                    single.write_text(cache.serialize())
                    fill_folder(root / f"folder-{size}", cache)
                    rows: list[tuple[str, list[float]]] = [
                        (
                            "msal_async + file",
                            anyio.run(ours, authority, ca, FilePersistence(single), iterations),
                        ),
                        (
                            "msal_async + folder",
                            anyio.run(
                                ours,
                                authority,
                                ca,
                                FilePersistence(root / f"folder-{size}"),
                                iterations,
                            ),
                        ),
                    ]
                    if redis_url is not None:
                        fill_redis(redis_url, cache, host)
                        rows.append(
                            (
                                "msal_async + redis",
                                anyio.run(
                                    ours, authority, ca, RedisPersistence(redis_url), iterations
                                ),
                            )
                        )
                    msal_iterations = iterations if size == 1 else max(50, iterations // 20)
                    rows.append(
                        (
                            "msal + msal-extensions file",
                            theirs(authority, ca, single, msal_iterations),
                        )
                    )
                    for name, samples in rows:
                        lines.append(f"  {size:>6} partitions  {name:<30} {summary(samples)}")
                    if redis_url is None:
                        lines.append("  (redis-server not installed: Redis rows skipped)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    print(report(quick=parser.parse_args(argv).quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
