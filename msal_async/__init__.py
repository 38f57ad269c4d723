"""msal_async (being assembled)."""

from ._version import __version__

__all__ = ["__version__"]
