"""The authorize endpoint: signs the configured test user in at once and sends the browser back.

``GET /{tenant}/oauth2/v2.0/authorize`` answers a 302 to ``redirect_uri`` with ``code`` and
``state`` in the query (``response_mode=query``, the default), or, for
``response_mode=form_post``, an HTML page with an auto-submitting form whose hidden fields a test
reads with :func:`parse_form_post`. A test plays the browser with one GET.
"""

from __future__ import annotations

import html
import re
import secrets
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from ._entra import EntraError
from ._http import HttpResponse, RouteContext
from ._tokens import make_client_info, stable_guid
from ._users import AuthCode, UserTokenSettings

__all__ = ["authorize_endpoint", "parse_auth_response", "parse_form_post"]

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


def _send_back(
    redirect_uri: str, response_mode: str | None, fields: dict[str, str]
) -> HttpResponse:
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


async def authorize_endpoint(emulator: Any, context: RouteContext) -> HttpResponse:
    """``GET /{tenant}/oauth2/v2.0/authorize``: sign the test user in and redirect back.

    Args:
        emulator: the emulator.
        context: the request.

    Returns:
        A 302 (query mode) or an auto-post form page (``form_post``); an error goes back to
        the redirect_uri the same way (``login_required`` when no user is signed in and
        ``prompt=none``... or none was added at all).

    Raises:
        EntraError: unknown tenant or client, no redirect_uri (Entra shows an error page
            instead of redirecting; here it is a JSON error).
    """
    query = context.http.query
    tenant_id = emulator.resolve_tenant(context.tenant)
    if tenant_id is None:
        raise EntraError(90002, "invalid_tenant", f"Tenant '{context.tenant}' not found.")
    if tenant_id in ("common", "organizations", "consumers"):
        tenant_id = emulator.tenant_id
    client_id, redirect_uri = _check_request(emulator, query)
    response_mode = query.get("response_mode")
    state = query.get("state")

    def fail(error: str, description: str) -> HttpResponse:
        fields = {"error": error, "error_description": description}
        if state is not None:
            fields["state"] = state
        return _send_back(redirect_uri, response_mode, fields)

    if query.get("response_type") != "code":
        return fail("unsupported_response_type", "Only response_type=code is emulated.")
    method = query.get("code_challenge_method")
    if query.get("code_challenge") and method not in (None, "S256", "plain"):
        return fail("invalid_request", f"Unsupported code_challenge_method '{method}'.")
    settings: UserTokenSettings = emulator.user_tokens
    username = _pick_user(emulator, settings, query)
    if username is None:
        return fail("login_required", "No test user is signed in; call emulator.add_user().")
    user = emulator.password_users.get(username)
    oid = (user.oid if user else None) or stable_guid("user", tenant_id, username.lower())
    code = AuthCode(
        code="emu-code." + secrets.token_urlsafe(24),
        client_id=client_id,
        redirect_uri=redirect_uri,
        scopes=tuple(query.get("scope", "").split()),
        username=username,
        tenant_id=tenant_id,
        code_challenge=query.get("code_challenge"),
        code_challenge_method=method or ("plain" if query.get("code_challenge") else None),
        nonce=query.get("nonce"),
        auth_time=context.now,
        issued_at=context.now,
    )
    with settings.lock:
        settings.codes[code.code] = code
    fields = {"code": code.code}
    if query.get("client_info") == "1":
        fields["client_info"] = make_client_info(oid, tenant_id)
    if state is not None:
        fields["state"] = state
    fields["session_state"] = stable_guid("session", username.lower())
    return _send_back(redirect_uri, response_mode, fields)
