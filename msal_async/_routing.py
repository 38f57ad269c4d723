"""Where the HTTP clients that apps build for themselves send their requests (layer 0).

``msal_async.testing.emulate()`` installs an httpx transport here; ``_transport`` reads it when an
app builds its own client. Stdlib only, so that the emulator (which may import leaf modules
only) can set it without importing client code.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["pop", "push", "routed_transport"]

_lock = threading.Lock()
_stack: list[Any] = []


def push(transport: Any) -> None:
    """Route every client an app builds from now on through ``transport`` (an httpx one)."""
    with _lock:
        _stack.append(transport)


def pop(transport: Any) -> None:
    """Undo the matching :func:`push` (the innermost one that installed ``transport``)."""
    with _lock:
        for index in range(len(_stack) - 1, -1, -1):
            if _stack[index] is transport:
                del _stack[index]
                return


def routed_transport() -> Any:
    """The transport an app's own client must use, or None for a real network client."""
    with _lock:
        return _stack[-1] if _stack else None
