"""An in-process Microsoft Entra authority for tests: a plain ASGI app with inspectable state.

It speaks the endpoints msal uses (instance discovery, OpenID configuration, JWKS and the token
endpoint), issues RS256 JWTs it can verify, records and counts requests, and misbehaves on
demand. It shares no code with the msal_async client, so it cannot share a client bug.

In-process, through httpx::

    import httpx
    from msal_async.testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, AuthorityEmulator, Fault

    emulator = AuthorityEmulator()
    emulator.inject(Fault.too_many_requests(retry_after=1))   # the next token request gets 429
    transport = httpx.ASGITransport(app=emulator)
    async with httpx.AsyncClient(
        transport=transport, base_url="https://login.microsoftonline.com"
    ) as http:
        ...  # point your client at https://login.microsoftonline.com/{emulator.tenant_id}
    assert emulator.counts["client_credentials"] == 2

On a real socket, for any HTTP client (uvicorn: ``pip install msal-async[testing]``)::

    import tempfile
    from msal_async.testing import AuthorityEmulator, generate_tls_files, serve_in_thread

    tls = generate_tls_files(tempfile.mkdtemp())
    with serve_in_thread(AuthorityEmulator(), tls=tls) as base_url:
        ...  # authority=f"{base_url}/{DEMO_TENANT_ID}", verify=str(tls.ca_file)

Around code that builds its apps without ``http_client=`` (as production code does)::

    from msal_async.testing import AuthorityEmulator, emulate

    with emulate(AuthorityEmulator()) as emulator:
        ...  # every client an app builds for itself now talks to the emulator in-process

Or from a shell: ``msal-async serve-authority --port 8443 --tls``.
"""

from __future__ import annotations

from ._authorize import parse_auth_response, parse_form_post
from ._clients import ClientIdentity, RegisteredClient
from ._clock import FakeClock
from ._emulate import emulate
from ._emulator import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_TENANT_ID,
    STATS_PATH,
    AuthorityEmulator,
)
from ._entra import EntraError
from ._faults import Fault
from ._federation import FederationServer, SoapRequest
from ._grants import GrantHandler, TokenRequest
from ._http import RecordedRequest
from ._managed_identity import ManagedIdentityEmulator
from ._server import TLSFiles, generate_tls_files, run, serve_in_thread
from ._tokens import SigningKey, make_client_info
from ._users import AuthCode, IssuedRefreshToken, UserTokenSettings

__all__ = [
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "DEMO_TENANT_ID",
    "STATS_PATH",
    "AuthCode",
    "AuthorityEmulator",
    "ClientIdentity",
    "EntraError",
    "FakeClock",
    "Fault",
    "FederationServer",
    "GrantHandler",
    "IssuedRefreshToken",
    "ManagedIdentityEmulator",
    "RecordedRequest",
    "RegisteredClient",
    "SigningKey",
    "SoapRequest",
    "TLSFiles",
    "TokenRequest",
    "UserTokenSettings",
    "emulate",
    "generate_tls_files",
    "make_client_info",
    "parse_auth_response",
    "parse_form_post",
    "run",
    "serve_in_thread",
]
