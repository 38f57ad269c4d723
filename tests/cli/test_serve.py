"""msal-async serve-authority: what it prints works as printed, stats, and cleanup on signals."""

from __future__ import annotations

import asyncio
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from msal_async._cli import main
from msal_async._cli.serve import banner
from msal_async.testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, TLSFiles

pytestmark = pytest.mark.slow


class Served:
    """A ``msal-async serve-authority`` subprocess and what it printed."""

    def __init__(self, *extra: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "msal_async", "serve-authority", "--port", "0", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Stop with Ctrl-C."):
                break
        self.text = "".join(lines)
        assert "Stop with Ctrl-C." in self.text, self.text

    def field(self, label: str) -> str:
        for line in self.text.splitlines():
            if line.strip().startswith(label):
                return line.split(":", 1)[1].split()[0]
        raise AssertionError(label)

    @property
    def base_url(self) -> str:
        return self.text.splitlines()[0].rsplit(" ", 1)[1]

    def snippet(self) -> str:
        lines = self.text.split("Paste into Python:\n", 1)[1].split("\nOr set")[0].splitlines()
        return "\n".join(line[4:] for line in lines)

    def stop(self, signum: int) -> tuple[int, str]:
        self.process.send_signal(signum)
        _, err = self.process.communicate(timeout=30)
        return self.process.returncode, err


@pytest.fixture
def tls_served() -> Iterator[Served]:
    served = Served("--tls")
    yield served
    if served.process.poll() is None:
        served.process.kill()
        served.process.communicate(timeout=30)


def test_the_printed_snippet_works_as_pasted_and_stats_count_it(tls_served: Served) -> None:
    ca_file = tls_served.field("CA certificate")
    assert tls_served.field("tenant") == DEMO_TENANT_ID
    assert tls_served.field("client id") == DEMO_CLIENT_ID
    assert tls_served.field("client secret") == DEMO_CLIENT_SECRET
    assert f'verify="{ca_file}"' in tls_served.snippet()
    namespace: dict[str, Any] = {}
    exec(tls_served.snippet(), namespace)  # noqa: S102 - the point: the snippet as a user pastes it
    app = namespace["app"]

    async def acquire() -> dict[str, Any]:
        async with app:
            result: dict[str, Any] = await app.acquire_token_for_client(["api://x/.default"])
            return result

    result = asyncio.run(acquire())
    assert result["token_source"] == "identity_provider", result
    stats_url = tls_served.field("request counts")
    assert stats_url == f"{tls_served.base_url}/_emulator/stats"
    verify = ssl.create_default_context(cafile=ca_file)
    stats = httpx.get(stats_url, verify=verify).json()
    assert stats["counts"]["client_credentials"] == 1
    assert stats["requests"] == 2  # the OpenID configuration and the token


def test_sigterm_stops_it_and_removes_the_temporary_ca(tls_served: Served) -> None:
    ca_folder = Path(tls_served.field("CA certificate")).parent
    assert ca_folder.is_dir()
    status, err = tls_served.stop(signal.SIGTERM)
    assert status == 143, err  # our own exit, after the cleanup
    assert not ca_folder.exists()
    assert "Traceback" not in err


def test_ctrl_c_stops_it_without_a_traceback(tls_served: Served) -> None:
    ca_folder = Path(tls_served.field("CA certificate")).parent
    status, err = tls_served.stop(signal.SIGINT)
    assert status == 130
    assert not ca_folder.exists()
    assert "Traceback" not in err
    assert err.rstrip().endswith("msal-async serve-authority: interrupted")


def test_latency_delays_every_answer() -> None:
    served = Served("--latency", "0.3")
    try:
        started = time.monotonic()
        response = httpx.get(
            f"{served.base_url}/{DEMO_TENANT_ID}/v2.0/.well-known/openid-configuration"
        )
        assert response.status_code == 200
        assert time.monotonic() - started >= 0.3
    finally:
        served.stop(signal.SIGTERM)


def test_bad_options_and_a_missing_extra_are_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["serve-authority", "--latency", "-1"]) == 2
    assert capsys.readouterr().err == "msal-async serve-authority: --latency cannot be negative\n"
    code = (
        "import sys; sys.modules['uvicorn'] = None\n"
        "from msal_async._cli import main; sys.exit(main(['serve-authority']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert done.stderr == (
        "msal-async serve-authority: msal-async serve-authority needs uvicorn: "
        'pip install "msal-async[testing]"\n'
    )


def test_a_port_in_use_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve-authority", "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_banner_without_tls_has_no_ca_and_no_verify() -> None:
    text = banner("http://127.0.0.1:8080", None)
    assert "instance_discovery=False" in text
    assert "verify=" not in text
    assert "MSAL_ASYNC_CA_FILE" not in text
    with_tls = banner("https://127.0.0.1:8443", TLSFiles(Path("c"), Path("k"), Path("/x/ca.pem")))
    assert 'verify="/x/ca.pem"' in with_tls
    assert "export MSAL_ASYNC_CA_FILE=/x/ca.pem" in with_tls
