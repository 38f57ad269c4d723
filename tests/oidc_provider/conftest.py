"""The ``oidc_provider`` fixture: oidc-provider 8.x over HTTPS on 127.0.0.1, driven by plain HTTP.

One Node.js process per test session (``server/server.mjs``, started on first use) serves
the issuer https://127.0.0.1:PORT/oidc with the session's test certificate (the ``tls_files``
fixture; ``provider.ca_file``). The ``/oidc`` path is needed: msal (and msal_async) reject an ``oidc_authority`` without a path
segment; ``oidc_authority=provider.issuer`` finds ``{issuer}/.well-known/openid-configuration``
and the issuer check is an exact match.
Without Node.js the tests skip locally and fail in CI (``MSAL_ASYNC_CI=1``); a missing
``server/node_modules`` is installed once with ``npm ci``.

Clients configured up front (module constants, also attributes of the fixture object):

- ``SECRET_CLIENT_ID`` / ``SECRET_CLIENT_SECRET``: confidential, ``client_secret_post``,
  ``client_credentials`` only.
- ``CERT_CLIENT_ID``: confidential, ``private_key_jwt``; its JWKS holds the public key of
  ``provider.client_certificate`` (a fresh RSA key and self-signed certificate per session)::

      cert = oidc_provider.client_certificate
      app = ConfidentialClientApplication(
          CERT_CLIENT_ID,
          client_credential=cert.thumbprint_credential,  # or cert.certificate_credential
          oidc_authority=oidc_provider.issuer, verify=oidc_provider.ca_file)

  oidc-provider rejects a reused assertion ``jti`` ("client assertion tokens must only be used
  once": real msal 1.39's second token request from one app fails so, as it re-sends its cached
  assertion), accepts RS256 and PS256 and ``aud`` = issuer or token endpoint URL. A second
  certificate client: ``provider.add_client("id", token_endpoint_auth_method="private_key_jwt",
  grant_types=["client_credentials"], response_types=[], redirect_uris=[],
  jwks=jwks_for(make_client_certificate().cert_pem), x_default_resource=RESOURCE)``.
- ``PUBLIC_CLIENT_ID``: public (``none``), native, authorization_code + PKCE S256 (required),
  refresh_token and device_code grants; redirect URIs ``http://localhost/``,
  ``http://127.0.0.1/`` and ``http://localhost/callback`` on ANY port (RFC 8252 loopback rule).

All three have ``x_default_resource=RESOURCE``: msal never sends ``resource``, so the server
picks this API, and scopes of ``RESOURCE_SCOPES`` (``api:read``, ``api:write``) yield JWT access
tokens with ``aud == RESOURCE``; the token response's ``scope`` lists only the resource's
scopes (``"api:read"``, never ``openid`` or ``offline_access``), and an ``id_token`` comes when
``openid`` was asked. Scopes that are neither OIDC scopes nor the resource's are silently
dropped (a client without ``x_default_resource`` gets opaque tokens for static scopes only).
Other per-client knob: ``x_access_token_ttl`` (seconds).

Quirks: ``offline_access`` (so a refresh token) is granted in the auth code flow only when the
request carries ``prompt=consent`` (OpenID Connect Core 11); the device flow keeps it without.
A refresh may ask for any subset of the granted scopes (msal's ``api:read openid profile
offline_access`` works); asking for more is ``invalid_scope``. Public clients' refresh tokens
rotate on every use. The device authorization response has no ``interval`` and no ``message``.
Account ``sub`` = the username given to ``login``; claims ``name``, ``preferred_username`` and
``email`` (``{username}@example.test``) follow from it.

Driving users (sync; from async tests call them via ``anyio.to_thread.run_sync``):
``provider.login(authorize_url)`` returns the redirect URL to the app's redirect_uri (or, for
``response_mode=form_post``, the posted fields as a dict); ``provider.auth_response(url)`` always
returns the parameters as a dict; ``provider.confirm_device_code(user_code)`` approves a code.
``approve=False`` on any of them refuses (``access_denied``). ``provider.add_client(id, **meta)``
registers another client at run time (ids are session-wide: make them unique per test module).
The helpers live in ``harness.py`` and are re-exported here.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, NoReturn

import pytest

from msal_async.testing import TLSFiles

from .harness import (
    CERT_CLIENT_ID,
    PUBLIC_CLIENT_ID,
    PUBLIC_REDIRECT_URIS,
    RESOURCE,
    RESOURCE_SCOPES,
    SECRET_CLIENT_ID,
    SECRET_CLIENT_SECRET,
    ClientCertificate,
    OidcProvider,
    OidcProviderError,
    jwks_for,
    make_client_certificate,
)

__all__ = [
    "CERT_CLIENT_ID",
    "PUBLIC_CLIENT_ID",
    "PUBLIC_REDIRECT_URIS",
    "RESOURCE",
    "RESOURCE_SCOPES",
    "SECRET_CLIENT_ID",
    "SECRET_CLIENT_SECRET",
    "ClientCertificate",
    "OidcProvider",
    "OidcProviderError",
    "jwks_for",
    "make_client_certificate",
    "oidc_provider",
]

SERVER_DIR = Path(__file__).resolve().parent / "server"
READY_TIMEOUT = 20.0
NO_NODE = "Node.js not found: the oidc-provider interop tests need Node 20+"


def _unavailable(reason: str) -> NoReturn:
    """Skip locally; fail in CI (``MSAL_ASYNC_CI=1``), where the server must run."""
    if os.environ.get("MSAL_ASYNC_CI") == "1":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


# -- starting the server -------------------------------------------------------------------------


def _node() -> str:
    """The node executable with installed node_modules, or skip/fail."""
    node = shutil.which("node")
    if node is None:
        _unavailable(NO_NODE)
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    major = int(version.lstrip("v").split(".")[0] or 0)
    if major < 18:
        _unavailable(f"Node.js {version} is too old: the oidc-provider interop tests need 20+")
    if not (SERVER_DIR / "node_modules" / "oidc-provider").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            _unavailable(f"npm not found to install {SERVER_DIR}/node_modules (npm ci)")
        done = subprocess.run(
            [npm, "ci", "--prefix", str(SERVER_DIR), "--no-audit", "--no-fund"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            _unavailable(f"npm ci for the oidc-provider tests failed: {done.stderr[-500:]}")
    return node


def _clients(cert: ClientCertificate) -> list[dict[str, Any]]:
    confidential = {
        "grant_types": ["client_credentials"],
        "response_types": [],
        "redirect_uris": [],
        "x_default_resource": RESOURCE,
    }
    return [
        {
            "client_id": SECRET_CLIENT_ID,
            "client_secret": SECRET_CLIENT_SECRET,
            "token_endpoint_auth_method": "client_secret_post",
            **confidential,
        },
        {
            "client_id": CERT_CLIENT_ID,
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": jwks_for(cert.cert_pem),
            **confidential,
        },
        {
            "client_id": PUBLIC_CLIENT_ID,
            "application_type": "native",
            "token_endpoint_auth_method": "none",
            "grant_types": [
                "authorization_code",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:device_code",
            ],
            "response_types": ["code"],
            "redirect_uris": list(PUBLIC_REDIRECT_URIS),
            "x_default_resource": RESOURCE,
        },
    ]


def _read_ready(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    """Hand the ready line over, then keep draining stdout so the server never blocks."""
    for line in stream:
        if line.startswith("READY "):
            lines.put(line.split(" ", 1)[1].strip())
    lines.put(None)


def _stop(process: subprocess.Popen[str]) -> None:
    """Terminate the server's whole process group (no orphans), then reap it."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="session")
def oidc_provider(
    tmp_path_factory: pytest.TempPathFactory, tls_files: TLSFiles
) -> Iterator[OidcProvider]:
    """Start oidc-provider once per session over HTTPS on 127.0.0.1 (see the module docstring)."""
    node = _node()
    folder = tmp_path_factory.mktemp("oidc_provider")
    ca_file, cert_file, key_file = tls_files.ca_file, tls_files.certfile, tls_files.keyfile
    client_cert = make_client_certificate()
    config = {
        "resource_servers": {RESOURCE: {"scope": " ".join(RESOURCE_SCOPES)}},
        "clients": _clients(client_cert),
    }
    (folder / "config.json").write_text(json.dumps(config))
    admin_token = secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "OIDC_FIXTURE_CERT": str(cert_file),
        "OIDC_FIXTURE_KEY": str(key_file),
        "OIDC_FIXTURE_CONFIG": str(folder / "config.json"),
        "OIDC_FIXTURE_ADMIN": admin_token,
    }
    log_path = folder / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [node, "server.mjs", "0"],
            cwd=SERVER_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,  # its own process group, killed as a whole at teardown
        )
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_read_ready, args=(process.stdout, lines), daemon=True)
    reader.start()
    try:
        try:
            issuer = lines.get(timeout=READY_TIMEOUT)
        except queue.Empty:
            issuer = None
        if issuer is None:
            pytest.fail(f"oidc-provider did not start: {log_path.read_text()[-2000:]}")
        yield OidcProvider(issuer, str(ca_file), client_cert, admin_token)
    finally:
        _stop(process)
        reader.join(timeout=5)
        process.stdout.close()
