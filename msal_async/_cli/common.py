"""What every ``msal-async`` command shares: its errors, exit statuses and optional imports."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["AUTH_FAILED", "UNREACHABLE", "USAGE", "CliError", "require"]

#: The authority refused, or there is no signed-in account.
AUTH_FAILED = 1
#: A usage error: a bad option, a missing setting, a missing extra, an unreadable file.
USAGE = 2
#: The authority (or managed-identity endpoint) could not be reached.
UNREACHABLE = 3


class CliError(Exception):
    """A failure the command reports as one line on standard error (never a traceback)."""

    def __init__(self, message: str, status: int = USAGE) -> None:
        super().__init__(message)
        self.status = status


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import an optional dependency, or fail with the one line that says what to install.

    Args:
        module: the module to import (``"uvicorn"``).
        extra: the msal-async extra that brings it (``"testing"``).
        feature: what needs it, for the message.

    Returns:
        The module.

    Raises:
        CliError: it is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        msg = f'{feature} needs {module}: pip install "msal-async[{extra}]"'
        raise CliError(msg) from None
