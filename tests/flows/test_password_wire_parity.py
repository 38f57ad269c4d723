"""Wire parity with msal 1.39 for username/password: managed and federated, over HTTPS."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import anyio
import msal
import pytest
import requests
import requests.adapters

from msal_async import PublicClientApplication
from msal_async.testing import (
    DEMO_TENANT_ID,
    AuthorityEmulator,
    FederationServer,
)

from ..conftest import ServeAuthority
from .conftest import PUBLIC_CLIENT_ID, USERNAME

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.filterwarnings("ignore:This API has been deprecated:DeprecationWarning"),
]

SCOPES = ["User.Read"]
PASSWORD = "p&ss<word>'\""
FEDERATED = "bob@fabrikam.example"
GENERIC_HEADERS = {"host", "user-agent", "accept-encoding", "connection", "content-length"}
VARYING_VALUES = {"client-request-id", "x-client-sku", "x-client-ver"}


class _Served:
    def __init__(self, federation: FederationServer, base_url: str, ca_file: str) -> None:
        self.federation = federation
        self.emulator: AuthorityEmulator = federation.emulator
        self.base_url = base_url
        self.ca_file = ca_file
        self.authority = f"{base_url}/{DEMO_TENANT_ID}"


@pytest.fixture(scope="module")
def served(serve_authority: ServeAuthority) -> Iterator[_Served]:
    """The emulator behind the fake AD FS, over HTTPS on 127.0.0.1."""
    emulator = AuthorityEmulator()
    emulator.register_client(PUBLIC_CLIENT_ID)
    emulator.add_user(USERNAME, password=PASSWORD)
    emulator.add_password_user(FEDERATED, PASSWORD, federated=True)
    federation = FederationServer(emulator)
    with serve_authority(emulator, front=federation) as https:
        yield _Served(federation, https.base_url, https.ca_file)


class _PortAdapter(requests.adapters.HTTPAdapter):
    """msal asks https://{host}/common/userrealm on port 443; send it to the server's port."""

    def __init__(self, port: int) -> None:
        super().__init__(max_retries=1)
        self.port = port

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        if request.url.startswith("https://127.0.0.1/"):
            request.url = request.url.replace(
                "https://127.0.0.1/", f"https://127.0.0.1:{self.port}/"
            )
        return super().send(request, *args, **kwargs)


def run_msal(served: _Served, username: str) -> dict[str, Any]:
    with requests.Session() as session:
        session.trust_env = False
        session.verify = served.ca_file
        session.mount("https://", _PortAdapter(urlsplit(served.base_url).port or 443))
        app = msal.PublicClientApplication(
            PUBLIC_CLIENT_ID,
            authority=served.authority,
            instance_discovery=False,
            http_client=session,
        )
        result: dict[str, Any] = app.acquire_token_by_username_password(username, PASSWORD, SCOPES)
    return result


async def run_ours(served: _Served, username: str) -> dict[str, Any]:
    async with PublicClientApplication(
        PUBLIC_CLIENT_ID,
        authority=served.authority,
        instance_discovery=False,
        verify=served.ca_file,
    ) as app:
        return dict(await app.acquire_token_by_username_password(username, PASSWORD, SCOPES))


def assert_same_headers(ours: Any, theirs: Any, *, only: set[str] | None = None) -> None:
    names = {k for k in theirs.headers if k not in GENERIC_HEADERS}
    if only is None:
        assert {k for k in ours.headers if k not in GENERIC_HEADERS} == names
    else:
        names = only
    for name in names - VARYING_VALUES:
        assert ours.headers[name] == theirs.headers[name], name


async def compare(served: _Served, username: str) -> tuple[list[Any], list[Any]]:
    start = len(served.emulator.requests)
    fed_start = len(served.federation.requests)
    theirs = await anyio.to_thread.run_sync(run_msal, served, username)
    middle = len(served.emulator.requests)
    fed_middle = len(served.federation.requests)
    ours = await run_ours(served, username)
    assert "access_token" in theirs
    assert "access_token" in ours
    their_token = [r for r in served.emulator.requests[start:middle] if r.method == "POST"]
    our_token = [r for r in served.emulator.requests[middle:] if r.method == "POST"]
    their_realm = [r for r in served.emulator.requests[start:middle] if "userrealm" in r.path]
    our_realm = [r for r in served.emulator.requests[middle:] if "userrealm" in r.path]
    assert [(r.path, r.query) for r in our_realm] == [(r.path, r.query) for r in their_realm]
    assert our_realm[0].headers["client-request-id"] == our_token[0].headers["client-request-id"]
    assert_same_headers(our_realm[0], their_realm[0], only={"accept"})
    return (
        [*their_token, *served.federation.requests[fed_start:fed_middle]],
        [*our_token, *served.federation.requests[fed_middle:]],
    )


async def test_managed_ropc_matches_msal(served: _Served) -> None:
    (theirs, *_), (ours, *_) = await compare(served, USERNAME)
    assert ours.form == theirs.form
    assert_same_headers(ours, theirs)


async def test_federated_ropc_matches_msal(served: _Served) -> None:
    theirs, ours = await compare(served, FEDERATED)
    their_grant, their_mex, their_rst = theirs
    our_grant, our_mex, our_rst = ours
    assert (our_mex.method, our_mex.path) == (their_mex.method, their_mex.path)
    assert our_rst.path == their_rst.path == "/adfs/services/trust/13/usernamemixed"
    for name in ("content-type", "soapaction"):
        assert our_rst.headers[name] == their_rst.headers[name]
    for rst in (our_rst, their_rst):
        assert "p&amp;ss&lt;word&gt;&apos;&quot;" in rst.body
    assert element_names(our_rst.body) == element_names(their_rst.body)
    assert set(our_grant.form) == set(their_grant.form)
    for name in set(their_grant.form) - {"assertion"}:
        assert our_grant.form[name] == their_grant.form[name], name
    for grant in (our_grant, their_grant):
        raw = base64.urlsafe_b64decode(grant.form["assertion"] + "==")
        assert raw.startswith(b"<saml:Assertion ")
    assert_same_headers(our_grant, their_grant)


def element_names(envelope: str) -> list[str]:
    """The qualified element names of an RST, in document order."""
    import xml.etree.ElementTree as ET

    return [element.tag for element in ET.fromstring(envelope).iter()]  # noqa: S314
