"""Wire parity with msal 1.39's ManagedIdentityClient for every source: URL, query, headers."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import msal
import pytest
import requests

from msal_async import ManagedIdentityClient, UserAssignedManagedIdentity
from msal_async.testing import ManagedIdentityEmulator, RecordedRequest

from .conftest import Served

pytestmark = pytest.mark.anyio

E = ManagedIdentityEmulator
RESOURCE = "https://management.azure.com"
GENERIC_HEADERS = {"host", "user-agent", "accept-encoding", "connection", "accept"}
VARYING = {"x-ms-client-request-id", "x-client-sku", "x-client-ver"}


def environment(served: Served, source: str) -> dict[str, str]:
    base, secret = served.http_url, served.emulator.secret
    return {
        "imds": {"AZURE_POD_IDENTITY_AUTHORITY_HOST": base},
        "app_service": {"IDENTITY_ENDPOINT": base + E.APP_SERVICE_PATH, "IDENTITY_HEADER": secret},
        "machine_learning": {"MSI_ENDPOINT": base + E.MACHINE_LEARNING_PATH, "MSI_SECRET": secret},
        "arc": {"IDENTITY_ENDPOINT": base + E.IMDS_PATH, "IMDS_ENDPOINT": base},
        "service_fabric": {
            "IDENTITY_ENDPOINT": served.https_url + E.SERVICE_FABRIC_PATH,
            "IDENTITY_HEADER": secret,
            "IDENTITY_SERVER_THUMBPRINT": served.thumbprint,
        },
    }[source]


def run_msal(identity: Any) -> None:
    with requests.Session() as session:
        session.trust_env = False
        client = msal.ManagedIdentityClient(identity, http_client=session)
        try:
            client.acquire_token_for_client(resource=RESOURCE)
        except FileNotFoundError:
            pass  # Arc: msal reads the key from /var/opt/azcmagent/tokens, absent here


async def run_ours(identity: Any, served: Served) -> dict[str, Any]:
    class Ours(ManagedIdentityClient):
        ARC_KEY_DIRECTORIES = {"linux": served.arc_dir}  # noqa: RUF012 - test override

    async with (
        httpx.AsyncClient(trust_env=False) as http,
        Ours(identity, http_client=http) as client,
    ):
        return dict(await client.acquire_token_for_client(resource=RESOURCE))


def compare(theirs: RecordedRequest, ours: RecordedRequest) -> None:
    assert ours.method == theirs.method
    assert ours.path == theirs.path
    assert ours.query == theirs.query
    their_headers = set(theirs.headers) - GENERIC_HEADERS
    assert set(ours.headers) - GENERIC_HEADERS == their_headers
    for name in their_headers - VARYING:
        assert ours.headers[name] == theirs.headers[name], name


@pytest.mark.parametrize(
    "source", ["imds", "app_service", "machine_learning", "arc", "service_fabric"]
)
@pytest.mark.parametrize("kind", ["client_id", "resource_id", "object_id"])
async def test_requests_match_msal(
    monkeypatch: pytest.MonkeyPatch, served: Served, source: str, kind: str
) -> None:
    for name, value in environment(served, source).items():
        monkeypatch.setenv(name, value)
    served.emulator.arc_key_name = f"parity-{uuid.uuid4()}"  # surely absent for msal
    (served.tmp / f"{served.emulator.arc_key_name}.key").write_text(served.emulator.arc_secret)
    ours_identity = UserAssignedManagedIdentity(**{kind: f"{kind}-value"})
    theirs_identity = msal.UserAssignedManagedIdentity(**{kind: f"{kind}-value"})
    start = len(served.emulator.requests)
    run_msal(theirs_identity)
    middle = len(served.emulator.requests)
    result = await run_ours(ours_identity, served)
    assert "access_token" in result, result
    theirs = served.emulator.requests[start:middle]
    ours = served.emulator.requests[middle:]
    compare(theirs[0], ours[0])
    if source == "arc":  # msal stopped at the key file; our answer adds only the key
        assert len(theirs) == 1
        assert set(ours[1].headers) == set(ours[0].headers) | {"authorization"}
        assert ours[1].query == ours[0].query
    else:
        assert len(theirs) == len(ours) == 1
