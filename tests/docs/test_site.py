"""The documentation site builds with --strict and its API reference covers every public name."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import msal_async
import msal_async.testing

from .blocks import ROOT


@pytest.mark.slow
def test_site_builds_strict_with_every_public_name(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None:
        reason = "mkdocs is not installed (pip install -e '.[docs]')"
        if os.environ.get("MSAL_ASYNC_CI") == "1":
            pytest.fail(reason + "; MSAL_ASYNC_CI=1 makes this a failure")
        pytest.skip(reason)
    site = tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    for module, page in ((msal_async, "msal_async"), (msal_async.testing, "testing")):
        html = (site / "reference" / page / "index.html").read_text()
        anchors = set(re.findall(r'id="([\w.]+)"', html))
        missing = [n for n in module.__all__ if f"{module.__name__}.{n}" not in anchors]
        assert not missing, f"{module.__name__}: no API reference entry for {missing}"
