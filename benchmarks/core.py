"""Issue 8 benchmark: the core engine's CPU per cold fetch, fill growth and cache hits.

Everything runs in this process on an in-process transport (``httpx.MockTransport``: a handler
that answers OpenID configuration and token requests with canned JSON, no signing), so the
figures are CPU, not network:

(a) CPU per cold fetch, ``time.process_time``: N concurrent ``acquire_token_for_client`` calls
    for N distinct scopes on one event loop, against N concurrent plain ``httpx`` POSTs through
    the same transport (the floor). The floor sends the same request msal_async sends: the same
    form and the same headers (msal's ``x-client-*`` and telemetry headers, ``client-request-id``,
    as recorded from our warm-up request), since httpx's own cost grows with every header
    (its cookie handling copies them, twice per request). Target: ours <= 1.5x the floor. The
    bare form without those headers is reported beside it, for information.
(b) Sequential fill of one tenant with distinct scopes (5,000): CPU per fetch over the last
    window (500) against the first; msal_async and msal 1.39 (its ``http_client`` answers from
    the same handler) side by side. Target: ours last/first <= 1.3x.
(c) Cache-hit latency of ``acquire_token_for_client`` with 1 and 10,000 tokens in the tenant
    (both caches filled with the same events through ``token_cache.add``). Target: >= 10x msal.

Each measurement is repeated (3 rounds in a full run, 9 for the short (a) and (c)) and reported
as the median with the spread (min-max); the JSON goes to ``benchmarks/results/core.json``. Run through
``benchmarks/run.py`` or alone: ``python benchmarks/core.py [--quick] [--backend trio]
[--profile]`` (``--profile`` prints cProfile's top entries of one (a) run of ours).
"""

from __future__ import annotations

import cProfile
import gc
import io
import json
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from itertools import count
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import anyio
import httpx
import msal

import msal_async

TENANT = "7f3c1a52-3d1e-4c7b-9a0e-5b8d2f6e4c1a"
HOST = "login.microsoftonline.com"
AUTHORITY = f"https://{HOST}/{TENANT}"
TOKEN_ENDPOINT = f"{AUTHORITY}/oauth2/v2.0/token"
CLIENT_ID = "3b0d8c6e-5f2a-4e71-8c9d-1a2b3c4d5e6f"
SECRET = "bench-secret"
HIT_SCOPE = "api://core-hit/.default"
RESULTS = Path(__file__).resolve().parent / "results" / "core.json"

TARGET_COLD_VS_HTTPX = 1.5
TARGET_FILL_GROWTH = 1.3
TARGET_HIT_SPEEDUP = 10.0

_METADATA = {
    "authorization_endpoint": f"{AUTHORITY}/oauth2/v2.0/authorize",
    "token_endpoint": TOKEN_ENDPOINT,
    "issuer": f"https://{HOST}/{TENANT}/v2.0",
}


# What httpx.AsyncClient adds to every request by itself (its defaults and the body's framing).
_SET_BY_HTTPX_CLIENT = frozenset(
    {"host", "content-length", "content-type", "accept-encoding", "connection", "user-agent"}
)


@dataclass(frozen=True)
class Plan:
    """Sizes and repetitions of one run."""

    concurrent: int
    fill: int
    window: int
    hit_sizes: tuple[int, ...]
    hit_calls: int
    rounds: int
    #: (a) and (c) are short (a second or two a run) and noisy on a shared machine: more rounds.
    short_rounds: int


FULL = Plan(
    concurrent=1_000,
    fill=5_000,
    window=500,
    hit_sizes=(1, 10_000),
    hit_calls=5_000,
    rounds=3,
    short_rounds=9,
)
QUICK = Plan(
    concurrent=100,
    fill=400,
    window=50,
    hit_sizes=(1, 1_000),
    hit_calls=200,
    rounds=1,
    short_rounds=1,
)


# --- the in-process authority ---------------------------------------------------------------


class Authority:
    """Canned answers: OpenID configuration for a GET, a fresh token for a token POST."""

    def __init__(self) -> None:
        self._serial = count()
        #: The headers of the last token POST (minus what httpx sets itself).
        self.last_headers: dict[str, str] = {}

    def token_body(self, form: dict[str, str]) -> bytes:
        """A client-credentials answer for the form's scope."""
        return json.dumps(
            {
                "token_type": "Bearer",
                "expires_in": 3599,
                "ext_expires_in": 3599,
                "access_token": f"at-{next(self._serial)}-{form.get('scope', '')}",
            }
        ).encode()

    def handle(self, request: httpx.Request) -> httpx.Response:
        """The ``httpx.MockTransport`` handler."""
        headers = {"content-type": "application/json"}
        if request.method == "POST":
            self.last_headers = {
                k: v for k, v in request.headers.items() if k not in _SET_BY_HTTPX_CLIENT
            }
            form = dict(parse_qsl(request.content.decode()))
            return httpx.Response(200, content=self.token_body(form), headers=headers)
        return httpx.Response(200, content=json.dumps(_METADATA).encode(), headers=headers)


class _MsalResponse:
    status_code = 200
    headers: dict[str, str] = {}  # noqa: RUF012 (read-only)

    def __init__(self, body: bytes) -> None:
        self.text = body.decode()

    def raise_for_status(self) -> None:
        """Nothing to raise."""


class MsalSession:
    """msal's ``http_client``, answered by the same authority (no socket, no requests)."""

    def __init__(self, authority: Authority) -> None:
        self.authority = authority

    def get(self, url: str, **_: Any) -> _MsalResponse:
        return _MsalResponse(json.dumps(_METADATA).encode())

    def post(self, url: str, data: Any = None, **_: Any) -> _MsalResponse:
        form = {k: str(v) for k, v in (data or {}).items() if v is not None}
        return _MsalResponse(self.authority.token_body(form))

    def close(self) -> None:
        """Nothing to close."""


def _client(authority: Authority) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(authority.handle))


def _ours(http: httpx.AsyncClient, cache: Any = None) -> msal_async.ConfidentialClientApplication:
    return msal_async.ConfidentialClientApplication(
        CLIENT_ID,
        client_credential=SECRET,
        authority=AUTHORITY,
        http_client=http,
        instance_discovery=False,
        token_cache=cache,
    )


def _msal(authority: Authority, cache: Any = None) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        CLIENT_ID,
        client_credential=SECRET,
        authority=AUTHORITY,
        http_client=MsalSession(authority),
        instance_discovery=False,
        token_cache=cache,
    )


def _scope(i: int, tag: str = "s") -> str:
    return f"api://core-{tag}-{i}/.default"


# --- (a) concurrent cold fetches --------------------------------------------------------------


async def cold_ours(n: int, profile: cProfile.Profile | None = None) -> float:
    """CPU seconds per fetch: ``n`` concurrent distinct-scope fetches of one app."""
    async with _client(Authority()) as http:
        app = _ours(http)
        await app.acquire_token_for_client([_scope(-1, "warm")])  # discovery, not timed
        gc.collect()
        started = time.process_time()
        if profile is not None:
            profile.enable()
        async with anyio.create_task_group() as group:
            for i in range(n):
                group.start_soon(app.acquire_token_for_client, [_scope(i)])
        if profile is not None:
            profile.disable()
        return (time.process_time() - started) / n


async def our_headers() -> dict[str, str]:
    """The headers msal_async sends with a client-credentials request (one recorded)."""
    authority = Authority()
    async with _client(authority) as http:
        await _ours(http).acquire_token_for_client([_scope(-1, "headers")])
    return authority.last_headers


async def cold_httpx(n: int, headers: dict[str, str] | None = None) -> float:
    """CPU seconds per POST: ``n`` concurrent plain httpx POSTs of the same form, parsed.

    With ``headers`` (see :func:`our_headers`) every POST carries them, as ours do.
    """
    async with _client(Authority()) as http:
        await http.post(TOKEN_ENDPOINT, data=_form(_scope(-1, "warm")), headers=headers)

        async def post(i: int) -> None:
            response = await http.post(TOKEN_ENDPOINT, data=_form(_scope(i)), headers=headers)
            response.raise_for_status()
            assert "access_token" in response.json()

        gc.collect()
        started = time.process_time()
        async with anyio.create_task_group() as group:
            for i in range(n):
                group.start_soon(post, i)
        return (time.process_time() - started) / n


def _form(scope: str) -> dict[str, str]:
    return {
        "client_id": CLIENT_ID,
        "grant_type": "client_credentials",
        "client_info": "1",
        "scope": scope,
        "client_secret": SECRET,
    }


# --- (b) sequential fill ----------------------------------------------------------------------


def _windows(per_fetch: list[float], window: int) -> tuple[float, float]:
    return statistics.fmean(per_fetch[:window]), statistics.fmean(per_fetch[-window:])


async def fill_ours(total: int, window: int) -> tuple[float, float]:
    """(first window, last window) CPU seconds per fetch, filling one tenant in sequence."""
    async with _client(Authority()) as http:
        app = _ours(http)
        await app.acquire_token_for_client([_scope(-1, "warm")])
        samples = []
        for i in range(total):
            started = time.process_time()
            await app.acquire_token_for_client([_scope(i, "fill")])
            samples.append(time.process_time() - started)
    return _windows(samples, window)


def fill_msal(total: int, window: int) -> tuple[float, float]:
    """msal's (first window, last window) CPU seconds per fetch for the same fill."""
    app = _msal(Authority())
    app.acquire_token_for_client([_scope(-1, "warm")])
    samples = []
    for i in range(total):
        started = time.process_time()
        app.acquire_token_for_client([_scope(i, "fill")])
        samples.append(time.process_time() - started)
    return _windows(samples, window)


# --- (c) cache hits ---------------------------------------------------------------------------


def _events(others: int) -> list[dict[str, Any]]:
    """Client-credential events: ``others`` other scopes, then the scope that is hit."""
    scopes = [_scope(i, "other") for i in range(others)] + [HIT_SCOPE]
    return [
        {
            "client_id": CLIENT_ID,
            "scope": [scope],
            "token_endpoint": TOKEN_ENDPOINT,
            "environment": HOST,
            "grant_type": "client_credentials",
            "response": {
                "token_type": "Bearer",
                "expires_in": 3599,
                "ext_expires_in": 3599,
                "access_token": f"cached-{i}",
            },
            "params": {},
            "data": {},
        }
        for i, scope in enumerate(scopes)
    ]


def hits_msal(size: int, calls: int) -> float:
    """msal's median seconds per cache hit with ``size`` tokens in the tenant."""
    cache = msal.TokenCache()
    now = int(time.time())
    for event in _events(size - 1):
        cache.add(event, now=now)
    app = _msal(Authority(), cache)
    assert app.acquire_token_for_client([HIT_SCOPE])["token_source"] == "cache"
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        app.acquire_token_for_client([HIT_SCOPE])
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


async def hits_ours(size: int, calls: int) -> float:
    """Our median seconds per cache hit with ``size`` tokens in the tenant."""
    cache = msal_async.TokenCache()
    now = int(time.time())
    for event in _events(size - 1):
        cache.add(event, now=now)
    async with _client(Authority()) as http:
        app = _ours(http, cache)
        first = await app.acquire_token_for_client([HIT_SCOPE])
        assert first["token_source"] == "cache"
        samples = []
        for _ in range(calls):
            started = time.perf_counter()
            await app.acquire_token_for_client([HIT_SCOPE])
            samples.append(time.perf_counter() - started)
    return statistics.median(samples)


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Results:
    """Every round's figures (seconds), by measurement."""

    cold_ours: list[float] = field(default_factory=list)
    cold_httpx: list[float] = field(default_factory=list)  # the same request as ours
    cold_httpx_form: list[float] = field(default_factory=list)  # the form alone
    fill_ours: list[tuple[float, float]] = field(default_factory=list)
    fill_msal: list[tuple[float, float]] = field(default_factory=list)
    hits_ours: dict[int, list[float]] = field(default_factory=dict)
    hits_msal: dict[int, list[float]] = field(default_factory=dict)


def measure(plan: Plan, backend: str) -> Results:
    """Run every measurement (``short_rounds`` or ``rounds`` times), interleaving the libraries."""
    out = Results()
    headers = anyio.run(our_headers, backend=backend)
    for _ in range(plan.short_rounds):
        out.cold_httpx_form.append(anyio.run(cold_httpx, plan.concurrent, backend=backend))
        out.cold_httpx.append(anyio.run(cold_httpx, plan.concurrent, headers, backend=backend))
        out.cold_ours.append(anyio.run(cold_ours, plan.concurrent, backend=backend))
        for size in plan.hit_sizes:
            out.hits_msal.setdefault(size, []).append(hits_msal(size, plan.hit_calls))
            ours = anyio.run(hits_ours, size, plan.hit_calls, backend=backend)
            out.hits_ours.setdefault(size, []).append(ours)
    for _ in range(plan.rounds):
        out.fill_ours.append(anyio.run(fill_ours, plan.fill, plan.window, backend=backend))
        out.fill_msal.append(fill_msal(plan.fill, plan.window))
    return out


def profile_cold(n: int, backend: str, top: int = 25) -> str:
    """cProfile's top entries (by own time) of one (a) run of ours."""
    profile = cProfile.Profile()
    anyio.run(cold_ours, n, profile, backend=backend)
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(top)
    return text.getvalue()


def _spread(values: Sequence[float], scale: float = 1e6, unit: str = "us") -> str:
    mid = statistics.median(values)
    if len(values) == 1:
        return f"{mid * scale:.1f} {unit}"
    return f"{mid * scale:.1f} {unit} ({min(values) * scale:.1f}-{max(values) * scale:.1f})"


def _ratio_spread(ratios: Sequence[float]) -> str:
    mid = statistics.median(ratios)
    if len(ratios) == 1:
        return f"{mid:.2f}x"
    return f"{mid:.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def render(plan: Plan, results: Results) -> tuple[str, dict[str, Any]]:
    """The report's table and the JSON document."""
    cold = [o / h for o, h in zip(results.cold_ours, results.cold_httpx, strict=True)]
    cold_form = [o / h for o, h in zip(results.cold_ours, results.cold_httpx_form, strict=True)]
    growth_ours = [last / first for first, last in results.fill_ours]
    growth_msal = [last / first for first, last in results.fill_msal]
    lines = [
        (
            f"Core engine (issue 8): in-process httpx.MockTransport, canned answers; median of"
            f" {plan.rounds} round(s), spread (min-max) in parentheses"
        ),
        (
            f"(a) {plan.concurrent:,} concurrent distinct-scope cold fetches, CPU per fetch"
            f" ({plan.short_rounds} rounds):"
        ),
        f"    plain httpx POSTs, the same request:   {_spread(results.cold_httpx)}",
        f"    plain httpx POSTs, the form alone:     {_spread(results.cold_httpx_form)}",
        f"    msal_async:                            {_spread(results.cold_ours)}",
        (
            f"    ours / httpx, same request: {_ratio_spread(cold)}"
            f"   target <= {TARGET_COLD_VS_HTTPX:g}x"
            f"   {_verdict(statistics.median(cold) <= TARGET_COLD_VS_HTTPX)}"
        ),
        f"    ours / httpx, form alone:   {_ratio_spread(cold_form)}   (information)",
        (
            f"(b) sequential fill of one tenant with {plan.fill:,} scopes, CPU per fetch,"
            f" first {plan.window:,} vs last {plan.window:,}:"
        ),
        (
            f"    msal_async: first {_spread([f for f, _ in results.fill_ours])}, last"
            f" {_spread([last for _, last in results.fill_ours])}, last/first"
            f" {_ratio_spread(growth_ours)}   target <= {TARGET_FILL_GROWTH:g}x"
            f"   {_verdict(statistics.median(growth_ours) <= TARGET_FILL_GROWTH)}"
        ),
        (
            f"    msal 1.39:  first {_spread([f for f, _ in results.fill_msal])}, last"
            f" {_spread([last for _, last in results.fill_msal])}, last/first"
            f" {_ratio_spread(growth_msal)}"
        ),
        (
            "    msal / ours, last window: "
            + _ratio_spread(
                [m[1] / o[1] for m, o in zip(results.fill_msal, results.fill_ours, strict=True)]
            )
        ),
        f"(c) cache hit, acquire_token_for_client, median per call ({plan.short_rounds} rounds):",
    ]
    hit_ratios: dict[int, list[float]] = {}
    for size in plan.hit_sizes:
        theirs, ours = results.hits_msal[size], results.hits_ours[size]
        ratios = [t / o for t, o in zip(theirs, ours, strict=True)]
        hit_ratios[size] = ratios
        lines.append(
            f"    {size:>6,} tokens: msal {_spread(theirs)}, ours {_spread(ours)}, msal/ours"
            f" {_ratio_spread(ratios)}   target >= {TARGET_HIT_SPEEDUP:g}x"
            f"   {_verdict(statistics.median(ratios) >= TARGET_HIT_SPEEDUP)}"
        )
    document = {
        "python": platform.python_version(),
        "msal": msal.__version__,
        "msal_async": msal_async.__version__,
        "httpx": httpx.__version__,
        "plan": asdict(plan),
        "seconds": {
            "cold_ours": results.cold_ours,
            "cold_httpx": results.cold_httpx,
            "cold_httpx_form": results.cold_httpx_form,
            "fill_ours_first_last": results.fill_ours,
            "fill_msal_first_last": results.fill_msal,
            "hits_ours": {str(k): v for k, v in results.hits_ours.items()},
            "hits_msal": {str(k): v for k, v in results.hits_msal.items()},
        },
        "ratios": {
            "cold_ours_over_httpx": cold,
            "cold_ours_over_httpx_form": cold_form,
            "fill_growth_ours": growth_ours,
            "fill_growth_msal": growth_msal,
            "hit_msal_over_ours": {str(k): v for k, v in hit_ratios.items()},
        },
    }
    return "\n".join(lines), document


def report(*, quick: bool = False, backend: str = "asyncio", write: bool = True) -> str:
    """Run the issue-8 benchmark and render its table.

    Args:
        quick: small sizes, one round (a smoke test; figures not meaningful).
        backend: our event loop.
        write: save the JSON (a full run only) to ``benchmarks/results/core.json``.

    Returns:
        The report text.
    """
    plan = QUICK if quick else FULL
    text, document = render(plan, measure(plan, backend))
    if write and not quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(document, indent=2) + "\n")
        text += f"\n    (JSON: benchmarks/results/{RESULTS.name})"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Print the report (and a profile of (a) with ``--profile``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    backend = (
        "trio" if "--backend" in args and args[args.index("--backend") + 1] == "trio" else "asyncio"
    )
    quick = "--quick" in args
    print(report(quick=quick, backend=backend))
    if "--profile" in args:
        print(profile_cold((QUICK if quick else FULL).concurrent, backend))
    return 0


if __name__ == "__main__":
    sys.exit(main())
