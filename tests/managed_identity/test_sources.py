"""Managed-identity source detection and request building: pure functions of the environment."""

from __future__ import annotations

import pytest

from msal_async import (
    ArcPlatformNotSupportedError,
    ManagedIdentityError,
    SystemAssignedManagedIdentity,
    UserAssignedManagedIdentity,
)
from msal_async._managed_identity import sources

SF = {
    "IDENTITY_ENDPOINT": "https://sf/t",
    "IDENTITY_HEADER": "h",
    "IDENTITY_SERVER_THUMBPRINT": "a" * 40,
}


@pytest.mark.parametrize(
    ("environ", "installed", "expected"),
    [
        (SF, False, sources.SERVICE_FABRIC),
        ({"IDENTITY_ENDPOINT": "http://x", "IDENTITY_HEADER": "h"}, False, sources.APP_SERVICE),
        ({"MSI_ENDPOINT": "http://x", "MSI_SECRET": "s"}, False, sources.MACHINE_LEARNING),
        ({"IDENTITY_ENDPOINT": "http://x", "IMDS_ENDPOINT": "http://y"}, False, sources.AZURE_ARC),
        ({}, True, sources.AZURE_ARC),
        ({"AZUREPS_HOST_ENVIRONMENT": "cloud-shell/1.0"}, False, sources.CLOUD_SHELL),
        ({"IDENTITY_ENDPOINT": "http://x"}, False, sources.DEFAULT_TO_VM),
        ({}, False, sources.DEFAULT_TO_VM),
    ],
)
def test_detect_source_follows_msal_order(
    environ: dict[str, str], installed: bool, expected: str
) -> None:
    assert (
        sources.detect_source(environ, platform="linux", arc_agent_installed=installed) == expected
    )


def test_arc_agent_counts_only_on_supported_platforms() -> None:
    assert sources.detect_source({}, platform="darwin", arc_agent_installed=True) == "DEFAULT_TO_VM"


@pytest.mark.parametrize(
    ("identity", "source", "expected"),
    [
        (UserAssignedManagedIdentity(client_id="c"), sources.DEFAULT_TO_VM, {"client_id": "c"}),
        (UserAssignedManagedIdentity(resource_id="r"), sources.DEFAULT_TO_VM, {"msi_res_id": "r"}),
        (UserAssignedManagedIdentity(object_id="o"), sources.DEFAULT_TO_VM, {"object_id": "o"}),
        (UserAssignedManagedIdentity(resource_id="r"), sources.APP_SERVICE, {"mi_res_id": "r"}),
        (UserAssignedManagedIdentity(client_id="c"), sources.MACHINE_LEARNING, {"clientid": "c"}),
        (UserAssignedManagedIdentity(client_id="c"), sources.SERVICE_FABRIC, {}),
        (SystemAssignedManagedIdentity(), sources.DEFAULT_TO_VM, {}),
    ],
)
def test_each_source_spells_the_identity_its_way(
    identity: dict[str, str], source: str, expected: dict[str, str]
) -> None:
    env = {
        **SF,
        "IDENTITY_ENDPOINT": "https://host/t",
        "MSI_ENDPOINT": "http://ml/t",
        "MSI_SECRET": "s",
    }
    request = sources.SOURCES[source].build(env, identity, "https://vault.azure.net", {})
    standard = {"api-version", "resource"}
    assert {k: v for k, v in request.params.items() if k not in standard} == expected


def test_vm_honours_pod_identity_host_and_sends_msal_headers() -> None:
    request = sources.SOURCES[sources.DEFAULT_TO_VM].build(
        {"AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://pod:8080/"}, {}, "r", {}
    )
    assert request.url == "http://pod:8080/metadata/identity/oauth2/token"
    assert set(request.headers) == {
        "Metadata",
        "x-client-SKU",
        "x-client-Ver",
        "x-ms-client-request-id",
    }


def test_service_fabric_requires_https_and_a_sha1_thumbprint() -> None:
    build = sources.SOURCES[sources.SERVICE_FABRIC].build
    with pytest.raises(ManagedIdentityError, match="HTTPS"):
        build({**SF, "IDENTITY_ENDPOINT": "http://sf/t"}, {}, "r", {})
    with pytest.raises(ManagedIdentityError, match="SHA-1"):
        build({**SF, "IDENTITY_SERVER_THUMBPRINT": "abc"}, {}, "r", {})
    request = build(
        {**SF, "IDENTITY_SERVER_THUMBPRINT": ("AB:" * 20)[:-1]},
        {},
        "r",
        {"token_sha256_to_refresh": "f00", "client_capabilities": ["CP1", "CP2"]},
    )
    assert request.pinned_thumbprint == "ab" * 20
    assert request.params["token_sha256_to_refresh"] == "f00"
    assert request.params["xms_cc"] == "CP1,CP2"


def test_arc_key_file_stays_in_the_key_directory() -> None:
    path = sources.arc_challenge_key_file(
        "Basic realm=/etc/../../somewhere/else/abc.key", platform="linux"
    )
    assert path == "/var/opt/azcmagent/tokens/abc.key"
    with pytest.raises(ManagedIdentityError, match="WWW-Authenticate"):
        sources.arc_challenge_key_file("Bearer x", platform="linux")
    with pytest.raises(ArcPlatformNotSupportedError):
        sources.arc_challenge_key_file("Basic realm=/a/b.key", platform="sunos5")


def test_parsers_normalize_and_map_errors() -> None:
    parse_on = sources.parse_with_expires_on
    token = parse_on("APP_SERVICE", 200, '{"access_token":"t","expires_on":"1100"}', now=1000)
    assert token == {
        "access_token": "t",
        "expires_in": 100,
        "resource": None,
        "token_type": "Bearer",
    }
    sf_error = parse_on("SERVICE_FABRIC", 401, '{"error":{"code":"SecretHeaderNotFound"}}', now=0)
    assert sf_error["error"] == "unauthorized_client"
    assert parse_on("APP_SERVICE", 500, '{"statusCode":500,"message":"m"}', now=0) == {
        "error": "invalid_scope",
        "error_description": "500, m",
    }
    imds_error = '{"error":"invalid_resource","error_description":"d"}'
    assert sources.parse_with_expires_in("DEFAULT_TO_VM", 400, imds_error, now=0) == {
        "error": "invalid_resource",
        "error_description": "d",
    }
    with pytest.raises(ValueError):  # noqa: PT011 - msal lets the JSON error escape
        sources.parse_with_expires_in("DEFAULT_TO_VM", 500, "<html>", now=0)


def test_identity_types_are_msal_shaped_dicts() -> None:
    assert dict(SystemAssignedManagedIdentity()) == {
        "ManagedIdentityIdType": "SystemAssigned",
        "Id": None,
    }
    assert dict(UserAssignedManagedIdentity(object_id="o")) == {
        "ManagedIdentityIdType": "ObjectId",
        "Id": "o",
    }
    for kwargs in ({}, {"client_id": "a", "object_id": "b"}):
        with pytest.raises(ManagedIdentityError, match="one of the three"):
            UserAssignedManagedIdentity(**kwargs)


@pytest.mark.parametrize(
    ("environ", "platform", "expected"),
    [
        ({}, "win32", r"C:\Program Files\AzureConnectedMachineAgent\himds.exe"),
        ({"ProgramFiles": r"D:\Apps"}, "win32", r"D:\Apps\AzureConnectedMachineAgent\himds.exe"),
        ({"PROGRAMFILES": r"E:\P"}, "win32", r"E:\P\AzureConnectedMachineAgent\himds.exe"),
        ({"ProgramFiles": r"D:\Apps"}, "linux", "/opt/azcmagent/bin/himds"),
        ({}, "darwin", None),
    ],
)
def test_arc_agent_file_expands_program_files(
    environ: dict[str, str], platform: str, expected: str | None
) -> None:
    assert sources.arc_agent_file(environ, platform=platform) == expected


def test_arc_key_directory_expands_program_data_on_windows() -> None:
    challenge = r"Basic realm=C:\ProgramData\AzureConnectedMachineAgent\Tokens\abc.key"
    default = sources.arc_challenge_key_file(challenge, platform="win32")
    assert default == r"C:\ProgramData\AzureConnectedMachineAgent\Tokens\abc.key"
    moved = sources.arc_challenge_key_file(
        challenge, platform="win32", environ={"ProgramData": r"D:\Data"}
    )
    assert moved == r"D:\Data\AzureConnectedMachineAgent\Tokens\abc.key"


def test_header_secret_strips_and_refuses_without_quoting() -> None:
    assert sources.header_secret(" key\r\n", "IDENTITY_HEADER") == "key"
    assert sources.header_secret("a b\tc", "IDENTITY_HEADER") == "a b\tc"
    for bad in ("S3CR3T\nmore", "S3CR3T\x00", "S3CR3T\u00e9"):
        with pytest.raises(ManagedIdentityError, match="MSI_SECRET") as caught:
            sources.header_secret(bad, "MSI_SECRET")
        assert "S3CR3T" not in str(caught.value)
