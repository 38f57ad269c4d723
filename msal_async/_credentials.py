"""Client credentials: turn what the caller passed into the form fields of a token request.

A registry maps each accepted input shape to a credential kind. Every credential renders
as ``***`` in ``repr`` so a secret never reaches a log line or a traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["ClientCredential", "ClientSecret", "parse_client_credential"]


class ClientCredential(Protocol):
    """What a token request needs from a client credential."""

    @property
    def kind(self) -> str:
        """A short name of the credential kind, for logs."""
        ...

    async def form_fields(self, *, client_id: str, token_endpoint: str) -> dict[str, str]:
        """Return the credential's form fields for one token request."""
        ...


@dataclass(frozen=True)
class ClientSecret:
    """A client secret, sent as the ``client_secret`` form field (client_secret_post)."""

    secret: str = field(repr=False)
    kind: str = "client_secret"

    def __repr__(self) -> str:
        return "ClientSecret(secret='***')"

    async def form_fields(self, *, client_id: str, token_endpoint: str) -> dict[str, str]:
        """Return ``{"client_secret": ...}``."""
        return {"client_secret": self.secret}


_Parser = Callable[[Mapping[str, Any]], ClientCredential]

#: Dict-shaped credentials by their distinguishing key; later credential kinds register here.
DICT_CREDENTIALS: dict[str, _Parser] = {}


def parse_client_credential(value: object) -> ClientCredential | None:
    """Validate ``client_credential`` and build the matching credential.

    Returns:
        The credential, or None when ``value`` is None.

    Raises:
        TypeError: ``value`` is neither a string nor a dict.
        ValueError: the string is empty, or the dict has none of the known keys.
    """
    if value is None:
        return None
    if isinstance(value, str):
        if not value:
            msg = "client_credential is an empty string; pass your client secret"
            raise ValueError(msg)
        return ClientSecret(value)
    if isinstance(value, Mapping):
        for key, parser in DICT_CREDENTIALS.items():
            if value.get(key):
                return parser(value)
        known = ", ".join(sorted(DICT_CREDENTIALS)) or "(none)"
        msg = (
            f"client_credential dict has keys {sorted(map(str, value))}; expected one of: "
            f"{known}. See https://learn.microsoft.com/python/api/msal/msal.application."
            "confidentialclientapplication for the accepted formats"
        )
        raise ValueError(msg)
    msg = (
        "client_credential must be a client secret string or a dict (certificate, "
        f"assertion), got {type(value).__name__}"
    )
    raise TypeError(msg)
