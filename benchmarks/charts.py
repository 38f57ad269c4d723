"""Draw the docs' benchmark charts from the results JSON that ``peers.py`` writes.

    python benchmarks/charts.py [RESULTS_JSON] [--out docs/images]

Writes ``bench-hits.png``, ``bench-cold.png`` and ``bench-stampede.png`` (matplotlib, from the
``docs`` extra). Each bar is the median of the rounds; the whiskers span the lowest and highest
round, so the spread on a shared machine is visible.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import matplotlib.ticker

HERE = Path(__file__).resolve().parent
DEFAULT_RESULTS = HERE / "results" / "peers.json"
DEFAULT_OUT = HERE.parent / "docs" / "images"
COLOURS = {"msal_async": "#1f6feb", "msal": "#8c959f", "azure.identity.aio": "#d4a72c"}


def _spread(values: Sequence[float]) -> tuple[float, float, float]:
    middle = statistics.median(values)
    return middle, middle - min(values), max(values) - middle


def _caption(meta: dict[str, Any]) -> str:
    versions = ", ".join(f"{name} {version}" for name, version in meta["versions"].items())
    return (
        f"{versions}; Python {meta['python']}, {meta['cpus']} CPUs; emulator over HTTPS on "
        f"127.0.0.1 with {meta['latency_s'] * 1e3:g} ms latency; median of {meta['rounds']} "
        f"round(s), whiskers: lowest and highest{' (QUICK: not meaningful)' if meta['quick'] else ''}"
    )


def _finish(figure: Any, axes: Any, meta: dict[str, Any], path: Path) -> None:
    axes.legend(frameon=False)
    axes.spines[["top", "right"]].set_visible(False)
    figure.text(0.01, 0.01, _caption(meta), fontsize=7, color="#57606a", wrap=True)
    figure.tight_layout(rect=(0, 0.05, 1, 1))
    figure.savefig(path, dpi=120)
    plt.close(figure)


def hits_chart(results: dict[str, Any], path: Path) -> None:
    """Cache-hit latency per call at each cache size (log scale), one bar per library."""
    hits = results["hits"]
    sizes: list[int] = hits["sizes"]
    libraries: dict[str, list[list[float]]] = hits["rounds_us"]
    figure, axes = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / len(libraries)
    for index, (name, per_size) in enumerate(libraries.items()):
        spreads = [_spread(rounds) for rounds in per_size]
        positions = [i + (index - (len(libraries) - 1) / 2) * width for i in range(len(sizes))]
        axes.bar(
            positions,
            [s[0] for s in spreads],
            width,
            yerr=[[s[1] for s in spreads], [s[2] for s in spreads]],
            label=name,
            color=COLOURS.get(name),
            capsize=3,
        )
        for x, (value, _, up) in zip(positions, spreads, strict=True):
            axes.annotate(f"{value:,.1f}", (x, value + up), ha="center", va="bottom", fontsize=7)
    axes.set_yscale("log")
    axes.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    labels = [f"{size:,} other token{'' if size == 1 else 's'}" for size in sizes]
    axes.set_xticks(range(len(sizes)), labels)
    axes.set_ylabel("µs per cache hit (log scale, lower is better)")
    axes.set_title("acquire_token_for_client / get_token served from the cache")
    _finish(figure, axes, results["meta"], path)


def cold_chart(results: dict[str, Any], path: Path) -> None:
    """Throughput of N distinct-scope fetches on a cold cache."""
    cold = results["cold"]
    calls: int = cold["calls"]
    names = list(cold["walls_s"])
    spreads = [_spread([calls / wall for wall in cold["walls_s"][name]]) for name in names]
    figure, axes = plt.subplots(figsize=(8, 4))
    axes.bar(
        names,
        [s[0] for s in spreads],
        yerr=[[s[1] for s in spreads], [s[2] for s in spreads]],
        color=[COLOURS.get(name) for name in names],
        label=names,
        capsize=4,
    )
    for x, (value, _, up) in enumerate(spreads):
        axes.annotate(f"{value:,.0f}/s", (x, value + up), ha="center", va="bottom", fontsize=8)
    axes.set_ylabel("token requests per second (higher is better)")
    axes.set_title(
        f"{calls} distinct-scope fetches on a cold cache (msal: 64 threads; others: one loop)"
    )
    _finish(figure, axes, results["meta"], path)


def stampede_chart(results: dict[str, Any], path: Path) -> None:
    """Token requests sent by N concurrent callers of one token on a cold cache."""
    stampede = results["stampede"]
    names = list(stampede["results"])
    sent = [stampede["results"][name]["requests"] for name in names]
    figure, axes = plt.subplots(figsize=(8, 4))
    axes.bar(names, sent, color=[COLOURS.get(name) for name in names], label=names)
    for x, value in enumerate(sent):
        axes.annotate(f"{value:,}", (x, value), ha="center", va="bottom", fontsize=9)
    axes.set_ylabel("token requests sent (lower is better)")
    axes.set_title(
        f"{stampede['callers']} concurrent callers of one token on a cold cache (one run)"
    )
    _finish(figure, axes, results["meta"], path)


CHARTS = {
    "bench-hits.png": hits_chart,
    "bench-cold.png": cold_chart,
    "bench-stampede.png": stampede_chart,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Read the results and write the charts."""
    parser = argparse.ArgumentParser(prog="python benchmarks/charts.py", description=__doc__)
    parser.add_argument("results", nargs="?", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the PNGs")
    options = parser.parse_args(argv)
    results = json.loads(options.results.read_text())
    options.out.mkdir(parents=True, exist_ok=True)
    for name, draw in CHARTS.items():
        draw(results, options.out / name)
        print(options.out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
