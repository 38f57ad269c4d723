"""``emulate()``: send the requests of apps built without ``http_client=`` to an emulator."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx

from .._routing import pop, push

__all__ = ["emulate"]

_App = TypeVar(
    "_App",
    bound=Callable[
        [
            MutableMapping[str, Any],
            Callable[[], Awaitable[MutableMapping[str, Any]]],
            Callable[[MutableMapping[str, Any]], Awaitable[None]],
        ],
        Awaitable[None],
    ],
)


@contextmanager
def emulate(emulator: _App) -> Iterator[_App]:
    """Route every HTTP client an app builds for itself to ``emulator``, in-process.

    Inside the block, an application constructed without ``http_client=`` (as production code
    builds it) sends its requests to ``emulator`` through ``httpx.ASGITransport``, whatever the
    host of its authority: the code under test needs no change and nothing leaves the process.
    Clients you pass as ``http_client=`` are yours and are left alone. The routing is
    process-wide (every thread and event loop) and applies to clients built while it is active:
    an app builds its client at its first request, and again on a new event loop.

    Blocks nest; the innermost emulator wins::

        from msal_async.testing import AuthorityEmulator, emulate

        with emulate(AuthorityEmulator()) as emulator:
            anyio.run(main)  # main() builds its apps as in production
        assert emulator.counts["client_credentials"] == 1

    Args:
        emulator: an ASGI app, usually an :class:`AuthorityEmulator`.

    Returns:
        A context manager that yields ``emulator``.

    Raises:
        TypeError: ``emulator`` is not callable (not an ASGI app).
    """
    if not callable(emulator):
        msg = f"emulate(emulator={emulator!r}): expected an ASGI app such as AuthorityEmulator()"
        raise TypeError(msg)
    transport = httpx.ASGITransport(app=emulator)
    push(transport)
    try:
        yield emulator
    finally:
        pop(transport)
