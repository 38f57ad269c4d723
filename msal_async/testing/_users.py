"""Test users for browser sign-in, auth codes and refresh tokens (rotation, revocation, FOCI).

``emulator.add_user("alice@contoso.onmicrosoft.com")`` makes a user the authorize endpoint signs
in at once (no page, no password); ``emulator.add_family_client(client_id)`` puts an app in the
Microsoft family of client ids, whose refresh tokens every family member may redeem.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._signin import PasswordUser, UserDirectory

__all__ = ["AuthCode", "IssuedRefreshToken", "UserTokenSettings", "UserTokensMixin"]


@dataclass(frozen=True)
class AuthCode:
    """An authorization code handed out by the authorize endpoint (single use).

    Attributes:
        code: the code.
        client_id: the app it was issued to.
        redirect_uri: the redirect_uri of the authorization request.
        scopes: the scopes consented to.
        username: who signed in.
        tenant_id: the tenant the user signed in to.
        code_challenge: the PKCE challenge, if any.
        code_challenge_method: ``S256`` or ``plain``.
        nonce: the OIDC nonce, echoed in the ID token.
        auth_time: when the user signed in (epoch seconds).
        issued_at: when the code was issued.
    """

    code: str
    client_id: str
    redirect_uri: str | None
    scopes: tuple[str, ...]
    username: str
    tenant_id: str
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    nonce: str | None = None
    auth_time: int = 0
    issued_at: int = 0


@dataclass
class IssuedRefreshToken:
    """A refresh token the emulator issued.

    Attributes:
        token: the refresh token.
        client_id: the app it was issued to.
        username: the user.
        tenant_id: the user's tenant.
        scopes: the scopes granted with it.
        family_id: the FOCI family (``"1"``) when the app is a family member.
        oid: the user's object id when it came with the grant (on-behalf-of: from the
            incoming token) rather than from the user directory.
        revoked: revoked tokens answer ``invalid_grant``.
        redeemed: how many times it was used.
    """

    token: str
    client_id: str
    username: str
    tenant_id: str
    scopes: tuple[str, ...]
    family_id: str | None = None
    oid: str | None = None
    revoked: bool = False
    redeemed: int = 0


@dataclass
class UserTokenSettings:
    """Knobs and state of the user-token endpoints of one emulator.

    Attributes:
        signed_in: the user the authorize endpoint signs in when ``login_hint`` names no
            known user; the last user added with ``sign_in=True``.
        families: FOCI family id by client id.
        rotate_refresh_tokens: every refresh answers a new refresh token (Entra does).
        revoke_on_rotation: a rotated refresh token stops working (Entra keeps it valid;
            turn this on to catch double redemptions).
        codes: outstanding authorization codes.
        refresh_tokens: every refresh token issued, by value.
    """

    signed_in: str | None = None
    families: dict[str, str] = field(default_factory=dict)
    rotate_refresh_tokens: bool = True
    revoke_on_rotation: bool = False
    codes: dict[str, AuthCode] = field(default_factory=dict)
    refresh_tokens: dict[str, IssuedRefreshToken] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def issue_refresh_token(
        self,
        *,
        client_id: str,
        username: str,
        tenant_id: str,
        scopes: tuple[str, ...],
        oid: str | None = None,
    ) -> IssuedRefreshToken:
        """Issue and remember a refresh token.

        Args:
            client_id: the app.
            username: the user.
            tenant_id: the tenant.
            scopes: the granted scopes.
            oid: the user's object id, when the grant named it (on-behalf-of).

        Returns:
            The record.
        """
        record = IssuedRefreshToken(
            token="emu-urt." + secrets.token_urlsafe(32),
            client_id=client_id,
            username=username,
            tenant_id=tenant_id,
            scopes=scopes,
            family_id=self.families.get(client_id),
            oid=oid,
        )
        with self.lock:
            self.refresh_tokens[record.token] = record
        return record

    def take_code(self, code: str) -> AuthCode | None:
        """Redeem an authorization code (it works once).

        Args:
            code: the code.

        Returns:
            Its record, or None for an unknown or used code.
        """
        with self.lock:
            return self.codes.pop(code, None)


class UserTokensMixin:
    """``AuthorityEmulator`` methods for test users, authorization codes and refresh tokens."""

    if TYPE_CHECKING:

        @property
        def password_users(self) -> UserDirectory:
            """The user directory (from ``SignInUsersMixin``)."""

    @property
    def user_tokens(self) -> UserTokenSettings:
        """Settings and state of the authorize, auth code and refresh token endpoints.

        Returns:
            The settings.
        """
        settings = self.__dict__.get("_user_token_settings")
        if settings is None:
            settings = self.__dict__.setdefault("_user_token_settings", UserTokenSettings())
        return settings  # type: ignore[no-any-return]

    def add_user(
        self,
        username: str,
        *,
        oid: str | None = None,
        name: str | None = None,
        password: str | None = None,
        sign_in: bool = True,
    ) -> PasswordUser:
        """Add a user; with ``sign_in`` the authorize endpoint signs them in straight away.

        Args:
            username: the UPN, e.g. ``"alice@contoso.onmicrosoft.com"``.
            oid: the object id; derived from the username when None.
            name: the display name.
            password: a password for the password grant, if another test needs one.
            sign_in: make this the user a browser is signed in as.

        Returns:
            The user record.

        Raises:
            ValueError: the username is not ``name@domain``.
        """
        if "@" not in username or username.startswith("@") or username.endswith("@"):
            msg = f"add_user(username={username!r}): expected name@domain"
            raise ValueError(msg)
        user = self.password_users.add(PasswordUser(username, password, oid, name))
        if sign_in:
            self.user_tokens.signed_in = username
        return user

    def add_family_client(self, client_id: str, family_id: str = "1") -> None:
        """Make ``client_id`` a member of a FOCI family: its answers carry ``foci``.

        Args:
            client_id: a registered (or to be registered) application id.
            family_id: the family; Microsoft has only ``"1"``.
        """
        self.user_tokens.families[client_id] = family_id

    def revoke_refresh_tokens(self, username: str | None = None) -> int:
        """Revoke every refresh token (of one user, when ``username`` is given).

        Args:
            username: the user, or None for all.

        Returns:
            How many tokens were revoked.
        """
        settings = self.user_tokens
        count = 0
        with settings.lock:
            for record in settings.refresh_tokens.values():
                if username is None or record.username.lower() == username.lower():
                    count += not record.revoked
                    record.revoked = True
        return count
