"""benchmarks/peers.py --quick writes a complete results JSON, and charts.py draws it."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"msal_async_bench_{name}", BENCHMARKS / name)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def modules() -> Iterator[tuple[ModuleType, ModuleType]]:
    if importlib.util.find_spec("matplotlib") is None:
        reason = "matplotlib is not installed (pip install -e '.[docs]')"
        if os.environ.get("MSAL_ASYNC_CI") == "1":
            pytest.fail(reason + "; MSAL_ASYNC_CI=1 makes this a failure")
        pytest.skip(reason)
    before = set(sys.modules)
    yield load("peers.py"), load("charts.py")
    for name in set(sys.modules) - before:
        if name.startswith("msal_async_bench_") or name == "run":
            del sys.modules[name]


@pytest.mark.slow
def test_quick_results_and_charts(modules: tuple[ModuleType, ModuleType], tmp_path: Path) -> None:
    peers, charts = modules
    results = tmp_path / "peers.json"
    assert peers.main(["--quick", "--json", str(results)]) == 0
    document = json.loads(results.read_text())
    expected = {"msal_async", "msal"} | (
        {"azure.identity.aio"} if peers.azure_available() else set()
    )
    assert set(document["hits"]["rounds_us"]) == expected
    assert all(
        len(rounds) == len(document["hits"]["sizes"])
        for rounds in document["hits"]["rounds_us"].values()
    )
    assert set(document["cold"]["walls_s"]) == expected
    stampede = document["stampede"]["results"]
    assert set(stampede) == expected
    assert stampede["msal_async"]["requests"] == 1  # a fact, not a timing: one shared request
    assert charts.main([str(results), "--out", str(tmp_path / "images")]) == 0
    for name in ("bench-hits.png", "bench-cold.png", "bench-stampede.png"):
        assert (tmp_path / "images" / name).read_bytes().startswith(b"\x89PNG")
