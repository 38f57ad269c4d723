"""A fleet on Redis, one run: ``python benchmarks/fleet.py [--quick] [--repeat N]``.

Starts its own redis-server on 127.0.0.1 and a 3-primary Redis Cluster (``redis-cli --cluster
create``), and the authority emulator (HTTPS on 127.0.0.1, in a thread; it counts token
requests). Then:

(a) Cache-hit latency of ``acquire_token_for_client``: in memory, FilePersistence, Redis with
    tracking off and on, Redis Cluster with tracking on; and what the store adds to a lookup
    (``RedisPersistence.unchanged`` alone, ``PersistedTokenCache.load`` with tracking on and
    off). Ratios are to the in-memory hit, medians of ``--repeat`` runs (spread shown).
(b) Invalidation latency: a writer process saves a new token every few ms; a reader process
    looks it up in a loop; how long after the save returned the reader serves the new token.
(c) The herd: 8 processes x 1,000 concurrent callers x 50 scopes on one Redis (tracking on,
    then off: waiters polled) and on the Cluster. Token requests (the emulator counts them),
    time until every caller of every process has its token, then 1,000 hits per process and
    the Redis commands per hit (``INFO commandstats``, summed over the nodes). (c2) One lock
    released with a waiter in each of 8 processes: until the last one returns, woken or polling.
(d) Memory per partition and per token (``MEMORY USAGE``).

Every figure is also written to ``benchmarks/results/fleet.json`` (``--json PATH``), with
the targets of the issue (hits <= 3x the in-memory hit, invalidation within 50 ms, one token
request per scope) marked PASS or MISS. Benchmarks never assert: the exit status is 0 whatever
the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx

from msal_async import (
    ConfidentialClientApplication,
    FilePersistence,
    PersistedTokenCache,
    RedisPersistence,
    SerializableTokenCache,
)
from msal_async._cache.partitions import app_partition
from msal_async.testing import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_TENANT_ID,
    AuthorityEmulator,
    generate_tls_files,
    serve_in_thread,
)

HERE = Path(__file__).resolve()
DEFAULT_OUTPUT = HERE.parent / "results" / "fleet.json"
SCOPE = "api://fleet-hit/.default"
PARTITION = app_partition(DEMO_CLIENT_ID, DEMO_TENANT_ID)
#: Administrative commands (subscribers' pings, our INFO calls, connection setup): not cache work.
NOT_CACHE_WORK = {"ping", "info", "hello", "client", "cluster", "command", "subscribe", "select"}


# --- servers ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis(port: int, *args: str) -> Any:
    """One command to the server on ``port`` (a sync redis-py client)."""
    import redis as redis_sync

    with redis_sync.Redis(port=port, socket_timeout=30) as client:
        return client.execute_command(*args)


def wait_for(port: int) -> None:
    deadline = time.monotonic() + 10
    while not answers(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"redis-server on {port} did not start")
        time.sleep(0.02)


def answers(port: int) -> bool:
    try:
        return bool(redis(port, "PING"))
    except Exception:  # noqa: BLE001 (not yet listening, or loading)
        return False


@contextmanager
def redis_servers(folder: Path) -> Iterator[tuple[list[int], list[int]]]:
    """One redis-server and a 3-primary Cluster: ``([single port], [cluster ports])``."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    processes: list[subprocess.Popen[bytes]] = []

    def start(port: int, *options: str) -> None:
        processes.append(
            subprocess.Popen(  # noqa: S603 (our own redis-server)
                [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", *options],
                cwd=folder,
                stdout=subprocess.DEVNULL,
            )
        )

    single, cluster = [free_port()], [free_port() for _ in range(3)]
    try:
        start(single[0], "--dir", str(folder))
        for i, port in enumerate(cluster):
            node = folder / f"node{i}"
            node.mkdir()
            start(
                port,
                "--dir",
                str(node),
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                str(free_port()),
                "--cluster-config-file",
                str(node / "nodes.conf"),
            )
        for port in single + cluster:
            wait_for(port)
        subprocess.run(  # noqa: S603
            [
                shutil.which("redis-cli") or "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in cluster),
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        deadline = time.monotonic() + 20
        while not all(b"cluster_state:ok" in redis(p, "CLUSTER", "INFO") for p in cluster):
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster did not become ready")
            time.sleep(0.05)
        yield single, cluster
    finally:
        for process in processes:
            process.kill()
            process.wait()


def cache_commands(ports: Sequence[int]) -> tuple[int, int]:
    """``(EVALSHA calls, all cache commands)`` so far, summed over ``ports`` (scripts count
    the commands they run)."""
    import redis as redis_sync

    evalsha = total = 0
    for port in ports:
        with redis_sync.Redis(port=port) as client:
            for name, fields in client.info("commandstats").items():
                command = name.removeprefix("cmdstat_")
                if command.split("|")[0] in NOT_CACHE_WORK:
                    continue
                total += int(fields["calls"])
                evalsha += int(fields["calls"]) if command == "evalsha" else 0
    return evalsha, total


def flush(ports: Sequence[int]) -> None:
    for port in ports:
        redis(port, "FLUSHALL")


# --- (a) hits -----------------------------------------------------------------------------------


def percentiles(samples: list[float]) -> tuple[float, float]:
    """(p50, p95) in microseconds."""
    ordered = sorted(samples)
    return statistics.median(ordered) * 1e6, ordered[int(len(ordered) * 0.95)] * 1e6


async def hit_samples(cache: Any, iterations: int) -> list[float]:
    """Time ``iterations`` cache hits of one app (its own in-process emulator)."""
    emulator = AuthorityEmulator()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as http:
        app = ConfidentialClientApplication(
            DEMO_CLIENT_ID,
            client_credential=DEMO_CLIENT_SECRET,
            authority=f"https://login.microsoftonline.com/{DEMO_TENANT_ID}",
            http_client=http,
            token_cache=cache,
        )
        assert "access_token" in await app.acquire_token_for_client([SCOPE])
        persistence = getattr(cache, "persistence", None)
        if isinstance(persistence, RedisPersistence):
            await persistence.sync_invalidations()  # the subscribers are live
        for _ in range(50):  # warm up (the first hit after a save validates the partition)
            await app.acquire_token_for_client([SCOPE])
        samples = []
        for _ in range(iterations):
            start = time.perf_counter()
            result = await app.acquire_token_for_client([SCOPE])
            samples.append(time.perf_counter() - start)
            assert result["token_source"] == "cache", result
        if persistence is not None:
            await persistence.aclose()
    return samples


async def store_costs(url: str, iterations: int) -> dict[str, float]:
    """What the store adds to a lookup, in microseconds (medians)."""
    out: dict[str, float] = {}
    for tracking in (True, False):
        store = RedisPersistence(url, tracking=tracking)
        cache = PersistedTokenCache(store)
        await store.save(PARTITION, lambda doc: doc)
        await store.sync_invalidations()
        await cache.load(PARTITION)
        await cache.load(PARTITION)
        samples = []
        for _ in range(iterations):
            start = time.perf_counter()
            await cache.load(PARTITION)
            samples.append(time.perf_counter() - start)
        out[f"load, tracking {'on' if tracking else 'off'}"] = statistics.median(samples) * 1e6
        if tracking:
            version = cache._versions[PARTITION]
            start = time.perf_counter()
            for _ in range(iterations):
                store.unchanged(PARTITION, version)
            out["unchanged()"] = (time.perf_counter() - start) / iterations * 1e6
        await store.aclose()
    return out


def stat_cost(folder: Path, iterations: int) -> float:
    """One ``os.stat`` of a cache file, in microseconds (what a file-backed hit must pay)."""
    path = folder / "stat-probe.json"
    path.write_text("{}")
    start = time.perf_counter()
    for _ in range(iterations):
        os.stat(path)
    return (time.perf_counter() - start) / iterations * 1e6


def verdict(ratio: float, target: float) -> str:
    return "PASS" if ratio <= target else "MISS"


def hits_report(
    single: list[int],
    cluster: list[int],
    folder: Path,
    quick: bool,
    repeat: int,
    results: dict[str, Any],
) -> list[str]:
    iterations = 200 if quick else 5000
    url = f"redis://127.0.0.1:{single[0]}/0"
    cluster_url = "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in cluster)
    rows: dict[str, Callable[[], Any]] = {
        "in memory": SerializableTokenCache,
        "FilePersistence (one file)": lambda: PersistedTokenCache(
            FilePersistence(folder / f"hit-{time.monotonic_ns()}.json")
        ),
        "Redis, tracking off": lambda: PersistedTokenCache(RedisPersistence(url, tracking=False)),
        "Redis, tracking on": lambda: PersistedTokenCache(RedisPersistence(url)),
        "Redis Cluster, tracking off": lambda: PersistedTokenCache(
            RedisPersistence(cluster_url, tracking=False)
        ),
        "Redis Cluster, tracking on": lambda: PersistedTokenCache(RedisPersistence(cluster_url)),
    }
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in rows}
    costs: list[dict[str, float]] = []
    stats: list[float] = []
    for _ in range(repeat):  # interleaved, so that machine noise hits every row alike
        for name, make in rows.items():
            flush(single + cluster)
            runs[name].append(percentiles(anyio.run(hit_samples, make(), iterations)))
        flush(single)
        costs.append(anyio.run(store_costs, url, iterations))
        stats.append(stat_cost(folder, iterations))
    memory = statistics.median(p50 for p50, _ in runs["in memory"])
    # Each run's ratio to the in-memory hit of the same run (the runs are interleaved).
    ratios = {
        name: [p50 / mem for (p50, _), (mem, _) in zip(samples, runs["in memory"], strict=True)]
        for name, samples in runs.items()
    }
    results["hits"] = {
        name: {
            "p50_us": statistics.median(p for p, _ in samples),
            "p95_us": statistics.median(p for _, p in samples),
            "runs_p50_us": [p for p, _ in samples],
            "x_in_memory": statistics.median(ratios[name]),
            "runs_x_in_memory": ratios[name],
        }
        for name, samples in runs.items()
    }
    results["os_stat_us"] = statistics.median(stats)
    results["store_costs_us"] = {k: statistics.median(c[k] for c in costs) for k in costs[0]}
    lines = [
        (
            f"(a) Cache hit of acquire_token_for_client ({iterations} hits per run, {repeat} "
            "runs; median of run medians, [min-max of run medians])"
        ),
        f"    {'':32} {'p50 us':>9} {'p95 us':>9} {'x in-memory':>12}  spread",
    ]
    for name, samples in runs.items():
        p50s = [p for p, _ in samples]
        p50, p95 = statistics.median(p50s), statistics.median(p for _, p in samples)
        lines.append(
            f"    {name:32} {p50:9.1f} {p95:9.1f} {p50 / memory:12.1f}  "
            f"[{min(p50s):.1f}-{max(p50s):.1f}]"
        )
    lines.append(
        f"    os.stat of a cache file alone (the floor a file-backed hit adds): "
        f"{statistics.median(stats):.1f} us [{min(stats):.1f}-{max(stats):.1f}]"
    )
    targets = results.setdefault("targets", {})
    for name, label in (
        ("FilePersistence (one file)", "file hit"),
        ("Redis, tracking on", "Redis hit (tracking)"),
        ("Redis Cluster, tracking on", "Redis Cluster hit (tracking)"),
    ):
        ratio, spread = statistics.median(ratios[name]), ratios[name]
        targets[f"{label} <= 3x in-memory"] = {"ratio": ratio, "verdict": verdict(ratio, 3)}
        lines.append(
            f"    target: {label} <= 3x the in-memory hit: {ratio:.1f}x "
            f"[{min(spread):.1f}-{max(spread):.1f}] {verdict(ratio, 3)}"
        )
    lines.append(
        "    What RedisPersistence adds to a lookup (PersistedTokenCache.load; medians, us):"
    )
    for key in costs[0]:
        values = [c[key] for c in costs]
        lines.append(
            f"      {key:30} {statistics.median(values):9.2f}  [{min(values):.2f}-{max(values):.2f}]"
        )
    return lines


# --- (b) invalidation latency -------------------------------------------------------------------


async def writer_role(url: str, count: int) -> None:
    """Save tokens v1..v{count}, a few ms apart; print when each save returned."""
    import random

    cache = PersistedTokenCache(RedisPersistence(url, tracking=False))
    done = []
    for i in range(1, count + 1):
        await anyio.sleep(random.uniform(0.005, 0.02))
        cache.add(token_event(f"v{i}"))
        await cache.save(PARTITION)
        done.append(time.time())
    await cache.persistence.aclose()
    print(json.dumps(done))


async def reader_role(url: str, count: int) -> None:
    """Look the token up in a loop (a lookup every 0.2 ms); print when each value was first seen."""
    store = RedisPersistence(url)
    cache = PersistedTokenCache(store)
    await store.sync_invalidations()
    seen: dict[int, float] = {}
    print("ready", flush=True)
    while count not in seen:
        await cache.load(PARTITION)
        for entry in cache.search("AccessToken", query={}):
            if entry["secret"].startswith("v"):
                seen.setdefault(int(entry["secret"][1:]), time.time())
        await anyio.sleep(0.0002)
    await store.aclose()
    print(json.dumps(seen))


def token_event(secret: str) -> dict[str, Any]:
    return {
        "client_id": DEMO_CLIENT_ID,
        "scope": [SCOPE],
        "token_endpoint": f"https://login.microsoftonline.com/{DEMO_TENANT_ID}/oauth2/v2.0/token",
        "environment": "login.microsoftonline.com",
        "response": {"access_token": secret, "expires_in": 3600},
        "data": {},
    }


def role(name: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 (this script)
        [sys.executable, str(HERE), "--role", name, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def invalidation_report(
    urls: dict[str, tuple[str, list[int]]], quick: bool, results: dict[str, Any]
) -> list[str]:
    count = 40 if quick else 400
    lines = [
        f"(b) Invalidation latency: a save in one process until another serves it ({count} saves)"
    ]
    for name, (url, ports) in urls.items():
        flush(ports)
        reader = role("reader", url, str(count))
        assert reader.stdout is not None
        assert reader.stdout.readline().strip() == "ready"
        writer = role("writer", url, str(count))
        written = json.loads(writer.communicate(timeout=300)[0])
        seen = {int(k): v for k, v in json.loads(reader.communicate(timeout=300)[0]).items()}
        delays = sorted((seen[i + 1] - t) * 1000 for i, t in enumerate(written) if i + 1 in seen)
        missed = count - len(delays)  # overwritten before the reader looked: superseded
        p95 = delays[int(len(delays) * 0.95)]
        results.setdefault("invalidation_ms", {})[name] = {
            "p50": statistics.median(delays),
            "p95": p95,
            "max": delays[-1],
            "superseded": missed,
        }
        results.setdefault("targets", {})[f"{name}: another worker's write seen within 50 ms"] = {
            "p95_ms": p95,
            "max_ms": delays[-1],
            "verdict": verdict(delays[-1], 50),
        }
        lines.append(
            f"    {name:14} p50 {statistics.median(delays):6.2f} ms  p95 "
            f"{delays[int(len(delays) * 0.95)]:6.2f} ms  max {delays[-1]:6.2f} ms  "
            f"({missed} superseded before a lookup)"
        )
    return lines


# --- (c) the herd -------------------------------------------------------------------------------


async def herd_role(
    url: str, authority: str, ca: str, callers: int, scopes: int, tracking: str
) -> None:
    """One process of the herd: ``callers`` concurrent acquisitions over ``scopes`` scopes on
    "go", then ``callers`` hits on "hits"; a JSON line after each."""
    store = RedisPersistence(url, tracking=tracking == "on")
    async with ConfidentialClientApplication(
        DEMO_CLIENT_ID,
        client_credential=DEMO_CLIENT_SECRET,
        authority=authority,
        instance_discovery=False,
        verify=ca,
        token_cache=PersistedTokenCache(store),
    ) as app:
        # Warm up (OIDC discovery, TLS, a first Redis connection): the herd measures the fleet
        # single flight, not process start-up. Every process asks for the same warm-up token:
        # one request in all; the parent resets the emulator's counts afterwards.
        assert "access_token" in await app.acquire_token_for_client(["api://herd-warm/.default"])
        await store.sync_invalidations()
        print("ready", flush=True)
        for phase in ("go", "hits"):
            assert (await anyio.to_thread.run_sync(sys.stdin.readline)).strip() == phase
            if phase == "go":
                result = await herd_phase(app, callers, scopes)
            else:
                result = await hits_phase(app, callers, scopes)
            print(json.dumps(result), flush=True)
    await store.aclose()


async def herd_phase(
    app: ConfidentialClientApplication, callers: int, scopes: int
) -> dict[str, Any]:
    """``callers`` concurrent acquisitions over ``scopes`` scopes: wall time, sources, slowest."""
    sources: dict[str, int] = {}
    latencies: list[float] = []

    async def one(i: int) -> None:
        began = time.perf_counter()
        try:
            result = await app.acquire_token_for_client([f"api://herd-{i % scopes}/.default"])
        except Exception as exc:  # noqa: BLE001 (an overloaded emulator: reported, not fatal)
            result = {"error": type(exc).__name__}
        latencies.append(time.perf_counter() - began)
        source = str(result.get("token_source", result.get("error")))
        sources[source] = sources.get(source, 0) + 1

    start, cpu = time.perf_counter(), time.process_time()
    async with anyio.create_task_group() as tg:
        for i in range(callers):
            tg.start_soon(one, i)
    return {
        "wall": time.perf_counter() - start,
        "cpu": time.process_time() - cpu,
        "sources": sources,
        "max": max(latencies),
    }


async def hits_phase(app: ConfidentialClientApplication, count: int, scopes: int) -> dict[str, Any]:
    """``count`` hits one after another (requests spread over time: concurrent lookups of one
    partition would share one load)."""
    sources: dict[str, int] = {}
    slowest = 0.0
    start = time.perf_counter()
    for i in range(count):
        began = time.perf_counter()
        result = await app.acquire_token_for_client([f"api://herd-{i % scopes}/.default"])
        slowest = max(slowest, time.perf_counter() - began)
        source = str(result.get("token_source", result.get("error")))
        sources[source] = sources.get(source, 0) + 1
    return {"wall": time.perf_counter() - start, "sources": sources, "max": slowest}


def herd(
    url: str, ports: list[int], served: Any, procs: int, callers: int, scopes: int, tracking: str
) -> dict[str, Any]:
    flush(ports)
    served.emulator.reset()
    workers = [
        role("herd", url, served.authority, served.ca, str(callers), str(scopes), tracking)
        for _ in range(procs)
    ]
    out: dict[str, Any] = {}
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        out["warm_up_requests"] = served.emulator.counts["client_credentials"]
        served.emulator.reset()
        for phase in ("go", "hits"):
            before = cache_commands(ports)
            start = time.perf_counter()
            for worker in workers:
                assert worker.stdin is not None
                worker.stdin.write(phase + "\n")
                worker.stdin.flush()
            results = [json.loads(w.stdout.readline()) for w in workers if w.stdout is not None]
            wall = time.perf_counter() - start
            after = cache_commands(ports)
            sources: dict[str, int] = {}
            for result in results:
                for key, value in result["sources"].items():
                    sources[key] = sources.get(key, 0) + value
            out[phase] = {
                "wall": wall,
                "slowest_process": max(r["wall"] for r in results),
                "slowest_call": max(r["max"] for r in results),
                "cpu": sum(r.get("cpu", 0.0) for r in results),
                "sources": sources,
                "evalsha": after[0] - before[0],
                "commands": after[1] - before[1],
            }
        out["token_requests"] = served.emulator.counts["client_credentials"]
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
            for stream in (worker.stdin, worker.stdout):
                if stream is not None:
                    stream.close()
    return out


def herd_report(
    single: list[int],
    cluster: list[int],
    served: Any,
    quick: bool,
    repeat: int,
    results: dict[str, Any],
) -> list[str]:
    procs, callers, scopes = (2, 50, 5) if quick else (8, 1000, 50)
    total = procs * callers
    latency_ms = served.emulator_latency * 1000
    lines = [
        (
            f"(c) The herd: {procs} processes x {callers} concurrent callers x {scopes} scopes "
            f"(emulator latency {latency_ms:.0f} ms), then {callers} hits per process, one "
            f"after another; {repeat} runs, interleaved (each run's figure, in run order)"
        ),
    ]
    cases = [
        ("Redis, tracking on", f"redis://127.0.0.1:{single[0]}/0", single, "on"),
        ("Redis, tracking off (polls)", f"redis://127.0.0.1:{single[0]}/0", single, "off"),
        (
            "Cluster, tracking on",
            "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in cluster),
            cluster,
            "on",
        ),
    ]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, *_ in cases}
    for _ in range(repeat):
        for name, url, ports, tracking in cases:
            runs[name].append(herd(url, ports, served, procs, callers, scopes, tracking))

    def row(label: str, values: list[str]) -> str:
        return f"      {label:28} " + "  ".join(f"{v:>8}" for v in values)

    results["herd"] = {
        "processes": procs,
        "callers": callers,
        "scopes": scopes,
        "runs": runs,
    }
    for name, done in runs.items():
        requests = [r["token_requests"] for r in done]
        results.setdefault("targets", {})[f"herd, {name}: one token request per scope"] = {
            "token_requests": requests,
            "verdict": "PASS" if all(n == scopes for n in requests) else "MISS",
        }
    for name, results_of in runs.items():
        lines.append(f"    {name}")
        lines.append(row("token requests", [str(r["token_requests"]) for r in results_of]))
        lines.append(row("herd done, s", [f"{r['go']['wall']:.2f}" for r in results_of]))
        lines.append(
            row("slowest caller, s", [f"{r['go']['slowest_call']:.2f}" for r in results_of])
        )
        lines.append(
            row(
                "cache commands per caller",
                [f"{r['go']['commands'] / total:.2f}" for r in results_of],
            )
        )
        lines.append(
            row(
                "hits done (per process), s",
                [f"{r['hits']['slowest_process']:.3f}" for r in results_of],
            )
        )
        lines.append(
            row("EVALSHA per hit", [f"{r['hits']['evalsha'] / total:.4f}" for r in results_of])
        )
        lines.append(
            row(
                "cache commands per hit",
                [f"{r['hits']['commands'] / total:.4f}" for r in results_of],
            )
        )
        odd: dict[str, int] = {}
        for r in results_of:
            for key, value in r["go"]["sources"].items():
                if key not in ("cache", "identity_provider"):
                    odd[key] = odd.get(key, 0) + value
        if odd:
            lines.append(f"      errors: {odd}")
    return lines


async def waiter_role(url: str, tracking: str, rounds: int) -> None:
    """Wait for the lock ``wake`` once per round (on "go"); print when each wait returned."""
    store = RedisPersistence(url, tracking=tracking == "on")
    await store.sync_invalidations()
    print("ready", flush=True)
    returned = []
    for _ in range(rounds):
        assert (await anyio.to_thread.run_sync(sys.stdin.readline)).strip() == "go"
        assert await store.wait_unlocked("wake", 10)
        returned.append(time.time())
        print("done", flush=True)
    await store.aclose()
    print(json.dumps(returned), flush=True)


async def hold_and_release(url: str, workers: list[subprocess.Popen[str]]) -> float:
    """Take the lock, let the waiters start waiting, release it; when it was released."""
    holder = RedisPersistence(url, tracking=False)
    token = await holder.try_lock("wake")
    assert token is not None
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    await anyio.sleep(0.3)  # every waiter is waiting by now
    released = time.time()
    await holder.unlock("wake", token)
    await holder.aclose()
    return released


def wake_report(url: str, ports: list[int], quick: bool) -> list[str]:
    procs, rounds = (2, 3) if quick else (8, 10)
    lines = [
        (
            f"(c2) A lock released: {procs} processes waiting for it (one waiter each, {rounds} "
            "rounds); from the release until the last waiter returned"
        )
    ]
    for tracking in ("on", "off"):
        flush(ports)
        workers = [role("waiter", url, tracking, str(rounds)) for _ in range(procs)]
        try:
            for worker in workers:
                assert worker.stdout is not None
                assert worker.stdout.readline().strip() == "ready"
            before = cache_commands(ports)[1]
            released = []
            for _ in range(rounds):
                released.append(anyio.run(hold_and_release, url, workers))
                for worker in workers:
                    assert worker.stdout is not None
                    assert worker.stdout.readline().strip() == "done"
            commands = cache_commands(ports)[1] - before
            returned = [json.loads(w.stdout.readline()) for w in workers if w.stdout is not None]
        finally:
            for worker in workers:
                worker.wait(30)
                for stream in (worker.stdin, worker.stdout):
                    if stream is not None:
                        stream.close()
        last = sorted(max(r[i] for r in returned) - released[i] for i in range(rounds))
        label = "woken (tracking on)" if tracking == "on" else "polling (tracking off)"
        lines.append(
            f"    {label:24} last waiter p50 {statistics.median(last) * 1000:6.1f} ms, max "
            f"{last[-1] * 1000:6.1f} ms; {commands / (procs * rounds):5.1f} cache commands per "
            "wait"
        )
    return lines


# --- (d) memory ---------------------------------------------------------------------------------


async def memory_report(url: str, port: int) -> list[str]:
    emulator = AuthorityEmulator()
    emulator.add_user("alice@contoso.example", password="pw")
    lines = ["(d) Memory in Redis (MEMORY USAGE, jemalloc; plain JSON, no encryption_key)"]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as http:
        store = RedisPersistence(url, tracking=False)
        app = ConfidentialClientApplication(
            DEMO_CLIENT_ID,
            client_credential=DEMO_CLIENT_SECRET,
            authority=f"https://login.microsoftonline.com/{DEMO_TENANT_ID}",
            http_client=http,
            token_cache=PersistedTokenCache(store),
        )
        sizes, acquired = [], 0
        for count in (1, 10, 100):
            for i in range(acquired, count):
                await app.acquire_token_for_client([f"api://memory-{i}/.default"])
            acquired = count
            usage = redis(port, "MEMORY", "USAGE", store.key_of(PARTITION), "SAMPLES", "0")
            sizes.append((count, int(usage)))
        token = (await app.acquire_token_for_client(["api://memory-0/.default"]))["access_token"]
        for count, size in sizes:
            lines.append(
                f"    app partition, {count:3d} access tokens: {size:7d} bytes  ({size / count:6.0f} per token)"
            )
        lines.append(
            f"    (the emulator's access tokens are {len(token)} characters; Entra's are often 1.5-2.5 KB)"
        )
        user = await app.acquire_token_by_username_password(
            "alice@contoso.example", "pw", ["User.Read"]
        )
        assert "access_token" in user, user
        keys = {k.decode() for k in redis(port, "KEYS", "msal_async:cache:*")}
        (user_key,) = keys - {store.key_of(PARTITION)}
        size = int(redis(port, "MEMORY", "USAGE", user_key, "SAMPLES", "0"))
        lines.append(
            f"    user partition (account, ID token, refresh token, 1 access token): {size} bytes"
        )
        await store.aclose()
    return lines


# --- main -----------------------------------------------------------------------------------


class Served:
    def __init__(self, emulator: AuthorityEmulator, base_url: str, ca: str, latency: float) -> None:
        self.emulator, self.ca, self.emulator_latency = emulator, ca, latency
        self.authority = f"{base_url}/{DEMO_TENANT_ID}"


SECTIONS = ("hits", "invalidation", "herd", "wake", "memory")


def report(
    quick: bool = False,
    repeat: int = 3,
    results: dict[str, Any] | None = None,
    sections: Sequence[str] = SECTIONS,
) -> str:
    """Run the sections (all by default) and return the report; the figures also go into
    ``results``."""
    results = {} if results is None else results
    results.setdefault("targets", {})
    lines: list[str] = []
    before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        folder = Path(tmp)
        single, cluster = stack.enter_context(redis_servers(folder))
        tls = generate_tls_files(folder / "tls")
        latency = 0.05
        emulator = AuthorityEmulator(latency=latency)
        base_url = stack.enter_context(serve_in_thread(emulator, tls=tls))
        served = Served(emulator, base_url, str(tls.ca_file), latency)
        url = f"redis://127.0.0.1:{single[0]}/0"
        cluster_url = "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in cluster)
        runs = 1 if quick else repeat
        if "hits" in sections:
            lines += hits_report(single, cluster, folder, quick, runs, results)
        if "invalidation" in sections:
            urls = {"Redis": (url, single), "Redis Cluster": (cluster_url, cluster)}
            lines += invalidation_report(urls, quick, results)
        if "herd" in sections:
            lines += herd_report(single, cluster, served, quick, runs, results)
        if "wake" in sections:
            lines += wake_report(url, single, quick)
        if "memory" in sections:
            flush(single)
            lines += anyio.run(memory_report, url, single[0])
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    lines.insert(0, f"Load average before: {before}; after: {load} (2-core machine, shared)")
    results.update(quick=quick, repeat=repeat, load_average={"before": before, "after": load})
    lines.append("Targets:")
    lines += [f"    {name}: {value['verdict']}" for name, value in results["targets"].items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point (and the child processes' roles)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run; figures not meaningful")
    parser.add_argument("--repeat", type=int, default=3, help="runs of (a), interleaved")
    parser.add_argument("--json", type=Path, default=DEFAULT_OUTPUT, help="where to write")
    parser.add_argument(
        "--only", choices=SECTIONS, action="append", help="run only this section (repeatable)"
    )
    parser.add_argument(
        "--role", choices=["writer", "reader", "herd", "waiter"], help=argparse.SUPPRESS
    )
    parser.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.role == "writer":
        anyio.run(writer_role, options.args[0], int(options.args[1]))
    elif options.role == "reader":
        anyio.run(reader_role, options.args[0], int(options.args[1]))
    elif options.role == "waiter":
        anyio.run(waiter_role, options.args[0], options.args[1], int(options.args[2]))
    elif options.role == "herd":
        url, authority, ca, callers, scopes, tracking = options.args
        anyio.run(herd_role, url, authority, ca, int(callers), int(scopes), tracking)
    else:
        results: dict[str, Any] = {}
        sections = options.only or SECTIONS
        print(report(options.quick, options.repeat, results, sections))
        options.json.parent.mkdir(parents=True, exist_ok=True)
        options.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {options.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
