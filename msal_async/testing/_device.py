"""The device authorization grant (RFC 8628): the devicecode endpoint and the polling grant.

A test approves (or denies) a user code with ``emulator.approve_device_code(user_code)``;
``emulator.device_flow.interval`` sets the polling interval the emulator asks for (Entra says
5 s; tests set 0 or 1), and ``emulator.device_flow.on_poll`` runs on every poll so that a test
can approve after the client has seen ``authorization_pending``.
"""

from __future__ import annotations

import secrets
import string
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._entra import EntraError
from ._http import HttpResponse, RouteContext
from ._signin import PasswordUser, UserDirectory, tracked_token_response

if TYPE_CHECKING:
    from ._grants import GrantHandler, TokenRequest

__all__ = [
    "DEVICE_CODE_GRANT",
    "DEVICE_GRANTS",
    "DeviceAuthorization",
    "DeviceFlowSettings",
    "SignInUsersMixin",
    "device_code_endpoint",
]

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_USER_CODE_ALPHABET = string.ascii_uppercase + string.digits


@dataclass
class DeviceAuthorization:
    """One device code the emulator handed out.

    Attributes:
        device_code: the secret the client polls with.
        user_code: the code the user types.
        client_id: who asked.
        scopes: the scopes asked for.
        expires_at: seconds since the epoch.
        status: ``"pending"``, ``"approved"``, ``"denied"`` or ``"redeemed"``.
        username: who approved it.
        polls: how many token requests polled it.
    """

    device_code: str
    user_code: str
    client_id: str
    scopes: list[str]
    expires_at: float
    status: str = "pending"
    username: str | None = None
    polls: int = 0


@dataclass
class DeviceFlowSettings:
    """Device-flow knobs and state of one emulator.

    Attributes:
        interval: the ``interval`` the devicecode endpoint answers (seconds).
        lifetime: the ``expires_in`` of device codes (seconds).
        slow_down_polls: answer ``slow_down`` to this many next polls.
        on_poll: called with the authorization on every poll, before answering.
        include_message: False leaves ``message`` out, as RFC 8628 providers do.
        include_interval: False leaves ``interval`` out (RFC 8628's default is 5 s).
        authorizations: every code handed out, by user code.
    """

    interval: int = 5
    lifetime: int = 900
    slow_down_polls: int = 0
    on_poll: Callable[[DeviceAuthorization], None] | None = None
    include_message: bool = True
    include_interval: bool = True
    authorizations: dict[str, DeviceAuthorization] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def find(self, *, device_code: str) -> DeviceAuthorization | None:
        """The authorization of a device code.

        Args:
            device_code: the code.

        Returns:
            It, or None.
        """
        with self.lock:
            for auth in self.authorizations.values():
                if secrets.compare_digest(auth.device_code, device_code):
                    return auth
        return None


class SignInUsersMixin:
    """``AuthorityEmulator`` methods for browserless sign-in: users, device codes."""

    def _state(self) -> tuple[UserDirectory, DeviceFlowSettings]:
        state = self.__dict__.get("_signin_state")
        if state is None:
            state = self.__dict__.setdefault(
                "_signin_state", (UserDirectory(), DeviceFlowSettings())
            )
        return state  # type: ignore[no-any-return]

    @property
    def password_users(self) -> UserDirectory:
        """The users the password, device-code and SAML grants know.

        Returns:
            The directory.
        """
        return self._state()[0]

    @property
    def device_flow(self) -> DeviceFlowSettings:
        """Device-flow settings (``interval``, ``on_poll``...) and the codes handed out.

        Returns:
            The settings.
        """
        return self._state()[1]

    def add_password_user(
        self,
        username: str,
        password: str | None = None,
        *,
        oid: str | None = None,
        name: str | None = None,
        federated: bool = False,
    ) -> PasswordUser:
        """Register a user for the password grant, WS-Trust and device-code approval.

        Args:
            username: the UPN, e.g. ``"alice@contoso.onmicrosoft.com"``.
            password: the password (None: password sign-in fails).
            oid: the object id; derived from the username when None.
            name: the display name.
            federated: the user's domain is federated (password sign-in goes through the
                federation server, as for an ADFS domain).

        Returns:
            The record.

        Raises:
            ValueError: the username is not ``name@domain``.
        """
        if "@" not in username or username.startswith("@") or username.endswith("@"):
            msg = f"add_password_user(username={username!r}): expected name@domain"
            raise ValueError(msg)
        user = PasswordUser(username, password, oid, name, federated)
        return self.password_users.add(user)

    def approve_device_code(self, user_code: str, username: str | None = None) -> None:
        """Act as the user who enters ``user_code`` and signs in.

        Args:
            user_code: the code from the flow.
            username: who signs in: a registered user, or a new one named so; when None,
                the user ``add_user`` last signed in, else ``user@{tenant_domain}``.

        Raises:
            KeyError: no such user code.
        """
        self._decide(user_code, "approved", username)

    def deny_device_code(self, user_code: str) -> None:
        """Act as the user who declines the sign-in for ``user_code``.

        Args:
            user_code: the code from the flow.

        Raises:
            KeyError: no such user code.
        """
        self._decide(user_code, "denied", None)

    def _decide(self, user_code: str, status: str, username: str | None) -> None:
        settings = self.device_flow
        with settings.lock:
            auth = settings.authorizations.get(user_code.upper())
            if auth is None:
                msg = f"no device code with user code {user_code!r}"
                raise KeyError(msg)
            auth.status = status
            auth.username = username


def _new_user_code() -> str:
    return "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(9))


async def device_code_endpoint(emulator: Any, context: RouteContext) -> HttpResponse:
    """``POST /{tenant}/oauth2/v2.0/devicecode``: hand out a device code and a user code.

    Args:
        emulator: the emulator.
        context: the request.

    Returns:
        RFC 8628 section 3.2's answer with Entra's ``message``.

    Raises:
        EntraError: unknown tenant or client, missing scope.
    """
    if emulator.resolve_tenant(context.tenant) is None:
        raise EntraError(90002, "invalid_tenant", f"Tenant '{context.tenant}' not found.")
    form = context.http.form
    client_id = form.get("client_id")
    if not client_id or client_id not in emulator.clients:
        raise EntraError(
            700016,
            "unauthorized_client",
            f"Application with identifier '{client_id}' was not found in the directory.",
        )
    scope = form.get("scope")
    if not scope:
        raise EntraError(
            900144,
            "invalid_request",
            "The request body must contain the following parameter: 'scope'.",
        )
    settings: DeviceFlowSettings = emulator.device_flow
    user_code = _new_user_code()
    auth = DeviceAuthorization(
        device_code=secrets.token_urlsafe(48),
        user_code=user_code,
        client_id=client_id,
        scopes=scope.split(),
        expires_at=context.now + settings.lifetime,
    )
    with settings.lock:
        settings.authorizations[user_code] = auth
    verification_uri = f"{context.base_url}/devicelogin"
    body: dict[str, Any] = {
        "user_code": user_code,
        "device_code": auth.device_code,
        "verification_uri": verification_uri,
        "expires_in": settings.lifetime,
    }
    if settings.include_interval:
        body["interval"] = settings.interval
    if settings.include_message:
        body["message"] = (
            f"To sign in, use a web browser to open the page {verification_uri} and enter "
            f"the code {user_code} to authenticate."
        )
    return HttpResponse.json(body)


def _pending() -> EntraError:
    return EntraError(
        70016,
        "authorization_pending",
        "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
    )


def _poll_verdict(auth: DeviceAuthorization, settings: DeviceFlowSettings, now: int) -> None:
    if auth.status == "redeemed":
        raise EntraError(54005, "invalid_grant", "OAuth2 Authorization code was already redeemed.")
    if now >= auth.expires_at:
        raise EntraError(70020, "expired_token", "The provided value for the device code expired.")
    if auth.status == "denied":
        raise EntraError(70000, "authorization_declined", "The user declined the sign-in request.")
    if settings.slow_down_polls > 0:
        settings.slow_down_polls -= 1
        raise EntraError(70016, "slow_down", "OAuth 2.0 device flow error. Slow down polling.")
    if auth.status != "approved":
        raise _pending()


async def device_code_grant(request: TokenRequest) -> Mapping[str, Any]:
    """``grant_type=urn:ietf:params:oauth:grant-type:device_code`` (RFC 8628 section 3.4).

    Args:
        request: the token request.

    Returns:
        The user's tokens once the code was approved.

    Raises:
        EntraError: ``authorization_pending``, ``slow_down``, ``expired_token``,
            ``authorization_declined``, ``bad_verification_code``.
    """
    emulator: Any = request.emulator
    settings: DeviceFlowSettings = emulator.device_flow
    auth = settings.find(device_code=request.require("device_code"))
    if auth is None or auth.client_id != request.client.client_id:
        raise EntraError(70019, "bad_verification_code", "Verification code is not valid.")
    with settings.lock:
        auth.polls += 1
    if settings.on_poll is not None:
        settings.on_poll(auth)
    with settings.lock:
        _poll_verdict(auth, settings, request.now)
        auth.status = "redeemed"
    directory: UserDirectory = emulator.password_users
    signed_in = getattr(getattr(emulator, "user_tokens", None), "signed_in", None)
    username = auth.username or signed_in or f"user@{emulator.tenant_domain}"
    user = directory.get(username) or PasswordUser(username)
    return tracked_token_response(request, user, auth.scopes)


#: The grants this module adds to every emulator.
DEVICE_GRANTS: Mapping[str, GrantHandler] = {DEVICE_CODE_GRANT: device_code_grant}
