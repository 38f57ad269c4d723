"""Cold fetches: N distinct-scope client-credential tokens per client, CPU and wall time.

``python benchmarks/cold.py [--counts 200 2000] [--rounds 3] [--baseline DIR]``

Every client gets the same work: a fresh app (or credential) and connection pool, one untimed
warm-up token request (discovery, app construction), then N concurrent token requests, each
for a distinct scope, on a cold cache, against the authority emulator over HTTPS on 127.0.0.1
with 20 ms of added latency, served from a child process. Each measurement runs in a fresh
Python process of its own, so that one client's threads, garbage and imports cannot bill
another, and records:

- wall time of the N calls, and the throughput it gives;
- client CPU per request: ``time.process_time()`` of the worker process over the N calls
  (all threads: msal's 64 included), divided by N;
- server CPU per request over the same window (``/proc/PID/stat`` of the serving process), to
  tell which side saturates.

Clients, with a client secret and with a certificate (RSA-2048; a PFX file for msal and
msal_async, PEM for azure-identity; every library then signs PS256 with ``x5t#S256`` and no
``x5c``, the one shape azure-identity's asyncio credential sends):
msal 1.39 in a ``ThreadPoolExecutor(64)`` (a 64-connection ``requests`` pool), azure-identity's
``azure.identity.aio`` credentials on one aiohttp session, plain ``httpx.AsyncClient`` POSTs
(secret only: the floor of the same form on the wire), and msal_async. ``--baseline DIR`` adds
msal_async from another source tree (``DIR/msal_async``), to compare before and after.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # loaded by path (benchmarks/ is not a package)
    sys.path.insert(0, str(HERE))

from emulator import CERT_CLIENT_ID, Server, process_cpu

MSAL_THREADS = 64
SECRET, CERTIFICATE = "secret", "certificate"

OURS = "msal_async, all calls concurrent, 1 thread"
MSAL_POOL = f"msal {version('msal')}, ThreadPoolExecutor({MSAL_THREADS})"
AZURE = f"azure.identity.aio {version('azure-identity')}, one aiohttp session"
FLOOR = "plain httpx.AsyncClient POSTs (floor)"
FLOOR_OURS = "plain httpx.AsyncClient POSTs over our pool"
WARMUP_SCOPE = "api://bench-warmup/.default"

# Targets from issue 9; printed for information only.
TARGET_CPU_VS_AZURE = 0.8
TARGET_CPU_VS_MSAL = 0.5
TARGET_THROUGHPUT_VS_MSAL = 1.5


@dataclass(frozen=True)
class Sample:
    """One measurement: seconds for the N calls, and CPU seconds of client and server."""

    wall: float
    cpu: float
    server_cpu: float | None


def scopes(count: int) -> list[str]:
    """``count`` distinct scopes."""
    return [f"api://bench-cold-{i}/.default" for i in range(count)]


class _Meter:
    """Client and server CPU and wall time from now until :meth:`stop`."""

    def __init__(self, server: Server) -> None:
        gc.collect()
        self._pid = server.pid
        self._server = process_cpu(server.pid)
        self._cpu, self._wall = time.process_time(), time.perf_counter()

    def stop(self) -> Sample:
        """The figures of the window."""
        wall, cpu = time.perf_counter() - self._wall, time.process_time() - self._cpu
        after = process_cpu(self._pid)
        server = None if after is None or self._server is None else after - self._server
        return Sample(wall, cpu, server)


def _credential(server: Server, kind: str) -> tuple[str, Any]:
    from msal_async.testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

    if kind == SECRET:
        return DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
    return CERT_CLIENT_ID, {"private_key_pfx_path": server.pfx_file}


def _check(token: object, who: str) -> None:
    if isinstance(token, dict):
        if "access_token" not in token:
            msg = f"{who}: {token.get('error')}: {token.get('error_description')}"
            raise RuntimeError(msg)
    elif not token:
        msg = f"{who}: no access token"
        raise RuntimeError(msg)


def run_msal(server: Server, kind: str, count: int, backend: str) -> Sample:
    """msal in a 64-thread pool, its session sized to 64 connections."""
    import msal
    import requests.adapters

    client_id, credential = _credential(server, kind)
    with requests.Session() as session:
        session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify (requests#3829)
        session.verify = server.ca_file
        adapter = requests.adapters.HTTPAdapter(
            max_retries=1, pool_connections=MSAL_THREADS, pool_maxsize=MSAL_THREADS
        )
        session.mount("https://", adapter)
        app = msal.ConfidentialClientApplication(
            client_id,
            client_credential=credential,
            authority=server.authority,
            instance_discovery=False,
            http_client=session,
            token_cache=msal.TokenCache(),
        )
        _check(app.acquire_token_for_client([WARMUP_SCOPE]), "msal")

        meter = _Meter(server)
        with ThreadPoolExecutor(MSAL_THREADS) as pool:
            results = list(pool.map(lambda s: app.acquire_token_for_client([s]), scopes(count)))
        sample = meter.stop()
    for result in results:
        _check(result, "msal")
    return sample


async def _gather(calls: Sequence[Callable[[], Any]]) -> list[Any]:
    import anyio

    results: list[Any] = []

    async def one(call: Callable[[], Any]) -> None:
        results.append(await call())

    async with anyio.create_task_group() as group:
        for call in calls:
            group.start_soon(one, call)
    return results


def _run_async(server: Server, backend: str, main: Callable[..., Any]) -> Sample:
    import anyio

    holder: list[Sample] = []

    async def wrapper() -> None:
        await main(holder)

    anyio.run(wrapper, backend=backend)
    return holder[0]


async def _timed(server: Server, calls: Sequence[Callable[[], Any]], who: str) -> Sample:
    gc.collect()
    server_before = process_cpu(server.pid)
    cpu, wall = time.process_time(), time.perf_counter()
    results = await _gather(calls)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    server_after = process_cpu(server.pid)
    for result in results:
        _check(result, who)
    if len(results) != len(calls):
        msg = f"{who}: {len(results)} results for {len(calls)} calls"
        raise RuntimeError(msg)
    server_cpu = (
        None if server_before is None or server_after is None else server_after - server_before
    )
    return Sample(wall, cpu, server_cpu)


def run_ours(server: Server, kind: str, count: int, backend: str) -> Sample:
    """msal_async: every call concurrent in one task group, on one thread."""
    import msal_async

    client_id, credential = _credential(server, kind)

    async def main(out: list[Sample]) -> None:
        async with msal_async.ConfidentialClientApplication(
            client_id,
            client_credential=credential,
            authority=server.authority,
            instance_discovery=False,
            verify=server.ca_file,
            token_cache=msal_async.TokenCache(),
        ) as app:
            _check(await app.acquire_token_for_client([WARMUP_SCOPE]), "msal_async")
            acquire = app.acquire_token_for_client
            calls = [lambda s=s: acquire([s]) for s in scopes(count)]
            out.append(await _timed(server, calls, "msal_async"))

    return _run_async(server, backend, main)


def run_azure(server: Server, kind: str, count: int, backend: str) -> Sample:
    """azure.identity.aio's ClientSecretCredential / CertificateCredential on one aiohttp session."""
    import ssl

    import aiohttp
    from azure.core.pipeline.transport import AioHttpTransport
    from azure.identity.aio import CertificateCredential, ClientSecretCredential

    from msal_async.testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID

    pem = Path(server.key_file).read_bytes() + Path(server.cert_file).read_bytes()

    async def main(out: list[Sample]) -> None:
        context = ssl.create_default_context(cafile=server.ca_file)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
            options: dict[str, Any] = {
                "authority": server.base_url,
                "transport": AioHttpTransport(session=session, session_owner=False),
            }
            credential: ClientSecretCredential | CertificateCredential
            if kind == SECRET:
                credential = ClientSecretCredential(
                    DEMO_TENANT_ID, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, **options
                )
            else:
                credential = CertificateCredential(
                    DEMO_TENANT_ID, CERT_CLIENT_ID, certificate_data=pem, **options
                )
            _check((await credential.get_token(WARMUP_SCOPE)).token, "azure-identity")

            async def token(scope: str) -> str:
                return (await credential.get_token(scope)).token

            calls = [lambda s=s: token(s) for s in scopes(count)]
            out.append(await _timed(server, calls, "azure-identity"))

    return _run_async(server, "asyncio", main)


def run_httpx(server: Server, kind: str, count: int, backend: str, *, ours: bool = False) -> Sample:
    """Plain httpx.AsyncClient POSTs of the client-secret form (httpx's default pool or ours)."""
    import ssl

    import httpx

    from msal_async.testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

    async def main(out: list[Sample]) -> None:
        verify = ssl.create_default_context(cafile=server.ca_file)
        timeout = httpx.Timeout(30.0, connect=10.0)
        if ours:
            from msal_async._http.config import build_client

            client, _ = build_client(ssl_context=verify, routes={}, timeout=timeout)
        else:
            client = httpx.AsyncClient(verify=verify, timeout=timeout)
        async with client:
            url = f"{server.authority}/v2.0/.well-known/openid-configuration"
            endpoint = (await client.get(url)).raise_for_status().json()["token_endpoint"]

            async def post(scope: str) -> Any:
                form = {
                    "client_id": DEMO_CLIENT_ID,
                    "grant_type": "client_credentials",
                    "client_info": "1",
                    "scope": scope,
                    "client_secret": DEMO_CLIENT_SECRET,
                }
                headers = {"Accept": "application/json"}
                return (await client.post(endpoint, data=form, headers=headers)).json()

            _check(await post(WARMUP_SCOPE), "httpx")
            calls = [lambda s=s: post(s) for s in scopes(count)]
            out.append(await _timed(server, calls, "httpx"))

    return _run_async(server, backend, main)


def run_httpx_pool(server: Server, kind: str, count: int, backend: str) -> Sample:
    """Plain httpx.AsyncClient POSTs over msal_async's own connection pool."""
    return run_httpx(server, kind, count, backend, ours=True)


@dataclass(frozen=True)
class Client:
    """A row of the table: how to run it, and which credentials it has."""

    label: str
    run: Callable[[Server, str, int, str], Sample]
    credentials: tuple[str, ...] = (SECRET, CERTIFICATE)
    pythonpath: str | None = None


def clients(baseline: str | None = None) -> dict[str, Client]:
    """The peers, in table order."""
    found = {
        "msal": Client(MSAL_POOL, run_msal),
        "azure": Client(AZURE, run_azure),
        "httpx": Client(FLOOR, run_httpx, (SECRET,)),
        "httpx-pool": Client(FLOOR_OURS, run_httpx_pool, (SECRET,)),
    }
    if baseline is not None:
        found["baseline"] = Client(
            f"msal_async from {baseline}", run_ours, pythonpath=str(Path(baseline).resolve())
        )
    found["ours"] = Client(OURS, run_ours)
    return found


def measure(
    server: Server, name: str, client: Client, kind: str, count: int, backend: str
) -> Sample:
    """One measurement in a fresh Python process."""
    env = dict(os.environ)
    if client.pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [client.pythonpath, env.get("PYTHONPATH")])
        )
    worker = "ours" if name == "baseline" else name
    command = [
        sys.executable,
        __file__,
        "--worker",
        worker,
        "--credential",
        kind,
        "--count",
        str(count),
        "--backend",
        backend,
        "--server",
        json.dumps(server.__dict__),
    ]

    def attempt() -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own interpreter running this file
            command, capture_output=True, text=True, env=env, check=False, timeout=600
        )

    done = attempt()
    if done.returncode != 0:
        # A peer may lose a race with the server's keep-alive timeout (requests re-sends no
        # POST): measure again once, in a fresh process, and say so.
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        print(f"note: {client.label} ({kind}, N={count}) failed, again: {last}", file=sys.stderr)
        done = attempt()
    if done.returncode != 0:
        msg = f"{client.label} ({kind}, N={count}) failed twice:\n{done.stderr[-3000:]}"
        raise RuntimeError(msg)
    return Sample(**json.loads(done.stdout.strip().splitlines()[-1]))


def worker(options: argparse.Namespace) -> int:
    """``--worker NAME``: one measurement, printed as JSON."""
    runners = {
        "msal": run_msal,
        "azure": run_azure,
        "httpx": run_httpx,
        "httpx-pool": run_httpx_pool,
        "ours": run_ours,
    }
    server = Server(**json.loads(options.server))
    sample = runners[options.worker](server, options.credential, options.count, options.backend)
    print(json.dumps(sample.__dict__))
    return 0


# --- the report ----------------------------------------------------------------------------


@dataclass
class Cell:
    """The samples of one client, credential and N, one per round."""

    samples: list[Sample] = field(default_factory=list)

    def median(self, pick: Callable[[Sample], float | None]) -> float | None:
        """The median of one figure over the rounds (None when unknown)."""
        values = [v for v in map(pick, self.samples) if v is not None]
        return statistics.median(values) if values else None


Results = dict[tuple[str, str, int], Cell]


def bench(
    server: Server,
    peers: dict[str, Client],
    counts: Sequence[int],
    rounds: int,
    backend: str,
) -> Results:
    """Every client, credential and N, interleaved round by round."""
    results: Results = {}
    for count in counts:
        for _ in range(rounds):
            for kind in (SECRET, CERTIFICATE):
                for name, client in peers.items():
                    if kind in client.credentials:
                        sample = measure(server, name, client, kind, count, backend)
                        results.setdefault((name, kind, count), Cell()).samples.append(sample)
    return results


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 1e3:,.2f}"


def _ratio_line(
    results: Results, what: str, kind: str, count: int, other: str, target: str
) -> tuple[str, list[float]] | None:
    ours, theirs = results.get(("ours", kind, count)), results.get((other, kind, count))
    if ours is None or theirs is None:
        return None
    if what == "cpu":
        per_round = [o.cpu / t.cpu for o, t in zip(ours.samples, theirs.samples, strict=True)]
    else:  # throughput: theirs' wall over ours
        per_round = [t.wall / o.wall for o, t in zip(ours.samples, theirs.samples, strict=True)]
    spread = f"[{min(per_round):.2f}-{max(per_round):.2f}]" if len(per_round) > 1 else ""
    return f"{statistics.median(per_round):.2f}x {spread} {target}".rstrip(), per_round


def report(
    results: Results, peers: dict[str, Client], counts: Sequence[int], rounds: int
) -> list[str]:
    """One table per N and credential, then the ratios against the targets."""
    out: list[str] = []
    reduce = f"median of {rounds} interleaved rounds" if rounds > 1 else "a single round"
    for count in counts:
        for kind in (SECRET, CERTIFICATE):
            rows = []
            for name, client in peers.items():
                cell = results.get((name, kind, count))
                if cell is None:
                    continue
                wall = cell.median(lambda s: s.wall) or 0.0
                cpus = [s.cpu / count for s in cell.samples]
                server = cell.median(lambda s: s.server_cpu)
                rows.append(
                    [
                        client.label,
                        _ms(wall),
                        f"{count / wall:,.0f}",
                        _ms(statistics.median(cpus)),
                        f"{_ms(min(cpus))}-{_ms(max(cpus))}",
                        _ms(None if server is None else server / count),
                        f"{(cell.median(lambda s: s.cpu) or 0) / wall:.0%}",
                        "n/a" if server is None else f"{server / wall:.0%}",
                    ]
                )
            out.append(f"N={count:,} distinct scopes, {kind} ({reduce}):")
            header = ["client", "wall ms", "req/s", "CPU ms/req", "range", "server ms/req"]
            out.extend(_table([*header, "client busy", "server busy"], rows))
            out.append("")
    return out


def targets(results: Results, counts: Sequence[int]) -> list[str]:
    """Issue 9's targets for the cold path: PASS/MISS, with the spread over rounds."""
    out = []
    for count in counts:
        for kind in (SECRET, CERTIFICATE):
            for other, bound in (("azure", TARGET_CPU_VS_AZURE), ("msal", TARGET_CPU_VS_MSAL)):
                line = _ratio_line(results, "cpu", kind, count, other, f"target <= {bound:g}x")
                if line is not None:
                    text, per_round = line
                    ok = statistics.median(per_round) <= bound
                    out.append(
                        f"  cold CPU/req ours / {other}, N={count:,}, {kind}: "
                        f"{'PASS' if ok else 'MISS'} ({text})"
                    )
        bound = TARGET_THROUGHPUT_VS_MSAL
        line = _ratio_line(results, "throughput", SECRET, count, "msal", f"target >= {bound:g}x")
        if line is not None:
            text, per_round = line
            ok = statistics.median(per_round) >= bound
            out.append(
                f"  cold throughput ours / msal, N={count:,}, secret: "
                f"{'PASS' if ok else 'MISS'} ({text})"
            )
    return out


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return ("    " + "  ".join([first, *rest])).rstrip()

    return [line(header), "    " + "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python benchmarks/cold.py", description=__doc__)
    parser.add_argument("--counts", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--server", default=None, help="process (default) or thread")
    parser.add_argument("--baseline", metavar="DIR", help="also run msal_async from DIR")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--credential", default=SECRET, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the cold-fetch benchmark and print the tables; exit status 0 whatever the figures."""
    options = parse_args(argv)
    if options.worker:
        return worker(options)
    from emulator import serve

    peers = clients(options.baseline)
    with serve(options.server or "process") as server:
        results = bench(server, peers, options.counts, options.rounds, options.backend)
    print("\n".join(report(results, peers, options.counts, options.rounds)))
    print("Targets (information only):")
    print("\n".join(targets(results, options.counts)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
