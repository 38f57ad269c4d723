"""acquire_token_interactive end to end in a real headless Chromium on the emulator's pages."""

from __future__ import annotations

import os
import socket
import webbrowser
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import anyio
import anyio.from_thread
import pytest

from msal_async import BrowserInteractionTimeoutError, PublicClientApplication, TokenCache
from msal_async.testing import (
    DEMO_TENANT_ID,
    AuthorityEmulator,
    TLSFiles,
    serve_in_thread,
)

from ..browser import SeleniumBrowser, chromium_binaries, launch_chromium
from ..conftest import ServeAuthority

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CLIENT_ID = "5c7a1e4e-1b5c-4a8e-9d11-2f3c4b5a6d7e"
USER = "erin@contoso.onmicrosoft.com"
PASSWORD = "Tr0ub4dor&3"
SCOPES = ["User.Read"]
PAGE_TIMEOUT = 20.0


def _need_chromium() -> None:
    missing = chromium_binaries() is None
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing = True
    if missing:
        reason = "chromium, chromium-driver and selenium are needed for the browser tests"
        if os.environ.get("MSAL_ASYNC_CI") == "1":
            pytest.fail(reason + "; MSAL_ASYNC_CI=1 makes this a failure (.ci/run installs them)")
        pytest.skip(reason)


class Site:
    """The emulator served over HTTPS on 127.0.0.1, reset for each test."""

    def __init__(self, emulator: AuthorityEmulator, base_url: str, ca_file: str) -> None:
        self.emulator = emulator
        self.base_url = base_url
        self.ca_file = ca_file

    def app(self, **kwargs: Any) -> PublicClientApplication:
        return PublicClientApplication(
            CLIENT_ID,
            authority=f"{self.base_url}/{DEMO_TENANT_ID}",
            verify=self.ca_file,
            instance_discovery=False,
            **kwargs,
        )


@pytest.fixture(scope="module")
def site(serve_authority: ServeAuthority, tls_files: TLSFiles) -> Iterator[tuple[Site, Path]]:
    _need_chromium()
    with serve_authority(AuthorityEmulator()) as https:
        yield Site(https.emulator, https.base_url, https.ca_file), tls_files.certfile


@pytest.fixture(scope="module")
def chromium(
    site: tuple[Site, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SeleniumBrowser]:
    """One Chromium for the module, registered as the preferred ``webbrowser`` browser."""
    driver = launch_chromium(tmp_path_factory.mktemp("profile"), trust_certfile=site[1])
    opener = SeleniumBrowser()
    webbrowser.register("msal-async-chromium", None, opener, preferred=True)
    opener.driver = driver
    try:
        yield opener
    finally:
        opener.driver = None
        driver.quit()


@pytest.fixture
def emulator(site: tuple[Site, Path], chromium: SeleniumBrowser) -> Iterator[AuthorityEmulator]:
    emulator = site[0].emulator
    emulator.register_client(CLIENT_ID)
    emulator.add_user(USER, name="Erin", password=PASSWORD, sign_in=False)
    emulator.user_tokens.require_consent = True
    chromium.driver.delete_all_cookies()
    yield emulator
    emulator.user_tokens.require_consent = False
    emulator.user_tokens.consents.clear()
    emulator.user_tokens.sessions.clear()
    emulator.reset()
    chromium.on_open = None


# -- driving the page (selenium is blocking: these run in worker threads) -------------------


def wait_for_text(driver: Any, text: str) -> str:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def has_text(d: Any) -> str | None:
        body: str = d.find_element(By.TAG_NAME, "body").text
        return body if text in body else None

    # the page may be replaced while it is read (a form was just submitted): read it again
    ignored = (NoSuchElementException, StaleElementReferenceException)
    found = WebDriverWait(driver, PAGE_TIMEOUT, ignored_exceptions=ignored).until(has_text)
    assert found is not None  # until() raises TimeoutException rather than return a falsy value
    return found


def sign_in_with_keyboard(driver: Any) -> None:
    """Type the username, Tab to the password, Enter: no mouse."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    wait_for_text(driver, "Sign in")
    active = driver.switch_to.active_element
    assert active.get_attribute("name") == "login"  # autofocus on the first field
    label = driver.find_element(By.CSS_SELECTOR, "label[for=f-login]").text
    assert label == "Email, phone, or Skype"
    active.send_keys(USER, Keys.TAB)
    driver.switch_to.active_element.send_keys(PASSWORD, Keys.ENTER)


def answer_consent(driver: Any, *, accept: bool) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    wait_for_text(driver, "Permissions requested")
    if accept:  # Accept has the focus: Enter takes it
        focused = driver.switch_to.active_element
        assert focused.text == "Accept"
        focused.send_keys(Keys.ENTER)
    else:
        driver.find_element(By.CSS_SELECTOR, "button[value=deny]").click()


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def interactive(
    app: PublicClientApplication,
    chromium: SeleniumBrowser,
    user: Callable[[Any], None],
    **kwargs: Any,
) -> tuple[dict[str, Any], str]:
    """Run acquire_token_interactive while ``user`` acts in the browser the app opened."""
    opened = anyio.Event()
    uris: list[str] = []

    def on_open(uri: str) -> None:
        uris.append(uri)
        anyio.from_thread.run_sync(opened.set)

    chromium.on_open = on_open
    out: dict[str, Any] = {}
    async with anyio.create_task_group() as tg:

        async def sign_in() -> None:
            out.update(await app.acquire_token_interactive(SCOPES, timeout=60, **kwargs))

        tg.start_soon(sign_in)
        await opened.wait()
        await anyio.to_thread.run_sync(user, chromium.driver)
    assert uris
    return out, uris[0]


# -- the tests ---------------------------------------------------------------------------------


async def test_form_post_sign_in_and_consent_in_chromium(
    site: tuple[Site, Path], chromium: SeleniumBrowser, emulator: AuthorityEmulator
) -> None:
    cache = TokenCache()
    seen: dict[str, str] = {}

    def user(driver: Any) -> None:
        sign_in_with_keyboard(driver)
        answer_consent(driver, accept=True)
        seen["page"] = wait_for_text(driver, "Authentication complete.")

    async with site[0].app(token_cache=cache) as app:
        result, uri = await interactive(app, chromium, user)
        assert result["id_token_claims"]["preferred_username"] == USER, result
        assert result["token_source"] == "identity_provider"
        assert dict(parse_qsl(urlsplit(uri).query))["response_mode"] == "form_post"
        [account] = await app.get_accounts()
        again = await app.acquire_token_silent(SCOPES, account)
        assert again is not None
        assert again["token_source"] == "cache"
    assert emulator.counts["login"] == 2  # the sign-in form, then the consent form
    assert emulator.counts["authorization_code"] == 1


async def test_session_and_consent_are_remembered(
    site: tuple[Site, Path], chromium: SeleniumBrowser, emulator: AuthorityEmulator
) -> None:
    def first(driver: Any) -> None:
        sign_in_with_keyboard(driver)
        answer_consent(driver, accept=True)
        wait_for_text(driver, "Authentication complete.")

    def second(driver: Any) -> None:  # no page at all: the cookie and the consent hold
        wait_for_text(driver, "Authentication complete.")

    async with site[0].app() as app:
        await interactive(app, chromium, first)
        result, _ = await interactive(app, chromium, second)
    assert "access_token" in result, result
    assert emulator.counts["login"] == 2


async def test_query_mode_web_app_in_chromium(
    site: tuple[Site, Path], chromium: SeleniumBrowser, emulator: AuthorityEmulator
) -> None:
    """A web app's auth code flow with response_mode=query, redirected to a real server."""
    received: dict[str, str] = {}

    async def web_app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        received.update(parse_qsl(scope["query_string"].decode()))
        body = b"<!DOCTYPE html><title>App</title><p>Back in the app</p>"
        headers = [(b"content-type", b"text/html"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    with serve_in_thread(web_app) as app_url:
        async with site[0].app() as app:
            with pytest.warns(UserWarning, match="form_post"):  # msal warns about query mode
                flow = await app.initiate_auth_code_flow(
                    SCOPES, redirect_uri=f"{app_url}/callback", response_mode="query"
                )

            def user(driver: Any) -> None:
                driver.get(flow["auth_uri"])
                sign_in_with_keyboard(driver)
                answer_consent(driver, accept=True)
                wait_for_text(driver, "Back in the app")
                assert urlsplit(driver.current_url).path == "/callback"

            await anyio.to_thread.run_sync(user, chromium.driver)
            assert received["state"] == flow["state"]
            result = await app.acquire_token_by_auth_code_flow(flow, received)
    assert result["id_token_claims"]["preferred_username"] == USER, result


async def test_denied_consent_is_an_error_result(
    site: tuple[Site, Path], chromium: SeleniumBrowser, emulator: AuthorityEmulator
) -> None:
    cache = TokenCache()

    def user(driver: Any) -> None:
        sign_in_with_keyboard(driver)
        answer_consent(driver, accept=False)
        wait_for_text(driver, "Authentication failed. access_denied")

    async with site[0].app(token_cache=cache) as app:
        result, _ = await interactive(app, chromium, user)
        assert result["error"] == "access_denied"
        assert "AADSTS65004" in result["error_description"]
        assert "access_token" not in result
        assert await app.get_accounts() == []
    assert emulator.counts["authorization_code"] == 0


async def test_browser_closed_before_the_redirect(
    site: tuple[Site, Path],
    chromium: SeleniumBrowser,
    emulator: AuthorityEmulator,
    tmp_path: Path,
) -> None:
    """The person closes the browser on the sign-in page: the app times out, cleanly."""
    own = launch_chromium(tmp_path / "profile", trust_certfile=site[1])
    shown = anyio.Event()
    shared = chromium.driver
    uris: list[str] = []

    def on_open(uri: str) -> None:
        uris.append(uri)
        anyio.from_thread.run_sync(shown.set)

    chromium.driver, chromium.on_open = own, on_open
    cache = TokenCache()
    try:
        async with site[0].app(token_cache=cache) as app:
            async with anyio.create_task_group() as tg:

                async def close_when_shown() -> None:
                    await shown.wait()
                    await anyio.to_thread.run_sync(own.quit)

                tg.start_soon(close_when_shown)
                with pytest.raises(BrowserInteractionTimeoutError):
                    await app.acquire_token_interactive(SCOPES, timeout=4)
            assert await app.get_accounts() == []
    finally:
        chromium.driver = shared
    # the page Chromium showed before it closed was the sign-in page, over a pinned cert...
    assert emulator.counts["authorize"] == 1
    # ...nothing was redeemed, and the loopback port is free again
    assert emulator.counts["authorization_code"] == 0
    redirect = dict(parse_qsl(urlsplit(uris[0]).query))["redirect_uri"]
    port = urlsplit(redirect).port
    assert port is not None
    assert port_is_free(port)
