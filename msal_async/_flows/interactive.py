"""The browser half of interactive sign-in (spec 6.3): open the browser, await the response.

The browser opens through ``webbrowser`` in a worker thread (it may block on a subprocess), the
loopback listener answers in the caller's task, and the wait ends at ``timeout`` or on
cancellation with the listener closed.
"""

from __future__ import annotations

import inspect
import logging
import webbrowser
from collections.abc import Callable
from string import Template
from typing import Any
from urllib.parse import urlsplit

import anyio

from .. import _log
from .._loopback import LoopbackListener

__all__ = ["launch_browser", "wait_for_auth_response"]

logger = logging.getLogger(_log.APPLICATION)


def _safe_to_open(uri: str) -> bool:
    try:
        scheme = urlsplit(uri).scheme
    except ValueError:
        return False
    return scheme in ("http", "https") and not any(c in uri for c in "\n\r\t")


async def launch_browser(uri: str, *, browser_name: str | None = None) -> bool:
    """Open ``uri`` in the user's browser, off the event loop.

    Args:
        uri: an http(s) URI without CR, LF or TAB (anything else is refused, as msal does).
        browser_name: a name registered with ``webbrowser.register``; the default browser
            (``$BROWSER``) when None.

    Returns:
        Whether a browser said it opened.
    """
    if not _safe_to_open(uri):
        logger.warning("Refusing to open a browser on a URI that is not plain http(s)")
        return False

    def open_it() -> bool:
        try:
            if browser_name:
                return bool(webbrowser.get(browser_name).open(uri))
            return bool(webbrowser.open(uri))
        except webbrowser.Error:
            logger.warning("Could not open a browser", exc_info=True)
            return False

    return await anyio.to_thread.run_sync(open_it, abandon_on_cancel=True)


async def wait_for_auth_response(
    listener: LoopbackListener,
    *,
    auth_uri: str,
    state: str,
    timeout: float | None,  # noqa: ASYNC109 (msal's parameter; a deadline, not a stall)
    welcome_template: str | None = None,
    success_template: str | None = None,
    error_template: str | None = None,
    auth_uri_callback: Callable[[str], Any] | None = None,
    browser_name: str | None = None,
) -> dict[str, str] | None:
    """Send the user to ``auth_uri`` and wait for the loopback listener's response.

    Args:
        listener: an open listener.
        auth_uri: the authorization URL.
        state: the flow's state.
        timeout: seconds to wait; None waits until cancelled.
        welcome_template: when given, the browser opens a local welcome page instead
            (``$auth_uri`` and ``$abort_uri`` placeholders), as msal does.
        success_template: the success page (``string.Template``).
        error_template: the error page.
        auth_uri_callback: called with the URI when no browser opened (a coroutine
            function is awaited).
        browser_name: a ``webbrowser`` name to use instead of the default.

    Returns:
        The authorization response, or None on timeout.
    """
    local = f"http://localhost:{listener.port}"
    welcome = Template(welcome_template or "").safe_substitute(
        auth_uri=auth_uri, abort_uri=f"{local}?error=abort"
    )
    uri = f"{local}?welcome=true" if welcome_template else auth_uri
    with anyio.move_on_after(timeout if timeout is not None else float("inf")):
        async with anyio.create_task_group() as tg:
            result: dict[str, str] = {}

            async def receive() -> None:
                result.update(
                    await listener.wait(
                        state=state,
                        welcome_page=welcome,
                        success_template=success_template,
                        error_template=error_template,
                    )
                )
                tg.cancel_scope.cancel()

            tg.start_soon(receive)
            logger.info("Opening a browser to sign in (redirect to %s)", local)
            if not await launch_browser(uri, browser_name=browser_name):
                if auth_uri_callback is None:
                    logger.warning(
                        "Found no browser in this environment. Visit the sign-in URI in a "
                        "browser on this device (timeout %s s): %s",
                        timeout,
                        uri,
                    )
                else:
                    outcome = auth_uri_callback(uri)
                    if inspect.isawaitable(outcome):
                        await outcome
        return result
    return None
