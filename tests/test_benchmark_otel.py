"""Smoke test of ``benchmarks/otel.py``: every mode runs in its own process and is reported.

No speed is asserted (benchmarks report ratios; they never fail on timings).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "otel.py"


@pytest.mark.slow
def test_every_mode_and_path_is_reported() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--calls", "20", "--rounds", "1", "--base", "HEAD"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()[2:]]
    assert {(row[0], row[1]) for row in rows} == {
        (mode, path) for mode in ("base", "off", "api", "sdk") for path in ("client", "silent")
    }
    assert all(float(row[-1]) > 0 for row in rows)
