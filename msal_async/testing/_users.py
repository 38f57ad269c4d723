"""Test users for browser sign-in, auth codes and refresh tokens (rotation, revocation, FOCI).

``emulator.add_user("alice@contoso.onmicrosoft.com")`` makes a user the authorize endpoint signs
in at once (no page, no password); with ``sign_in=False`` (and a ``password=``) the browser gets
the sign-in page instead, and ``emulator.user_tokens.require_consent = True`` adds the consent
page. ``emulator.add_family_client(client_id)`` puts an app in the Microsoft family of client
ids, whose refresh tokens every family member may redeem.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING

from ._signin import PasswordUser, UserDirectory

__all__ = [
    "SESSION_COOKIE",
    "AuthCode",
    "Interaction",
    "IssuedRefreshToken",
    "UserTokenSettings",
    "UserTokensMixin",
]

#: The browser session cookie the sign-in page sets.
SESSION_COOKIE = "emu_session"
#: Seconds a sign-in page stays usable (Entra's flow token lasts a similar while).
INTERACTION_LIFETIME = 600
#: Scopes every sign-in includes; the consent page lists them but they need no consent.
_SIGN_IN_SCOPES = frozenset({"openid", "profile", "offline_access"})


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
class Interaction:
    """A sign-in in progress in a browser: between the first page and the redirect.

    Attributes:
        ctx: its unguessable id, carried by the pages' forms.
        kind: ``"authorize"`` (an authorization request) or ``"device"`` (a device code).
        client_id: the application.
        tenant_id: the directory.
        scopes: the scopes asked for.
        expires_at: seconds since the epoch.
        query: the authorization request's parameters (``kind="authorize"``).
        user_code: the device code's user code (``kind="device"``).
        username: who signed in, once the sign-in page was passed.
    """

    ctx: str
    kind: str
    client_id: str
    tenant_id: str
    scopes: tuple[str, ...]
    expires_at: float
    query: dict[str, str] = field(default_factory=dict)
    user_code: str | None = None
    username: str | None = None


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
        detect_reuse: presenting a revoked refresh token revokes every refresh token of that
            user and app, as OAuth 2.1 providers do on refresh token reuse (RFC 9700 section
            4.14.2): a client that lost a rotated token is locked out.
        reuses_detected: how many times ``detect_reuse`` struck.
        codes: outstanding authorization codes.
        refresh_tokens: every refresh token issued, by value.
        require_consent: show the consent page until the user accepted every scope an app
            asks for (off: consent is implied, as for an admin-consented app).
        consents: the scopes each user accepted, by ``(client_id, username)``.
        sessions: browser sessions (the sign-in page's cookie) by cookie value: the username.
        interactions: sign-ins in progress in a browser, by ``ctx``.
    """

    signed_in: str | None = None
    families: dict[str, str] = field(default_factory=dict)
    rotate_refresh_tokens: bool = True
    revoke_on_rotation: bool = False
    detect_reuse: bool = False
    reuses_detected: int = 0
    codes: dict[str, AuthCode] = field(default_factory=dict)
    refresh_tokens: dict[str, IssuedRefreshToken] = field(default_factory=dict)
    require_consent: bool = False
    consents: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    sessions: dict[str, str] = field(default_factory=dict)
    interactions: dict[str, Interaction] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def session_user(self, cookie_header: str | None) -> str | None:
        """The user a browser is signed in as, from its ``Cookie`` header.

        Args:
            cookie_header: the request's ``Cookie`` header, if any.

        Returns:
            The username, or None without a known session.
        """
        if not cookie_header:
            return None
        try:
            morsel = SimpleCookie(cookie_header).get(SESSION_COOKIE)
        except CookieError:
            return None
        if morsel is None:
            return None
        with self.lock:
            return self.sessions.get(morsel.value)

    def open_session(self, username: str) -> str:
        """Start a browser session for ``username``.

        Args:
            username: who signed in.

        Returns:
            The cookie value.
        """
        value = secrets.token_urlsafe(24)
        with self.lock:
            self.sessions[value] = username
        return value

    def needs_consent(self, client_id: str, username: str, scopes: tuple[str, ...]) -> bool:
        """Whether the consent page must be shown before a code is issued.

        Args:
            client_id: the application.
            username: the user.
            scopes: the scopes asked for.

        Returns:
            True when ``require_consent`` is on and a scope was not accepted yet.
        """
        if not self.require_consent:
            return False
        wanted = {s for s in scopes if s not in _SIGN_IN_SCOPES}
        with self.lock:
            granted = self.consents.get((client_id, username.lower()), set())
        return not wanted <= granted

    def grant_consent(self, client_id: str, username: str, scopes: tuple[str, ...]) -> None:
        """Record that ``username`` accepted ``scopes`` for ``client_id``.

        Args:
            client_id: the application.
            username: the user.
            scopes: the accepted scopes.
        """
        with self.lock:
            self.consents.setdefault((client_id, username.lower()), set()).update(scopes)

    def begin(self, interaction: Interaction, now: float) -> Interaction:
        """Remember a sign-in in progress (and forget the expired ones).

        Args:
            interaction: the new one.
            now: seconds since the epoch.

        Returns:
            It.
        """
        with self.lock:
            for ctx in [c for c, i in self.interactions.items() if i.expires_at <= now]:
                del self.interactions[ctx]
            self.interactions[interaction.ctx] = interaction
        return interaction

    def interaction(self, ctx: str | None, now: float) -> Interaction | None:
        """A sign-in in progress, by the ``ctx`` its form carried.

        Args:
            ctx: the id.
            now: seconds since the epoch.

        Returns:
            It, or None for an unknown, finished or expired one.
        """
        if not ctx:
            return None
        with self.lock:
            found = self.interactions.get(ctx)
            if found is not None and found.expires_at <= now:
                del self.interactions[ctx]
                return None
            return found

    def finish(self, ctx: str) -> None:
        """Forget a sign-in that ended (its forms stop working).

        Args:
            ctx: the id.
        """
        with self.lock:
            self.interactions.pop(ctx, None)

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
