"""The one clock: seconds since the epoch, read by the cache, flows, transport and credentials.

Every part of the library asks :func:`now` for the time (pure modules get ``now`` passed in),
so a test can move time for all of them at once with ``msal_async.testing.FakeClock``, which
installs itself here. Nothing else reads the wall clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["install", "now"]

_wall = time.time
_override: Callable[[], float] | None = None


def now() -> float:
    """Return the current time in epoch seconds (a test's fake clock while one is installed)."""
    override = _override
    return _wall() if override is None else override()


def install(clock: Callable[[], float] | None) -> Callable[[], float] | None:
    """Make ``clock`` the time source of the whole process (None restores the wall clock).

    Args:
        clock: a callable returning epoch seconds, or None.

    Returns:
        The clock that was installed before, so that it can be restored.
    """
    global _override
    previous, _override = _override, clock
    return previous
