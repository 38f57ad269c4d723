"""``msal-async demo``: the end-to-end tour against the embedded emulator."""

from __future__ import annotations

import argparse
import time
from typing import Any

import anyio
import httpx

from .. import ConfidentialClientApplication, TokenResult, __version__
from .common import CliError

__all__ = ["add_parser"]

_DEMO_SCOPE = "api://msal-async-demo/.default"


def add_parser(commands: Any) -> None:
    """Register ``demo``.

    Args:
        commands: the subparsers action.
    """
    demo = commands.add_parser(
        "demo",
        help="acquire tokens from the embedded emulator (a tour; nothing leaves this machine)",
        description="Acquire tokens from an in-process authority emulator: a first call, a "
        "cache hit, then many concurrent calls for a new scope sharing one request.",
    )
    demo.add_argument(
        "--backend", choices=["asyncio", "trio"], default="asyncio", help="the event loop to run on"
    )
    demo.add_argument(
        "--concurrency",
        type=int,
        default=500,
        help="how many concurrent calls for a new scope (default 500)",
    )
    demo.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    if args.concurrency < 1:
        msg = "--concurrency must be at least 1"
        raise CliError(msg)
    status: int = anyio.run(_demo, args.concurrency, backend=args.backend)
    return status


def _shorten(token: str) -> str:
    return f"{token[:12]}...{token[-6:]} ({len(token)} chars)" if len(token) > 24 else "***"


async def _demo(concurrency: int) -> int:
    from ..testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, AuthorityEmulator

    emulator = AuthorityEmulator()
    authority = f"https://login.microsoftonline.com/{DEMO_TENANT_ID}"
    print(f"msal-async {__version__} demo, against the embedded authority emulator")
    print(f"  authority : {authority} (served in-process; nothing leaves this machine)")
    print(f"  client id : {DEMO_CLIENT_ID}")
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as http,
        ConfidentialClientApplication(
            DEMO_CLIENT_ID,
            client_credential=DEMO_CLIENT_SECRET,
            authority=authority,
            http_client=http,
        ) as app,
    ):
        rows: list[tuple[str, TokenResult, float]] = []
        for label in ("first call", "second call"):
            started = time.perf_counter()
            result = await app.acquire_token_for_client([_DEMO_SCOPE])
            rows.append((label, result, time.perf_counter() - started))
            if "error" in result:
                print(f"  {label}: error {result['error']}: {result.get('error_description')}")
                return 1
        before = emulator.counts["client_credentials"]
        scope = "api://msal-async-demo-2/.default"
        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(concurrency):
                tg.start_soon(app.acquire_token_for_client, [scope])
        stampede = time.perf_counter() - started
        sent = emulator.counts["client_credentials"] - before
    print(f"  scope     : {_DEMO_SCOPE}")
    for label, result, seconds in rows:
        print(
            f"  {label:<11}: {result['token_source']:<17} {seconds * 1e3:8.3f} ms  "
            f"token {_shorten(result['access_token'])}, expires in {result['expires_in']} s"
        )
    speedup = rows[0][2] / rows[1][2] if rows[1][2] else float("inf")
    print(f"  the cache hit was {speedup:,.0f}x faster than the first call and sent no request")
    print(
        f"  {concurrency} concurrent calls for a new scope sent {sent} token request(s) "
        f"in {stampede * 1e3:.1f} ms (single flight)"
    )
    return 0
