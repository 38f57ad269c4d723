"""Hostile discovery answers: any OpenID configuration or instance metadata is read or refused.

Issue 10, finding 3: an OpenID configuration nested 200,000 levels deep raised RecursionError
out of the first acquisition. Property (fuzzed): any answer to the configuration, instance
discovery or instance metadata GET gives endpoints (aliases) or one of the exceptions discovery
documents: ValueError (msal's), MsalServiceError (5xx) or RuntimeError (an odd status).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from msal_async import ConfidentialClientApplication
from msal_async._authority import Authority, AuthorityEndpoints
from msal_async._discovery import _json_or_none, _read_configuration
from msal_async._errors import MsalServiceError
from msal_async._metadata import parse_aliases, parse_instance_discovery
from msal_async._transport import HttpResponse
from msal_async.testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, AuthorityEmulator

from .hostile import DEEP, Bend, fuzz_settings

AUTHORITIES = [
    "https://login.microsoftonline.com/contoso.onmicrosoft.com",
    "https://contoso.b2clogin.com/contoso.onmicrosoft.com/b2c_1_signin",
]
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
JSON_ANY = st.recursive(
    SCALARS,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
    max_leaves=8,
)
URLS = st.sampled_from(
    [
        "https://login.microsoftonline.com/tid/oauth2/v2.0/token",
        "https://login.microsoftonline.com/tid/oauth2/v2.0/authorize",
        "https://x/",
        "not a url",
        "",
    ]
)
CONFIGURATIONS = st.fixed_dictionaries(
    {},
    optional={
        "token_endpoint": URLS | JSON_ANY,
        "authorization_endpoint": URLS | JSON_ANY,
        "device_authorization_endpoint": URLS | JSON_ANY,
        "issuer": URLS | JSON_ANY,
        "tenant_discovery_endpoint": URLS | JSON_ANY,
        "error": st.just("invalid_instance") | JSON_ANY,
        "metadata": st.lists(
            st.fixed_dictionaries({}, optional={"aliases": st.lists(JSON_ANY) | JSON_ANY})
            | JSON_ANY,
            max_size=3,
        )
        | JSON_ANY,
    },
).map(json.dumps) | st.text(max_size=60)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "host"),
    [
        ("openid-configuration", "login.microsoftonline.com"),
        ("/discovery/instance", "login.contoso.example"),  # an unknown host: instance discovery
    ],
)
async def test_deep_discovery_documents_raise_msal_value_error(
    emulator: AuthorityEmulator, path: str, host: str
) -> None:
    bend = Bend(emulator, lambda _: DEEP, applies=lambda scope: scope["path"].endswith(path))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=bend)) as http:
        app = ConfidentialClientApplication(
            DEMO_CLIENT_ID,
            client_credential=DEMO_CLIENT_SECRET,
            authority=f"https://{host}/contoso.onmicrosoft.com",
            http_client=http,
        )
        with pytest.raises(ValueError, match=r"authority configuration|tenant_discovery"):
            await app.acquire_token_for_client(["api://x/.default"])
    assert bend.bent == 1


@fuzz_settings()
@given(
    st.sampled_from(AUTHORITIES), st.sampled_from([200, 200, 400, 404, 302, 500]), CONFIGURATIONS
)
def test_fuzz_openid_configuration(authority_url: str, status: int, body: str) -> None:
    authority = Authority.parse(authority_url)
    response = HttpResponse(status, body)
    try:
        endpoints = _read_configuration(authority, "https://x/.well-known", response)
    except (ValueError, MsalServiceError, RuntimeError):
        return
    assert isinstance(endpoints, AuthorityEndpoints)
    assert isinstance(endpoints.token_endpoint, str)


@fuzz_settings()
@given(CONFIGURATIONS | st.binary(max_size=100).map(lambda b: b.decode("latin-1")))
def test_fuzz_instance_discovery_and_metadata(body: str) -> None:
    payload: Any = _json_or_none(HttpResponse(200, body))
    authority = Authority.parse(AUTHORITIES[0])
    try:
        assert isinstance(parse_instance_discovery(authority, payload), str)
    except ValueError:
        pass
    try:
        groups = parse_aliases(payload)
    except ValueError:
        return
    assert all(isinstance(alias, str) for group in groups for alias in group)
