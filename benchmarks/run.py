"""msal_async against real msal on identical work: ``python benchmarks/run.py [--quick]``.

Both libraries talk to the authority emulator served over HTTPS on 127.0.0.1 (a trustme CA)
with 20 ms of added latency on every request. By default the server runs in a child process so
that its CPU work (TLS, JSON, RS256 signing) does not compete with the clients for the GIL.

(a) Cache-hit latency of ``acquire_token_for_client`` with 1, 1,000 and 10,000 other tokens in
    the cache (both caches filled through ``token_cache.add(event, now=...)`` with the same
    client-credential events).
(b) N distinct-scope cold fetches, client CPU per request beside wall time (``benchmarks/cold.py``,
    each measurement in a fresh process): msal_async with every call concurrent on one thread,
    real msal in a ``ThreadPoolExecutor(64)``, azure-identity's ``azure.identity.aio``
    credentials on one aiohttp session, and plain ``httpx.AsyncClient`` POSTs (the floor); with
    a client secret and with a certificate.

Then the sections of ``user_tokens.py`` (issue 3), ``persistence.py`` (issue 5) and ``core.py``
(issue 8: CPU per cold fetch on an in-process transport vs plain httpx, fill growth, hits).

Benchmarks never assert: targets are printed as PASS/MISS for information, and the exit status
is 0 whatever the figures. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import platform
import ssl
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import msal
import requests
import requests.adapters

import msal_async
from msal_async.testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID

if str(Path(__file__).resolve().parent) not in sys.path:  # loaded by path (the smoke test)
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import cold  # (b): cold fetches, one process per measurement
from emulator import LATENCY, Server, serve

HIT_SCOPES = ["api://bench-hit/.default"]
WARMUP_SCOPES = ["api://bench-warmup/.default"]
MSAL_THREADS = cold.MSAL_THREADS
HTTPX_TIMEOUT = httpx.Timeout(30.0, connect=10.0)  # msal_async's default
MIN_CALLS = 20  # timed cache hits per cell, at least
WARMUP_SHARE = 0.25  # of the time budget of a cell, at most, for its warm-up
CALIBRATION_CALLS = 10
OTHER_TENANTS = [str(uuid.UUID(int=0x5EED0000 + i)) for i in range(16)]

# Targets from the issue; printed for information only.
TARGET_HIT_SPEEDUP = 10.0  # msal / ours, at every cache size
TARGET_HIT_GROWTH = 1.5  # ours at the largest cache / ours at the smallest
TARGET_FETCH_OVERHEAD = 1.2  # ours wall time / plain httpx wall time


@dataclass(frozen=True)
class Plan:
    """Sizes and repetitions of one run.

    Each cache-hit cell stops timing at ``hit_iterations`` calls or after ``hit_budget``
    seconds, whichever comes first (but never below ``MIN_CALLS`` calls); its warm-up stops
    at ``hit_warmup`` calls or a quarter of the budget. Each cell is measured in
    ``hit_rounds`` interleaved rounds (msal, ours, msal, ours...) and each library keeps its
    round with the lowest median: on a shared 2-core machine single rounds of both varied 2x.
    The cold fetches run every client ``fetch_rounds`` times at each N of ``fetch_counts``.
    """

    cache_sizes: tuple[int, ...]
    hit_warmup: int
    hit_iterations: int
    hit_budget: float
    hit_rounds: int
    fetch_counts: tuple[int, ...]
    fetch_rounds: int


FULL = Plan(
    cache_sizes=(1, 1_000, 10_000),
    hit_warmup=500,
    hit_iterations=5_000,
    hit_budget=1.0,
    hit_rounds=3,
    fetch_counts=(200, 2_000),
    fetch_rounds=3,
)
QUICK = Plan(
    cache_sizes=(1, 1_000, 10_000),
    hit_warmup=20,
    hit_iterations=200,
    hit_budget=0.1,
    hit_rounds=1,
    fetch_counts=(50,),
    fetch_rounds=1,
)


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


def check_token(result: Mapping[str, Any], who: str, source: str | None = None) -> None:
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
        clock = time.perf_counter
        deadline = clock() + plan.hit_budget * WARMUP_SHARE
        for _ in range(plan.hit_warmup):
            check_token(acquire(HIT_SCOPES), "msal", "cache")
            if clock() > deadline:
                break
        gc.collect()
        samples: list[float] = []
        deadline = clock() + plan.hit_budget
        while len(samples) < plan.hit_iterations:
            start = clock()
            result = acquire(HIT_SCOPES)
            samples.append(clock() - start)
            check_token(result, "msal", "cache")
            if len(samples) >= MIN_CALLS and clock() > deadline:
                break
    return samples


async def time_our_hits(server: Server, plan: Plan, others: int, now: int) -> list[float]:
    """Time our cache hits with ``others`` other tokens in the cache, awaits in one loop."""
    async with our_app(server) as app:
        acquire = app.acquire_token_for_client
        check_token(await acquire(HIT_SCOPES), "msal_async", "identity_provider")
        for event in other_events(server, others):
            app.token_cache.add(event, now=now)
        clock = time.perf_counter
        deadline = clock() + plan.hit_budget * WARMUP_SHARE
        for _ in range(plan.hit_warmup):
            check_token(await acquire(HIT_SCOPES), "msal_async", "cache")
            if clock() > deadline:
                break
        gc.collect()
        samples: list[float] = []
        deadline = clock() + plan.hit_budget
        while len(samples) < plan.hit_iterations:
            start = clock()
            result = await acquire(HIT_SCOPES)
            samples.append(clock() - start)
            check_token(result, "msal_async", "cache")
            if len(samples) >= MIN_CALLS and clock() > deadline:
                break
    return samples


def bench_hits(server: Server, plan: Plan, backend: str) -> list[HitRow]:
    """(a) for every cache size, msal then ours."""
    rows = []
    now = int(time.time())
    for others in plan.cache_sizes:
        row = HitRow(others)
        for _ in range(plan.hit_rounds):
            theirs = time_msal_hits(server, plan, others, now)
            ours = anyio.run(time_our_hits, server, plan, others, now, backend=backend)
            if not row.msal or statistics.median(theirs) < statistics.median(row.msal):
                row.msal = theirs
            if not row.ours or statistics.median(ours) < statistics.median(row.ours):
                row.ours = ours
        rows.append(row)
    return rows


# --- (b) cold fetches --------------------------------------------------------------------------


OURS, MSAL_POOL, AZURE, FLOOR = cold.OURS, cold.MSAL_POOL, cold.AZURE, cold.FLOOR


def token_form(scopes: list[str]) -> dict[str, str]:
    """The form msal and msal_async post for a client-secret client-credential request."""
    return {
        "client_id": DEMO_CLIENT_ID,
        "grant_type": "client_credentials",
        "client_info": "1",
        "scope": " ".join(scopes),
        "client_secret": DEMO_CLIENT_SECRET,
    }


@contextlib.asynccontextmanager
async def plain_client(server: Server) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A plain httpx client configured as msal_async's own, and the token endpoint."""
    verify = ssl.create_default_context(cafile=server.ca_file)
    async with httpx.AsyncClient(verify=verify, timeout=HTTPX_TIMEOUT) as client:
        metadata_url = f"{server.authority}/v2.0/.well-known/openid-configuration"
        metadata = (await client.get(metadata_url)).raise_for_status().json()
        yield client, str(metadata["token_endpoint"])


async def post_token(client: httpx.AsyncClient, endpoint: str, scopes: list[str]) -> Any:
    """One token POST, parsed."""
    headers = {"Accept": "application/json"}
    response = await client.post(endpoint, data=token_form(scopes), headers=headers)
    return response.json()


async def round_trips(server: Server, calls: int) -> list[float]:
    """Sequential token POSTs on one warm keep-alive connection: the cost of one request."""
    samples: list[float] = []
    async with plain_client(server) as (client, endpoint):
        check_token(await post_token(client, endpoint, WARMUP_SCOPES), "httpx")
        for _ in range(calls):
            start = time.perf_counter()
            result = await post_token(client, endpoint, WARMUP_SCOPES)
            samples.append(time.perf_counter() - start)
            check_token(result, "httpx")
    return samples


@dataclass
class FetchResults:
    """The cold-fetch samples of every client, and sequential round trips of plain httpx."""

    results: cold.Results
    peers: dict[str, cold.Client]
    round_trips: list[float]


def bench_fetches(server: Server, plan: Plan, backend: str) -> FetchResults:
    """(b) every client, credential and N, interleaved round by round (benchmarks/cold.py)."""
    trips = anyio.run(round_trips, server, CALIBRATION_CALLS, backend=backend)
    peers = cold.clients()
    results = cold.bench(server, peers, plan.fetch_counts, plan.fetch_rounds, backend)
    return FetchResults(results, peers, trips)


# --- the report --------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    """PASS or MISS, for information."""
    return "PASS" if ok else "MISS"


def us(seconds: float) -> str:
    """Microseconds, for the table."""
    return f"{seconds * 1e6:,.1f}"


def ms(seconds: float) -> str:
    """Milliseconds, for the table."""
    return f"{seconds * 1e3:,.1f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Indented rows: the first column left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return ("    " + "  ".join([first, *rest])).rstrip()

    rule = "    " + "  ".join("-" * w for w in widths)
    return [line(header), rule, *(line(r) for r in rows)]


def plural(count: int, noun: str) -> str:
    """``1 token``, ``1,000 tokens``."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def format_hits(plan: Plan, hits: list[HitRow]) -> tuple[list[str], list[str]]:
    """Section (a), and its lines for the targets summary."""
    out = [
        (
            "(a) Cache hit: acquire_token_for_client, µs per call. Each cell: up to"
            f" {plan.hit_iterations:,} timed calls or {plan.hit_budget:g} s after a warm-up;"
            " ours awaited in a loop inside one event loop;"
            f" best of {plan.hit_rounds} interleaved round(s) by median, per library."
        ),
        (
            "    Other tokens: client-credential events for other scopes, half in this tenant, half in"
            f" {len(OTHER_TENANTS)} other tenants, added to both caches with token_cache.add(event,"
            " now=...)."
        ),
    ]
    rows: list[list[str]] = []
    speedups: list[float] = []
    for row in hits:
        theirs, ours = statistics.median(row.msal), statistics.median(row.ours)
        speedups.append(theirs / ours)
        rows.append(
            [
                plural(row.others, "other token"),
                us(theirs),
                us(statistics.fmean(row.msal)),
                us(ours),
                us(statistics.fmean(row.ours)),
                f"{theirs / ours:.2f}x",
                f">= {TARGET_HIT_SPEEDUP:g}x",
                verdict(theirs / ours >= TARGET_HIT_SPEEDUP),
                f"{len(row.msal):,} / {len(row.ours):,}",
            ]
        )
    header = [
        "cache",
        "msal median",
        "msal mean",
        "ours median",
        "ours mean",
        "msal/ours",
        "target",
        "",
        "calls msal / ours",
    ]
    out.extend(table(header, rows))
    small, large = hits[0], hits[-1]
    growth = statistics.median(large.ours) / statistics.median(small.ours)
    their_growth = statistics.median(large.msal) / statistics.median(small.msal)
    out.append(
        f"    ours at {large.others:,} / ours at {small.others:,} (medians): {growth:.2f}x"
        f"   target <= {TARGET_HIT_GROWTH:g}x   {verdict(growth <= TARGET_HIT_GROWTH)}"
        f"   (msal: {their_growth:.2f}x)"
    )
    sizes = ", ".join(f"{row.others:,}" for row in hits)
    targets = [
        (
            f"  (a) ours >= {TARGET_HIT_SPEEDUP:g}x faster than msal at every size ({sizes}):"
            f" {verdict(min(speedups) >= TARGET_HIT_SPEEDUP)} (lowest {min(speedups):.2f}x)"
        ),
        (
            f"  (a) ours at {large.others:,} within {TARGET_HIT_GROWTH:g}x of ours at"
            f" {small.others:,}: {verdict(growth <= TARGET_HIT_GROWTH)} ({growth:.2f}x)"
        ),
    ]
    return out, targets


def format_fetches(
    plan: Plan, latency: float, fetches: FetchResults
) -> tuple[list[str], list[str]]:
    """Section (b), and its lines for the targets summary."""
    counts = "/".join(f"{n:,}" for n in plan.fetch_counts)
    out = [
        f"(b) {counts} distinct-scope cold fetches: client CPU per request and wall time.",
        (
            "    Each measurement: a fresh process, app (or credential), cache and connections. Not"
            " timed: app construction, OIDC discovery and one warm-up token request."
        ),
        (
            f"    One token request alone (plain httpx, warm connection, median of"
            f" {len(fetches.round_trips)}): {ms(statistics.median(fetches.round_trips))} ms, of which"
            f" {latency * 1e3:g} ms is the emulator's added latency."
        ),
        "",
    ]
    out += cold.report(fetches.results, fetches.peers, plan.fetch_counts, plan.fetch_rounds)
    first = plan.fetch_counts[0]
    walls = {
        name: statistics.median(s.wall for s in fetches.results[(name, cold.SECRET, first)].samples)
        for name in ("ours", "msal", "httpx")
    }
    vs_msal = walls["msal"] / walls["ours"]  # = our throughput / msal's
    vs_floor = walls["ours"] / walls["httpx"]  # = our wall time / plain httpx's
    target = cold.TARGET_THROUGHPUT_VS_MSAL
    out.append(
        f"    ours / msal pool, throughput (N={first:,}, secret): {vs_msal:.2f}x   target >="
        f" {target:g}x   {verdict(vs_msal >= target)}"
    )
    out.append(
        f"    ours / plain httpx, wall time (N={first:,}, secret): {vs_floor:.2f}x   target <="
        f" {TARGET_FETCH_OVERHEAD:g}x   {verdict(vs_floor <= TARGET_FETCH_OVERHEAD)}"
    )
    targets = [
        *(
            line.replace("  cold", "  (b)", 1)
            for line in cold.targets(fetches.results, plan.fetch_counts)
        ),
        (
            f"  (b) ours within {TARGET_FETCH_OVERHEAD:g}x of plain httpx's wall time:"
            f" {verdict(vs_floor <= TARGET_FETCH_OVERHEAD)} ({vs_floor:.2f}x)"
        ),
    ]
    return out, targets


def format_report(
    options: argparse.Namespace, plan: Plan, hits: list[HitRow], fetches: FetchResults
) -> str:
    """The tables, ratios and targets."""
    where = "a child process" if options.server == "process" else "a thread of this process"
    out = [
        (
            f"msal_async {msal_async.__version__} vs msal {msal.__version__} | Python"
            f" {platform.python_version()} | httpx {httpx.__version__} | backend {options.backend}"
            f" | {os.cpu_count()} CPUs{' | QUICK: figures not meaningful' if options.quick else ''}"
        ),
        (
            f"Authority emulator over HTTPS on 127.0.0.1 (trustme CA), {options.latency * 1e3:g} ms"
            f" added latency per request, served by uvicorn in {where}."
        ),
        "",
    ]
    hit_lines, hit_targets = format_hits(plan, hits)
    fetch_lines, fetch_targets = format_fetches(plan, options.latency, fetches)
    out += [*hit_lines, "", *fetch_lines, ""]
    out.append("Targets (information only: benchmarks never fail a build):")
    out += [*hit_targets, *fetch_targets]
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
    parser.add_argument("--latency", type=float, default=LATENCY, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run(options: argparse.Namespace) -> str:
    """Run both benchmarks and return the report."""
    plan = QUICK if options.quick else FULL
    with serve(options.server, options.latency) as server:
        hits = bench_hits(server, plan, options.backend)
        fetches = bench_fetches(server, plan, options.backend)
    report = format_report(options, plan, hits, fetches)
    import core  # issue 8: CPU per cold fetch vs plain httpx, fill growth, hits vs msal
    import persistence  # issue 5: cache hits with file and Redis persistence, vs msal-extensions
    import user_tokens  # issue 3: silent hits and get_accounts at 1 to 10,000 accounts

    return (
        report
        + "\n\n"
        + user_tokens.report(quick=options.quick, backend=options.backend)
        + "\n\n"
        + persistence.report(quick=options.quick)
        + "\n\n"
        + core.report(quick=options.quick, backend=options.backend)
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Print the report; the exit status is 0 whatever the figures."""
    options = parse_args(argv)
    started = time.perf_counter()
    print(run(options))
    print(f"\n(total {time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
