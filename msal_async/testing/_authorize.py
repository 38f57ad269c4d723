"""The authorize endpoint: signs the test user in (at once, or through pages) and sends back.

``GET /{tenant}/oauth2/v2.0/authorize`` answers a 302 to ``redirect_uri`` with ``code`` and
``state`` in the query (``response_mode=query``, the default), or, for
``response_mode=form_post``, an HTML page with an auto-submitting form whose hidden fields a test
reads with :func:`parse_form_post`. With a signed-in test user a test plays the browser with one
GET; otherwise the sign-in (and consent) pages of ``_pages`` come first.
"""

from __future__ import annotations

import html
import re
import secrets
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from ._entra import EntraError
from ._http import HttpResponse, RouteContext
from ._pages import consent_page, sign_in_page
from ._tokens import make_client_info, stable_guid
from ._users import INTERACTION_LIFETIME, AuthCode, Interaction, UserTokenSettings

__all__ = [
    "authorize_endpoint",
    "issue_code",
    "parse_auth_response",
    "parse_form_post",
    "send_back",
    "send_error",
]

_HIDDEN_INPUT = re.compile(r'<input type="hidden" name="([^"]*)" value="([^"]*)"\s*/?>')


def parse_form_post(page: str) -> dict[str, str]:
    """Read the fields of the emulator's ``form_post`` page (what a browser would POST).

    Args:
        page: the HTML body.

    Returns:
        The hidden fields (``code``, ``state``, ``client_info``... or ``error``).
    """
    return {html.unescape(k): html.unescape(v) for k, v in _HIDDEN_INPUT.findall(page)}


def parse_auth_response(location: str) -> dict[str, str]:
    """Read the auth response from the ``Location`` of the authorize redirect.

    Args:
        location: the redirect URL.

    Returns:
        Its query parameters.
    """
    return dict(parse_qsl(urlsplit(location).query))


def send_back(redirect_uri: str, response_mode: str | None, fields: dict[str, str]) -> HttpResponse:
    """Send the browser to ``redirect_uri`` with the auth response ``fields``.

    Args:
        redirect_uri: the app's redirect URI.
        response_mode: ``form_post`` (an auto-submitting form) or anything else (a 302).
        fields: ``code``, ``state``... or ``error``.

    Returns:
        The response.
    """
    if response_mode == "form_post":
        inputs = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}"/>'
            for k, v in fields.items()
        )
        page = (
            "<html><head><title>Working...</title></head><body>"
            f'<form method="POST" name="hiddenform" action="{html.escape(redirect_uri)}">'
            f"{inputs}<noscript><p>Script is disabled. Click Submit to continue.</p>"
            '<input type="submit" value="Submit"/></noscript></form>'
            "<script>document.forms[0].submit();</script></body></html>"
        )
        return HttpResponse(status=200, body=page.encode(), content_type="text/html; charset=utf-8")
    separator = "&" if "?" in redirect_uri else "?"
    location = f"{redirect_uri}{separator}{urlencode(fields)}"
    return HttpResponse(
        status=302, content_type="text/plain; charset=utf-8", headers={"location": location}
    )


def _check_request(emulator: Any, query: dict[str, str]) -> tuple[str, str]:
    client_id = query.get("client_id")
    if not client_id or client_id not in emulator.clients:
        raise EntraError(
            700016,
            "unauthorized_client",
            f"Application with identifier '{client_id}' was not found in the directory.",
        )
    redirect_uri = query.get("redirect_uri")
    if not redirect_uri:
        raise EntraError(
            900144,
            "invalid_request",
            "The request body must contain the following parameter: 'redirect_uri'.",
        )
    return client_id, redirect_uri


def _pick_user(emulator: Any, settings: UserTokenSettings, query: dict[str, str]) -> str | None:
    hint = query.get("login_hint")
    if hint and emulator.password_users.get(hint) is not None:
        return hint
    return settings.signed_in


def issue_code(
    emulator: Any, query: dict[str, str], *, tenant_id: str, username: str, now: int
) -> HttpResponse:
    """Issue an authorization code for ``username`` and send the browser back with it.

    Args:
        emulator: the emulator.
        query: the authorization request (``client_id``, ``redirect_uri``, ``state``...).
        tenant_id: the directory the user signed in to.
        username: who signed in.
        now: seconds since the epoch.

    Returns:
        The redirect (query mode) or the auto-post page (``form_post``).
    """
    settings: UserTokenSettings = emulator.user_tokens
    user = emulator.password_users.get(username)
    oid = (user.oid if user else None) or stable_guid("user", tenant_id, username.lower())
    method = query.get("code_challenge_method")
    code = AuthCode(
        code="emu-code." + secrets.token_urlsafe(24),
        client_id=query["client_id"],
        redirect_uri=query["redirect_uri"],
        scopes=tuple(query.get("scope", "").split()),
        username=username,
        tenant_id=tenant_id,
        code_challenge=query.get("code_challenge"),
        code_challenge_method=method or ("plain" if query.get("code_challenge") else None),
        nonce=query.get("nonce"),
        auth_time=now,
        issued_at=now,
    )
    with settings.lock:
        settings.codes[code.code] = code
    fields = {"code": code.code}
    if query.get("client_info") == "1":
        fields["client_info"] = make_client_info(oid, tenant_id)
    if query.get("state") is not None:
        fields["state"] = query["state"]
    fields["session_state"] = stable_guid("session", username.lower())
    return send_back(query["redirect_uri"], query.get("response_mode"), fields)


def send_error(query: dict[str, str], error: str, description: str, **more: str) -> HttpResponse:
    """Send the browser back to the app with an error (and the request's ``state``).

    Args:
        query: the authorization request.
        error: the OAuth error code.
        description: its ``error_description``.
        more: more fields (``error_subcode``...).

    Returns:
        The redirect or the auto-post page.
    """
    fields = {"error": error, "error_description": description, **more}
    if query.get("state") is not None:
        fields["state"] = query["state"]
    return send_back(query["redirect_uri"], query.get("response_mode"), fields)


async def authorize_endpoint(emulator: Any, context: RouteContext) -> HttpResponse:
    """``GET /{tenant}/oauth2/v2.0/authorize``: sign the user in and redirect back.

    A user with a browser session (the sign-in page's cookie, ``add_user(sign_in=True)``, or a
    ``login_hint`` naming a known user) is signed in at once; anyone else gets the sign-in
    page, and with ``user_tokens.require_consent`` the consent page follows. ``prompt=login``
    always shows the sign-in page, ``prompt=consent`` the consent page, and ``prompt=none``
    never shows a page (``login_required`` / ``consent_required`` instead).

    Args:
        emulator: the emulator.
        context: the request.

    Returns:
        A page, or a 302 (query mode) or an auto-post form page (``form_post``) carrying the
        code or an error to the redirect_uri.

    Raises:
        EntraError: unknown tenant or client, no redirect_uri (Entra shows an error page
            instead of redirecting; here it is a JSON error).
    """
    query = dict(context.http.query)
    tenant_id = emulator.resolve_tenant(context.tenant)
    if tenant_id is None:
        raise EntraError(90002, "invalid_tenant", f"Tenant '{context.tenant}' not found.")
    if tenant_id in ("common", "organizations", "consumers"):
        tenant_id = emulator.tenant_id
    client_id, _ = _check_request(emulator, query)
    if query.get("response_type") != "code":
        return send_error(
            query, "unsupported_response_type", "Only response_type=code is emulated."
        )
    method = query.get("code_challenge_method")
    if query.get("code_challenge") and method not in (None, "S256", "plain"):
        return send_error(
            query, "invalid_request", f"Unsupported code_challenge_method '{method}'."
        )
    settings: UserTokenSettings = emulator.user_tokens
    prompt = query.get("prompt")
    username = settings.session_user(context.http.headers.get("cookie")) or _pick_user(
        emulator, settings, query
    )
    scopes = tuple(query.get("scope", "").split())
    if username is None or prompt == "login":
        if prompt == "none":
            return send_error(
                query, "login_required", "No test user is signed in; call emulator.add_user()."
            )
        interaction = _begin(settings, context, query, client_id, tenant_id, scopes, None)
        return sign_in_page(
            action=f"/{context.tenant}/login",
            ctx=interaction.ctx,
            username=query.get("login_hint", ""),
            known_users=[u.username for u in emulator.password_users.all()],
        )
    if prompt == "consent" or settings.needs_consent(client_id, username, scopes):
        if prompt == "none":
            return send_error(
                query,
                "consent_required",
                "AADSTS65001: The user or administrator has not consented to use the application.",
            )
        interaction = _begin(settings, context, query, client_id, tenant_id, scopes, username)
        return consent_page(
            action=f"/{context.tenant}/login",
            ctx=interaction.ctx,
            client_id=client_id,
            username=username,
            scopes=scopes,
        )
    return issue_code(emulator, query, tenant_id=tenant_id, username=username, now=context.now)


def _begin(
    settings: UserTokenSettings,
    context: RouteContext,
    query: dict[str, str],
    client_id: str,
    tenant_id: str,
    scopes: tuple[str, ...],
    username: str | None,
) -> Interaction:
    interaction = Interaction(
        ctx=secrets.token_urlsafe(24),
        kind="authorize",
        client_id=client_id,
        tenant_id=tenant_id,
        scopes=scopes,
        expires_at=context.now + INTERACTION_LIFETIME,
        query=query,
        username=username,
    )
    return settings.begin(interaction, context.now)
