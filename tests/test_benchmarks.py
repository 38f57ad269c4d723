"""Smoke test of ``benchmarks/run.py``: ``--quick`` runs in-process and prints every row.

Benchmarks never assert speed, and neither does this test: it checks that the runner works
end to end (server, both libraries, every measurement) and reports every figure and target.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

RUNNER = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


@pytest.fixture(scope="module")
def runner() -> Iterator[ModuleType]:
    """benchmarks/run.py, loaded as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("msal_async_benchmark_runner", RUNNER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


@pytest.mark.slow
@pytest.mark.parametrize(
    "options",
    [
        pytest.param([], id="asyncio-server-process"),
        pytest.param(["--backend", "trio", "--server", "thread"], id="trio-server-thread"),
    ],
)
def test_quick_run_prints_every_row(
    runner: ModuleType, options: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert runner.main(["--quick", *options]) == 0
    out = capsys.readouterr().out
    expected = [
        "(a) Cache hit",
        "1 other token ",
        "1,000 other tokens",
        "10,000 other tokens",
        "ours at 10,000 / ours at 1 (medians)",
        "(b) 50 distinct-scope cold fetches",
        "One token request alone",
        "N=50 distinct scopes, secret",
        "N=50 distinct scopes, certificate",
        runner.OURS,
        runner.MSAL_POOL,
        runner.AZURE,
        runner.FLOOR,
        "ours / msal pool, throughput",
        "ours / plain httpx, wall time",
    ]
    for text in expected:
        assert text in out, text
    for size in ("1 other token ", "1,000 other tokens", "10,000 other tokens"):
        [row] = [line for line in out.splitlines() if size in line]
        assert re.search(r"\d+\.\d+x\s+>= 10x\s+(PASS|MISS)", row), row
    for kind in ("secret", "certificate"):  # client CPU per request, for every client
        table = out.split(f"N=50 distinct scopes, {kind}")[1].split("\n\n")[0]
        for name in (runner.OURS, runner.MSAL_POOL, runner.AZURE):
            [row] = [line for line in table.splitlines() if name in line]
            assert re.search(r"\d+\.\d+\s+\d+\.\d+-\d+\.\d+", row), row
    targets = out.split("Targets (information only")[1].splitlines()[1:]
    # (a) two; (b) CPU vs azure-identity and vs msal for each credential, throughput, overhead
    assert len([line for line in targets if re.search(r": (PASS|MISS) \(", line)]) == 8
    assert "backend trio" in out if "trio" in options else "backend asyncio" in out
    core = out.split("Core engine (issue 8)")[1]
    same = r"ours / httpx, same request: \d+\.\d+x\s+target <= 1\.5x\s+(PASS|MISS)"
    assert re.search(same, core)
    assert re.search(r"ours / httpx, form alone: +\d+\.\d+x\s+\(information\)", core)
    assert re.search(r"msal_async: first .* last/first \d+\.\d+x\s+target", core)
    assert re.search(r"msal 1\.39:  first .* last/first \d+\.\d+x", core)
    assert len(re.findall(r"tokens: msal .* target >= 10x\s+(PASS|MISS)", core)) == 2


def _load(name: str) -> ModuleType:
    """A script of benchmarks/, loaded as a module."""
    path = RUNNER.parent / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"msal_async_benchmark_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


@pytest.mark.slow
def test_startup_quick_prints_every_row_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    startup = _load("startup")
    out = tmp_path / "startup.json"
    assert startup.main(["--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for statement in ("import msal_async", "import msal", "import azure.identity.aio"):
        rows = [line for line in printed.splitlines() if line.startswith(statement + " ")]
        assert len(rows) == 2, statement  # trio importable and hidden
        assert all(re.search(r"\d+\.\d+\s+\d+\.\d+\s+\d+\.\d+\s+\d+\.\d+", r) for r in rows)
    assert re.search(r"trio importable: \d+\.\d+x: (PASS|MISS)", printed)
    assert re.search(r"trio hidden: \d+\.\d+x: (PASS|MISS)", printed)
    report = json.loads(out.read_text())["rows"]
    assert report["import msal_async"]["no_trio"]["loaded"] == []
    assert "trio" not in report["import msal"]["no_trio"]["loaded"]


@pytest.mark.slow
def test_memory_quick_prints_both_libraries_and_the_ratio(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    memory = _load("memory")
    out = tmp_path / "memory.json"
    assert memory.main(["--quick", "--sizes", "500", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"500 msal_async\s+[\d,]+", printed)
    assert re.search(r"msal\s+[\d,]+", printed)
    assert re.search(r"ours/msal\s+\d+\.\d+x .* target <= 1\.0x: (PASS|MISS)", printed)
    row = json.loads(out.read_text())["sizes"]["500"]
    # Every token holds at least its own 1,300-character access token.
    assert row["msal_async"]["bytes_per_token"] > 1300
    assert row["msal"]["bytes_per_token"] > 1300
