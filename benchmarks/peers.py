"""msal_async beside msal and azure.identity.aio, written to a results JSON for the docs' charts.

    pip install -e ".[test,bench]"
    python benchmarks/peers.py                       # writes benchmarks/results/peers.json
    python benchmarks/charts.py                      # draws docs/images/bench-*.png from it

Three measurements, each client-credential work against the authority emulator over HTTPS on
127.0.0.1 (20 ms of added latency), repeated in interleaved rounds so that the spread shows:

- **hits**: ``acquire_token_for_client`` / ``get_token`` served from the cache, with 1, 1,000
  and 10,000 other tokens in it (µs per call, median of each round);
- **cold**: N distinct-scope fetches on a cold cache (wall time): ours and azure.identity.aio
  all concurrent on one event loop, msal in a ``ThreadPoolExecutor(64)``;
- **stampede**: N concurrent callers for one token on a cold cache: how many token requests
  reach the authority, and the wall time.

azure.identity.aio has no public way to preload its cache: the other tokens go into its
internal msal ``TokenCache`` (``credential._client._cache``) with the same events as the
others. Without azure-identity installed (the ``bench`` extra) its rows are left out. Benchmarks
never assert; the JSON holds every sample.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import msal

sys.path.insert(0, str(Path(__file__).resolve().parent))
import emulator as bench_emulator
import run as runner

import msal_async
from msal_async.testing import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_TENANT_ID,
    AuthorityEmulator,
    serve_in_thread,
)

OURS, MSAL, AZURE = "msal_async", "msal", "azure.identity.aio"
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "peers.json"
HIT_SCOPE = "api://bench-hit/.default"


def azure_available() -> bool:
    """Whether azure-identity (the ``bench`` extra) is installed."""
    try:
        import azure.identity.aio  # noqa: F401
    except ImportError:
        return False
    return True


def azure_credential(server: bench_emulator.Server) -> Any:
    """A ClientSecretCredential on the emulator (aiohttp transport, the default)."""
    from azure.identity.aio import ClientSecretCredential

    return ClientSecretCredential(
        DEMO_TENANT_ID,
        DEMO_CLIENT_ID,
        DEMO_CLIENT_SECRET,
        authority=urlsplit(server.base_url).netloc,
        disable_instance_discovery=True,
        connection_verify=server.ca_file,
    )


# -- hits --------------------------------------------------------------------------------------


async def _time_async(call: Callable[[], Awaitable[Any]], calls: int) -> float:
    for _ in range(max(3, calls // 10)):  # warm-up
        await call()
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


async def ours_hit(server: bench_emulator.Server, others: int, calls: int, now: int) -> float:
    async with runner.our_app(server) as app:
        runner.check_token(await app.acquire_token_for_client([HIT_SCOPE]), OURS)
        for event in runner.other_events(server, others):
            app.token_cache.add(event, now=now)
        return await _time_async(lambda: app.acquire_token_for_client([HIT_SCOPE]), calls)


async def azure_hit(server: bench_emulator.Server, others: int, calls: int, now: int) -> float:
    async with azure_credential(server) as credential:
        await credential.get_token(HIT_SCOPE)
        for event in runner.other_events(server, others):
            credential._client._cache.add(event, now=now)  # no public way (see the docstring)
        return await _time_async(lambda: credential.get_token(HIT_SCOPE), calls)


def msal_hit(server: bench_emulator.Server, others: int, calls: int, now: int) -> float:
    with runner.msal_session(server) as session:
        app = runner.msal_app(server, session)
        runner.check_token(app.acquire_token_for_client([HIT_SCOPE]), MSAL)
        for event in runner.other_events(server, others):
            app.token_cache.add(event, now=now)
        for _ in range(max(3, calls // 10)):
            app.acquire_token_for_client([HIT_SCOPE])
        samples = []
        for _ in range(calls):
            start = time.perf_counter()
            app.acquire_token_for_client([HIT_SCOPE])
            samples.append(time.perf_counter() - start)
        return statistics.median(samples)


def bench_hits(server: bench_emulator.Server, sizes: Sequence[int], rounds: int) -> dict[str, Any]:
    now = int(time.time())
    libraries: dict[str, list[list[float]]] = {OURS: [], MSAL: []}
    if azure_available():
        libraries[AZURE] = []
    for others in sizes:
        calls = 2_000 if others < 10_000 else 200  # msal's scan makes big caches slow
        per_round: dict[str, list[float]] = {name: [] for name in libraries}
        for _ in range(rounds):
            per_round[OURS].append(anyio.run(ours_hit, server, others, calls, now))
            per_round[MSAL].append(msal_hit(server, others, min(calls, 200), now))
            if AZURE in per_round:
                per_round[AZURE].append(anyio.run(azure_hit, server, others, min(calls, 200), now))
        for name, medians in per_round.items():
            libraries[name].append([seconds * 1e6 for seconds in medians])
    return {"sizes": list(sizes), "unit": "µs per call", "rounds_us": libraries}


# -- cold fetches and the stampede ---------------------------------------------------------------


async def _concurrently(
    call: Callable[[str], Coroutine[Any, Any, None]], scopes: Sequence[str]
) -> float:
    start = time.perf_counter()
    async with anyio.create_task_group() as group:
        for scope in scopes:
            group.start_soon(call, scope)
    return time.perf_counter() - start


async def ours_fetch(server: bench_emulator.Server, scopes: Sequence[str]) -> float:
    async with runner.our_app(server) as app:
        runner.check_token(await app.acquire_token_for_client(runner.WARMUP_SCOPES), OURS)

        async def one(scope: str) -> None:
            runner.check_token(await app.acquire_token_for_client([scope]), OURS)

        return await _concurrently(one, scopes)


async def azure_fetch(server: bench_emulator.Server, scopes: Sequence[str]) -> float:
    async with azure_credential(server) as credential:
        await credential.get_token(runner.WARMUP_SCOPES[0])

        async def one(scope: str) -> None:
            await credential.get_token(scope)

        return await _concurrently(one, scopes)


def msal_fetch(server: bench_emulator.Server, scopes: Sequence[str]) -> float:
    with runner.msal_session(server, pool_size=runner.MSAL_THREADS) as session:
        app = runner.msal_app(server, session)
        runner.check_token(app.acquire_token_for_client(runner.WARMUP_SCOPES), MSAL)
        with ThreadPoolExecutor(runner.MSAL_THREADS) as pool:
            start = time.perf_counter()
            results = list(pool.map(lambda s: app.acquire_token_for_client([s]), scopes))
            wall = time.perf_counter() - start
    for result in results:
        runner.check_token(result, MSAL)
    return wall


def fetchers(server: bench_emulator.Server) -> dict[str, Callable[[Sequence[str]], float]]:
    found: dict[str, Callable[[Sequence[str]], float]] = {
        OURS: lambda scopes: anyio.run(ours_fetch, server, scopes),
        MSAL: lambda scopes: msal_fetch(server, scopes),
    }
    if azure_available():
        found[AZURE] = lambda scopes: anyio.run(azure_fetch, server, scopes)
    return found


def bench_cold(server: bench_emulator.Server, calls: int, rounds: int) -> dict[str, Any]:
    walls: dict[str, list[float]] = {}
    for index in range(rounds):
        for name, fetch in fetchers(server).items():
            scopes = [f"api://cold-{name}-{index}-{i}/.default" for i in range(calls)]
            walls.setdefault(name, []).append(fetch(scopes))
    return {"calls": calls, "unit": "s", "walls_s": walls}


@contextlib.contextmanager
def counted_server(latency: float) -> Iterator[tuple[bench_emulator.Server, AuthorityEmulator]]:
    """The emulator in a thread of this process, so that its request counts can be read."""
    emulator = AuthorityEmulator(latency=latency)
    with tempfile.TemporaryDirectory(prefix="msal-async-peers-") as folder:
        tls = bench_emulator.make_tls_files(Path(folder))
        _, key_file, cert_file, pfx_file = bench_emulator.make_client_certificate(Path(folder))
        with serve_in_thread(emulator, tls=tls) as base_url:
            server = bench_emulator.Server(
                base_url,
                str(tls.ca_file),
                os.getpid(),
                str(key_file),
                str(cert_file),
                str(pfx_file),
            )
            yield server, emulator


def bench_stampede(callers: int, latency: float) -> dict[str, Any]:
    found: dict[str, dict[str, float]] = {}
    with counted_server(latency) as (server, emulator):
        for name, fetch in fetchers(server).items():
            scope = f"api://stampede-{name}/.default"
            before = emulator.counts["client_credentials"]
            wall = fetch([scope] * callers)
            sent = emulator.counts["client_credentials"] - before - 1  # minus the warm-up
            found[name] = {"requests": sent, "wall_s": wall}
    return {"callers": callers, "results": found}


# -- the command ----------------------------------------------------------------------------------


def measure(quick: bool, rounds: int) -> dict[str, Any]:
    """Run the three measurements; returns the results document."""
    latency = bench_emulator.LATENCY
    sizes = (1, 100, 1_000) if quick else (1, 1_000, 10_000)
    calls = 20 if quick else 200
    with bench_emulator.serve("thread" if quick else "process", latency) as server:
        hits = bench_hits(server, sizes, rounds)
        cold = bench_cold(server, calls, rounds)
    stampede = bench_stampede(calls, latency)
    versions = {OURS: msal_async.__version__, MSAL: msal.__version__}
    if azure_available():
        from azure.identity import __version__ as azure_version

        versions[AZURE] = azure_version
    return {
        "meta": {
            "quick": quick,
            "rounds": rounds,
            "latency_s": latency,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "versions": versions,
            "when": time.strftime("%Y-%m-%d", time.gmtime()),
        },
        "hits": hits,
        "cold": cold,
        "stampede": stampede,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and write the results JSON; the exit status is 0 whatever the figures."""
    parser = argparse.ArgumentParser(prog="python benchmarks/peers.py", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (spread)")
    parser.add_argument("--json", type=Path, default=DEFAULT_OUTPUT, help="where to write")
    options = parser.parse_args(argv)
    results = measure(options.quick, 1 if options.quick else options.rounds)
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {options.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
