"""Constructor argument checks: a wrong type raises TypeError, a wrong value ValueError.

Each message names the parameter, shows the bad value (secrets never) and says how to fix it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, cast

from .._errors import closed_error
from .._oauth2.claims import parse_claims
from .._oauth2.requests import NO_OPTIONS, CallOptions
from .._oauth2.user_tokens import validate_ssh_cert_data
from .._region import check_region_name

if TYPE_CHECKING:
    import ssl

__all__ = [
    "call_arguments",
    "check_bool",
    "check_capabilities",
    "check_claims",
    "check_client_id",
    "check_exclude_scopes",
    "check_http_cache",
    "check_instance_discovery",
    "check_open",
    "check_optional_str",
    "check_proxies",
    "check_region",
    "check_timeout",
    "check_verify",
    "is_httpx_async_client",
]


def check_open(owner: object, closed: bool) -> None:
    """The one error of every call on a closed app or managed identity client.

    Raises:
        RuntimeError: ``closed`` is true.
    """
    if closed:
        raise closed_error(type(owner).__name__)


def _type_error(name: str, expected: str, value: object) -> TypeError:
    return TypeError(f"{name} must be {expected}, got {type(value).__name__} {value!r}")


def check_client_id(value: object) -> str:
    """client_id: a non-empty string."""
    if not isinstance(value, str):
        msg = "client_id"
        raise _type_error(msg, "the application (client) id string", value)
    if not value.strip():
        msg = "client_id is empty; pass your app registration's Application (client) ID"
        raise ValueError(msg)
    return value


def check_bool(name: str, value: object, *, optional: bool = False) -> bool | None:
    """A boolean flag (or None when ``optional``)."""
    if value is None and optional:
        return None
    if not isinstance(value, bool):
        raise _type_error(name, "True or False" + (" or None" if optional else ""), value)
    return value


def check_optional_str(name: str, value: object) -> str | None:
    """An optional string."""
    if value is not None and not isinstance(value, str):
        raise _type_error(name, "a string or None", value)
    return value


def check_verify(value: object) -> bool | str | ssl.SSLContext:
    """verify: True, False, a CA bundle path, or an ssl.SSLContext."""
    if not isinstance(value, bool | str) and not _loaded_instance(value, "ssl", "SSLContext"):
        msg = "verify"
        raise _type_error(msg, "True, False, a CA bundle path or an ssl.SSLContext", value)
    return cast("bool | str | ssl.SSLContext", value)


def check_proxies(value: object) -> str | Mapping[str, str] | None:
    """proxies: a proxy URL or requests' ``{"http": url, "https": url}`` mapping."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Mapping) and all(
        k in ("http", "https") and isinstance(v, str) for k, v in value.items()
    ):
        return value
    # Proxy URLs may carry a password: name the shape, never echo the value.
    keys = sorted(map(str, value)) if isinstance(value, Mapping) else None
    shown = f"a mapping with keys {keys}" if keys is not None else type(value).__name__
    msg = f'proxies must be a proxy URL or {{"http": url, "https": url}}, got {shown}'
    raise TypeError(msg)


def _loaded_instance(value: object, module: str, name: str) -> bool:
    # Whether value is a module.name, without importing the module for the check: until it is
    # imported nothing can be an instance. The app loads httpx and ssl with its first request.
    found = sys.modules.get(module)
    return found is not None and isinstance(value, getattr(found, name))


def is_httpx_async_client(value: object) -> bool:
    """Whether ``value`` is an ``httpx.AsyncClient`` (without importing httpx for the check)."""
    return _loaded_instance(value, "httpx", "AsyncClient")


def check_timeout(value: object) -> Any:
    """timeout: seconds (> 0), a (connect, read) tuple, an httpx.Timeout, or None."""
    if value is None or _loaded_instance(value, "httpx", "Timeout"):
        return value
    items = value if isinstance(value, tuple) else (value,)
    if len(items) not in (1, 2) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in items
    ):
        msg = "timeout"
        raise _type_error(msg, "seconds, a (connect, read) tuple or an httpx.Timeout", value)
    if any(v <= 0 for v in items):
        msg = f"timeout must be positive seconds, got {value!r}"
        raise ValueError(msg)
    return value


def check_capabilities(value: object) -> list[str] | None:
    """client_capabilities: a list of strings such as ``["CP1"]``."""
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        msg = "client_capabilities"
        raise _type_error(msg, 'a list of strings such as ["CP1"]', value)
    return list(value)


def check_exclude_scopes(value: object) -> list[str]:
    """exclude_scopes: a list of strings; ``openid`` cannot be excluded (msal's rules)."""
    if not value:
        return []
    if not isinstance(value, list):
        msg = f"Invalid exclude_scopes={value!r}. It need to be a list of strings."
        raise ValueError(msg)  # noqa: TRY004 (msal raises ValueError)
    if "openid" in value:
        msg = f'Invalid exclude_scopes={value!r}. You can not opt out "openid" scope'
        raise ValueError(msg)
    return list(value)


def check_region(name: str, value: object) -> str | bool | None:
    """azure_region: None, True, False or a region name such as ``westus``."""
    if value is None or isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise _type_error(name, 'None, True, False or a region name such as "westus"', value)
    return check_region_name(value, name=name)


def check_http_cache(value: object) -> MutableMapping[str, Any] | None:
    """http_cache: any dict-like object (msal's contract), or None."""
    if value is None or isinstance(value, MutableMapping):
        return value
    msg = "http_cache"
    raise _type_error(msg, "a dict-like object (MutableMapping) or None", value)


def check_instance_discovery(value: object) -> bool | str | None:
    """instance_discovery: None, a bool, or a custom discovery endpoint URL."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if not value.startswith("https://"):
            msg = f"instance_discovery URL must start with https://, got {value!r}"
            raise ValueError(msg)
        return value
    msg_0 = "instance_discovery"
    raise _type_error(msg_0, "None, True, False or an https URL", value)


def check_client_claims(value: object) -> dict[str, Any] | None:
    """client_claims: a dict of extra claims for the client assertion."""
    if value is None or isinstance(value, dict):
        return value
    msg = "client_claims"
    raise _type_error(msg, "a dict of claims or None", value)


# --- call arguments shared by the acquire_* methods ---------------------------------------

#: Keyword arguments msal relays to its HTTP client that we cannot honour per call.
_PER_APP_ONLY = {
    "verify": "verify= on the app's constructor (or an http_client)",
    "proxies": "proxies= on the app's constructor (or an http_client)",
    "cert": "an http_client configured with the certificate",
}


def call_arguments(
    method: str, kwargs: dict[str, Any], *, forwarded_client_claims: object = None
) -> tuple[dict[str, Any], CallOptions]:
    """Take the keyword arguments msal relays: ``data=`` and the per-call transport options.

    ``data`` holds extra form fields (it can never override the request's own fields);
    ``timeout``, ``params`` (the token request's query string) and ``headers`` (merged under
    the library's own) apply to this call's token requests, as msal relays them to its HTTP
    client. Anything else is refused here, at the call, with what to do instead.

    Args:
        method: the public method's name, for messages.
        kwargs: its ``**kwargs`` (changed in place).
        forwarded_client_claims: a claims JSON string kept in ``data`` as ``client_claims``
            (merged into ``claims`` on the wire, and part of the cache key), or None.

    Returns:
        ``(data, options)``; ``data`` is a copy.

    Raises:
        TypeError: an argument of the wrong type, or an unknown keyword argument.
        ValueError: a bad ``timeout``, ``headers`` that would replace the library's own (such
            as ``x-client-sku`` or ``client-request-id``), a bad ``forwarded_client_claims``, or
            an SSH-certificate request without ``req_cnf`` / ``key_id`` (msal's checks).
    """
    if not kwargs and forwarded_client_claims is None:  # the usual call: nothing to check
        return {}, NO_OPTIONS
    data = kwargs.pop("data", None) or {}
    if not isinstance(data, dict):
        msg = f"data must be a dict of extra form fields, got {type(data).__name__}"
        raise TypeError(msg)
    data = dict(data)
    options = CallOptions(
        timeout=check_timeout(kwargs.pop("timeout", None)),
        params=_string_mapping("params", kwargs.pop("params", None)),
        headers=_extra_headers(kwargs.pop("headers", None)),
    )
    if kwargs:
        hints = [f"{k}: use {_PER_APP_ONLY[k]}" for k in sorted(kwargs) if k in _PER_APP_ONLY]
        msg = (
            f"{method}() got unexpected keyword arguments {sorted(kwargs)}; it takes "
            "data={...} (extra form fields) and timeout=, params=, headers= (for this call's "
            "requests)" + (f" ({'; '.join(hints)})" if hints else "")
        )
        raise TypeError(msg)
    if forwarded_client_claims is not None:
        if not isinstance(forwarded_client_claims, str):
            msg = (
                "forwarded_client_claims must be a JSON string, got "
                f"{type(forwarded_client_claims).__name__}"
            )
            raise ValueError(msg)
        parse_claims(forwarded_client_claims, name="forwarded_client_claims")
        data["client_claims"] = forwarded_client_claims
    validate_ssh_cert_data(data)
    return data, options


#: Headers the library itself sends with every token request: a per-call ``headers=`` cannot
#: replace them (the service relies on them for telemetry, correlation and throttling).
_OWN_HEADERS = frozenset(
    (
        "accept",
        "client-request-id",
        "x-app-name",
        "x-app-ver",
        "x-client-current-telemetry",
        "x-client-last-telemetry",
        "x-client-os",
        "x-client-sku",
        "x-client-ver",
        "x-ms-lib-capability",
    )
)


def _extra_headers(value: object) -> dict[str, str]:
    headers = _string_mapping("headers", value)
    own = sorted(k for k in headers if k.lower() in _OWN_HEADERS)
    if own:
        msg = f"headers cannot replace the library's own request headers {own}"
        raise ValueError(msg)
    return headers


def _string_mapping(name: str, value: object) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return dict(value)
    msg = f"{name} must be a dict of strings, got {type(value).__name__}"
    raise TypeError(msg)


def reject_kwargs(method: str, kwargs: dict[str, Any]) -> None:
    """Raise TypeError naming any keyword argument ``method`` does not take."""
    if kwargs:
        msg = f"{method}() got unexpected keyword arguments {sorted(kwargs)}"
        raise TypeError(msg)


def check_claims(name: str, value: object, *, wrong_type: type[Exception] = ValueError) -> None:
    """A claims argument must be None or a JSON object string.

    Raises:
        ``wrong_type``: not a string (msal raises ValueError on most paths).
        ValueError: not a JSON object.
    """
    if value is None:
        return
    if not isinstance(value, str):
        msg = (
            f"{name} must be a JSON string (from WWW-Authenticate), or None"
            if wrong_type is TypeError
            else f"{name} must be a JSON string, or None; got {type(value).__name__}"
        )
        raise wrong_type(msg)
    parse_claims(value, name=name)
