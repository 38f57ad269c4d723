"""Smoke test of ``benchmarks/fleet.py``: ``--quick`` runs end to end, prints every section and
writes its figures and targets as JSON.

Benchmarks never assert speed, and neither does this test: it checks that the fleet benchmark
works (its servers, the child processes, every measurement) and reports every row.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from .conftest import _binary

FLEET = Path(__file__).resolve().parents[2] / "benchmarks" / "fleet.py"


@pytest.mark.slow
def test_quick_run_prints_every_section(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    _binary(), _binary("redis-cli")  # skip (or fail under CI) without Redis
    spec = importlib.util.spec_from_file_location("msal_async_fleet_benchmark", FLEET)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        assert module.main(["--quick", "--json", str(tmp_path / "fleet.json")]) == 0
    finally:
        del sys.modules[spec.name]
    out = capsys.readouterr().out
    for row in [
        "(a) Cache hit",
        "in memory",
        "FilePersistence",
        "Redis, tracking off",
        "Redis, tracking on",
        "Redis Cluster, tracking on",
        "load, tracking on",
        "unchanged()",
        "(b) Invalidation latency",
        "Redis Cluster  p50",
        "(c) The herd",
        "Redis, tracking off (polls)",
        "Cluster, tracking on",
        "token requests",
        "EVALSHA per hit",
        "(c2) A lock released",
        "woken (tracking on)",
        "polling (tracking off)",
        "(d) Memory in Redis",
        "user partition",
        "os.stat of a cache file alone",
        "target: file hit <= 3x the in-memory hit",
        "target: Redis hit (tracking) <= 3x the in-memory hit",
        "Targets:",
    ]:
        assert row in out, row
    assert "errors:" not in out
    written = json.loads((tmp_path / "fleet.json").read_text())
    assert set(written["hits"]) >= {"in memory", "FilePersistence (one file)", "Redis, tracking on"}
    assert all(t["verdict"] in ("PASS", "MISS") for t in written["targets"].values())
    assert written["herd"]["runs"]
