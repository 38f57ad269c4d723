"""The forms behind the sign-in, consent and device-code pages (``POST /{tenant}/login``...).

A sign-in in progress is an :class:`Interaction` kept by the emulator and named by the ``ctx``
field of every form, so a page cannot be replayed once its sign-in ended and carries nothing a
browser could forge. Passing the sign-in page opens a browser session (a cookie), as Entra does.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from ._authorize import issue_code, send_error
from ._device import DeviceAuthorization, DeviceFlowSettings
from ._http import HttpResponse, RouteContext
from ._pages import (
    consent_page,
    device_code_page,
    device_confirm_page,
    message_page,
    sign_in_page,
)
from ._users import INTERACTION_LIFETIME, SESSION_COOKIE, Interaction, UserTokenSettings

__all__ = ["DEVICE_LOGIN_PATH", "device_login_endpoint", "login_endpoint"]

#: The device flow's ``verification_uri`` path.
DEVICE_LOGIN_PATH = "/devicelogin"

_UNKNOWN_USER = (
    "This username may be incorrect. Make sure you typed it correctly. Otherwise, contact your "
    "admin."
)
_BAD_PASSWORD = "Your account or password is incorrect."
_NO_USERNAME = "Enter your username, for example alice@contoso.onmicrosoft.com."
_BAD_CODE = "That code didn't work. Check the code and try again."
_DECLINED = "AADSTS65004: User declined to consent to access the app."


def _expired() -> HttpResponse:
    return message_page(
        "This sign-in has ended",
        "This page expired or was already used. Go back to the application and start again.",
        status=400,
    )


def _session_cookie(value: str, base_url: str) -> dict[str, str]:
    secure = "; Secure" if base_url.startswith("https://") else ""
    return {"set-cookie": f"{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax{secure}"}


async def login_endpoint(emulator: Any, context: RouteContext) -> HttpResponse:
    """``POST /{tenant}/login``: the sign-in, consent and device-confirmation forms.

    Args:
        emulator: the emulator.
        context: the request (``ctx``, ``action``, and ``login`` / ``passwd`` to sign in).

    Returns:
        The next page, or the redirect to the app with a code or an error.
    """
    settings: UserTokenSettings = emulator.user_tokens
    form = context.http.form
    interaction = settings.interaction(form.get("ctx"), context.now)
    if interaction is None:
        return _expired()
    action = form.get("action")
    if interaction.username is None:
        return _sign_in(emulator, context, interaction)
    if action not in ("accept", "deny"):
        return message_page("Unexpected request", f"Unknown action {action!r}.", status=400)
    settings.finish(interaction.ctx)
    if interaction.kind == "device":
        return _decide_device(emulator, interaction, accept=action == "accept")
    if action == "deny":
        return send_error(interaction.query, "access_denied", _DECLINED, error_subcode="cancel")
    settings.grant_consent(interaction.client_id, interaction.username, interaction.scopes)
    return issue_code(
        emulator,
        interaction.query,
        tenant_id=interaction.tenant_id,
        username=interaction.username,
        now=context.now,
    )


def _sign_in(emulator: Any, context: RouteContext, interaction: Interaction) -> HttpResponse:
    form = context.http.form
    settings: UserTokenSettings = emulator.user_tokens
    typed = form.get("login", "").strip()
    user = emulator.password_users.get(typed) if typed else None
    error, error_field = None, "login"
    if not typed:
        error = _NO_USERNAME
    elif user is None:
        error = _UNKNOWN_USER
    elif user.password is not None and not secrets.compare_digest(
        form.get("passwd", "").encode(), user.password.encode()
    ):
        error, error_field = _BAD_PASSWORD, "passwd"
    if error is not None or user is None:
        return sign_in_page(
            action=context.http.path,
            ctx=interaction.ctx,
            username=typed,
            error=error,
            error_field=error_field,
            known_users=[u.username for u in emulator.password_users.all()],
            status=400,
        )
    interaction.username = user.username
    cookie = _session_cookie(settings.open_session(user.username), context.base_url)
    response = _after_sign_in(emulator, context, interaction)
    response.headers.update(cookie)
    return response


def _after_sign_in(emulator: Any, context: RouteContext, interaction: Interaction) -> HttpResponse:
    settings: UserTokenSettings = emulator.user_tokens
    username = interaction.username or ""
    if interaction.kind == "device":
        return device_confirm_page(
            action=context.http.path,
            ctx=interaction.ctx,
            client_id=interaction.client_id,
            username=username,
            scopes=interaction.scopes,
        )
    if interaction.query.get("prompt") == "consent" or settings.needs_consent(
        interaction.client_id, username, interaction.scopes
    ):
        return consent_page(
            action=context.http.path,
            ctx=interaction.ctx,
            client_id=interaction.client_id,
            username=username,
            scopes=interaction.scopes,
        )
    settings.finish(interaction.ctx)
    return issue_code(
        emulator,
        interaction.query,
        tenant_id=interaction.tenant_id,
        username=username,
        now=context.now,
    )


def _decide_device(emulator: Any, interaction: Interaction, *, accept: bool) -> HttpResponse:
    code = interaction.user_code or ""
    try:
        if accept:
            emulator.approve_device_code(code, interaction.username)
        else:
            emulator.deny_device_code(code)
    except KeyError:
        return _expired()
    if accept:
        return message_page(
            "You're signed in",
            f"You have signed in to {interaction.client_id} on your device. "
            "You may now close this window.",
        )
    return message_page(
        "Sign-in cancelled",
        "You declined to sign in on the other device. You may close this window.",
    )


def _normalize_code(typed: str) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", typed).upper()


async def device_login_endpoint(emulator: Any, context: RouteContext) -> HttpResponse:
    """``GET`` / ``POST /devicelogin``: the device flow's ``verification_uri``.

    Args:
        emulator: the emulator.
        context: the request (``otc``: the user code, for a POST).

    Returns:
        The code entry page; after a valid code, the sign-in page or (with a browser session)
        the confirmation page.
    """
    if context.http.method == "GET":
        return device_code_page(action=DEVICE_LOGIN_PATH)
    typed = context.http.form.get("otc", "")
    settings: DeviceFlowSettings = emulator.device_flow
    with settings.lock:
        auth: DeviceAuthorization | None = settings.authorizations.get(_normalize_code(typed))
    if auth is None or auth.status != "pending" or auth.expires_at <= context.now:
        return device_code_page(action=DEVICE_LOGIN_PATH, error=_BAD_CODE, code=typed)
    tokens: UserTokenSettings = emulator.user_tokens
    username = tokens.session_user(context.http.headers.get("cookie"))
    interaction = tokens.begin(
        Interaction(
            ctx=secrets.token_urlsafe(24),
            kind="device",
            client_id=auth.client_id,
            tenant_id=emulator.tenant_id,
            scopes=tuple(auth.scopes),
            expires_at=min(auth.expires_at, context.now + INTERACTION_LIFETIME),
            user_code=auth.user_code,
            username=username,
        ),
        context.now,
    )
    action = f"/{emulator.tenant_id}/login"
    if username is None:
        return sign_in_page(
            action=action,
            ctx=interaction.ctx,
            known_users=[u.username for u in emulator.password_users.all()],
        )
    return device_confirm_page(
        action=action,
        ctx=interaction.ctx,
        client_id=auth.client_id,
        username=username,
        scopes=auth.scopes,
    )
