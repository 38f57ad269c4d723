"""ManagedIdentityClient with a persisted cache, and its secrets kept out of errors and logs."""

from __future__ import annotations

import logging
import traceback
import uuid
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from msal_async import (
    FilePersistence,
    ManagedIdentityClient,
    ManagedIdentityError,
    MsalTransportError,
    PersistedTokenCache,
    SystemAssignedManagedIdentity,
    UserAssignedManagedIdentity,
)
from msal_async.testing import ManagedIdentityEmulator

from .conftest import Served

pytestmark = pytest.mark.anyio

VAULT = "https://vault.azure.net"
E = ManagedIdentityEmulator
USER_ID = "aaaabbbb-0000-1111-2222-333344445555"


def everything_about(exc: BaseException) -> str:
    """All the text an exception can show: message, repr, traceback and its chain."""
    return f"{exc}\n{exc!r}\n" + "".join(traceback.format_exception(exc))


@pytest.mark.parametrize("identity", ["system", "user"])
async def test_two_processes_share_a_file_cache(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    mi_emulator: E,
    mi_http: httpx.AsyncClient,
    identity: str,
) -> None:
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://mi.test")
    path = tmp_path / "mi-cache.json"
    managed: Any = (
        SystemAssignedManagedIdentity()
        if identity == "system"
        else UserAssignedManagedIdentity(client_id=USER_ID)
    )

    async def one_process(managed: Any) -> dict[str, Any]:
        cache = PersistedTokenCache(FilePersistence(path))
        client = ManagedIdentityClient(managed, http_client=mi_http, token_cache=cache)
        return dict(await client.acquire_token_for_client(resource=VAULT))

    first = await one_process(managed)
    assert first["token_source"] == "identity_provider", first
    assert path.exists()
    second = await one_process(managed)
    assert second["token_source"] == "cache", second
    assert second["access_token"] == first["access_token"]
    assert mi_emulator.counts["imds"] == 1
    # Another identity's partition holds nothing for this one.
    other: Any = (
        UserAssignedManagedIdentity(client_id=USER_ID)
        if identity == "system"
        else SystemAssignedManagedIdentity()
    )
    third = await one_process(other)
    assert third["token_source"] == "identity_provider"
    assert mi_emulator.counts["imds"] == 2


async def test_arc_key_file_with_trailing_newline(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    mi_emulator: E,
    mi_http: httpx.AsyncClient,
    arc_key_path: Path,
    arc_client_class: type[ManagedIdentityClient],
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("IDENTITY_ENDPOINT", "http://mi.test" + E.IMDS_PATH)
    monkeypatch.setenv("IMDS_ENDPOINT", "http://mi.test")
    await anyio.Path(arc_key_path).write_text(mi_emulator.arc_secret + "\r\n")
    client = arc_client_class(SystemAssignedManagedIdentity(), http_client=mi_http)
    result = await client.acquire_token_for_client(resource=VAULT)
    assert result["token_source"] == "identity_provider", result
    assert mi_emulator.arc_secret not in caplog.text


async def test_arc_key_file_with_trailing_newline_over_loopback(
    monkeypatch: pytest.MonkeyPatch, served: Served
) -> None:
    """The real HTTP stack (our codec) refuses a header value with a newline: none is sent."""
    monkeypatch.setenv("IDENTITY_ENDPOINT", served.http_url + E.IMDS_PATH)
    monkeypatch.setenv("IMDS_ENDPOINT", served.http_url)
    served.emulator.arc_key_name = f"newline-{uuid.uuid4()}"
    (served.tmp / f"{served.emulator.arc_key_name}.key").write_text(
        served.emulator.arc_secret + "\n"
    )

    class Ours(ManagedIdentityClient):
        ARC_KEY_DIRECTORIES = {"linux": served.arc_dir, "darwin": served.arc_dir}  # noqa: RUF012

    async with httpx.AsyncClient(trust_env=False) as http:
        result = await Ours(
            SystemAssignedManagedIdentity(), http_client=http
        ).acquire_token_for_client(resource=VAULT)
    assert result["token_source"] == "identity_provider", result


@pytest.mark.parametrize(
    ("variable", "endpoint_variable", "path", "source"),
    [
        ("IDENTITY_HEADER", "IDENTITY_ENDPOINT", E.APP_SERVICE_PATH, "app_service"),
        ("MSI_SECRET", "MSI_ENDPOINT", E.MACHINE_LEARNING_PATH, "machine_learning"),
    ],
)
async def test_secret_variables_are_stripped(
    monkeypatch: pytest.MonkeyPatch,
    mi_emulator: E,
    mi_http: httpx.AsyncClient,
    variable: str,
    endpoint_variable: str,
    path: str,
    source: str,
) -> None:
    monkeypatch.setenv(endpoint_variable, "http://mi.test" + path)
    monkeypatch.setenv(variable, f" {mi_emulator.secret}\n")
    client = ManagedIdentityClient(SystemAssignedManagedIdentity(), http_client=mi_http)
    result = await client.acquire_token_for_client(resource=VAULT)
    assert result["token_source"] == "identity_provider", result
    assert mi_emulator.counts[source] == 1


@pytest.mark.parametrize("where", ["IDENTITY_HEADER", "MSI_SECRET", "arc"])
async def test_a_secret_no_header_can_carry_is_refused_without_quoting_it(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    mi_emulator: E,
    mi_http: httpx.AsyncClient,
    arc_key_path: Path,
    arc_client_class: type[ManagedIdentityClient],
    where: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "S3CR3T-first-line\r\nS3CR3T-second-line"
    base = "http://mi.test"
    if where == "IDENTITY_HEADER":
        monkeypatch.setenv("IDENTITY_ENDPOINT", base + E.APP_SERVICE_PATH)
        monkeypatch.setenv("IDENTITY_HEADER", secret)
    elif where == "MSI_SECRET":
        monkeypatch.setenv("MSI_ENDPOINT", base + E.MACHINE_LEARNING_PATH)
        monkeypatch.setenv("MSI_SECRET", secret)
    else:
        monkeypatch.setenv("IDENTITY_ENDPOINT", base + E.IMDS_PATH)
        monkeypatch.setenv("IMDS_ENDPOINT", base)
        await anyio.Path(arc_key_path).write_text(secret)
    client = arc_client_class(SystemAssignedManagedIdentity(), http_client=mi_http)
    with pytest.raises(ManagedIdentityError, match="cannot carry") as caught:
        await client.acquire_token_for_client(resource=VAULT)
    shown = everything_about(caught.value) + caplog.text
    assert "S3CR3T" not in shown


async def test_an_http_stack_error_quoting_a_secret_is_redacted(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever the HTTP stack puts in its error, the secret header never reaches ours."""
    caplog.set_level(logging.DEBUG)
    secret = "S3CR3T-identity-header"

    def refuse(request: httpx.Request) -> httpx.Response:
        raw = dict(request.headers.raw)[b"X-IDENTITY-HEADER"]
        msg = f"Illegal header value {raw!r} ({raw.decode()})"
        raise httpx.LocalProtocolError(msg)

    monkeypatch.setenv("IDENTITY_ENDPOINT", "http://mi.test" + E.APP_SERVICE_PATH)
    monkeypatch.setenv("IDENTITY_HEADER", secret)
    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        client = ManagedIdentityClient(SystemAssignedManagedIdentity(), http_client=http)
        with pytest.raises(MsalTransportError) as caught:
            await client.acquire_token_for_client(resource=VAULT)
    assert "LocalProtocolError" in str(caught.value)  # the diagnosis stays
    assert "S3CR3T" not in everything_about(caught.value) + caplog.text


async def test_an_unreachable_endpoint_error_does_not_quote_the_secret(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    monkeypatch.setenv("MSI_ENDPOINT", "http://mi.test" + E.MACHINE_LEARNING_PATH)
    monkeypatch.setenv("MSI_SECRET", "S3CR3T-msi")
    async with httpx.AsyncClient(transport=httpx.MockTransport(unreachable)) as http:
        client = ManagedIdentityClient(SystemAssignedManagedIdentity(), http_client=http)
        with pytest.raises(MsalTransportError) as caught:
            await client.acquire_token_for_client(resource=VAULT)
    assert "S3CR3T" not in everything_about(caught.value) + caplog.text
