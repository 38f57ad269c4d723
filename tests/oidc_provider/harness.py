"""Client-side harness for the oidc-provider fixture: clients, certificates, user drivers.

See ``conftest.py`` for the fixture and how to use it.
"""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..credentials.certs import self_signed

RESOURCE = "https://api.msal-async.test"
RESOURCE_SCOPES = ("api:read", "api:write")
SECRET_CLIENT_ID = "msal-async-secret"
SECRET_CLIENT_SECRET = "msal-async-secret-0123456789abcdef"
CERT_CLIENT_ID = "msal-async-cert"
PUBLIC_CLIENT_ID = "msal-async-public"
PUBLIC_REDIRECT_URIS = ("http://localhost/", "http://127.0.0.1/", "http://localhost/callback")


class OidcProviderError(AssertionError):
    """The provider answered a user-interaction step with an error page or an unknown page."""


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class ClientCertificate:
    """An RSA key and self-signed certificate for ``private_key_jwt`` clients."""

    key_pem: str
    cert_pem: str
    thumbprint: str  # SHA-1 of the DER certificate, hex, as msal's ``thumbprint`` takes it

    @property
    def thumbprint_credential(self) -> dict[str, str]:
        """msal's ``client_credential`` with ``private_key`` and ``thumbprint`` (RS256)."""
        return {"private_key": self.key_pem, "thumbprint": self.thumbprint}

    @property
    def certificate_credential(self) -> dict[str, str]:
        """msal's ``client_credential`` with ``private_key`` and ``public_certificate`` (PS256)."""
        return {"private_key": self.key_pem, "public_certificate": self.cert_pem}


def make_client_certificate(common_name: str = "msal-async-test") -> ClientCertificate:
    """Generate a 2048-bit RSA key and its self-signed certificate."""
    key, cert = self_signed(common_name)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    sha1 = cert.fingerprint(hashes.SHA1())  # noqa: S303 -- msal's x5t thumbprint is SHA-1
    return ClientCertificate(key_pem, cert_pem, sha1.hex().upper())


def jwks_for(cert_pem: str) -> dict[str, list[dict[str, str]]]:
    """The JWKS (RSA public key, no ``kid``/``alg``: RS256 and PS256 both verify) of a cert."""
    public = x509.load_pem_x509_certificate(cert_pem.encode()).public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    numbers = public.public_numbers()
    jwk = {"kty": "RSA", "use": "sig", "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e)}
    return {"keys": [jwk]}


@dataclass
class _Form:
    attrs: dict[str, str]
    fields: dict[str, str] = field(default_factory=dict)
    text_inputs: list[str] = field(default_factory=list)


class _PageParser(HTMLParser):
    """Collects the forms (hidden and named inputs) and link targets of one HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[_Form] = []
        self.links: list[str] = []
        self.text: list[str] = []
        self._form: _Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._form = _Form(values)
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None and values.get("name"):
            self._form.fields[values["name"]] = values.get("value", "")
            if values.get("type", "text") != "hidden":
                self._form.text_inputs.append(values["name"])
        elif tag == "a" and "href" in values:
            self.links.append(values["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.text.append(data.strip())


def _parse(html: str) -> _PageParser:
    parser = _PageParser()
    parser.feed(html)
    parser.close()
    return parser


@dataclass
class OidcProvider:
    """A running oidc-provider: its issuer, trust anchor, clients and user-interaction drivers."""

    issuer: str
    ca_file: str
    client_certificate: ClientCertificate
    admin_token: str = field(repr=False)
    resource: str = RESOURCE
    secret_client_id: str = SECRET_CLIENT_ID
    secret_client_secret: str = field(default=SECRET_CLIENT_SECRET, repr=False)
    cert_client_id: str = CERT_CLIENT_ID
    public_client_id: str = PUBLIC_CLIENT_ID

    def http_client(self) -> httpx.Client:
        """A fresh cookie-keeping client that trusts the provider's CA and ignores proxies.

        Returns:
            An ``httpx.Client`` that does not follow redirects on its own.
        """
        context = ssl.create_default_context(cafile=self.ca_file)
        return httpx.Client(verify=context, trust_env=False, timeout=10.0)

    def add_client(self, client_id: str, **metadata: Any) -> str:
        """Register a client while the server runs (oidc-provider validates the metadata).

        Args:
            client_id: The new client's id; must be unique in the session.
            **metadata: RFC 7591 metadata (``redirect_uris``, ``grant_types``, ...) plus the
                fixture's ``x_default_resource`` and ``x_access_token_ttl``.

        Returns:
            The client id.

        Raises:
            OidcProviderError: The server refused the metadata.
        """
        with self.http_client() as client:
            response = client.post(
                urljoin(self.issuer, "/__fixture/clients"),
                json={"client_id": client_id, **metadata},
                headers={"authorization": f"Bearer {self.admin_token}"},
            )
        if response.status_code != 201:
            raise OidcProviderError(f"add_client({client_id!r}) refused: {response.text}")
        return client_id

    def login(
        self, authorize_url: str, *, username: str = "alice", approve: bool = True
    ) -> str | dict[str, str]:
        """Play the user's browser through sign-in and consent, without a browser.

        Args:
            authorize_url: The app's authorization request URL (on this issuer).
            username: Any name; it becomes the ``sub`` (claims derive from it).
            approve: False cancels at the consent step (the app gets ``access_denied``).

        Returns:
            The final redirect URL to the app's redirect_uri (``code``, ``state``, ``iss`` or
            an error), or with ``response_mode=form_post`` the posted fields as a dict.

        Raises:
            OidcProviderError: The provider showed an error page.
        """
        with self.http_client() as client:
            outcome = self._drive(client, client.get(authorize_url), username, approve)
        if outcome is None:
            raise OidcProviderError("the interaction ended without returning to the app")
        return outcome

    def auth_response(
        self, authorize_url: str, *, username: str = "alice", approve: bool = True
    ) -> dict[str, str]:
        """Like :meth:`login`, but always the response parameters as a dict.

        Args:
            authorize_url: The app's authorization request URL (on this issuer).
            username: Any name; it becomes the ``sub``.
            approve: False cancels at the consent step.

        Returns:
            The query parameters of the redirect, or the form_post fields.
        """
        outcome = self.login(authorize_url, username=username, approve=approve)
        if isinstance(outcome, dict):
            return outcome
        return dict(parse_qsl(urlsplit(outcome).query))

    def confirm_device_code(
        self, user_code: str, *, username: str = "alice", approve: bool = True
    ) -> None:
        """Enter a device flow user code, sign in and consent (or abort) with plain HTTP.

        Args:
            user_code: The ``user_code`` from the device authorization response.
            username: Any name; it becomes the ``sub``.
            approve: False aborts, so the polling app gets ``access_denied``.

        Raises:
            OidcProviderError: The code was unknown, expired or used, or a step failed.
        """
        with self.http_client() as client:
            page = client.get(f"{self.issuer}/device")
            form = self._form(page, "op.deviceInputForm")
            form.fields["user_code"] = user_code
            page = client.post(urljoin(str(page.url), form.attrs["action"]), data=form.fields)
            form = self._form(page, "op.deviceConfirmForm")
            if not approve:
                del form.fields["confirm"]
                form.fields["abort"] = "yes"
            page = client.post(urljoin(str(page.url), form.attrs["action"]), data=form.fields)
            if approve:
                page = self._finish(client, page, username)
        if "Success" not in page.text and not (not approve and "interrupted" in page.text):
            raise OidcProviderError(f"device confirmation failed: {self._describe(page)}")

    # -- internals --------------------------------------------------------------------------

    def _finish(self, client: httpx.Client, page: httpx.Response, username: str) -> httpx.Response:
        """Follow the device flow's sign-in and consent to its final (success) page."""
        for _ in range(12):
            if page.is_redirect:
                page = client.get(urljoin(str(page.url), page.headers["location"]))
                continue
            step = self._interaction_step(page, username, approve=True)
            if step is None:
                return page
            page = client.post(step[0], data=step[1])
        raise OidcProviderError("too many steps in the device flow")

    def _drive(
        self, client: httpx.Client, page: httpx.Response, username: str, approve: bool
    ) -> str | dict[str, str] | None:
        """Follow the provider's pages until the app's redirect_uri; None if no way on."""
        for _ in range(12):
            if page.is_redirect:
                location = urljoin(str(page.url), page.headers["location"])
                if not self._own(location):
                    return location
                page = client.get(location)
                continue
            parsed = _parse(page.text)
            for form in parsed.forms:  # form_post auto-submit back to the app
                action = urljoin(str(page.url), form.attrs.get("action", ""))
                if not self._own(action):
                    return dict(form.fields)
            if not approve and any(f.fields.get("prompt") == "consent" for f in parsed.forms):
                abort = next((h for h in parsed.links if h.endswith("/abort")), None)
                if abort is None:
                    raise OidcProviderError("no abort link on the consent page")
                page = client.get(urljoin(str(page.url), abort))
                continue
            step = self._interaction_step(page, username, approve=approve)
            if step is None:
                raise OidcProviderError(f"unexpected page: {self._describe(page)}")
            page = client.post(step[0], data=step[1])
        raise OidcProviderError("too many interaction steps")

    def _interaction_step(
        self, page: httpx.Response, username: str, *, approve: bool
    ) -> tuple[str, dict[str, str]] | None:
        """The POST (URL, fields) that answers a devInteractions login or consent page."""
        if page.status_code >= 400:
            raise OidcProviderError(f"HTTP {page.status_code}: {self._describe(page)}")
        for form in _parse(page.text).forms:
            prompt = form.fields.get("prompt")
            if prompt == "login":
                fields = {**form.fields, "login": username, "password": "any-password"}
            elif prompt == "consent" and approve:
                fields = dict(form.fields)
            else:
                continue
            return urljoin(str(page.url), form.attrs["action"]), fields
        return None

    def _form(self, page: httpx.Response, form_id: str) -> _Form:
        for form in _parse(page.text).forms:
            if form.attrs.get("id") == form_id:
                return form
        raise OidcProviderError(f"no {form_id} form: {self._describe(page)}")

    def _own(self, url: str) -> bool:
        ours, theirs = urlsplit(self.issuer), urlsplit(url)
        return (ours.scheme, ours.netloc) == (theirs.scheme, theirs.netloc)

    @staticmethod
    def _describe(page: httpx.Response) -> str:
        text = " ".join(_parse(page.text).text)
        return f"HTTP {page.status_code} at {page.url.path}: {text[:300]}"
