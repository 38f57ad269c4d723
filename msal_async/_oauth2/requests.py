"""Build token requests (spec 5.1): the form body and headers, with no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .scopes import join_scopes

__all__ = ["CLIENT_CREDENTIALS", "TokenRequest", "build_token_request"]

CLIENT_CREDENTIALS = "client_credentials"

# Cache-key-only pseudo fields: they shape the cache key but never go on the wire.
_NOT_SENT = frozenset({"client_claims"})


@dataclass(frozen=True)
class TokenRequest:
    """A token-endpoint POST, ready for the transport."""

    url: str
    form: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)


def build_token_request(
    token_endpoint: str,
    *,
    client_id: str,
    grant_type: str,
    scopes: Iterable[str] | None = None,
    credential_fields: Mapping[str, str] | None = None,
    fields: Mapping[str, object] | None = None,
    claims: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> TokenRequest:
    """Assemble a token request body as msal does.

    ``client_info=1`` is always sent; falsy values are dropped; scopes are sorted and
    space-joined; caller ``fields`` override the defaults (msal's ``data=`` semantics).

    Returns:
        The request, with string form values.
    """
    form: dict[str, object] = {"client_id": client_id, "grant_type": grant_type}
    form.update(credential_fields or {})
    form["client_info"] = "1"
    if scopes is not None:
        form["scope"] = join_scopes(scopes)
    form["claims"] = claims
    form.update(fields or {})
    body = {
        key: value if isinstance(value, str) else str(value)
        for key, value in form.items()
        if value and key not in _NOT_SENT
    }
    return TokenRequest(url=token_endpoint, form=body, headers=dict(headers or {}))
