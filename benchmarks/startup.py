"""Start-up cost: import time and RSS, msal_async vs msal vs azure.identity.aio.

``python benchmarks/startup.py [--runs 15] [--quick]``

Every sample is a fresh interpreter (``python -S``-free, the same venv) that times one import
statement with ``time.perf_counter`` and then reads its resident set size from
``/proc/self/status``. The rows run interleaved, round by round, so that other load on the
machine bills every row alike. Each row runs twice: with trio importable, and with trio hidden
by a ``sys.meta_path`` finder that refuses it (as on a machine without trio: httpcore and anyio
import trio whenever they can). Reported: best and median milliseconds, median RSS after the
import, and ratios to ``import msal``. Results go to ``benchmarks/results/startup.json``.
Benchmarks never assert; the exit status is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
TARGET = 0.5  # import msal_async / import msal (issue 9)

#: name -> import statement, timed in a fresh process.
STATEMENTS = {
    "import msal_async": "import msal_async",
    "from msal_async import ConfidentialClientApplication": (
        "from msal_async import ConfidentialClientApplication"
    ),
    "import msal": "import msal",
    "import azure.identity.aio": "import azure.identity.aio",
}
BASELINE = "import msal"

# The child: optionally hide trio, time the statement, report ms, RSS and what got loaded.
CHILD = """
import sys, time
if {hide_trio!r}:
    class _NoTrio:
        @staticmethod
        def find_spec(name, path=None, target=None):
            if name == "trio" or name.startswith("trio."):
                raise ModuleNotFoundError(f"No module named {{name!r}} (hidden)", name=name)
            return None
    sys.meta_path.insert(0, _NoTrio)
start, cpu_start = time.perf_counter(), time.process_time()
{statement}
elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
rss_kb = 0
with open("/proc/self/status") as status:
    for line in status:
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
heavy = sorted(m for m in ("httpx", "httpcore", "h11", "cryptography", "joserfc", "trio",
                           "anyio", "requests") if m in sys.modules)
import json
print(json.dumps({{
    "ms": elapsed * 1000, "cpu_ms": cpu * 1000, "rss_mb": rss_kb / 1024, "loaded": heavy,
    "modules": len(sys.modules),
}}))
"""


def sample(statement: str, *, hide_trio: bool) -> dict[str, Any]:
    """One fresh interpreter timing ``statement``."""
    code = CHILD.format(statement=statement, hide_trio=hide_trio)
    done = subprocess.run(  # noqa: S603 - our own interpreter running our own snippet
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def available(statement: str) -> bool:
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", statement], capture_output=True, check=False
    )
    return done.returncode == 0


def run(runs: int, rows: list[str]) -> dict[str, dict[str, Any]]:
    """Interleaved samples: every round runs every row once, in both trio settings."""
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {
        name: {"trio": [], "no_trio": []} for name in rows
    }
    for name in rows:  # warm the OS page cache and the .pyc files: not billed to a row
        sample(STATEMENTS[name], hide_trio=False)
    for r in range(runs):
        order = rows if r % 2 == 0 else rows[::-1]
        for name in order:
            for setting in ("trio", "no_trio"):
                samples[name][setting].append(
                    sample(STATEMENTS[name], hide_trio=setting == "no_trio")
                )
    return summarize(samples)


def summarize(samples: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, dict[str, Any]]:
    report: dict[str, dict[str, Any]] = {}
    for name, settings in samples.items():
        report[name] = {}
        for setting, runs in settings.items():
            ms = [s["ms"] for s in runs]
            cpu = [s["cpu_ms"] for s in runs]
            rss = [s["rss_mb"] for s in runs]
            report[name][setting] = {
                "best_ms": min(ms),
                "median_ms": statistics.median(ms),
                "worst_ms": max(ms),
                "median_cpu_ms": statistics.median(cpu),
                "median_rss_mb": statistics.median(rss),
                "modules": runs[-1]["modules"],
                "loaded": runs[-1]["loaded"],
                "samples_ms": ms,
            }
    base = report.get(BASELINE)
    for row in report.values():
        for setting, cell in row.items():
            if base is None:
                continue
            ref = base[setting]
            cell["ratio_best"] = cell["best_ms"] / ref["best_ms"]
            cell["ratio_median"] = cell["median_ms"] / ref["median_ms"]
            cell["ratio_cpu"] = cell["median_cpu_ms"] / ref["median_cpu_ms"]
            # Per-round ratio of the medians' spread: each round ran both rows back to back.
            pairs = zip(cell["samples_ms"], ref["samples_ms"], strict=True)
            ratios = sorted(a / b for a, b in pairs)
            cell["ratio_round_range"] = [ratios[0], ratios[-1]]
    return report


def print_table(report: dict[str, dict[str, Any]], runs: int) -> None:
    print(
        f"Import time in fresh processes ({runs} interleaved rounds; wall ms, CPU ms, "
        "RSS after import, modules loaded)\n"
    )
    head = (
        f"{'statement':<54} {'trio':<10} {'best':>7} {'median':>7} {'worst':>7} {'CPU':>7} "
        f"{'RSS MB':>6} {'mods':>5} {'/msal best':>10} {'/msal med':>9} {'/msal CPU':>9}"
    )
    print(head)
    for name, settings in report.items():
        for setting, cell in settings.items():
            label = "importable" if setting == "trio" else "hidden"
            ratio_best = f"{cell['ratio_best']:.2f}x" if "ratio_best" in cell else ""
            ratio_med = f"{cell['ratio_median']:.2f}x" if "ratio_median" in cell else ""
            ratio_cpu = f"{cell['ratio_cpu']:.2f}x" if "ratio_cpu" in cell else ""
            print(
                f"{name:<54} {label:<10} {cell['best_ms']:>7.1f} {cell['median_ms']:>7.1f} "
                f"{cell['worst_ms']:>7.1f} {cell['median_cpu_ms']:>7.1f} "
                f"{cell['median_rss_mb']:>6.1f} {cell['modules']:>5} "
                f"{ratio_best:>10} {ratio_med:>9} {ratio_cpu:>9}"
            )
    print("\nLoaded by the statement (of httpx, httpcore, h11, cryptography, joserfc, trio, ...):")
    for name, settings in report.items():
        print(f"  {name}: {', '.join(settings['trio']['loaded']) or 'none of them'}")
    ours = report.get("import msal_async")
    if ours is not None and "ratio_median" in ours["trio"]:
        print("\nTarget: import msal_async <= 0.5x import msal (median), with and without trio")
        for setting, label in (("trio", "trio importable"), ("no_trio", "trio hidden")):
            ratio = ours[setting]["ratio_median"]
            verdict = "PASS" if ratio <= TARGET else "MISS"
            print(f"  {label}: {ratio:.2f}x: {verdict} (CPU {ours[setting]['ratio_cpu']:.2f}x)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="interleaved rounds")
    parser.add_argument("--quick", action="store_true", help="1 round (a smoke test)")
    parser.add_argument("--out", type=Path, default=RESULTS / "startup.json")
    args = parser.parse_args(argv)
    runs = 1 if args.quick else args.runs
    rows = [name for name, statement in STATEMENTS.items() if available(statement)]
    report = run(runs, rows)
    print_table(report, runs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "quick": args.quick,
        "runs": runs,
        "python": sys.version.split()[0],
        "when": time.strftime("%Y-%m-%d"),
    }
    args.out.write_text(json.dumps({"meta": meta, "rows": report}, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
