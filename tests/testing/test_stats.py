"""The emulator's /_emulator/stats endpoint: request counts as JSON, not counted itself."""

from __future__ import annotations

import httpx
import pytest

from msal_async.testing import DEMO_TENANT_ID, STATS_PATH, AuthorityEmulator

pytestmark = pytest.mark.anyio


async def test_stats_answer_the_counts_and_are_not_recorded() -> None:
    emulator = AuthorityEmulator()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emulator), base_url="https://login.microsoftonline.com"
    ) as http:
        assert (await http.get(STATS_PATH)).json() == {"counts": {}, "requests": 0}
        await http.get(f"/{DEMO_TENANT_ID}/v2.0/.well-known/openid-configuration")
        response = await http.get(STATS_PATH)
    assert "no-store" in response.headers["cache-control"]
    assert response.json() == {"counts": {"openid-configuration": 1}, "requests": 1}
    assert emulator.stats() == response.json()
    assert len(emulator.requests) == 1
