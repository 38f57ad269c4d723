"""The app's own client builds requests as httpx would, without httpx's client layer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from msal_async._http.client import GivenClient, OwnClient, encode_form

URL = "https://login.example.com:8443/tenant/oauth2/v2.0/token"


async def _built(
    *, headers: dict[str, str], data: Mapping[str, str] | None, content: bytes | None
) -> tuple[httpx.Request, dict[str, str]]:
    client = OwnClient(verify=False, proxies=None, timeout=httpx.Timeout(5.0))
    try:
        request = await client.build(
            "POST", URL, params=None, headers=dict(headers), data=data, content=content
        )
        current = client.current()
        assert current is not None
        defaults = dict(current.headers)
    finally:
        await client.aclose()
    return request, defaults


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("headers", "data", "content"),
    [
        pytest.param(
            {"x-client-sku": "MSAL.Python", "client-request-id": "abc"},
            {
                "client_id": "c",
                "scope": "api://x/.default openid",
                "grant_type": "client_credentials",
            },
            None,
            id="form",
        ),
        pytest.param({"content-type": "application/soap+xml"}, None, b"<e/>", id="bytes"),
        pytest.param({"Host": "other.example.com"}, {"a": "b"}, None, id="host-given"),
        pytest.param({"content-length": "3"}, None, b"abc", id="length-given"),
        pytest.param({}, None, b"", id="empty-body"),
    ],
)
async def test_requests_match_what_httpx_builds(
    headers: dict[str, str], data: Mapping[str, str] | None, content: bytes | None
) -> None:
    request, defaults = await _built(headers=headers, data=data, content=content)
    merged = {**{k.lower(): v for k, v in defaults.items()}, **headers}
    if data is not None:
        merged.setdefault("content-type", "application/x-www-form-urlencoded")
    expected = httpx.Request("POST", URL, headers=merged, data=data, content=content)
    assert request.method == expected.method
    assert request.url == expected.url
    assert request.headers.raw == expected.headers.raw
    assert request.content == expected.content
    assert request.extensions["timeout"] == httpx.Timeout(5.0).as_dict()
    # A retry sends the same request again: its body can be read more than once.
    stream = request.stream
    assert isinstance(stream, httpx.AsyncByteStream)
    assert b"".join([part async for part in stream]) == expected.content
    assert b"".join([part async for part in stream]) == expected.content


@pytest.mark.anyio
async def test_a_header_httpx_cannot_encode_is_refused_as_httpx_refuses_it() -> None:
    with pytest.raises(UnicodeEncodeError):
        httpx.Request("POST", URL, headers={"x-app-name": "café"}, content=b"a")
    with pytest.raises(UnicodeEncodeError):
        await _built(headers={"x-app-name": "café"}, data=None, content=b"a")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "client_options",
    [
        pytest.param({}, id="plain"),
        pytest.param(
            {
                "headers": {"User-Agent": "my-service/1.0", "X-Tenant-Hint": "t"},
                "cookies": {"affinity": "node-3"},
                "timeout": httpx.Timeout(7.0, connect=2.0),
            },
            id="headers-cookies-timeout",
        ),
        pytest.param({"params": {"slice": "testslice"}}, id="client-params"),
    ],
)
@pytest.mark.parametrize("params", [None, {"dc": "ESTS-PUB-WUS2"}])
async def test_a_callers_client_builds_what_its_build_request_builds(
    client_options: dict[str, Any], params: dict[str, str] | None
) -> None:
    ours = {"x-client-sku": "MSAL.Python.Async", "client-request-id": "abc"}
    data = {"client_id": "c", "scope": "api://x/.default", "grant_type": "client_credentials"}
    async with httpx.AsyncClient(**client_options) as client:
        request = await GivenClient(client).build(
            "POST", URL, params=params, headers=dict(ours), data=data, content=None
        )
        expected = client.build_request("POST", URL, params=params, headers=ours, data=data)

    def fields(built: httpx.Request) -> list[tuple[str, str]]:
        return sorted((k.lower(), v) for k, v in built.headers.multi_items())

    assert request.url == expected.url
    assert fields(request) == fields(expected)
    assert request.content == expected.content
    assert request.extensions["timeout"] == expected.extensions["timeout"]


@given(st.dictionaries(st.text(), st.text(), max_size=6))
def test_a_form_is_encoded_as_urlencode_encodes_it(form: dict[str, str]) -> None:
    assert encode_form(form) == urlencode(form)


def test_a_token_form_is_encoded_as_urlencode_encodes_it() -> None:
    form = {
        "client_id": "3b0d8c6e-5f2a-4e71-8c9d-1a2b3c4d5e6f",
        "grant_type": "client_credentials",
        "scope": "api://one/.default offline_access",
        "client_secret": "a+b/c=d~e_f.g&h é",
        "claims": '{"access_token":{"xms_cc":{"values":["cp1"]}}}',
        "": "",
    }
    assert encode_form(form) == urlencode(form)
