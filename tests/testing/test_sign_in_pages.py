"""The emulator's sign-in, consent and device-code pages, driven with plain HTTP form posts."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from urllib.parse import urlencode

import httpx
import pytest

from msal_async.testing import DEMO_TENANT_ID, AuthorityEmulator, parse_auth_response

pytestmark = pytest.mark.anyio

CLIENT = "6f1e2d3c-4b5a-4968-8776-655443322110"
USER = "dana@contoso.onmicrosoft.com"
PASSWORD = "correct horse"
BASE = "https://login.microsoftonline.com"
SCOPE = "User.Read Mail.Read openid profile offline_access"


class Form(HTMLParser):
    """The first form of a page: its action, hidden fields and every input's label."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.action = ""
        self.hidden: dict[str, str] = {}
        self.inputs: dict[str, dict[str, str]] = {}
        self.labels: dict[str, str] = {}
        self.buttons: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "form" and not self.action:
            self.action = found["action"]
        elif tag == "input" and found.get("type") == "hidden":
            self.hidden[found["name"]] = found["value"]
        elif tag == "input" and "name" in found:
            self.inputs[found["name"]] = found
        elif tag == "label":
            self.labels[found["for"]] = ""
        elif tag == "button":
            self.buttons.append(found["value"])


@pytest.fixture
async def browser(emulator: AuthorityEmulator) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client that keeps cookies, as a browser does."""
    emulator.register_client(CLIENT)
    emulator.add_user(USER, name="Dana", password=PASSWORD, sign_in=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emulator), base_url=BASE
    ) as http:
        yield http


def authorize(**extra: str) -> str:
    query = {
        "client_id": CLIENT,
        "response_type": "code",
        "redirect_uri": "http://localhost/cb",
        "scope": SCOPE,
        "state": "st",
        **extra,
    }
    return f"/{DEMO_TENANT_ID}/oauth2/v2.0/authorize?{urlencode(query)}"


async def submit(http: httpx.AsyncClient, page: httpx.Response, **fields: str) -> httpx.Response:
    form = Form(page.text)
    return await http.post(form.action, data={**form.hidden, **fields})


async def test_sign_in_page_is_an_accessible_form(browser: httpx.AsyncClient) -> None:
    page = await browser.get(authorize(login_hint="<b>x</b>"))
    assert page.status_code == 200
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert page.headers["x-frame-options"] == "DENY"
    form = Form(page.text)
    assert '<html lang="en">' in page.text
    assert set(form.inputs) == {"login", "passwd"}
    for field in form.inputs.values():  # every input has a label bound to it
        assert field["id"] in form.labels
    assert form.inputs["login"]["autocomplete"] == "username"
    assert form.inputs["passwd"]["type"] == "password"
    assert form.inputs["login"]["value"] == "<b>x</b>"  # pre-filled, and escaped in the HTML
    assert "<b>x</b>" not in page.text
    assert form.buttons == ["signin"]
    assert USER in page.text  # the test users are listed for a person at the keyboard
    assert "<script" not in page.text


async def test_wrong_password_unknown_user_then_signed_in(
    browser: httpx.AsyncClient, emulator: AuthorityEmulator
) -> None:
    page = await browser.get(authorize())
    unknown = await submit(browser, page, login="nobody@contoso.onmicrosoft.com", passwd="x")
    assert unknown.status_code == 400
    assert 'role="alert"' in unknown.text
    assert "This username may be incorrect" in unknown.text
    assert Form(unknown.text).inputs["login"]["aria-describedby"] == "f-login-error"
    wrong = await submit(browser, unknown, login=USER, passwd="wrong")
    assert wrong.status_code == 400
    assert "Your account or password is incorrect." in wrong.text
    assert Form(wrong.text).inputs["passwd"]["aria-invalid"] == "true"
    assert "access_token" not in wrong.text
    done = await submit(browser, wrong, login=USER, passwd=PASSWORD)
    assert done.status_code == 302
    response = parse_auth_response(done.headers["location"])
    assert response["state"] == "st"
    assert response["code"] in emulator.user_tokens.codes
    assert emulator.user_tokens.codes[response["code"]].username == USER
    assert "HttpOnly" in done.headers["set-cookie"]
    # the session cookie signs the browser in at once the next time
    again = await browser.get(authorize(response_mode="form_post"))
    assert again.status_code == 200
    assert 'name="code"' in again.text
    # and the used page cannot be posted again
    replay = await submit(browser, page, login=USER, passwd=PASSWORD)
    assert replay.status_code == 400
    assert "This sign-in has ended" in replay.text


async def test_prompt_login_asks_again_despite_the_session(
    browser: httpx.AsyncClient, emulator: AuthorityEmulator
) -> None:
    emulator.user_tokens.signed_in = USER
    forced = await browser.get(authorize(prompt="login"))
    assert "<h1>Sign in</h1>" in forced.text


async def test_consent_accepted_once_then_remembered(
    browser: httpx.AsyncClient, emulator: AuthorityEmulator
) -> None:
    emulator.user_tokens.require_consent = True
    page = await browser.get(authorize())
    consent = await submit(browser, page, login=USER, passwd=PASSWORD)
    assert consent.status_code == 200
    assert "<h1>Permissions requested</h1>" in consent.text
    assert "Sign you in and read your profile" in consent.text
    assert "Mail.Read" in consent.text
    assert Form(consent.text).buttons == ["deny", "accept"]
    accepted = await submit(browser, consent, action="accept")
    assert "code" in parse_auth_response(accepted.headers["location"])
    assert emulator.user_tokens.consents[(CLIENT, USER)] >= {"User.Read", "Mail.Read"}
    again = await browser.get(authorize())
    assert again.status_code == 302
    more = await browser.get(authorize(scope="Files.Read openid"))
    assert "<h1>Permissions requested</h1>" in more.text  # a new scope asks again
    silent = await browser.get(authorize(scope="Files.Read openid", prompt="none"))
    assert parse_auth_response(silent.headers["location"])["error"] == "consent_required"


async def test_denied_consent_goes_back_as_access_denied(
    browser: httpx.AsyncClient, emulator: AuthorityEmulator
) -> None:
    emulator.user_tokens.require_consent = True
    page = await browser.get(authorize(response_mode="form_post"))
    consent = await submit(browser, page, login=USER, passwd=PASSWORD)
    denied = await submit(browser, consent, action="deny")
    fields = Form(denied.text).hidden
    assert fields["error"] == "access_denied"
    assert fields["error_subcode"] == "cancel"
    assert fields["state"] == "st"
    assert "AADSTS65004" in fields["error_description"]
    assert not emulator.user_tokens.codes


async def test_device_code_page_signs_the_device_in(
    browser: httpx.AsyncClient, emulator: AuthorityEmulator
) -> None:
    emulator.device_flow.interval = 0
    flow = (
        await browser.post(
            f"/{DEMO_TENANT_ID}/oauth2/v2.0/devicecode", data={"client_id": CLIENT, "scope": SCOPE}
        )
    ).json()
    entry = await browser.get(flow["verification_uri"])
    assert Form(entry.text).inputs["otc"]["autocomplete"] == "one-time-code"
    bad = await submit(browser, entry, otc="NOPE")
    assert bad.status_code == 400
    assert "Check the code and try again." in bad.text
    assert Form(bad.text).inputs["otc"]["aria-describedby"] == "otc-hint f-otc-error"
    typed = flow["user_code"].lower()[:4] + "-" + flow["user_code"][4:]  # any case, a dash
    sign_in = await submit(browser, bad, otc=typed)
    confirm = await submit(browser, sign_in, login=USER, passwd=PASSWORD)
    assert "Are you trying to sign in?" in confirm.text
    done = await submit(browser, confirm, action="accept")
    assert "You have signed in" in done.text
    token = await browser.post(
        f"/{DEMO_TENANT_ID}/oauth2/v2.0/token",
        data={
            "client_id": CLIENT,
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": flow["device_code"],
        },
    )
    assert "access_token" in token.json(), token.json()
    used = await submit(browser, entry, otc=flow["user_code"])
    assert used.status_code == 400  # a code works once


async def test_device_code_cancelled_is_declined(
    browser: httpx.AsyncClient, emulator: AuthorityEmulator
) -> None:
    emulator.user_tokens.signed_in = None
    flow = (
        await browser.post(
            f"/{DEMO_TENANT_ID}/oauth2/v2.0/devicecode", data={"client_id": CLIENT, "scope": SCOPE}
        )
    ).json()
    entry = await browser.get(flow["verification_uri"])
    sign_in = await submit(browser, entry, otc=flow["user_code"])
    confirm = await submit(browser, sign_in, login=USER, passwd=PASSWORD)
    declined = await submit(browser, confirm, action="deny")
    assert "Sign-in cancelled" in declined.text
    [auth] = emulator.device_flow.authorizations.values()
    assert auth.status == "denied"
    # signed in now: the next code goes straight to the confirmation
    flow2 = (
        await browser.post(
            f"/{DEMO_TENANT_ID}/oauth2/v2.0/devicecode", data={"client_id": CLIENT, "scope": SCOPE}
        )
    ).json()
    confirm2 = await submit(browser, entry, otc=flow2["user_code"])
    assert re.search(r"Signed in as <strong>dana@", confirm2.text)
