"""Smoke test of ``benchmarks/fleet.py``: ``--quick`` runs end to end and prints every section.

Benchmarks never assert speed, and neither does this test: it checks that the fleet benchmark
works (its servers, the child processes, every measurement) and reports every row.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from .conftest import _binary

FLEET = Path(__file__).resolve().parents[2] / "benchmarks" / "fleet.py"


@pytest.mark.slow
def test_quick_run_prints_every_section(capsys: pytest.CaptureFixture[str]) -> None:
    _binary(), _binary("redis-cli")  # skip (or fail under CI) without Redis
    spec = importlib.util.spec_from_file_location("msal_async_fleet_benchmark", FLEET)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        assert module.main(["--quick"]) == 0
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
    ]:
        assert row in out, row
    assert "errors:" not in out
