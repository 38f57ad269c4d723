"""Version and client SKU strings; imports nothing."""

__version__ = "0.1.0"

#: Sent as ``x-client-sku``; msal sends ``MSAL.Python``.
CLIENT_SKU = "MSAL.Python.Async"
