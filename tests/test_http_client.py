"""The app's own client builds requests as httpx would, without httpx's client layer."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
import pytest

from msal_async._http.client import OwnClient

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
