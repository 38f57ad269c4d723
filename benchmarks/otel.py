"""What OpenTelemetry costs on the cache-hit path: off (the default), on with the API only, on
with the SDK recording, and the code before the hooks existed, side by side.

``python benchmarks/otel.py [--calls 20000] [--rounds 3] [--base REF]``

Each measurement runs in a fresh child process: a ConfidentialClientApplication (in-process
authority emulator) fetches one token, then ``acquire_token_for_client`` (a cache hit) and
``acquire_token_silent`` (a user token from the cache) are timed over ``--calls`` calls, best
of 5 batches. The modes alternate round by round:

- ``base``: msal_async as of ``--base`` (default: the commit before OpenTelemetry support,
  ``git merge-base HEAD main``), exported with ``git archive``: the reference;
- ``off``: this tree, not instrumented (what runs without the ``otel`` extra, or without
  ``msal_async.instrument()``);
- ``api``: ``instrument()`` with no SDK configured: OpenTelemetry's no-op tracer and meter;
- ``sdk``: ``instrument()`` with the SDK's TracerProvider (spans made, not exported) and a
  MeterProvider with an in-memory reader.

The order of the modes rotates round by round. Ratios are against the first mode (``base``);
the spread is min..max over the rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODES = ("base", "off", "api", "sdk")
SCOPE = ["api://resource/.default"]


async def _measure(mode: str, calls: int) -> dict[str, float]:
    import httpx

    import msal_async
    from msal_async.testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, AuthorityEmulator

    if mode in ("api", "sdk"):
        providers: dict[str, object] = {}
        if mode == "sdk":
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.metrics.export import InMemoryMetricReader
            from opentelemetry.sdk.trace import TracerProvider

            providers = {
                "tracer_provider": TracerProvider(),
                "meter_provider": MeterProvider(metric_readers=[InMemoryMetricReader()]),
            }
        msal_async.instrument(**providers)  # type: ignore[attr-defined,unused-ignore]
    emulator = AuthorityEmulator()
    username = "bench@contoso.onmicrosoft.com"
    emulator.add_user(username, password="bench-password")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as http:
        app = msal_async.ConfidentialClientApplication(
            DEMO_CLIENT_ID,
            client_credential=DEMO_CLIENT_SECRET,
            authority=f"https://login.microsoftonline.com/{emulator.tenant_id}",
            http_client=http,
        )
        assert "access_token" in await app.acquire_token_for_client(SCOPE)
        signed_in = await app.acquire_token_by_username_password(
            username, "bench-password", ["User.Read"]
        )
        assert "access_token" in signed_in, signed_in
        [account] = await app.get_accounts()

        async def client_hit() -> None:
            for _ in range(calls):
                await app.acquire_token_for_client(SCOPE)

        async def silent_hit() -> None:
            for _ in range(calls):
                await app.acquire_token_silent(["User.Read"], account)

        found: dict[str, float] = {}
        for name, run in (("client", client_hit), ("silent", silent_hit)):
            best = float("inf")
            for _ in range(5):
                started = time.perf_counter()
                await run()
                best = min(best, (time.perf_counter() - started) / calls)
            found[name] = best * 1e6
        assert (await app.acquire_token_for_client(SCOPE))["token_source"] == "cache"
    found["module"] = 0.0
    print(json.dumps({"mode": mode, "file": msal_async.__file__, **found}), flush=True)
    return found


def _child(mode: str, calls: int, base_dir: str | None) -> dict[str, float]:
    env = dict(os.environ)
    if mode == "base":
        assert base_dir is not None
        env["PYTHONPATH"] = base_dir
    else:
        env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(  # noqa: S603 - our own interpreter running this file
        [sys.executable, __file__, "--child", mode, "--calls", str(calls)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=tempfile.gettempdir(),  # so that no checkout in the cwd shadows PYTHONPATH
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    expected = base_dir if mode == "base" else str(ROOT)
    assert str(result["file"]).startswith(str(expected)), (mode, result["file"])
    return {k: v for k, v in result.items() if isinstance(v, float)}


def _git(*args: str) -> bytes:
    command = ["git", "-C", str(ROOT), *args]
    return subprocess.run(command, capture_output=True, check=True).stdout  # noqa: S603


def _export(ref: str, into: str) -> None:
    tar = ["tar", "-x", "-C", into]
    subprocess.run(tar, input=_git("archive", ref, "msal_async"), check=True)  # noqa: S603


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--base", default=None, help="git ref of the reference (see above)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import anyio

        anyio.run(_measure, args.child, args.calls)
        return
    base = args.base or _git("merge-base", "HEAD", "main").decode().strip()
    modes = [mode for mode in MODES if mode in args.modes]
    runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
    with tempfile.TemporaryDirectory() as base_dir:
        _export(base, base_dir)
        for round_ in range(args.rounds):
            for mode in modes[round_ % len(modes) :] + modes[: round_ % len(modes)]:  # rotated
                runs[mode].append(_child(mode, args.calls, base_dir))
    print(f"cache-hit latency, us per call (best of 5 batches of {args.calls}), base = {base[:10]}")
    print(f"{'mode':<6} {'path':<7} {'median':>8} {'spread':>17} {'ratio to base':>14}")
    for path in ("client", "silent"):
        reference = statistics.median(r[path] for r in runs[modes[0]])
        for mode in modes:
            values = [r[path] for r in runs[mode]]
            median = statistics.median(values)
            spread = f"{min(values):.3f}..{max(values):.3f}"
            print(f"{mode:<6} {path:<7} {median:8.3f} {spread:>17} {median / reference:14.3f}")


if __name__ == "__main__":
    main()
