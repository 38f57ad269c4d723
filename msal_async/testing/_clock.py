"""FakeClock: move time for msal_async (and the emulator) in your tests."""

from __future__ import annotations

import sys
import time
from types import TracebackType

if sys.version_info >= (3, 11):
    from typing import Self
else:  # typing_extensions comes with anyio on Python < 3.13
    from typing_extensions import Self

from .. import _clock

__all__ = ["FakeClock"]


class FakeClock:
    """A settable clock that every part of msal_async reads while it is installed.

    Token expiry, ``refresh_on``, throttling holds, client assertions, managed identity and the
    authority emulator's own clock all follow it, so a test can jump past a token's lifetime
    instead of waiting for it::

        from msal_async.testing import FakeClock

        with FakeClock() as clock:
            first = await app.acquire_token_for_client(scopes)
            clock.advance(first["expires_in"])  # the cached token is now expired
            second = await app.acquire_token_for_client(scopes)

    Installing is process-wide (every app, every thread) until the ``with`` block ends or
    :meth:`uninstall` is called; clocks nest.

    Args:
        start: the time to start at, in epoch seconds; the current time when None.
    """

    def __init__(self, start: float | None = None) -> None:
        self.now: float = time.time() if start is None else float(start)
        self._previous: list[object] = []

    def __call__(self) -> float:
        """Return the fake time, in epoch seconds."""
        return self.now

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds`` (backward when negative).

        Returns:
            The new time.
        """
        self.now += seconds
        return self.now

    def set(self, when: float) -> None:
        """Set the clock to ``when`` (epoch seconds)."""
        self.now = float(when)

    def install(self) -> Self:
        """Make this the clock of the whole process.

        Returns:
            The clock itself.
        """
        self._previous.append(_clock.install(self))
        return self

    def uninstall(self) -> None:
        """Restore the clock that was installed before this one."""
        previous = self._previous.pop()
        _clock.install(previous if callable(previous) else None)

    def __enter__(self) -> Self:
        return self.install()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.uninstall()
