"""The emulator served on 127.0.0.1 over HTTPS answers httpx and real msal 1.39, then stops cleanly."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import msal
import pytest
import requests

from msal_async.testing import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_TENANT_ID,
    AuthorityEmulator,
    SigningKey,
    TLSFiles,
    generate_tls_files,
    serve_in_thread,
)

KEY = SigningKey.generate()


@pytest.fixture
def emulator() -> AuthorityEmulator:
    """A fresh emulator sharing one signing key across the module."""
    return AuthorityEmulator(signing_key=KEY)


@pytest.fixture
def served(emulator: AuthorityEmulator, tls_files: TLSFiles) -> Iterator[str]:
    """The emulator on an HTTPS loopback port; yields its base URL."""
    with serve_in_thread(emulator, tls=tls_files) as base_url:
        yield base_url


def verify_context(tls: TLSFiles) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls.ca_file))


def test_https_discovery_and_token_with_a_sync_httpx_client(
    served: str, emulator: AuthorityEmulator, tls_files: TLSFiles
) -> None:
    assert served.startswith("https://127.0.0.1:")
    with httpx.Client(base_url=served, verify=verify_context(tls_files)) as http:
        config = http.get(f"/{DEMO_TENANT_ID}/v2.0/.well-known/openid-configuration").json()
        token = http.post(
            config["token_endpoint"],
            data={
                "grant_type": "client_credentials",
                "client_id": DEMO_CLIENT_ID,
                "client_secret": DEMO_CLIENT_SECRET,
                "scope": "api://x/.default",
            },
        )
    assert config["token_endpoint"] == f"{served}/{DEMO_TENANT_ID}/oauth2/v2.0/token"
    assert config["issuer"] == f"{served}/{DEMO_TENANT_ID}/v2.0"
    assert token.status_code == 200
    assert emulator.decode(token.json()["access_token"])["aud"] == "api://x"
    assert emulator.counts == {"openid-configuration": 1, "client_credentials": 1}


def test_real_msal_acquires_a_token_for_client(
    served: str, emulator: AuthorityEmulator, tls_files: TLSFiles
) -> None:
    with requests.Session() as session:
        # REQUESTS_CA_BUNDLE in the environment would override session.verify.
        session.trust_env = False
        session.verify = str(tls_files.ca_file)
        app = msal.ConfidentialClientApplication(
            DEMO_CLIENT_ID,
            client_credential=DEMO_CLIENT_SECRET,
            authority=f"{served}/{DEMO_TENANT_ID}",
            instance_discovery=False,
            http_client=session,
        )
        result = app.acquire_token_for_client(["api://x/.default"])
        cached = app.acquire_token_for_client(["api://x/.default"])
    assert "access_token" in result, result.get("error_description")
    assert result["token_type"] == "Bearer"
    assert emulator.decode(result["access_token"])["appid"] == DEMO_CLIENT_ID
    assert cached["token_source"] == "cache"
    assert emulator.counts["client_credentials"] == 1
    (token_request,) = [r for r in emulator.requests if r.method == "POST"]
    assert token_request.form["grant_type"] == "client_credentials"
    assert token_request.form["client_secret"] == DEMO_CLIENT_SECRET
    assert token_request.form["client_info"] == "1"
    assert token_request.headers["x-client-sku"] == "MSAL.Python"
    assert "client-request-id" in token_request.headers


def test_real_msal_sees_an_unknown_tenant_as_a_bad_authority(
    served: str, tls_files: TLSFiles
) -> None:
    with requests.Session() as session:
        session.trust_env = False
        session.verify = str(tls_files.ca_file)
        with pytest.raises(ValueError, match="Unable to get authority configuration"):
            msal.ConfidentialClientApplication(
                DEMO_CLIENT_ID,
                client_credential=DEMO_CLIENT_SECRET,
                authority=f"{served}/nobody.onmicrosoft.com",
                instance_discovery=False,
                http_client=session,
            )


def test_generate_tls_files_serves_https(tmp_path: Path, emulator: AuthorityEmulator) -> None:
    tls = generate_tls_files(tmp_path / "tls")
    assert all(path.is_file() for path in (tls.certfile, tls.keyfile, tls.ca_file))
    with serve_in_thread(emulator, tls=tls) as base_url:
        with httpx.Client(verify=verify_context(tls)) as http:
            keys = http.get(f"{base_url}/{DEMO_TENANT_ID}/discovery/v2.0/keys").json()
        localhost = base_url.replace("127.0.0.1", "localhost")
        with httpx.Client(verify=verify_context(tls)) as http:
            assert http.get(f"{localhost}/common/v2.0/.well-known/openid-configuration").is_success
    assert keys["keys"][0]["kid"] == KEY.kid


def test_plain_http_and_clean_shutdown(emulator: AuthorityEmulator) -> None:
    before = set(threading.enumerate())
    with serve_in_thread(emulator) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        # A keep-alive connection left open must not hold the shutdown.
        http = httpx.Client()
        assert http.get(f"{base_url}/common/v2.0/.well-known/openid-configuration").is_success
    http.close()
    assert set(threading.enumerate()) == before
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base_url}/common/v2.0/.well-known/openid-configuration")


def test_idle_tls_keep_alive_does_not_hold_the_shutdown(
    emulator: AuthorityEmulator, tls_files: TLSFiles
) -> None:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(tls_files.ca_file)
    with serve_in_thread(emulator, tls=tls_files) as base_url:
        assert session.get(f"{base_url}/common/discovery/v2.0/keys").ok
    session.close()
    assert not [t for t in threading.enumerate() if t.name == "msal-async-emulator"]


def test_missing_uvicorn_gives_an_install_hint(
    monkeypatch: pytest.MonkeyPatch, emulator: AuthorityEmulator
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    with pytest.raises(ImportError, match=r"pip install msal-async\[testing\]"):
        serve_in_thread(emulator).__enter__()


def test_run_prints_the_url_and_ca_then_serves() -> None:
    code = (
        "from msal_async.testing import AuthorityEmulator, run\n"
        "run(AuthorityEmulator(), port=0, tls=True)\n"
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    ) as process:
        try:
            assert process.stdout is not None
            url_line = process.stdout.readline()
            ca_line = process.stdout.readline()
            base_url = url_line.rsplit(" ", 1)[-1].strip()
            ca_file = ca_line.rsplit(" ", 1)[-1].strip()
            assert base_url.startswith("https://127.0.0.1:")
            # The socket already listens when the URL is printed: a connection waits for uvicorn.
            with httpx.Client(verify=ssl.create_default_context(cafile=ca_file)) as http:
                response = http.get(f"{base_url}/common/discovery/v2.0/keys")
            assert response.status_code == 200
        finally:
            process.terminate()
            process.wait(10)


def test_listener_disables_nagle_so_responses_do_not_stall() -> None:
    """asyncio only sets TCP_NODELAY on accepted sockets when the listener says IPPROTO_TCP;
    without it every response waited ~40 ms on a delayed ACK (found by the benchmarks)."""
    import socket

    from msal_async.testing._server import _bind

    sock = _bind("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        sock.close()
