"""A managed identity endpoint's malformed answer is an error dict for every caller.

Issue 10, findings 2 and 3: App Service's ``expires_on: "abc"`` raised ValueError and a body
nested 200,000 levels deep raised RecursionError, to every caller sharing the request. A body
that is not JSON at all still raises ValueError, as in msal.
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest

from msal_async import ManagedIdentityClient, SystemAssignedManagedIdentity

from ..hostile import DEEP, StaticServer

pytestmark = pytest.mark.anyio

VAULT = "https://vault.azure.net"
MALFORMED = {
    "expires_on abc": '{"access_token": "at", "expires_on": "abc", "resource": "r"}',
    "expires_on 1e400": '{"access_token": "at", "expires_on": 1e400}',
    "access_token not a string": '{"access_token": {"a": 1}, "expires_on": "1700000000"}',
    "nested 200,000 deep": DEEP,
}


@pytest.fixture
def app_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine looks like App Service (the source that answers ``expires_on``)."""
    monkeypatch.setenv("IDENTITY_ENDPOINT", "http://mi.test/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", "header-secret")


async def acquire_concurrently(server: StaticServer, callers: int) -> list[Any]:
    outcomes: list[Any] = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=server)) as http:
        client = ManagedIdentityClient(SystemAssignedManagedIdentity(), http_client=http)

        async def one() -> None:
            try:
                outcomes.append(await client.acquire_token_for_client(resource=VAULT))
            except Exception as exc:  # noqa: BLE001 (what escapes is what this test checks)
                outcomes.append(exc)

        async with anyio.create_task_group() as tg:
            for _ in range(callers):
                tg.start_soon(one)
        assert list(client._token_cache.search("AccessToken")) == []  # nothing cached
    return outcomes


@pytest.mark.usefixtures("app_service")
@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED)
async def test_malformed_answers_are_error_dicts_for_every_caller(body: str) -> None:
    outcomes = await acquire_concurrently(StaticServer(200, body), callers=4)
    errors = [o if isinstance(o, Exception) else o.get("error") for o in outcomes]
    assert errors == ["invalid_response"] * 4


@pytest.mark.usefixtures("app_service")
async def test_a_body_that_is_not_json_still_raises_value_error_as_in_msal() -> None:
    [outcome] = await acquire_concurrently(StaticServer(200, "<html>", "text/html"), callers=1)
    assert isinstance(outcome, ValueError)


@pytest.mark.parametrize("body", ["{}", "[]", '{"unexpected": true}'])
async def test_imds_answering_neither_a_token_nor_an_error_is_invalid_response(
    monkeypatch: pytest.MonkeyPatch, body: str
) -> None:
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://mi.test")
    [outcome] = await acquire_concurrently(StaticServer(200, body), callers=1)
    assert outcome["error"] in ("invalid_response", "invalid_request")
