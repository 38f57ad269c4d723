"""The emulator's HTML pages: sign-in, consent, device-code entry and their outcomes.

Plain, accessible forms a person can use in a browser (labels tied to inputs, one ``<h1>`` per
page, errors announced with ``role="alert"`` and linked with ``aria-describedby``, a visible
focus ring, no script) and that a test drives with Chromium or with plain HTTP. Every value is
HTML-escaped. Pure functions: text in, an ``HttpResponse`` out.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from ._http import HttpResponse

__all__ = [
    "consent_page",
    "device_code_page",
    "device_confirm_page",
    "html_page",
    "message_page",
    "sign_in_page",
]

#: Inline styles only: the pages load nothing and run no script.
_SECURITY_HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;background:#f2f2f2;color:#1b1b1b;
margin:0;padding:2rem 1rem}
main{max-width:26rem;margin:0 auto;background:#fff;padding:2rem 2.5rem;
box-shadow:0 2px 6px rgba(0,0,0,.2)}
.brand{font-size:.9rem;color:#505050;margin:0 0 1rem}
h1{font-size:1.5rem;font-weight:600;margin:0 0 1rem}
label{display:block;font-weight:600;margin:1rem 0 .25rem}
input[type=text],input[type=email],input[type=password]{width:100%;box-sizing:border-box;
font-size:1rem;padding:.5rem;border:1px solid #666;border-radius:2px}
input[aria-invalid=true]{border:2px solid #a80000}
.error{color:#a80000;margin:.5rem 0}
.hint{color:#505050;font-size:.9rem}
.actions{display:flex;gap:.5rem;justify-content:flex-end;margin-top:1.5rem}
button{font-size:1rem;padding:.5rem 1.5rem;border:1px solid #666;background:#fff;cursor:pointer}
button.primary{background:#0067b8;border-color:#0067b8;color:#fff}
button:focus-visible,input:focus-visible,summary:focus-visible{outline:3px solid #1b1b1b;
outline-offset:2px}
ul.scopes{padding-left:1.25rem}
code{font-size:.95em}
"""

#: What Entra's consent page says for well-known scopes.
_SCOPE_TEXT = {
    "openid": "Sign you in",
    "profile": "View your basic profile",
    "email": "View your email address",
    "offline_access": "Maintain access to data you have given it access to",
    "user.read": "Sign you in and read your profile",
}


def html_page(title: str, body: str, *, status: int = 200) -> HttpResponse:
    """Wrap ``body`` (already escaped HTML) in the emulator's page layout.

    Args:
        title: the page title and ``<h1>`` (plain text: escaped here).
        body: the HTML after the heading.
        status: the HTTP status.

    Returns:
        A ``text/html`` response with no-store and anti-framing headers.
    """
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} - msal_async authority emulator</title>"
        f"<style>{_STYLE}</style></head><body><main>"
        '<p class="brand">msal_async authority emulator (for tests and local development)</p>'
        f"<h1>{escape(title)}</h1>{body}</main></body></html>"
    )
    return HttpResponse(
        status=status,
        body=page.encode(),
        content_type="text/html; charset=utf-8",
        headers=dict(_SECURITY_HEADERS),
    )


def _hidden(name: str, value: str) -> str:
    return f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'


def _field(
    name: str,
    label: str,
    *,
    kind: str = "text",
    value: str = "",
    error: str | None = None,
    autocomplete: str = "off",
    autofocus: bool = False,
    required: bool = True,
    hint_id: str | None = None,
    extra: str = "",
) -> str:
    field_id = f"f-{name}"
    described = [hint_id] if hint_id else []
    if error:
        described.append(f"{field_id}-error")
    attributes = f' aria-describedby="{" ".join(described)}"' if described else ""
    attributes += ' aria-invalid="true"' if error else ""
    attributes += " required" if required else ""
    attributes += " autofocus" if autofocus else ""
    html = (
        f'<label for="{field_id}">{escape(label)}</label>'
        f'<input id="{field_id}" name="{escape(name)}" type="{kind}" value="{escape(value)}" '
        f'autocomplete="{autocomplete}"{attributes}{extra}>'
    )
    if error:
        html += f'<p id="{field_id}-error" class="error" role="alert">{escape(error)}</p>'
    return html


def sign_in_page(
    *,
    action: str,
    ctx: str,
    username: str = "",
    error: str | None = None,
    error_field: str = "login",
    known_users: Iterable[str] = (),
    status: int = 200,
) -> HttpResponse:
    """The sign-in form: username and password, posted to ``action``.

    Args:
        action: the form's target path.
        ctx: the id of the sign-in in progress.
        username: the username to pre-fill (``login_hint`` or what was typed).
        error: a message shown beside ``error_field``.
        error_field: ``"login"`` or ``"passwd"``.
        known_users: the emulator's test users, listed to help a person at the keyboard.
        status: the HTTP status (400 when re-shown after an error).

    Returns:
        The page.
    """
    users = sorted(known_users)
    if users:
        items = "".join(f"<li><code>{escape(u)}</code></li>" for u in users)
        help_text = (
            "<details><summary>Test users of this emulator</summary>"
            f'<ul class="hint">{items}</ul></details>'
        )
    else:
        help_text = (
            '<p class="hint">This emulator has no test users yet: add one with '
            '<code>emulator.add_user("alice@contoso.onmicrosoft.com", password="...")</code>.</p>'
        )
    login = _field(
        "login",
        "Email, phone, or Skype",
        kind="email",
        value=username,
        error=error if error_field == "login" else None,
        autocomplete="username",
        autofocus=not username or error_field == "login",
        extra=' spellcheck="false" autocapitalize="none"',
    )
    password = _field(
        "passwd",
        "Password",
        kind="password",
        error=error if error_field == "passwd" else None,
        autocomplete="current-password",
        autofocus=bool(username) and error_field != "login",
        required=False,  # users added without a password sign in with none
    )
    body = (
        f'<form method="post" action="{escape(action)}" novalidate>{_hidden("ctx", ctx)}'
        f"{login}{password}"
        '<div class="actions"><button class="primary" type="submit" name="action" '
        'value="signin">Sign in</button></div></form>'
        f"{help_text}"
    )
    return html_page("Sign in", body, status=status)


def consent_page(
    *, action: str, ctx: str, client_id: str, username: str, scopes: Iterable[str]
) -> HttpResponse:
    """The consent prompt: the app, the user and the permissions, with Accept and Cancel.

    Args:
        action: the form's target path.
        ctx: the id of the sign-in in progress.
        client_id: the application asking.
        username: who is signed in.
        scopes: the permissions asked for.

    Returns:
        The page.
    """
    items = "".join(
        f"<li>{escape(_SCOPE_TEXT.get(s.rsplit('/', 1)[-1].lower(), s))} "
        f'<span class="hint">(<code>{escape(s)}</code>)</span></li>'
        for s in dict.fromkeys(scopes)
    )
    body = (
        f"<p>Signed in as <strong>{escape(username)}</strong></p>"
        f"<p>The application <code>{escape(client_id)}</code> would like to:</p>"
        f'<ul class="scopes" aria-label="Permissions requested">{items}</ul>'
        '<p class="hint">Accepting lets the app use these permissions on your behalf.</p>'
        f'<form method="post" action="{escape(action)}">{_hidden("ctx", ctx)}'
        '<div class="actions">'
        '<button type="submit" name="action" value="deny">Cancel</button>'
        '<button class="primary" type="submit" name="action" value="accept" autofocus>'
        "Accept</button></div></form>"
    )
    return html_page("Permissions requested", body)


def device_code_page(*, action: str, error: str | None = None, code: str = "") -> HttpResponse:
    """The device-code entry form (the flow's ``verification_uri``).

    Args:
        action: the form's target path.
        error: a message shown beside the code field.
        code: what the person typed (re-shown after an error).

    Returns:
        The page (400 when re-shown after an error).
    """
    field = _field(
        "otc",
        "Code",
        value=code,
        error=error,
        autocomplete="one-time-code",
        autofocus=True,
        hint_id="otc-hint",
        extra=' spellcheck="false" autocapitalize="characters"',
    )
    body = (
        '<p id="otc-hint">Enter the code displayed on your app or device.</p>'
        f'<form method="post" action="{escape(action)}" novalidate>{field}'
        '<div class="actions"><button class="primary" type="submit" name="action" '
        'value="next">Next</button></div></form>'
    )
    return html_page("Enter code", body, status=400 if error else 200)


def device_confirm_page(
    *, action: str, ctx: str, client_id: str, username: str, scopes: Iterable[str]
) -> HttpResponse:
    """Ask the signed-in person whether they meant to sign the device in.

    Args:
        action: the form's target path.
        ctx: the id of the sign-in in progress.
        client_id: the application on the device.
        username: who is signed in.
        scopes: the permissions the device asked for.

    Returns:
        The page.
    """
    listed = ", ".join(f"<code>{escape(s)}</code>" for s in scopes)
    body = (
        f"<p>Signed in as <strong>{escape(username)}</strong></p>"
        f"<p>Are you trying to sign in to <code>{escape(client_id)}</code>? "
        "Only continue if you started this sign-in on a device or app you trust.</p>"
        f'<p class="hint">It asks for: {listed}</p>'
        f'<form method="post" action="{escape(action)}">{_hidden("ctx", ctx)}'
        '<div class="actions">'
        '<button type="submit" name="action" value="deny">Cancel</button>'
        '<button class="primary" type="submit" name="action" value="accept" autofocus>'
        "Continue</button></div></form>"
    )
    return html_page("Are you trying to sign in?", body)


def message_page(title: str, text: str, *, status: int = 200) -> HttpResponse:
    """A page that only says something (done, declined, expired).

    Args:
        title: the heading.
        text: one paragraph of plain text.
        status: the HTTP status.

    Returns:
        The page.
    """
    return html_page(title, f'<p role="status">{escape(text)}</p>', status=status)
