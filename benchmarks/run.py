"""msal_async against real msal on identical work: ``python benchmarks/run.py [--quick]``.

Both libraries talk to the authority emulator served over HTTPS on 127.0.0.1 (a trustme CA)
with 20 ms of added latency on every request. By default the server runs in a child process so
that its CPU work (TLS, JSON, RS256 signing) does not compete with the clients for the GIL.

(a) Cache-hit latency of ``acquire_token_for_client`` with 1, 1,000 and 10,000 other tokens in
    the cache (both caches filled through ``token_cache.add(event, now=...)`` with the same
    client-credential events).
(b) N distinct-scope cold fetches: msal_async with every call concurrent on one thread, real
    msal in a ``ThreadPoolExecutor(64)``, and plain ``httpx.AsyncClient`` POSTs (the floor).

Benchmarks never assert: targets are printed as PASS/MISS for information, and the exit status
is 0 whatever the figures. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import platform
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import msal
import requests
import requests.adapters

import msal_async
from msal_async.testing import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_TENANT_ID,
    AuthorityEmulator,
    TLSFiles,
    serve_in_thread,
)

LATENCY = 0.02  # seconds the emulator waits before answering every request
HIT_SCOPES = ["api://bench-hit/.default"]
WARMUP_SCOPES = ["api://bench-warmup/.default"]
MSAL_THREADS = 64
# httpx's default pool limits (100 connections) apply to msal_async and to the plain floor alike.
HTTPX_TIMEOUT = httpx.Timeout(30.0, connect=10.0)  # msal_async's default
OTHER_TENANTS = [str(uuid.UUID(int=0x5EED0000 + i)) for i in range(16)]

# Targets from the issue; printed for information only.
TARGET_HIT_SPEEDUP = 10.0  # msal / ours, at every cache size
TARGET_HIT_GROWTH = 1.5  # ours at the largest cache / ours at the smallest
TARGET_FETCH_SPEEDUP = 1.5  # ours throughput / msal 64-thread pool throughput
TARGET_FETCH_OVERHEAD = 1.2  # ours wall time / plain httpx wall time


@dataclass(frozen=True)
class Plan:
    """Sizes and repetitions of one run."""

    cache_sizes: tuple[int, ...]
    hit_warmup: int
    hit_iterations: int
    fetches: int
    fetch_repeats: int


FULL = Plan(
    cache_sizes=(1, 1_000, 10_000),
    hit_warmup=500,
    hit_iterations=5_000,
    fetches=200,
    fetch_repeats=5,
)
QUICK = Plan(
    cache_sizes=(1, 1_000, 10_000),
    hit_warmup=20,
    hit_iterations=200,
    fetches=50,
    fetch_repeats=1,
)


# --- the server ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    """Where the emulator listens and the CA file that verifies it."""

    base_url: str
    ca_file: str

    @property
    def authority(self) -> str:
        """The tenant authority URL."""
        return f"{self.base_url}/{DEMO_TENANT_ID}"

    @property
    def environment(self) -> str:
        """The cache's ``environment`` for this authority (msal's ``authority.instance``)."""
        return urlsplit(self.base_url).hostname or ""


def make_tls_files(directory: Path) -> TLSFiles:
    """Write a trustme CA and a certificate for 127.0.0.1 into ``directory``."""
    import trustme  # the test extra; only benchmarks and tests use it

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    tls = TLSFiles(
        certfile=directory / "cert.pem",
        keyfile=directory / "key.pem",
        ca_file=directory / "ca.pem",
    )
    ca.cert_pem.write_to_path(str(tls.ca_file))
    cert.cert_chain_pems[0].write_to_path(str(tls.certfile))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(tls.certfile), append=True)
    cert.private_key_pem.write_to_path(str(tls.keyfile))
    return tls


def serve_child(directory: str, latency: float) -> None:
    """The child process: serve the emulator, print where, and stop when stdin closes."""
    tls = make_tls_files(Path(directory))
    with serve_in_thread(AuthorityEmulator(latency=latency), tls=tls) as base_url:
        print(json.dumps({"base_url": base_url, "ca_file": str(tls.ca_file)}), flush=True)
        sys.stdin.read()  # the parent closes our stdin when it is done


@contextlib.contextmanager
def serve(mode: str, latency: float) -> Iterator[Server]:
    """Serve the emulator over HTTPS on 127.0.0.1, in a child process or a thread of ours."""
    with tempfile.TemporaryDirectory(prefix="msal-async-bench-") as directory:
        if mode == "thread":
            tls = make_tls_files(Path(directory))
            with serve_in_thread(AuthorityEmulator(latency=latency), tls=tls) as base_url:
                yield Server(base_url, str(tls.ca_file))
            return
        command = [sys.executable, __file__, "--serve-child", directory, "--latency", str(latency)]
        child = subprocess.Popen(  # noqa: S603 - our own interpreter running this file
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert child.stdin is not None and child.stdout is not None
        try:
            line = child.stdout.readline()
            if not line:
                msg = f"the emulator process exited with status {child.wait()} before serving"
                raise RuntimeError(msg)
            info = json.loads(line)
            yield Server(str(info["base_url"]), str(info["ca_file"]))
        finally:
            child.stdin.close()
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            child.stdout.close()


# --- clients ---------------------------------------------------------------------------------


def msal_session(server: Server, pool_size: int = 10) -> requests.Session:
    """msal's own default session (``HTTPAdapter(max_retries=1)``), sized to ``pool_size``.

    ``trust_env`` is off so that ``REQUESTS_CA_BUNDLE`` cannot override ``verify``
    (requests#3829).
    """
    session = requests.Session()
    session.trust_env = False
    session.verify = server.ca_file
    adapter = requests.adapters.HTTPAdapter(
        max_retries=1, pool_connections=pool_size, pool_maxsize=pool_size
    )
    session.mount("https://", adapter)
    return session


def msal_app(server: Server, session: requests.Session) -> Any:
    """A fresh real-msal app with its own cache (its constructor fetches the OIDC metadata)."""
    return msal.ConfidentialClientApplication(
        DEMO_CLIENT_ID,
        client_credential=DEMO_CLIENT_SECRET,
        authority=server.authority,
        instance_discovery=False,
        http_client=session,
        token_cache=msal.TokenCache(),
    )


def our_app(server: Server) -> msal_async.ConfidentialClientApplication:
    """A fresh msal_async app with its own cache and its own HTTP client."""
    return msal_async.ConfidentialClientApplication(
        DEMO_CLIENT_ID,
        client_credential=DEMO_CLIENT_SECRET,
        authority=server.authority,
        instance_discovery=False,
        verify=server.ca_file,
        token_cache=msal_async.TokenCache(),
    )


def check_token(result: dict[str, Any], who: str, source: str | None = None) -> None:
    """Fail the benchmark (not a timing check) when a call did not get the expected token."""
    if "access_token" not in result:
        msg = f"{who}: no access token: {result.get('error')}: {result.get('error_description')}"
        raise RuntimeError(msg)
    if source is not None and result.get("token_source") != source:
        msg = f"{who}: token_source {result.get('token_source')!r}, expected {source!r}"
        raise RuntimeError(msg)


def other_events(server: Server, count: int) -> list[dict[str, Any]]:
    """``count`` client-credential events for other scopes, half of them in other tenants.

    The shape is what msal's ``application.py`` hands to ``token_cache.add``.
    """
    events = []
    for i in range(count):
        tenant = DEMO_TENANT_ID if i % 2 == 0 else OTHER_TENANTS[i % len(OTHER_TENANTS)]
        scope = f"api://other-{i}/.default"
        events.append(
            {
                "client_id": DEMO_CLIENT_ID,
                "scope": [scope],
                "token_endpoint": f"{server.base_url}/{tenant}/oauth2/v2.0/token",
                "environment": server.environment,
                "grant_type": "client_credentials",
                "response": {
                    "access_token": f"other-access-token-{i}",
                    "token_type": "Bearer",
                    "expires_in": 3600,
                    "ext_expires_in": 3600,
                },
                "params": None,
                "data": {
                    "client_id": DEMO_CLIENT_ID,
                    "grant_type": "client_credentials",
                    "client_info": "1",
                    "scope": scope,
                },
            }
        )
    return events


# --- (a) cache hits ---------------------------------------------------------------------------


@dataclass
class HitRow:
    """Per-call cache-hit times (seconds) at one cache size."""

    others: int
    msal: list[float] = field(default_factory=list)
    ours: list[float] = field(default_factory=list)


def time_msal_hits(server: Server, plan: Plan, others: int, now: int) -> list[float]:
    """Time msal's cache hits with ``others`` other tokens in its cache."""
    with msal_session(server) as session:
        app = msal_app(server, session)
        acquire = app.acquire_token_for_client
        check_token(acquire(HIT_SCOPES), "msal", "identity_provider")
        for event in other_events(server, others):
            app.token_cache.add(event, now=now)
        for _ in range(plan.hit_warmup):
            check_token(acquire(HIT_SCOPES), "msal", "cache")
        gc.collect()
        samples = []
        clock = time.perf_counter
        for _ in range(plan.hit_iterations):
            start = clock()
            result = acquire(HIT_SCOPES)
            samples.append(clock() - start)
            check_token(result, "msal", "cache")
    return samples


async def time_our_hits(server: Server, plan: Plan, others: int, now: int) -> list[float]:
    """Time our cache hits with ``others`` other tokens in the cache, awaits in one loop."""
    async with our_app(server) as app:
        acquire = app.acquire_token_for_client
        check_token(await acquire(HIT_SCOPES), "msal_async", "identity_provider")
        for event in other_events(server, others):
            app.token_cache.add(event, now=now)
        for _ in range(plan.hit_warmup):
            check_token(await acquire(HIT_SCOPES), "msal_async", "cache")
        gc.collect()
        samples = []
        clock = time.perf_counter
        for _ in range(plan.hit_iterations):
            start = clock()
            result = await acquire(HIT_SCOPES)
            samples.append(clock() - start)
            check_token(result, "msal_async", "cache")
    return samples


def bench_hits(server: Server, plan: Plan, backend: str) -> list[HitRow]:
    """(a) for every cache size, msal then ours."""
    rows = []
    now = int(time.time())
    for others in plan.cache_sizes:
        row = HitRow(others)
        row.msal = time_msal_hits(server, plan, others, now)
        row.ours = anyio.run(time_our_hits, server, plan, others, now, backend=backend)
        rows.append(row)
    return rows


# --- (b) cold fetches --------------------------------------------------------------------------


OURS = "msal_async, all calls concurrent, 1 thread"
MSAL_POOL = f"msal {msal.__version__}, ThreadPoolExecutor({MSAL_THREADS})"
FLOOR = "plain httpx.AsyncClient POSTs (floor)"


def fetch_scopes(count: int) -> list[list[str]]:
    """``count`` distinct scopes, one list per call."""
    return [[f"api://bench-cold-{i}/.default"] for i in range(count)]


def fetch_msal_pool(server: Server, count: int) -> float:
    """Wall time of ``count`` cold msal calls in a 64-thread pool (fresh app and session)."""
    # A pool of 64 connections, so that msal's threads do not churn TLS handshakes through
    # requests' default pool of 10.
    with msal_session(server, pool_size=MSAL_THREADS) as session:
        app = msal_app(server, session)  # fetches the OIDC metadata
        check_token(app.acquire_token_for_client(WARMUP_SCOPES), "msal")
        scopes = fetch_scopes(count)
        with ThreadPoolExecutor(MSAL_THREADS) as pool:
            start = time.perf_counter()
            results = list(pool.map(app.acquire_token_for_client, scopes))
            wall = time.perf_counter() - start
    for result in results:
        check_token(result, "msal", "identity_provider")
    return wall


async def fetch_ours(server: Server, count: int) -> float:
    """Wall time of ``count`` cold msal_async calls in one task group (fresh app)."""
    async with our_app(server) as app:
        check_token(await app.acquire_token_for_client(WARMUP_SCOPES), "msal_async")
        results: list[dict[str, Any]] = []

        async def one(scopes: list[str]) -> None:
            results.append(await app.acquire_token_for_client(scopes))

        scopes = fetch_scopes(count)
        start = time.perf_counter()
        async with anyio.create_task_group() as group:
            for each in scopes:
                group.start_soon(one, each)
        wall = time.perf_counter() - start
    for result in results:
        check_token(result, "msal_async", "identity_provider")
    if len(results) != count:
        msg = f"msal_async: {len(results)} results for {count} calls"
        raise RuntimeError(msg)
    return wall


async def fetch_floor(server: Server, count: int) -> float:
    """Wall time of ``count`` token POSTs with plain httpx: the same form, no library."""
    verify = ssl.create_default_context(cafile=server.ca_file)
    async with httpx.AsyncClient(verify=verify, timeout=HTTPX_TIMEOUT) as client:
        metadata_url = f"{server.authority}/v2.0/.well-known/openid-configuration"
        metadata = (await client.get(metadata_url)).raise_for_status().json()
        endpoint = str(metadata["token_endpoint"])
        headers = {"Accept": "application/json"}

        async def post(scopes: list[str]) -> dict[str, Any]:
            form = {
                "client_id": DEMO_CLIENT_ID,
                "grant_type": "client_credentials",
                "client_info": "1",
                "scope": " ".join(scopes),
                "client_secret": DEMO_CLIENT_SECRET,
            }
            response = await client.post(endpoint, data=form, headers=headers)
            body: dict[str, Any] = response.json()
            return body

        check_token(await post(WARMUP_SCOPES), "httpx")
        results: list[dict[str, Any]] = []

        async def one(scopes: list[str]) -> None:
            results.append(await post(scopes))

        scopes = fetch_scopes(count)
        start = time.perf_counter()
        async with anyio.create_task_group() as group:
            for each in scopes:
                group.start_soon(one, each)
        wall = time.perf_counter() - start
    for result in results:
        check_token(result, "httpx")
    return wall


def bench_fetches(server: Server, plan: Plan, backend: str) -> dict[str, list[float]]:
    """(b) the three clients, interleaved round by round so drift hits them alike."""
    walls: dict[str, list[float]] = {OURS: [], MSAL_POOL: [], FLOOR: []}
    runners: dict[str, Callable[[], float]] = {
        OURS: lambda: anyio.run(fetch_ours, server, plan.fetches, backend=backend),
        MSAL_POOL: lambda: fetch_msal_pool(server, plan.fetches),
        FLOOR: lambda: anyio.run(fetch_floor, server, plan.fetches, backend=backend),
    }
    for _ in range(plan.fetch_repeats):
        for name, runner in runners.items():
            gc.collect()
            walls[name].append(runner())
    return walls


# --- the report --------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    """PASS or MISS, for information."""
    return "PASS" if ok else "MISS"


def us(seconds: float) -> str:
    """Microseconds, for the table."""
    return f"{seconds * 1e6:,.1f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned first column, right-aligned others."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return [line(header), rule, *(line(r) for r in rows)]


def format_report(
    plan: Plan, options: argparse.Namespace, hits: list[HitRow], walls: dict[str, list[float]]
) -> str:
    """The tables, ratios and targets."""
    out: list[str] = []
    out.append(
        f"msal_async {msal_async.__version__} vs msal {msal.__version__}"
        f" | Python {platform.python_version()} | httpx {httpx.__version__}"
        f" | backend {options.backend} | {os.cpu_count()} CPUs"
        f"{' | QUICK (figures not meaningful)' if options.quick else ''}"
    )
    where = "a child process" if options.server == "process" else "a thread of this process"
    out.append(
        f"Authority emulator over HTTPS on 127.0.0.1 (trustme CA), {LATENCY * 1000:.0f} ms added"
        f" latency per request, served by uvicorn in {where}."
    )

    out.append("")
    out.append(
        f"(a) Cache hit: acquire_token_for_client, µs per call ({plan.hit_iterations:,} timed calls"
        f" after {plan.hit_warmup:,} warm-up; ours awaited in a loop in one event loop)"
    )
    out.append(
        "    Other tokens: client-credential events for other scopes, half in this tenant and half"
        f" in {len(OTHER_TENANTS)} other tenants, added with token_cache.add(event, now=...)."
    )
    hit_rows: list[list[str]] = []
    hit_speedups: list[float] = []
    for row in hits:
        theirs, ours = statistics.median(row.msal), statistics.median(row.ours)
        speedup = theirs / ours
        hit_speedups.append(speedup)
        hit_rows.append(
            [
                f"{row.others:,} other token{'s' if row.others != 1 else ''}",
                us(theirs),
                us(statistics.fmean(row.msal)),
                us(ours),
                us(statistics.fmean(row.ours)),
                f"{speedup:.1f}x",
                f">= {TARGET_HIT_SPEEDUP:.0f}x",
                verdict(speedup >= TARGET_HIT_SPEEDUP),
            ]
        )
    out.extend(
        "    " + line
        for line in table(
            [
                "cache",
                "msal median",
                "msal mean",
                "ours median",
                "ours mean",
                "msal/ours",
                "target",
                "",
            ],
            hit_rows,
        )
    )
    smallest, largest = hits[0], hits[-1]
    growth = statistics.median(largest.ours) / statistics.median(smallest.ours)
    growth_mean = statistics.fmean(largest.ours) / statistics.fmean(smallest.ours)
    out.append(
        f"    ours {largest.others:,} / ours {smallest.others:,} (median): {growth:.2f}x"
        f" (mean: {growth_mean:.2f}x)   target <= {TARGET_HIT_GROWTH}x"
        f"   {verdict(growth <= TARGET_HIT_GROWTH)}"
    )
    theirs_growth = statistics.median(largest.msal) / statistics.median(smallest.msal)
    out.append(f"    (msal {largest.others:,} / msal {smallest.others:,} (median): {theirs_growth:.2f}x)")

    out.append("")
    reduce = "median" if plan.fetch_repeats > 1 else "single run"
    out.append(
        f"(b) {plan.fetches} distinct-scope cold fetches, wall time ({reduce} of"
        f" {plan.fetch_repeats} run{'s' if plan.fetch_repeats != 1 else ''} each, interleaved)"
    )
    out.append(
        "    Fresh app, cache and connection pool per run. Not measured: app construction, OIDC"
        " discovery and one warm-up token request per run (for all three alike)."
    )
    median = {name: statistics.median(values) for name, values in walls.items()}
    fetch_rows = [
        [
            name,
            f"{median[name] * 1000:,.1f}",
            f"{min(values) * 1000:,.1f}",
            f"{max(values) * 1000:,.1f}",
            f"{plan.fetches / median[name]:,.0f}",
        ]
        for name, values in walls.items()
    ]
    out.extend(
        "    " + line
        for line in table(["client", "wall ms", "best ms", "worst ms", "req/s"], fetch_rows)
    )
    vs_msal = median[MSAL_POOL] / median[OURS]  # throughput ratio: ours / msal's
    vs_floor = median[OURS] / median[FLOOR]  # wall-time ratio: ours / plain httpx
    out.append(
        f"    ours vs msal pool, throughput: {vs_msal:.2f}x   target >= {TARGET_FETCH_SPEEDUP}x"
        f"   {verdict(vs_msal >= TARGET_FETCH_SPEEDUP)}"
    )
    out.append(
        f"    ours vs plain httpx, wall time: {vs_floor:.2f}x   target <= {TARGET_FETCH_OVERHEAD}x"
        f"   {verdict(vs_floor <= TARGET_FETCH_OVERHEAD)}"
    )

    out.append("")
    out.append("Targets (information only; benchmarks never fail the build):")
    sizes = ", ".join(f"{row.others:,}" for row in hits)
    out.append(
        f"  (a) ours >= {TARGET_HIT_SPEEDUP:.0f}x faster than msal at every size ({sizes}):"
        f" {verdict(min(hit_speedups) >= TARGET_HIT_SPEEDUP)} (lowest {min(hit_speedups):.1f}x)"
    )
    out.append(
        f"  (a) ours at {largest.others:,} within {TARGET_HIT_GROWTH}x of ours at"
        f" {smallest.others:,}: {verdict(growth <= TARGET_HIT_GROWTH)} ({growth:.2f}x)"
    )
    out.append(
        f"  (b) ours >= {TARGET_FETCH_SPEEDUP}x msal's {MSAL_THREADS}-thread pool throughput:"
        f" {verdict(vs_msal >= TARGET_FETCH_SPEEDUP)} ({vs_msal:.2f}x)"
    )
    out.append(
        f"  (b) ours within {TARGET_FETCH_OVERHEAD}x of plain httpx:"
        f" {verdict(vs_floor <= TARGET_FETCH_OVERHEAD)} ({vs_floor:.2f}x)"
    )
    return "\n".join(out)


# --- the command -------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python benchmarks/run.py",
        description="Benchmark msal_async against real msal on identical work.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small iterations and sizes (a smoke test)"
    )
    parser.add_argument(
        "--backend", choices=["asyncio", "trio"], default="asyncio", help="our event loop"
    )
    parser.add_argument(
        "--server",
        choices=["process", "thread"],
        default="process",
        help="run the emulator in a child process (default) or in a thread of this process",
    )
    parser.add_argument("--serve-child", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--latency", type=float, default=LATENCY, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run(options: argparse.Namespace) -> str:
    """Run both benchmarks and return the report."""
    plan = QUICK if options.quick else FULL
    # urllib3 would log a warning per connection it drops; the figures are the output here.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    with serve(options.server, options.latency) as server:
        hits = bench_hits(server, plan, options.backend)
        walls = bench_fetches(server, plan, options.backend)
    return format_report(plan, options, hits, walls)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the report; the exit status is 0 whatever the figures."""
    options = parse_args(argv)
    if options.serve_child is not None:
        serve_child(options.serve_child, options.latency)
        return 0
    started = time.perf_counter()
    print(run(options))
    print(f"\n(total {time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
