"""msal-async token: every way to authenticate, the output, and one-line errors with exit codes."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from msal_async._cli import main
from msal_async.testing import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_TENANT_ID,
    AuthorityEmulator,
    ManagedIdentityEmulator,
    serve_in_thread,
)

from ..conftest import HttpsAuthority
from ..credentials.certs import PASSPHRASE, generate_cert_set

PUBLIC_CLIENT_ID = "0c1f4a7e-5b3d-4e2a-9f80-7d6c5b4a3e21"
USER = "alice@contoso.onmicrosoft.com"
SCOPE = "api://orders/.default"


@pytest.fixture
def authority(https_authority: HttpsAuthority, monkeypatch: pytest.MonkeyPatch) -> HttpsAuthority:
    """The HTTPS emulator, reset, and the environment a user of serve-authority would set."""
    https_authority.emulator.reset()
    for name, value in {
        "AZURE_AUTHORITY_HOST": https_authority.base_url,
        "AZURE_TENANT_ID": DEMO_TENANT_ID,
        "AZURE_CLIENT_ID": DEMO_CLIENT_ID,
        "AZURE_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "MSAL_ASYNC_CA_FILE": https_authority.ca_file,
    }.items():
        monkeypatch.setenv(name, value)
    return https_authority


def test_a_client_secret_from_the_environment(
    authority: HttpsAuthority, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["token", "--scope", SCOPE]) == 0
    out = capsys.readouterr().out
    token = out.strip()
    assert out.count("\n") == 1
    assert authority.emulator.decode(token)["aud"] == "api://orders"


def test_json_output_has_no_refresh_or_id_token(
    authority: HttpsAuthority, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["token", "--scope", SCOPE, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert set(shown) == {"access_token", "token_type", "expires_in", "expires_on", "token_source"}
    assert shown["token_type"] == "Bearer"


def test_another_secret_variable(
    authority: HttpsAuthority, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AZURE_CLIENT_SECRET")
    monkeypatch.setenv("MY_SECRET", DEMO_CLIENT_SECRET)
    assert main(["token", "--scope", SCOPE, "--secret-env", "MY_SECRET"]) == 0
    assert capsys.readouterr().out.startswith("ey")


def test_a_refused_secret_is_exit_1_in_one_line(
    authority: HttpsAuthority, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "wrong-secret-5c1d")
    assert main(["token", "--scope", SCOPE]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("msal-async token: invalid_client: AADSTS7000215")
    assert captured.err.count("\n") == 1
    assert "correlation_id" in captured.err
    assert "wrong-secret-5c1d" not in captured.err


@pytest.mark.parametrize(
    ("unset", "expected"),
    [
        ("AZURE_CLIENT_ID", "no client id: pass --client-id or set AZURE_CLIENT_ID"),
        ("AZURE_TENANT_ID", "no tenant: pass --tenant or set AZURE_TENANT_ID"),
        ("AZURE_CLIENT_SECRET", "no client secret in $AZURE_CLIENT_SECRET"),
    ],
)
def test_missing_settings_are_exit_2(
    authority: HttpsAuthority,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    unset: str,
    expected: str,
) -> None:
    monkeypatch.delenv(unset)
    assert main(["token", "--scope", SCOPE]) == 2
    assert capsys.readouterr().err.startswith(f"msal-async token: {expected}")


def test_an_unreachable_authority_is_exit_3(
    authority: HttpsAuthority, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", f"https://127.0.0.1:{port}")
    assert main(["token", "--scope", SCOPE]) == 3
    err = capsys.readouterr().err
    assert err.startswith("msal-async token: could not reach the authority")
    assert "Traceback" not in err


def test_a_certificate_file_pem_or_pfx(
    authority: HttpsAuthority,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    certs = generate_cert_set(tmp_path)
    authority.emulator.register_client("cert-client", certificate=certs.cert_pem)
    pem = tmp_path / "app.pem"
    pem.write_text(certs.key_pem + certs.cert_pem)
    monkeypatch.delenv("AZURE_CLIENT_SECRET")
    base = ["token", "--scope", SCOPE, "--client-id", "cert-client", "--certificate"]
    assert main([*base, str(pem)]) == 0
    assert authority.emulator.decode(capsys.readouterr().out.strip())["appidacr"] == "2"
    monkeypatch.setenv("PFX_PASSWORD", PASSPHRASE)
    pfx = [*base, certs.encrypted_pfx_path, "--certificate-password-env", "PFX_PASSWORD"]
    assert main(pfx) == 0
    assert capsys.readouterr().out.startswith("ey")
    pem.write_text("not a pem")
    assert main([*base, str(pem)]) == 2
    assert "must hold a PEM private key and its certificate" in capsys.readouterr().err
    assert main([*base, str(tmp_path / "missing.pem")]) == 2
    assert "cannot read --certificate" in capsys.readouterr().err


def test_a_managed_identity(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mi = ManagedIdentityEmulator()
    for name in ("MSI_ENDPOINT", "MSI_SECRET", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    with serve_in_thread(mi) as base_url:
        monkeypatch.setenv("IDENTITY_ENDPOINT", base_url + mi.APP_SERVICE_PATH)
        monkeypatch.setenv("IDENTITY_HEADER", mi.secret)
        status = main(
            ["token", "--managed-identity", "--scope", "https://vault.azure.net/.default"]
        )
    assert status == 0
    assert mi.decode(capsys.readouterr().out.strip())["aud"] == "https://vault.azure.net"
    assert mi.requests[-1].query["resource"] == "https://vault.azure.net"


def device_code_users(emulator: AuthorityEmulator) -> None:
    emulator.register_client(PUBLIC_CLIENT_ID)
    emulator.device_flow.interval = 0
    emulator.device_flow.authorizations.clear()  # the emulator serves the whole module

    def approve(auth: Any) -> None:
        emulator.approve_device_code(auth.user_code, USER)

    emulator.device_flow.on_poll = approve


def test_device_code_signs_in_once_then_is_silent(
    authority: HttpsAuthority, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    device_code_users(authority.emulator)
    cache = tmp_path / "cache.json"
    args = ["token", "--device-code", "--client-id", PUBLIC_CLIENT_ID, "--scope", "User.Read"]
    args += ["--cache", str(cache)]
    assert main(args) == 0
    first = capsys.readouterr()
    [shown] = authority.emulator.device_flow.authorizations.values()
    assert shown.user_code in first.err  # the sign-in message, on standard error
    assert authority.emulator.decode(first.out.strip())["upn"] == USER
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert main([*args, "--json"]) == 0
    second = capsys.readouterr()
    assert second.err == ""
    assert json.loads(second.out)["token_source"] == "cache"
    assert authority.emulator.counts["devicecode"] == 1


@pytest.mark.slow
def test_device_code_in_a_subprocess_second_run_silent(
    authority: HttpsAuthority, tmp_path: Path
) -> None:
    device_code_users(authority.emulator)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "HOME": str(tmp_path)}
    command = [sys.executable, "-m", "msal_async", "token", "--device-code"]
    command += ["--client-id", PUBLIC_CLIENT_ID, "--scope", "User.Read"]
    runs = [
        subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
        for _ in range(2)
    ]
    assert [run.returncode for run in runs] == [0, 0], runs[0].stderr
    [shown] = authority.emulator.device_flow.authorizations.values()
    assert shown.user_code in runs[0].stderr
    assert runs[1].stderr == ""
    assert (tmp_path / ".cache" / "msal-async" / "token_cache.json").is_file()
    assert authority.emulator.counts["devicecode"] == 1
