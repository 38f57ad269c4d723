"""Managed identity throttling (msal's MI http_cache): 429/5xx answers are held, not retried."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

import httpx
import pytest

from msal_async import ManagedIdentityClient, SystemAssignedManagedIdentity

pytestmark = pytest.mark.anyio


class BusyImds:
    """An IMDS endpoint that answers a scripted status and counts what it was asked."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.status = status
        self.headers = headers
        self.calls = 0

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.calls += 1
        body = json.dumps({"error": "busy", "error_description": "try later"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [(b"content-type", b"application/json"), *self.headers],
            }
        )
        await send({"type": "http.response.body", "body": body})


@pytest.mark.parametrize(
    ("status", "headers"),
    [(429, [(b"retry-after", b"30")]), (503, [])],
    ids=["429-retry-after", "503-default-hold"],
)
async def test_held_answer_is_replayed_without_a_request(
    monkeypatch: pytest.MonkeyPatch, status: int, headers: list[tuple[bytes, bytes]]
) -> None:
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://imds.test")
    for name in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "IMDS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    imds = BusyImds(status, headers)
    http_cache: dict[str, Any] = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=imds)) as http:
        client = ManagedIdentityClient(
            SystemAssignedManagedIdentity(), http_client=http, http_cache=http_cache
        )
        first = await client.acquire_token_for_client(resource="https://vault.azure.net")
        second = await client.acquire_token_for_client(resource="https://vault.azure.net")
        other = await client.acquire_token_for_client(resource="https://storage.azure.com")
    assert "error" in first
    assert "error" in second
    assert "error" in other
    assert imds.calls == 2  # the vault request once, the storage request once
    assert http_cache  # held in the caller's mapping
