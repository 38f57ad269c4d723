"""Registered applications and client authentication (client secret, client assertion)."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote

from ._assertions import bad_assertion, verify_client_assertion
from ._entra import EntraError

__all__ = ["ASSERTION_TYPE", "ClientIdentity", "RegisteredClient", "authenticate_client"]

#: RFC 7523 section 2.2: the only ``client_assertion_type`` Entra accepts.
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass(frozen=True)
class RegisteredClient:
    """An application registered with the emulator.

    Attributes:
        client_id: the application (client) id.
        secret: the client secret; None for a public client or a certificate-only client.
        certificates: PEM X.509 certificates whose keys may sign client assertions.
        roles: app roles put in the ``roles`` claim of app-only tokens.
    """

    client_id: str
    secret: str | None = None
    certificates: tuple[bytes, ...] = ()
    roles: tuple[str, ...] = ()

    @property
    def is_confidential(self) -> bool:
        """Whether the client has a credential (secret or certificate).

        Returns:
            True for a confidential client.
        """
        return self.secret is not None or bool(self.certificates)


@dataclass(frozen=True)
class ClientIdentity:
    """Who is calling the token endpoint, after client authentication.

    Attributes:
        client: the registered application.
        method: how it authenticated: ``"client_secret_post"``, ``"client_secret_basic"``,
            ``"private_key_jwt"``, or None when it sent no credential (public client flows).
        assertion_claims: the verified client assertion's claims, for ``private_key_jwt``.
    """

    client: RegisteredClient
    method: str | None = None
    assertion_claims: Mapping[str, object] = field(default_factory=dict)

    @property
    def client_id(self) -> str:
        """The application id.

        Returns:
            ``client.client_id``.
        """
        return self.client.client_id

    @property
    def authenticated(self) -> bool:
        """Whether the caller proved a credential.

        Returns:
            True when :attr:`method` is set.
        """
        return self.method is not None


def _missing(*, name: str) -> EntraError:
    return EntraError(
        900144,
        "invalid_request",
        f"The request body must contain the following parameter: '{name}'.",
    )


def _bad_secret(client_id: str) -> EntraError:
    return EntraError(
        7000215,
        "invalid_client",
        "Invalid client secret provided. Ensure the secret being sent in the request is the "
        f"client secret value, not the client secret ID, for a secret added to app '{client_id}'.",
        status=401,
    )


def _basic_credentials(headers: Mapping[str, str]) -> tuple[str, str] | None:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    # RFC 6749 section 2.3.1: both parts are form-urlencoded before base64.
    return (unquote(user), unquote(password)) if sep else None


def _reject_replay(
    seen: MutableMapping[tuple[str, str], float], client_id: str, claims: Mapping[str, object]
) -> None:
    """OpenID Connect Core section 9: a ``jti`` may be used once (until the assertion expires)."""
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise bad_assertion(700025, "Client assertion must contain a 'jti' claim.")
    exp = claims.get("exp")
    if (client_id, jti) in seen:
        raise bad_assertion(
            700025, "Client assertion tokens must only be used once (jti replayed)."
        )
    seen[(client_id, jti)] = float(exp) if isinstance(exp, int | float) else 0.0


def authenticate_client(
    clients: Mapping[str, RegisteredClient],
    form: Mapping[str, str],
    headers: Mapping[str, str],
    *,
    token_endpoints: Sequence[str],
    directory: str,
    now: float,
    seen_assertions: MutableMapping[tuple[str, str], float] | None = None,
) -> ClientIdentity:
    """Find the calling application and check the credential it presented, if any.

    A request without a credential authenticates nobody (``method=None``); a grant that needs
    a confidential client says so with ``TokenRequest.require_client_credential()``.

    Args:
        clients: the registered applications by client id.
        form: the token request body.
        headers: the request headers (lower-case names), for HTTP Basic.
        token_endpoints: the URLs a client assertion's ``aud`` may name.
        directory: the tenant name used in "not found in the directory" errors.
        now: seconds since the epoch.
        seen_assertions: ``{(client_id, jti): exp}`` of assertions already accepted; when
            given, a replayed ``jti`` is rejected and accepted ones are added (entries past
            their ``exp`` are dropped).

    Returns:
        The caller's identity.

    Raises:
        EntraError: no ``client_id`` (400), an unknown client (400 ``invalid_client``,
            AADSTS700016), a wrong secret or a bad assertion (401 ``invalid_client``).
    """
    basic = _basic_credentials(headers)
    client_id = form.get("client_id") or (basic[0] if basic else "")
    if not client_id:
        raise _missing(name="client_id")
    client = clients.get(client_id)
    if client is None:
        raise EntraError(
            700016,
            "invalid_client",
            f"Application with identifier '{client_id}' was not found in the directory "
            f"'{directory}'. This can happen if the application has not been installed by the "
            "administrator of the tenant or consented to by any user in the tenant. You may "
            "have sent your authentication request to the wrong tenant.",
        )
    secret = form.get("client_secret")
    if secret is not None or basic is not None:
        presented = secret if secret is not None else basic[1] if basic else ""
        if client.secret is None or not hmac.compare_digest(
            presented.encode(), client.secret.encode()
        ):
            raise _bad_secret(client_id)
        method = "client_secret_post" if secret is not None else "client_secret_basic"
        return ClientIdentity(client=client, method=method)
    assertion = form.get("client_assertion")
    if assertion is not None:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise EntraError(
                90058,
                "invalid_request",
                f"The client_assertion_type must be '{ASSERTION_TYPE}'.",
            )
        claims = verify_client_assertion(
            client_id, client.certificates, assertion, audiences=token_endpoints, now=now
        )
        if seen_assertions is not None:
            for key in [k for k, exp in seen_assertions.items() if exp <= now]:
                del seen_assertions[key]
            _reject_replay(seen_assertions, client_id, claims)
        return ClientIdentity(client=client, method="private_key_jwt", assertion_claims=claims)
    return ClientIdentity(client=client)


def credential_required(client_id: str) -> EntraError:
    """The error Entra gives a confidential-only grant called without a credential.

    Args:
        client_id: the caller.

    Returns:
        401 ``invalid_client`` AADSTS7000218.
    """
    return EntraError(
        7000218,
        "invalid_client",
        "The request body must contain the following parameter: 'client_assertion' or "
        f"'client_secret'. (client '{client_id}')",
        status=401,
    )
