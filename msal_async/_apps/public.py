"""PublicClientApplication: apps that cannot keep a secret (desktop, CLI, mobile)."""

from __future__ import annotations

from typing import Any

from .._credentials import ClientCredential
from .base import ClientApplication

__all__ = ["PublicClientApplication"]


class PublicClientApplication(ClientApplication):
    """An app without a client credential.

    Args:
        client_id: the application (client) id.
        client_credential: must be None (msal's rule).
        enable_broker_on_windows, enable_broker_on_mac, enable_broker_on_linux,
        enable_broker_on_wsl: accepted for compatibility; there is no broker here, so asking
            for one logs a warning and the browser flows are used, as msal does where no
            broker is available.
        **kwargs: the other :class:`ClientApplication` arguments.

    Raises:
        ValueError: a client_credential was given.
    """

    CONSOLE_WINDOW_HANDLE = object()

    def __init__(
        self,
        client_id: str,
        client_credential: Any = None,
        *,
        enable_broker_on_windows: bool | None = None,
        enable_broker_on_mac: bool | None = None,
        enable_broker_on_linux: bool | None = None,
        enable_broker_on_wsl: bool | None = None,
        **kwargs: Any,
    ) -> None:
        if client_credential is not None:
            msg = "Public Client should not possess credentials"
            raise ValueError(msg)
        self._broker_requested = any(
            (
                enable_broker_on_windows,
                enable_broker_on_mac,
                enable_broker_on_linux,
                enable_broker_on_wsl,
            )
        )
        super().__init__(client_id, client_credential, **kwargs)

    def _parse_credential(
        self, client_credential: object, *, client_claims: dict[str, Any] | None
    ) -> ClientCredential | None:
        return None

    def _check_broker(self, requested: bool) -> None:
        super()._check_broker(requested or self._broker_requested)
