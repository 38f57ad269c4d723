"""Interactive sign-in: loopback listener, form_post, fake browser, timeout and cancellation."""

from __future__ import annotations

import socket
import webbrowser
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.from_thread
import httpx
import pytest

from msal_async import BrowserInteractionTimeoutError, SerializableTokenCache
from msal_async.testing import AuthorityEmulator, parse_form_post

from .conftest import USERNAME

pytestmark = pytest.mark.anyio

SCOPES = ["User.Read"]


class FakeBrowser(webbrowser.BaseBrowser):
    """A browser registered with ``webbrowser``: records the URI and wakes the test."""

    def __init__(self) -> None:
        super().__init__("fake")
        self.opened: list[str] = []
        self.wake: Callable[[], None] | None = None
        self.works = True

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        if not self.works:
            return False
        self.opened.append(url)
        if self.wake is not None:
            anyio.from_thread.run_sync(self.wake)  # we run in anyio's worker thread
        return True


@pytest.fixture
def browser() -> Iterator[FakeBrowser]:
    fake = FakeBrowser()
    webbrowser.register("msal-async-fake", None, fake, preferred=True)
    yield fake
    webbrowser._tryorder.remove("msal-async-fake")  # type: ignore[attr-defined]


async def play_browser(
    http: httpx.AsyncClient, auth_uri: str, *, tamper: dict[str, str] | None = None
) -> httpx.Response:
    """Do what a browser does: follow the authorize URL, then POST the form to the listener."""
    page = await http.get(auth_uri)
    fields = parse_form_post(page.text)
    fields.update(tamper or {})
    redirect = parse_qs(urlsplit(auth_uri).query)["redirect_uri"][0]
    port = urlsplit(redirect).port
    async with httpx.AsyncClient() as local:
        return await local.post(f"http://127.0.0.1:{port}/", data=fields)


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        # SO_REUSEADDR as every listener sets it: a closed connection's TIME_WAIT is no user
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def run_with_browser(
    app: Any, http: httpx.AsyncClient, browser: FakeBrowser, **kwargs: Any
) -> tuple[dict[str, Any], httpx.Response]:
    opened = anyio.Event()
    browser.wake = opened.set
    out: dict[str, Any] = {}
    async with anyio.create_task_group() as tg:

        async def sign_in() -> None:
            out.update(await app.acquire_token_interactive(SCOPES, **kwargs))

        tg.start_soon(sign_in)
        await opened.wait()
        page = await play_browser(http, browser.opened[-1])
    return out, page


async def test_sign_in_through_the_fake_browser(
    users: AuthorityEmulator,
    make_pca: Callable[..., Any],
    http: httpx.AsyncClient,
    browser: FakeBrowser,
) -> None:
    launched: list[str] = []
    app = make_pca()
    result, page = await run_with_browser(
        app,
        http,
        browser,
        extra_scopes_to_consent=["Calendars.Read"],
        login_hint=USERNAME,
        on_before_launching_ui=lambda ui: launched.append(ui),
    )
    assert launched == ["browser"]
    assert result["id_token_claims"]["preferred_username"] == USERNAME
    assert page.status_code == 200
    assert page.text.startswith("Authentication complete.")
    query = parse_qs(urlsplit(browser.opened[0]).query)
    assert query["response_mode"] == ["form_post"]
    assert query["scope"] == ["Calendars.Read User.Read offline_access openid profile"]
    redirect = urlsplit(query["redirect_uri"][0])
    assert redirect.hostname == "localhost"
    assert redirect.port
    assert port_is_free(redirect.port)
    [token] = [r for r in users.requests if r.form.get("grant_type") == "authorization_code"]
    assert token.form["scope"] == "User.Read offline_access openid profile"
    assert token.headers["x-client-current-telemetry"] == "4|169,0|"


async def test_auth_uri_callback_when_no_browser_opens(
    users: AuthorityEmulator,
    make_pca: Callable[..., Any],
    http: httpx.AsyncClient,
    browser: FakeBrowser,
) -> None:
    browser.works = False
    uris: list[str] = []
    ready = anyio.Event()

    def callback(uri: str) -> None:
        uris.append(uri)
        ready.set()

    app = make_pca()
    out: dict[str, Any] = {}
    async with anyio.create_task_group() as tg:

        async def sign_in() -> None:
            out.update(await app.acquire_token_interactive(SCOPES, auth_uri_callback=callback))

        tg.start_soon(sign_in)
        await ready.wait()
        await play_browser(http, uris[0])
    assert "access_token" in out


async def test_wrong_state_is_refused_and_waiting_goes_on(
    users: AuthorityEmulator,
    make_pca: Callable[..., Any],
    http: httpx.AsyncClient,
    browser: FakeBrowser,
) -> None:
    opened = anyio.Event()
    browser.wake = opened.set
    app = make_pca()
    out: dict[str, Any] = {}
    async with anyio.create_task_group() as tg:

        async def sign_in() -> None:
            out.update(await app.acquire_token_interactive(SCOPES))

        tg.start_soon(sign_in)
        await opened.wait()
        forged = await play_browser(http, browser.opened[0], tamper={"state": "forged"})
        assert forged.status_code == 400
        assert forged.text.startswith("State mismatch")
        port = urlsplit(parse_qs(urlsplit(browser.opened[0]).query)["redirect_uri"][0]).port
        async with httpx.AsyncClient() as local:
            query = await local.get(f"http://127.0.0.1:{port}/?code=x&state=y")
            assert query.status_code == 400
            assert "response_mode=query is not supported" in query.text
        await play_browser(http, browser.opened[0])
    assert "access_token" in out


async def test_error_page_for_an_authority_error(
    users: AuthorityEmulator,
    make_pca: Callable[..., Any],
    http: httpx.AsyncClient,
    browser: FakeBrowser,
) -> None:
    users.user_tokens.signed_in = None
    users.password_users._users.clear()  # nobody signed in: the authority answers an error
    app = make_pca()
    result, page = await run_with_browser(app, http, browser, prompt="none")
    assert result["error"] == "login_required"
    assert page.text.startswith("Authentication failed. login_required:")


async def test_timeout_raises_and_frees_the_port(
    users: AuthorityEmulator, make_pca: Callable[..., Any], browser: FakeBrowser
) -> None:
    cache = SerializableTokenCache()
    app = make_pca(token_cache=cache)
    before = cache.serialize()
    with pytest.raises(BrowserInteractionTimeoutError):
        await app.acquire_token_interactive(SCOPES, timeout=0.01)
    port = urlsplit(parse_qs(urlsplit(browser.opened[0]).query)["redirect_uri"][0]).port
    assert port is not None
    assert port_is_free(port)
    assert cache.serialize() == before


async def test_cancellation_closes_the_listener_and_keeps_the_cache(
    users: AuthorityEmulator, make_pca: Callable[..., Any], browser: FakeBrowser
) -> None:
    opened = anyio.Event()
    browser.wake = opened.set
    cache = SerializableTokenCache()
    app = make_pca(token_cache=cache)
    before = cache.serialize()
    async with anyio.create_task_group() as tg:
        tg.start_soon(app.acquire_token_interactive, SCOPES)
        await opened.wait()
        tg.cancel_scope.cancel()
    port = urlsplit(parse_qs(urlsplit(browser.opened[0]).query)["redirect_uri"][0]).port
    assert port is not None
    assert port_is_free(port)
    assert cache.serialize() == before


async def test_a_busy_port_is_a_value_error(make_pca: Callable[..., Any]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ValueError, match=f"Can't listen on port {port}"):
            await make_pca().acquire_token_interactive(SCOPES, port=port)


async def test_auth_scheme_is_refused(make_pca: Callable[..., Any]) -> None:
    with pytest.raises(ValueError, match="broker"):
        await make_pca().acquire_token_interactive(SCOPES, auth_scheme=object())
