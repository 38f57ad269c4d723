"""Signed-in users for the device-code, password and SAML grants: records and token answers.

A small stand-in shared by those grants: a user record (name, password, federated or not) kept
per emulator, and the token answer Entra gives a user (access token, ID token, refresh token,
``client_info``, ``scope``).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._tokens import make_client_info, stable_guid

if TYPE_CHECKING:
    from ._grants import TokenRequest
    from ._issuer import TokenIssuer

__all__ = ["PasswordUser", "UserDirectory", "tracked_token_response", "user_token_response"]

_RESERVED = frozenset({"openid", "profile", "offline_access"})
_GRAPH = "https://graph.microsoft.com"


@dataclass(frozen=True)
class PasswordUser:
    """A user the emulator can sign in without a browser.

    Attributes:
        username: the sign-in name (UPN), compared case-insensitively.
        password: the password for the password grant and WS-Trust; None for none.
        oid: the object id; derived from the username when None.
        name: the display name.
        federated: True when the user's domain is federated (sign-in through WS-Trust).
    """

    username: str
    password: str | None = None
    oid: str | None = None
    name: str | None = None
    federated: bool = False


class UserDirectory:
    """The users and federated domains of one emulator (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: dict[str, PasswordUser] = {}
        self._federated_domains: set[str] = set()
        self._assertions: dict[bytes, tuple[str, float]] = {}

    def add(self, user: PasswordUser) -> PasswordUser:
        """Add or replace a user (a federated one makes its domain federated).

        Args:
            user: the record.

        Returns:
            The record.
        """
        with self._lock:
            self._users[user.username.lower()] = user
            if user.federated:
                self._federated_domains.add(user.username.rpartition("@")[2].lower())
        return user

    def get(self, username: str) -> PasswordUser | None:
        """Find a user by sign-in name.

        Args:
            username: the UPN (any case).

        Returns:
            The record or None.
        """
        with self._lock:
            return self._users.get(username.lower())

    def all(self) -> list[PasswordUser]:
        """Every user.

        Returns:
            The records, in the order they were added.
        """
        with self._lock:
            return list(self._users.values())

    def is_federated_domain(self, domain: str) -> bool:
        """Whether users of ``domain`` sign in through a federation server.

        Args:
            domain: a domain name.

        Returns:
            True when it is federated.
        """
        with self._lock:
            return domain.lower() in self._federated_domains

    def remember_assertion(self, raw: bytes, username: str, expires_at: float) -> None:
        """Record a SAML assertion the federation server issued.

        Args:
            raw: its exact bytes (a changed byte would break a real XML signature).
            username: whom it names.
            expires_at: its ``NotOnOrAfter``, in seconds since the epoch.
        """
        with self._lock:
            self._assertions[raw] = (username, expires_at)

    def redeem_assertion(self, raw: bytes, now: float) -> str | None:
        """Check an assertion presented at the token endpoint.

        Args:
            raw: the decoded ``assertion`` field.
            now: seconds since the epoch.

        Returns:
            The username, or None for an assertion never issued, altered or expired.
        """
        with self._lock:
            found = self._assertions.get(raw)
        if found is None or now >= found[1]:
            return None
        return found[0]

    def knows_domain(self, domain: str) -> bool:
        """Whether any user is in ``domain``.

        Args:
            domain: a domain name.

        Returns:
            True when some user's UPN ends in it.
        """
        suffix = "@" + domain.lower()
        with self._lock:
            return any(name.endswith(suffix) for name in self._users)


def _audience(scopes: list[str]) -> str:
    resources = [s for s in scopes if s not in _RESERVED]
    if not resources:
        return _GRAPH
    first = resources[0]
    return first.rsplit("/", 1)[0] if "/" in first else _GRAPH


def user_token_response(
    issuer: TokenIssuer,
    request: TokenRequest,
    user: PasswordUser,
    scopes: list[str],
    *,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Entra's answer to a user sign-in: tokens for ``user`` and ``scopes``.

    Args:
        issuer: the emulator.
        request: the token request (client, tenant, base URL).
        user: who signed in.
        scopes: the scopes granted (the request's ``scope``).
        extra: more members.

    Returns:
        ``token_type``, ``expires_in``, ``access_token``, ``scope``, ``refresh_token``,
        ``id_token`` (when ``openid`` was asked for) and ``client_info`` (when
        ``client_info=1`` was sent).
    """
    tenant_id = request.tenant_id
    oid = user.oid or stable_guid("user", tenant_id, user.username.lower())
    resource_scopes = [s for s in scopes if s not in _RESERVED]
    access_token = issuer.issue_access_token(
        audience=_audience(scopes),
        client_id=request.client.client_id,
        tenant_id=tenant_id,
        user_oid=oid,
        scp=" ".join(s.rsplit("/", 1)[-1] for s in resource_scopes) or "User.Read",
        client_capabilities=request.client_capabilities(),
        extra_claims={"upn": user.username, "name": user.name or user.username},
    )
    body: dict[str, Any] = {"scope": " ".join(scopes)}
    if "offline_access" in scopes:
        body["refresh_token"] = "emu-rt." + secrets.token_urlsafe(32)
    if "openid" in scopes:
        body["id_token"] = issuer.issue_id_token(
            client_id=request.client.client_id,
            base_url=request.base_url,
            tenant_id=tenant_id,
            oid=oid,
            preferred_username=user.username,
            name=user.name or user.username,
        )
    if request.form.get("client_info") == "1":
        body["client_info"] = make_client_info(oid, tenant_id)
    body.update(extra or {})
    return issuer.token_response(access_token, **body)


def tracked_token_response(
    request: TokenRequest, user: PasswordUser, scopes: list[str]
) -> dict[str, Any]:
    """:func:`user_token_response` with a refresh token the refresh grant knows, and ``foci``.

    Args:
        request: the token request (its emulator keeps the refresh token).
        user: who signed in.
        scopes: the scopes granted.

    Returns:
        The token answer.
    """
    emulator: Any = request.emulator
    settings = getattr(emulator, "user_tokens", None)
    extra: dict[str, Any] = {}
    if settings is not None:
        client_id = request.client.client_id
        if "offline_access" in scopes:
            record = settings.issue_refresh_token(
                client_id=client_id,
                username=user.username,
                tenant_id=request.tenant_id,
                scopes=tuple(scopes),
            )
            extra["refresh_token"] = record.token
        family = settings.families.get(client_id)
        if family is not None:
            extra["foci"] = family
    return user_token_response(emulator, request, user, scopes, extra=extra)
