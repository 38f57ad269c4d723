"""Bytes per cached app token, msal_async vs msal: ``python benchmarks/memory.py [--quick]``.

Each library stores N client-credential tokens through its own cache path: msal's
``TokenCache.add(event)`` with the event its ``ConfidentialClientApplication`` builds, and
msal_async's ``TokenCache._write(event)`` (what ``CacheSession.commit`` calls after every
client-credential fetch) with the event our flow builds. Every token response is parsed from
its JSON body, as it arrives from the network, so no string is shared by accident; the access
tokens are 1,300 random characters (an Entra app token is 1.2-1.6 kB). Tokens go to one client
in 16 tenants, each with its own scope.

Each measurement runs in a fresh process: ``tracemalloc`` starts after the imports and the
empty cache, the N tokens are written, the events dropped and garbage collected, and the
traced memory still held is divided by N. Reported per token: all bytes, and the bytes beyond
the access token string itself (the library's own overhead). Rounds alternate the libraries.
Benchmarks never assert; the exit status is 0 whatever the figures.
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
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = (10_000, 100_000)
QUICK_SIZES = (2_000,)
LIBRARIES = ("msal_async", "msal")
CLIENT_ID = "5f1b4a4e-2c0d-4b8e-9c43-2b1e8f5d7a10"
ENVIRONMENT = "login.microsoftonline.com"
TENANTS = [str(uuid.UUID(int=0xC0FFEE00 + i)) for i in range(16)]
TOKEN_CHARS = 1300
TARGET = 1.0  # ours / msal, bytes per token (issue 9)


def response_body(i: int) -> str:
    """A token response as Entra sends it for a client-credential grant."""
    token = (os.urandom(TOKEN_CHARS * 3 // 4).hex())[:TOKEN_CHARS]
    return json.dumps(
        {
            "token_type": "Bearer",
            "expires_in": 3599,
            "ext_expires_in": 3599,
            "access_token": token,
        }
    )


def scope(i: int) -> str:
    return f"api://resource-{i}/.default"


def write_msal(count: int, now: int) -> Any:
    """Fill msal's cache as its ``acquire_token_for_client`` does; returns the cache."""
    import msal

    cache = msal.TokenCache()
    for i in range(count):
        tenant = TENANTS[i % len(TENANTS)]
        event = {
            "client_id": CLIENT_ID,
            "scope": [scope(i)],
            "token_endpoint": f"https://{ENVIRONMENT}/{tenant}/oauth2/v2.0/token",
            "environment": ENVIRONMENT,
            "grant_type": "client_credentials",
            "params": {},
            "data": {},
            "response": json.loads(response_body(i)),
        }
        cache.add(event, now=now)
    return cache


def write_ours(count: int, now: int) -> Any:
    """Fill our cache as the client-credential flow commits; returns the cache."""
    from msal_async import TokenCache
    from msal_async._oauth2.user_tokens import token_event

    cache = TokenCache()
    for i in range(count):
        tenant = TENANTS[i % len(TENANTS)]
        event = token_event(
            client_id=CLIENT_ID,
            scopes=[scope(i)],
            token_endpoint=f"https://{ENVIRONMENT}/{tenant}/oauth2/v2.0/token",
            grant_type="client_credentials",
            response=json.loads(response_body(i)),
            data={},
            environment=ENVIRONMENT,
        )
        cache._write(event, now)
    return cache


def measure(library: str, count: int) -> dict[str, float]:
    """Bytes held per token after writing ``count`` tokens (run in a fresh process)."""
    import msal  # noqa: F401  (both libraries imported: neither one's import is billed)

    import msal_async._cache.token_cache
    import msal_async._oauth2.user_tokens  # noqa: F401

    write = write_ours if library == "msal_async" else write_msal
    now = int(time.time())
    write(10, now)  # first-use caches (interned names, compiled regexes) are not per token
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    cache = write(count, now)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert cache is not None
    token_string = sys.getsizeof("x" * TOKEN_CHARS)
    return {"bytes_per_token": held / count, "overhead_per_token": held / count - token_string}


def child(library: str, count: int) -> dict[str, float]:
    done = subprocess.run(  # noqa: S603 - our own interpreter running this file
        [sys.executable, __file__, "--child", library, str(count)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one small size, one round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+")
    parser.add_argument("--out", type=Path, default=RESULTS / "memory.json")
    parser.add_argument("--child", nargs=2, metavar=("LIBRARY", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child[0], int(args.child[1]))))
        return 0
    sizes = args.sizes or (QUICK_SIZES if args.quick else SIZES)
    rounds = 1 if args.quick else args.rounds
    samples: dict[int, dict[str, list[dict[str, float]]]] = {
        n: {lib: [] for lib in LIBRARIES} for n in sizes
    }
    for n in sizes:
        for r in range(rounds):
            order = LIBRARIES if r % 2 == 0 else LIBRARIES[::-1]
            for lib in order:
                samples[n][lib].append(child(lib, n))
    report = summarize(samples)
    print_table(report, rounds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "meta": {
                    "quick": args.quick,
                    "rounds": rounds,
                    "token_chars": TOKEN_CHARS,
                    "python": sys.version.split()[0],
                    "when": time.strftime("%Y-%m-%d"),
                },
                "sizes": report,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwrote {args.out}")
    return 0


def summarize(
    samples: dict[int, dict[str, list[dict[str, float]]]],
) -> dict[str, dict[str, Any]]:
    report: dict[str, dict[str, Any]] = {}
    for n, by_lib in samples.items():
        row: dict[str, Any] = {}
        for lib, runs in by_lib.items():
            total = [s["bytes_per_token"] for s in runs]
            over = [s["overhead_per_token"] for s in runs]
            row[lib] = {
                "bytes_per_token": statistics.median(total),
                "bytes_per_token_range": [min(total), max(total)],
                "overhead_per_token": statistics.median(over),
                "samples": runs,
            }
        ratios = [
            a["bytes_per_token"] / b["bytes_per_token"]
            for a, b in zip(by_lib["msal_async"], by_lib["msal"], strict=True)
        ]
        row["ratio"] = statistics.median(ratios)
        row["ratio_range"] = [min(ratios), max(ratios)]
        row["overhead_ratio"] = row["msal_async"]["overhead_per_token"] / max(
            row["msal"]["overhead_per_token"], 1.0
        )
        report[str(n)] = row
    return report


def print_table(report: dict[str, dict[str, Any]], rounds: int) -> None:
    print(
        f"Bytes per cached app token (tracemalloc, median of {rounds} fresh processes; "
        f"access tokens of {TOKEN_CHARS} chars)\n"
    )
    head = (
        f"{'tokens':>8} {'library':<11} {'B/token':>9} {'range':>15} {'beyond the AT string':>21}"
    )
    print(head)
    for n, row in report.items():
        for lib in LIBRARIES:
            cell = row[lib]
            low, high = cell["bytes_per_token_range"]
            print(
                f"{int(n):>8,} {lib:<11} {cell['bytes_per_token']:>9,.0f} "
                f"{f'{low:,.0f}-{high:,.0f}':>15} {cell['overhead_per_token']:>21,.0f}"
            )
        low, high = row["ratio_range"]
        verdict = "PASS" if row["ratio"] <= TARGET else "MISS"
        print(
            f"{'':>8} {'ours/msal':<11} {row['ratio']:>8.2f}x {f'{low:.2f}-{high:.2f}':>15} "
            f"{row['overhead_ratio']:>20.2f}x  target <= {TARGET:.1f}x: {verdict}"
        )


if __name__ == "__main__":
    sys.exit(main())
