"""The msal-async command line: the demo and serve-authority."""

from __future__ import annotations

import re
import socket
import subprocess
import sys

import httpx
import pytest

from msal_async._cli import main
from msal_async.testing import DEMO_CLIENT_SECRET, DEMO_TENANT_ID


def test_demo_runs_end_to_end_and_prints_no_secret(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--concurrency", "50"]) == 0
    out = capsys.readouterr().out
    assert "identity_provider" in out
    assert "cache" in out
    assert "50 concurrent calls for a new scope sent 1 token request" in out
    assert DEMO_CLIENT_SECRET not in out


def test_demo_on_trio(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--backend", "trio", "--concurrency", "5"]) == 0
    assert "sent 1 token request" in capsys.readouterr().out


def test_demo_rejects_bad_concurrency(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--concurrency", "0"]) == 2
    assert "--concurrency" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_authority_over_tls_answers_real_clients() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "msal_async", "serve-authority", "--port", str(port), "--tls"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        url_line = process.stdout.readline()
        ca_line = process.stdout.readline()
        base_url = re.search(r"https://\S+", url_line)
        ca_file = ca_line.split(": ", 1)[1].strip()
        assert base_url is not None
        with httpx.Client(verify=__import__("ssl").create_default_context(cafile=ca_file)) as c:
            doc = c.get(
                f"{base_url.group(0)}/{DEMO_TENANT_ID}/v2.0/.well-known/openid-configuration"
            ).json()
        assert doc["token_endpoint"].startswith(base_url.group(0))
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
