"""Build token requests (spec 5.1): the form body, query and headers, with no I/O."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .grants import Grant
from .scopes import join_scopes

__all__ = ["CallOptions", "TokenRequest", "build_token_request"]

# Cache-key-only pseudo fields: they shape the cache key but never go on the wire.
_NOT_SENT = frozenset({"client_claims"})
# Fields of the request itself: a caller's data= never overrides them (msal lets some through,
# which would let one caller's extras change another caller's cache key or credential).
_PROTECTED = frozenset(
    {
        "client_id",
        "grant_type",
        "scope",
        "claims",
        "client_info",
        "client_secret",
        "client_assertion",
        "client_assertion_type",
    }
)


@dataclass(frozen=True)
class CallOptions:
    """Per-call transport options msal relays to its HTTP client.

    Attributes:
        timeout: seconds, a ``(connect, read)`` tuple or an ``httpx.Timeout`` for this call's
            requests; None keeps the app's.
        params: extra query-string parameters of the token request.
        headers: extra request headers (never the library's own: the caller checks).
    """

    timeout: Any = None
    params: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


NO_OPTIONS = CallOptions()


@dataclass(frozen=True)
class TokenRequest:
    """A token-endpoint POST, ready for the transport."""

    url: str
    form: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    grant: Grant | None = None
    #: The token endpoint a client assertion names, when not ``url`` (a regional endpoint).
    audience: str | None = None

    def signed(self, fields: Mapping[str, str]) -> TokenRequest:
        """This request with the credential's form fields added.

        Returns:
            A new request (this one is unchanged).
        """
        form = {**self.form, **fields}
        return TokenRequest(self.url, form, self.headers, self.params, self.grant, self.audience)

    def flight_key(self, *extra: Hashable) -> Hashable:
        """Everything that shapes this (unsigned) request, for the single flight.

        Returns:
            A hashable key.
        """
        return (
            self.url,
            tuple(sorted(self.form.items())),
            tuple(sorted(self.params.items())),
            tuple(sorted(self.headers.items())),
            *extra,
        )


def build_token_request(
    token_endpoint: str,
    *,
    grant: Grant,
    client_id: str,
    grant_type: str | None = None,
    scopes: Iterable[str] | None = None,
    data: Mapping[str, Any] | None = None,
    fields: Mapping[str, object] | None = None,
    claims: str | None = None,
    headers: Mapping[str, str] | None = None,
    options: CallOptions = NO_OPTIONS,
    audience: str | None = None,
) -> TokenRequest:
    """Assemble a token request body as msal does, with the request's own fields winning.

    The caller's ``data`` goes first; then ``client_id``, ``grant_type``, ``client_info=1``,
    ``scope`` (sorted, space-joined), ``claims`` and the grant's own fields, none of which
    ``data`` can set or override (nor the credential's fields, added when the request is
    signed). Falsy values are dropped, values become strings, and cache-key-only fields
    (``client_claims``) are never sent.

    Returns:
        The unsigned request.
    """
    form: dict[str, object] = {
        k: v
        for k, v in (data or {}).items()
        if k not in _PROTECTED and k not in _NOT_SENT and k not in grant.own_fields
    }
    form["client_id"] = client_id
    form["grant_type"] = grant_type or grant.grant_type
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
    merged = {k.lower(): v for k, v in options.headers.items()}
    merged.update({k.lower(): v for k, v in (headers or {}).items()})
    return TokenRequest(
        url=token_endpoint,
        form=body,
        headers=merged,
        params=dict(options.params),
        grant=grant,
        audience=audience,
    )
