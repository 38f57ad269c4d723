"""Cache interop with real msal 1.39: each serves the other's client-credential tokens."""

from __future__ import annotations

import anyio
import msal
import pytest

from msal_async import ConfidentialClientApplication, SerializableTokenCache
from msal_async.testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

from .conftest import HttpsAuthority
from .test_wire_parity import run_msal

pytestmark = pytest.mark.anyio

SCOPES = ["api://interop/.default"]


def msal_acquire(https: HttpsAuthority, cache: msal.SerializableTokenCache) -> dict[str, object]:
    return run_msal(https, scopes=SCOPES, token_cache=cache)


def ours(https: HttpsAuthority, cache: SerializableTokenCache) -> ConfidentialClientApplication:
    return ConfidentialClientApplication(
        DEMO_CLIENT_ID,
        client_credential=DEMO_CLIENT_SECRET,
        authority=https.authority,
        instance_discovery=False,
        verify=https.ca_file,
        token_cache=cache,
    )


async def test_msal_written_cache_is_a_hit_here_with_no_request(
    https_authority: HttpsAuthority,
) -> None:
    theirs = msal.SerializableTokenCache()
    fetched = await anyio.to_thread.run_sync(lambda: msal_acquire(https_authority, theirs))
    assert fetched["token_source"] == "identity_provider"
    cache = SerializableTokenCache()
    cache.deserialize(theirs.serialize())
    before = len(https_authority.emulator.requests)
    async with ours(https_authority, cache) as app:
        result = await app.acquire_token_for_client(SCOPES)
    assert result["token_source"] == "cache"
    assert result["access_token"] == fetched["access_token"]
    assert len(https_authority.emulator.requests) == before  # not even discovery


async def test_our_cache_is_a_hit_in_msal(https_authority: HttpsAuthority) -> None:
    cache = SerializableTokenCache()
    async with ours(https_authority, cache) as app:
        fetched = await app.acquire_token_for_client(SCOPES)
    assert fetched["token_source"] == "identity_provider"
    theirs = msal.SerializableTokenCache()
    theirs.deserialize(cache.serialize())
    count = https_authority.emulator.counts["client_credentials"]
    result = await anyio.to_thread.run_sync(lambda: msal_acquire(https_authority, theirs))
    assert result["token_source"] == "cache"
    assert result["access_token"] == fetched["access_token"]
    assert https_authority.emulator.counts["client_credentials"] == count
