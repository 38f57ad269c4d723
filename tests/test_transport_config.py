"""The app's own client: TLS verification, proxies (given and from the environment), timeouts."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from msal_async._errors import MsalTransportError
from msal_async._http.config import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_TIMEOUT,
    environment_proxies,
    make_ssl_context,
    proxy_routes,
    to_timeout,
)
from msal_async._transport import Transport

from .conftest import HttpsAuthority
from .transport_servers import Proxy, connect_proxy

pytestmark = pytest.mark.anyio

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def no_environment_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sets the proxy variables it needs, and no other."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    """A CONNECT proxy on 127.0.0.1."""
    with connect_proxy() as running:
        yield running


def _metadata(https: HttpsAuthority) -> str:
    return f"{https.authority}/v2.0/.well-known/openid-configuration"


async def _status(transport: Transport, url: str) -> int:
    try:
        return (await transport.get(url, cache=False)).status_code
    finally:
        await transport.aclose()


@pytest.mark.parametrize("kind", ["path", "context", "off"])
async def test_verify_accepts_what_trusts_the_server(
    https_authority: HttpsAuthority, kind: str
) -> None:
    choices: dict[str, bool | str | ssl.SSLContext] = {
        "path": https_authority.ca_file,
        "context": ssl.create_default_context(cafile=https_authority.ca_file),
        "off": False,
    }
    verify = choices[kind]
    assert await _status(Transport(verify=verify), _metadata(https_authority)) == 200


async def test_default_verification_rejects_an_unknown_ca(https_authority: HttpsAuthority) -> None:
    with pytest.raises(MsalTransportError, match=r"ConnectError.*CERTIFICATE_VERIFY_FAILED"):
        await _status(Transport(), _metadata(https_authority))


async def test_a_proxy_url_tunnels_every_request(
    https_authority: HttpsAuthority, proxy: Proxy
) -> None:
    transport = Transport(verify=https_authority.ca_file, proxies=proxy.url)
    assert await _status(transport, _metadata(https_authority)) == 200
    assert proxy.targets == [urlsplit(https_authority.base_url).netloc]


async def test_a_requests_style_mapping_proxies_its_schemes(
    https_authority: HttpsAuthority, proxy: Proxy
) -> None:
    transport = Transport(verify=https_authority.ca_file, proxies={"https": proxy.url})
    assert await _status(transport, _metadata(https_authority)) == 200
    assert len(proxy.targets) == 1


async def test_environment_proxies_are_honoured(
    https_authority: HttpsAuthority, proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    transport = Transport(verify=https_authority.ca_file)
    assert await _status(transport, _metadata(https_authority)) == 200
    assert len(proxy.targets) == 1


async def test_no_proxy_sends_a_host_directly(
    https_authority: HttpsAuthority, proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    transport = Transport(verify=https_authority.ca_file)
    assert await _status(transport, _metadata(https_authority)) == 200
    assert proxy.targets == []


async def test_plain_http_is_sent_to_the_proxy_itself(proxy: Proxy) -> None:
    """No tunnel for http://: the proxy gets the request (ours answers 405 to anything not CONNECT)."""
    transport = Transport(proxies=proxy.url)
    assert await _status(transport, "http://login.example.test/tenant/doc") == 405
    assert proxy.targets == []


def test_environment_proxies_follow_httpx_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "proxy.corp:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", "localhost, 10.0.0.1,::1,.internal.corp,example.com")
    assert environment_proxies() == {
        "http://": "http://proxy.corp:3128",
        "https://": "http://proxy.corp:3128",
        "all://localhost": None,
        "all://10.0.0.1": None,
        "all://[::1]": None,
        "all://*.internal.corp": None,
        "all://*example.com": None,
    }
    monkeypatch.setenv("NO_PROXY", "*")
    assert environment_proxies() == {}


def test_given_proxies_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://env:1")
    assert proxy_routes("http://given:2") == {"all://": "http://given:2"}
    assert proxy_routes({"https": "http://given:2"}) == {"https://": "http://given:2"}
    assert proxy_routes(None, trust_env=False) == {}


def test_timeouts() -> None:
    assert to_timeout(None) == httpx.Timeout(DEFAULT_TIMEOUT, connect=DEFAULT_CONNECT_TIMEOUT)
    assert to_timeout(5) == httpx.Timeout(5.0)
    assert to_timeout((2, 7)) == httpx.Timeout(7.0, connect=2.0)
    given = httpx.Timeout(1.0, pool=3.0)
    assert to_timeout(given) is given


def test_ssl_context_from_verify(https_authority: HttpsAuthority) -> None:
    context = ssl.create_default_context()
    assert make_ssl_context(context) is context
    assert make_ssl_context(False).verify_mode == ssl.CERT_NONE
    assert make_ssl_context(https_authority.ca_file).verify_mode == ssl.CERT_REQUIRED
    assert make_ssl_context(True).check_hostname
