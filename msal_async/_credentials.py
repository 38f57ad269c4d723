"""Client credentials: turn what the caller passed into the form fields of a token request.

A registry maps each accepted input shape (msal's ``client_credential``, spec 2) to a
credential kind. Every credential renders as ``***`` in ``repr`` so a secret never reaches a
log line or a traceback.

Certificate credentials sign a **fresh** assertion (new ``jti``) for every token request.
msal memoises one signed assertion for 540 s, so its second request within that window
re-sends the same ``jti``; OpenID Connect Core section 9 lets a server reject that ("client
assertion tokens must only be used once"), and standard providers do. So the signature is made
cheap instead: the key is loaded once, the JWS header (with ``x5t``/``x5t#S256`` and ``x5c``)
is serialized once per credential, and each request serializes its claims and signs them with
joserfc's algorithm (about 0.27 ms of CPU for RSA-2048 with PS256 or RS256; joserfc's whole
``jwt.encode`` path costs 5-10% more than calling cryptography directly, measured in
docs/transport.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import inspect
import json
import re
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

# cryptography and joserfc load with the first certificate credential: an app with a client
# secret never needs them (they cost more than the rest of the import of an app).
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from joserfc.jwk import RSAKey

__all__ = [
    "ASSERTION_LIFETIME",
    "CLIENT_ASSERTION_TYPE",
    "DICT_CREDENTIALS",
    "AssertionCredential",
    "AutoRefresher",
    "CertificateCredential",
    "ClientCredential",
    "ClientSecret",
    "CredentialOptions",
    "parse_client_credential",
]

#: RFC 7523 section 2.2.
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Seconds from ``iat`` to ``exp`` of a signed client assertion (msal: 600).
ASSERTION_LIFETIME = 600
_DOCS = "https://learn.microsoft.com/python/api/msal/msal.application.confidentialclientapplication"


class ClientCredential(Protocol):
    """What a token request needs from a client credential."""

    @property
    def kind(self) -> str:
        """A short name of the credential kind, for logs."""
        ...

    async def form_fields(
        self, *, client_id: str, token_endpoint: str, fmi_path: str | None = None
    ) -> dict[str, str]:
        """Return the credential's form fields for one token request."""
        ...


@dataclass(frozen=True)
class CredentialOptions:
    """What a credential parser needs besides the ``client_credential`` value.

    Attributes:
        client_claims: extra claims for signed assertions (may override the standard ones).
        is_adfs: the authority is AD FS, which only takes RS256 with a SHA-1 ``x5t``.
        clock: seconds since the epoch, for ``iat`` and ``exp``.
        read_file: reads a PFX file's bytes (the app's reader runs off the event loop).
    """

    client_claims: Mapping[str, Any] | None = None
    is_adfs: bool = False
    clock: Callable[[], float] = time.time
    read_file: Callable[[str], Awaitable[bytes]] | None = None


@dataclass(frozen=True)
class ClientSecret:
    """A client secret, sent as the ``client_secret`` form field (client_secret_post)."""

    secret: str = field(repr=False)
    kind: str = "client_secret"

    def __repr__(self) -> str:
        return "ClientSecret(secret='***')"

    async def form_fields(
        self, *, client_id: str, token_endpoint: str, fmi_path: str | None = None
    ) -> dict[str, str]:
        """Return ``{"client_secret": ...}``."""
        return {"client_secret": self.secret}


@dataclass(frozen=True, repr=False)
class CertificateCredential:
    """A private key that signs a new client assertion JWT for every request (RFC 7523).

    Attributes:
        key: the RSA private key.
        header: the JWS header (``alg``, ``typ``, ``x5t`` or ``x5t#S256``, maybe ``x5c``).
        client_claims: merged over the standard claims.
        clock: seconds since the epoch.
    """

    key: RSAKey
    header: Mapping[str, Any]
    client_claims: Mapping[str, Any] = field(default_factory=dict)
    clock: Callable[[], float] = time.time
    kind: str = "certificate"
    # The header's base64url segment, serialized once (x5c alone is a kilobyte or more).
    _header_segment: bytes = field(init=False, repr=False, compare=False)
    _algorithm: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        from joserfc.jws import JWSRegistry

        header = json.dumps(dict(self.header), separators=(",", ":")).encode()
        object.__setattr__(self, "_header_segment", _b64url(header))
        object.__setattr__(self, "_algorithm", JWSRegistry.algorithms[self.header["alg"]])

    def __repr__(self) -> str:
        return f"CertificateCredential(alg={self.header.get('alg')!r}, key='***')"

    def sign(self, *, client_id: str, audience: str) -> str:
        """Sign one client assertion with msal's claims and a fresh ``jti``.

        Args:
            client_id: ``iss`` and ``sub``.
            audience: ``aud``, the token endpoint.

        Returns:
            The compact JWS.
        """
        now = int(self.clock())
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "exp": now + ASSERTION_LIFETIME,
            "iat": now,
            "jti": str(uuid.uuid4()),
        }
        claims.update(self.client_claims)
        payload = json.dumps(claims, separators=(",", ":")).encode()
        # RFC 7515 section 7.1: header.payload.signature, each base64url without padding.
        signing_input = self._header_segment + b"." + _b64url(payload)
        signature = self._algorithm.sign(signing_input, self.key)
        return (signing_input + b"." + _b64url(signature)).decode("ascii")

    async def form_fields(
        self, *, client_id: str, token_endpoint: str, fmi_path: str | None = None
    ) -> dict[str, str]:
        """Return ``client_assertion_type`` and a freshly signed ``client_assertion``."""
        assertion = self.sign(client_id=client_id, audience=token_endpoint)
        return {"client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": assertion}


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


AssertionSource = Callable[..., "str | bytes | Awaitable[str | bytes]"]


def _wants_context(func: Callable[..., Any]) -> bool:
    """msal's rule: pass the context dict iff a positional parameter has no default."""
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return any(p.kind in positional and p.default is inspect.Parameter.empty for p in parameters)


@dataclass(frozen=True, repr=False)
class AssertionCredential:
    """A client assertion given by the caller: a fixed JWT, or a (possibly async) callable.

    A callable is invoked for every request, awaited when it returns an awaitable, and given
    msal's context dict ``{"client_id", "token_endpoint", "fmi_path"?}`` when it takes a
    required positional parameter.
    """

    source: str | AssertionSource
    kind: str = "client_assertion"

    def __repr__(self) -> str:
        return "AssertionCredential(assertion='***')"

    async def form_fields(
        self, *, client_id: str, token_endpoint: str, fmi_path: str | None = None
    ) -> dict[str, str]:
        """Return ``client_assertion_type`` and the current ``client_assertion``.

        Raises:
            TypeError: the callable returned something other than a str or bytes.
        """
        value: object = self.source
        if callable(self.source):
            if _wants_context(self.source):
                context = {"client_id": client_id, "token_endpoint": token_endpoint}
                if fmi_path:
                    context["fmi_path"] = fmi_path
                value = self.source(context)
            else:
                value = self.source()
            if inspect.isawaitable(value):
                value = await value
        if isinstance(value, bytes):
            value = value.decode()
        if not isinstance(value, str) or not value:
            msg = (
                "client_credential['client_assertion'] callable must return a non-empty JWT "
                f"str or bytes, got {type(value).__name__}"
            )
            raise TypeError(msg)
        return {"client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": value}


class AutoRefresher:
    """Memoise ``factory()`` for ``expires_in`` seconds (msal's ``AutoRefresher``).

    Wrap an expensive assertion callable in it. Like msal's, it has no lock: two threads
    may both call the factory once.

    Args:
        factory: a no-argument callable.
        expires_in: seconds to reuse a value.
    """

    def __init__(self, factory: Callable[[], Any], expires_in: float = 540) -> None:
        self._factory = factory
        self._expires_in = expires_in
        self._value: Any = None
        self._expires_at = 0.0

    def __call__(self) -> Any:
        """Return the memoised value, calling the factory when it has expired.

        Returns:
            What ``factory()`` returned.
        """
        now = time.time()
        if self._expires_at <= now:
            self._value = self._factory()
            self._expires_at = now + self._expires_in
        return self._value


def _rsa(key: object, where: str) -> RSAKey:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from joserfc.jwk import RSAKey

    if not isinstance(key, rsa.RSAPrivateKey):
        msg = f"{where} must be an RSA private key, got {type(key).__name__}"
        raise ValueError(msg)  # noqa: TRY004 (a malformed credential is a ValueError, as in msal)
    imported: RSAKey = RSAKey.import_key(key)
    return imported


def _certificate(
    key: rsa.RSAPrivateKey,
    *,
    sha1: bytes | None,
    sha256: bytes | None,
    x5c: list[str] | None,
    options: CredentialOptions,
) -> CertificateCredential:
    """Pick the algorithm as msal does: PS256 with SHA-256 unless AD FS, else RS256/SHA-1."""
    from ._certificates import x5t

    header: dict[str, Any] = {"typ": "JWT"}
    if sha256 is not None and not options.is_adfs:
        header.update({"alg": "PS256", "x5t#S256": x5t(sha256)})
    elif sha1 is not None:
        header.update({"alg": "RS256", "x5t": x5t(sha1)})
    else:
        msg = "You shall provide a thumbprint in SHA1 (AD FS needs client_credential['thumbprint'])"
        raise ValueError(msg)
    if x5c:
        header["x5c"] = x5c
    return CertificateCredential(
        key=_rsa(key, "client_credential['private_key']"),
        header=header,
        client_claims=dict(options.client_claims or {}),
        clock=options.clock,
    )


def _parse_pem(value: Mapping[str, Any], options: CredentialOptions) -> ClientCredential:
    from cryptography.hazmat.primitives import serialization

    from ._certificates import (
        as_bytes,
        check_pair,
        extract_certs,
        load_certificates,
        load_pem_key,
        x5c_entry,
    )

    key = load_pem_key(value)
    thumbprint, public_certificate = value.get("thumbprint"), value.get("public_certificate")
    x5c: list[str] | None = None
    if thumbprint:
        if not isinstance(thumbprint, str) or not re.fullmatch(r"[0-9a-fA-F]{40}", thumbprint):
            msg = (
                "client_credential['thumbprint'] must be the certificate's SHA-1 thumbprint: "
                "40 hex digits"
            )
            raise ValueError(msg)
        if isinstance(public_certificate, str | bytes) and public_certificate:
            x5c = extract_certs(as_bytes(public_certificate, "public_certificate").decode())
        return _certificate(
            key, sha1=binascii.a2b_hex(thumbprint), sha256=None, x5c=x5c, options=options
        )
    if isinstance(public_certificate, str | bytes) and public_certificate:
        leaf = load_certificates(public_certificate)[0]
        check_pair(key, leaf, "client_credential['public_certificate']")
        der = leaf.public_bytes(serialization.Encoding.DER)
        return _certificate(
            key,
            sha1=hashlib.sha1(der).digest(),  # noqa: S324 - x5t is SHA-1 by definition (RFC 7515)
            sha256=hashlib.sha256(der).digest(),
            x5c=[x5c_entry(leaf)],
            options=options,
        )
    msg = (
        "client_credential with a 'private_key' needs a 'thumbprint' or a "
        "'public_certificate' from which the thumbprint can be calculated"
    )
    raise ValueError(msg)


#: Reads a file's bytes; the app supplies one that runs off the event loop.
FileReader = Callable[[str], Awaitable[bytes]]


async def _no_reader(path: str) -> bytes:
    msg = "a PFX credential needs parse_client_credential(..., read_file=...) to read its file"
    raise RuntimeError(msg)


def load_pfx(
    data: bytes,
    password: bytes | None,
    public_certificate: object,
    options: CredentialOptions,
) -> CertificateCredential:
    """Build the certificate credential held in a PFX (PKCS#12) file's bytes.

    Returns:
        The credential (PS256 with ``x5t#S256`` unless AD FS).

    Raises:
        ValueError: a wrong passphrase, not a PFX, no key or certificate, or not RSA.
    """
    from cryptography.hazmat.primitives import serialization

    from ._certificates import extract_certs, load_pkcs12, x5c_entry

    key, cert = load_pkcs12(data, password)
    x5c: list[str] | None = None
    if public_certificate is True:
        x5c = [x5c_entry(cert)]
    elif isinstance(public_certificate, str) and public_certificate:
        x5c = extract_certs(public_certificate)
    der = cert.public_bytes(serialization.Encoding.DER)
    return _certificate(
        key,
        sha1=hashlib.sha1(der).digest(),  # noqa: S324 - x5t is SHA-1 by definition (RFC 7515)
        sha256=hashlib.sha256(der).digest(),
        x5c=x5c,
        options=options,
    )


@dataclass
class PfxCredential:
    """A certificate in a PFX file, read on first use (constructors do no I/O).

    The file is read once through ``read_file`` (the app's reader runs in a worker thread),
    then every request signs a fresh assertion as :class:`CertificateCredential` does. A bad
    file or passphrase raises ValueError naming ``private_key_pfx_path`` at that first use.
    """

    path: str
    password: bytes | None = field(repr=False)
    public_certificate: object = field(repr=False)
    options: CredentialOptions = field(repr=False)
    read_file: FileReader = field(repr=False, default=_no_reader)
    kind: str = "pfx"
    _loaded: CertificateCredential | None = field(default=None, init=False, repr=False)

    async def loaded(self) -> CertificateCredential:
        """The certificate credential, reading the file the first time.

        Returns:
            The credential.

        Raises:
            ValueError: the file cannot be read, or is not a PFX this passphrase opens.
        """
        if self._loaded is None:
            try:
                data = await self.read_file(self.path)
            except OSError as exc:
                msg = f"client_credential['private_key_pfx_path'] cannot be read: {exc.strerror}"
                raise ValueError(msg) from None
            self._loaded = load_pfx(data, self.password, self.public_certificate, self.options)
        return self._loaded

    async def form_fields(
        self, *, client_id: str, token_endpoint: str, fmi_path: str | None = None
    ) -> dict[str, str]:
        """Return a freshly signed ``client_assertion`` and its type.

        Returns:
            The form fields.
        """
        credential = await self.loaded()
        return await credential.form_fields(
            client_id=client_id, token_endpoint=token_endpoint, fmi_path=fmi_path
        )


def _parse_pfx(value: Mapping[str, Any], options: CredentialOptions) -> ClientCredential:
    path = value["private_key_pfx_path"]
    if not isinstance(path, str | Path):
        msg = "client_credential['private_key_pfx_path'] must be a file path string"
        raise ValueError(msg)  # noqa: TRY004 (a malformed credential is a ValueError, as in msal)
    from ._certificates import as_bytes

    passphrase = value.get("passphrase")
    password = as_bytes(passphrase, "passphrase") if passphrase else None
    return PfxCredential(
        str(path),
        password,
        value.get("public_certificate"),
        options,
        read_file=options.read_file or _no_reader,
    )


def _parse_assertion(value: Mapping[str, Any], options: CredentialOptions) -> ClientCredential:
    source = value["client_assertion"]
    if isinstance(source, bytes):
        source = source.decode()
    if isinstance(source, str):
        warnings.warn(
            "Passing a static string/bytes 'client_assertion' is discouraged because the JWT "
            "will eventually expire. Pass a no-arg callable instead (optionally wrapped in "
            "msal_async.AutoRefresher) so a fresh assertion is obtained on demand. See "
            "https://github.com/AzureAD/microsoft-authentication-library-for-python/issues/746",
            DeprecationWarning,
            stacklevel=6,
        )
        return AssertionCredential(source)
    if callable(source):
        return AssertionCredential(source)
    msg = (
        "client_credential['client_assertion'] must be a JWT string or a callable returning "
        f"one, got {type(source).__name__}"
    )
    raise ValueError(msg)


_Parser = Callable[[Mapping[str, Any], CredentialOptions], ClientCredential]

#: Dict-shaped credentials by their distinguishing key, in msal's order of precedence.
DICT_CREDENTIALS: dict[str, _Parser] = {
    "client_assertion": _parse_assertion,
    "private_key_pfx_path": _parse_pfx,
    "private_key": _parse_pem,
}


def parse_client_credential(
    value: object,
    *,
    client_claims: Mapping[str, Any] | None = None,
    is_adfs: bool = False,
    clock: Callable[[], float] = time.time,
    read_file: Callable[[str], Awaitable[bytes]] | None = None,
) -> ClientCredential | None:
    """Validate ``client_credential`` and build the matching credential.

    Args:
        value: msal's ``client_credential``: a secret string or a dict (spec 2).
        client_claims: extra claims for signed assertions.
        is_adfs: the authority is AD FS (forces RS256 with the SHA-1 thumbprint).
        clock: seconds since the epoch, for assertion ``iat``/``exp``.
        read_file: reads a PFX file when it is first used (no I/O here).

    Returns:
        The credential, or None when ``value`` is None.

    Raises:
        TypeError: ``value`` is neither a string nor a dict.
        ValueError: the string is empty, the dict has none of the known keys, or a key,
            certificate, passphrase or PFX file is malformed (the message names which).
    """
    if value is None:
        return None
    if isinstance(value, str):
        if not value:
            msg = "client_credential is an empty string; pass your client secret"
            raise ValueError(msg)
        return ClientSecret(value)
    if isinstance(value, Mapping):
        options = CredentialOptions(
            client_claims=client_claims, is_adfs=is_adfs, clock=clock, read_file=read_file
        )
        for key, parser in DICT_CREDENTIALS.items():
            if value.get(key):  # .get(): an empty value (from an empty env var) is ignored
                return parser(value, options)
        known = ", ".join(DICT_CREDENTIALS)
        msg = (
            f"client_credential dict has keys {sorted(map(str, value))}; expected one of: "
            f"{known}. See {_DOCS} for the accepted formats"
        )
        raise ValueError(msg)
    msg = (
        "client_credential must be a client secret string or a dict (certificate, "
        f"assertion), got {type(value).__name__}"
    )
    raise TypeError(msg)
