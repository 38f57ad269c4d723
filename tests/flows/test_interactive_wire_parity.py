"""Wire parity with msal 1.39 for acquire_token_interactive: authorize URL and redemption.

msal's interactive flow runs headless here: a browser registered with ``webbrowser`` plays the
user (it follows the emulator's authorize URL and POSTs the form_post to msal's listener).
"""

from __future__ import annotations

import threading
import webbrowser
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import msal
import pytest
import requests

from msal_async import PublicClientApplication
from msal_async.testing import parse_form_post

from ..conftest import HttpsAuthority, requests_session_trusting
from .conftest import PUBLIC_CLIENT_ID, USERNAME

pytestmark = pytest.mark.anyio

SCOPES = ["User.Read"]
GENERIC_HEADERS = {"host", "user-agent", "accept-encoding", "connection", "content-length"}
VARYING_VALUES = {"client-request-id", "x-client-sku", "x-client-ver"}
# Per-flow random values (PKCE, state, nonce) and the per-run loopback port.
RANDOM_PARAMS = {"code_challenge", "state", "nonce", "redirect_uri"}


class PlayingBrowser(webbrowser.BaseBrowser):
    """Follows the authorize URL and POSTs the form, in its own thread (msal's blocks)."""

    def __init__(self, ca_file: str) -> None:
        super().__init__("playing")
        self.ca_file = ca_file
        self.opened: list[str] = []
        self.threads: list[threading.Thread] = []

    def play(self, url: str) -> None:
        page = requests.get(url, verify=self.ca_file, timeout=10)
        fields = parse_form_post(page.text)
        port = urlsplit(parse_qs(urlsplit(url).query)["redirect_uri"][0]).port
        httpx.post(f"http://127.0.0.1:{port}/", data=fields, timeout=10)

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        self.opened.append(url)
        thread = threading.Thread(target=self.play, args=(url,), daemon=True)
        self.threads.append(thread)
        thread.start()
        return True


@pytest.fixture
def browser(https_authority: HttpsAuthority) -> Iterator[PlayingBrowser]:
    fake = PlayingBrowser(https_authority.ca_file)
    webbrowser.register("msal-async-playing", None, fake, preferred=True)
    yield fake
    webbrowser._tryorder.remove("msal-async-playing")  # type: ignore[attr-defined]
    for thread in fake.threads:
        thread.join(10)


def run_msal(https: HttpsAuthority) -> dict[str, Any]:
    with requests_session_trusting(https.ca_file) as session:
        app = msal.PublicClientApplication(
            PUBLIC_CLIENT_ID,
            authority=https.authority,
            instance_discovery=False,
            http_client=session,
        )
        result: dict[str, Any] = app.acquire_token_interactive(
            SCOPES, login_hint=USERNAME, extra_scopes_to_consent=["Calendars.Read"], timeout=30
        )
    return result


async def run_ours(https: HttpsAuthority) -> dict[str, Any]:
    async with PublicClientApplication(
        PUBLIC_CLIENT_ID, authority=https.authority, instance_discovery=False, verify=https.ca_file
    ) as app:
        result = await app.acquire_token_interactive(
            SCOPES, login_hint=USERNAME, extra_scopes_to_consent=["Calendars.Read"], timeout=30
        )
        return dict(result)


async def test_interactive_matches_msal(
    https_authority: HttpsAuthority, browser: PlayingBrowser
) -> None:
    emulator = https_authority.emulator
    emulator.register_client(PUBLIC_CLIENT_ID)
    emulator.add_user(USERNAME)
    start = len(emulator.requests)
    theirs_result = await anyio.to_thread.run_sync(run_msal, https_authority)
    middle = len(emulator.requests)
    ours_result = await run_ours(https_authority)
    assert "access_token" in theirs_result
    assert "access_token" in ours_result
    their_url, our_url = browser.opened
    theirs_q, ours_q = (parse_qs(urlsplit(u).query) for u in (their_url, our_url))
    assert list(ours_q) == list(theirs_q)  # same parameters, same order
    for name in set(theirs_q) - RANDOM_PARAMS:
        assert ours_q[name] == theirs_q[name], name
    for query in (theirs_q, ours_q):
        assert urlsplit(query["redirect_uri"][0]).hostname == "localhost"
    grant: Callable[[Any], bool] = lambda r: r.form.get("grant_type") == "authorization_code"
    [theirs] = [r for r in emulator.requests[start:middle] if grant(r)]
    [ours] = [r for r in emulator.requests[middle:] if grant(r)]
    assert set(ours.form) == set(theirs.form)
    for name in set(theirs.form) - {"code", "code_verifier", "redirect_uri"}:
        assert ours.form[name] == theirs.form[name], name
    their_names = {k for k in theirs.headers if k not in GENERIC_HEADERS}
    assert {k for k in ours.headers if k not in GENERIC_HEADERS} == their_names
    for name in their_names - VARYING_VALUES:
        assert ours.headers[name] == theirs.headers[name], name
