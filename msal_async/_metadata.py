"""Discovery documents of an authority, built and parsed without I/O.

Instance discovery (api-version 1.0), the OpenID configuration and instance metadata (the
api-version 1.1 alias groups), as msal 1.39's ``msal/authority.py`` reads them; the GETs
themselves are in ``_discovery``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._authority import Authority, AuthorityEndpoints, canonicalize, discovery_host

__all__ = [
    "instance_metadata_request",
    "parse_aliases",
    "parse_instance_discovery",
    "parse_openid_configuration",
]


def instance_metadata_request(instance: str) -> tuple[str, dict[str, str]]:
    """Build the alias (metadata) discovery GET for ``instance`` (api-version 1.1).

    Args:
        instance: The authority host whose aliases are wanted.

    Returns:
        ``(url, params)``; send it with ``Accept: application/json``.
    """
    host = discovery_host(instance)
    params = {
        "api-version": "1.1",
        "authorization_endpoint": f"https://{host}/common/oauth2/authorize",
    }
    return f"https://{host}/common/discovery/instance", params


def parse_instance_discovery(authority: Authority, payload: Any) -> str:
    """Read the tenant discovery endpoint from an instance discovery (api 1.0) response.

    Args:
        authority: The authority being discovered (named in the error).
        payload: The decoded JSON body (the service answers 400 + JSON for a bad host).

    Returns:
        The ``tenant_discovery_endpoint`` URL.

    Raises:
        ValueError: ``invalid_instance`` (msal's message), or no endpoint in the payload.
    """
    if isinstance(payload, Mapping) and payload.get("error") == "invalid_instance":
        msg = (
            "invalid_instance: "
            f"The authority you provided, {authority.url}, is not known. "
            "If it is a valid domain name known to you, "
            "you can turn off this check by passing in "
            "instance_discovery=False"
        )
        raise ValueError(msg)
    endpoint = payload.get("tenant_discovery_endpoint") if isinstance(payload, Mapping) else None
    if not isinstance(endpoint, str) or not endpoint:
        msg = (
            f"Instance discovery for {authority.url} returned no tenant_discovery_endpoint; "
            "pass instance_discovery=False if this authority is known to you"
        )
        raise ValueError(msg)
    return endpoint


def parse_openid_configuration(authority: Authority, payload: Any) -> AuthorityEndpoints:
    """Read the endpoints of an OpenID configuration document.

    Args:
        authority: The authority the document belongs to.
        payload: The decoded JSON body.

    Returns:
        The endpoints; ``tenant`` is re-derived from the token endpoint path, as msal does.

    Raises:
        ValueError: Not a JSON object, no ``authorization_endpoint``/``token_endpoint``, or
            (for an ``oidc_authority``) an issuer that fails :meth:`Authority.has_valid_issuer`.
    """
    if not isinstance(payload, Mapping):
        raise authority.configuration_error()
    authorization_endpoint = payload.get("authorization_endpoint")
    token_endpoint = payload.get("token_endpoint")
    if not isinstance(authorization_endpoint, str) or not isinstance(token_endpoint, str):
        raise authority.configuration_error()
    issuer = payload.get("issuer")
    issuer = issuer if isinstance(issuer, str) else None
    device = payload.get("device_authorization_endpoint")
    _, _, tenant = canonicalize(token_endpoint)  # usually a GUID
    if authority.is_oidc and not authority.has_valid_issuer(issuer):
        msg = (
            f"The issuer '{issuer}' does not match the authority '{authority.url}' "
            "or a known pattern. When using the 'oidc_authority' parameter in "
            "ClientApplication, the authority will be validated against the issuer from "
            f"{authority.url}/.well-known/openid-configuration ."
            "If using a known Entra authority (e.g. login.microsoftonline.com) the "
            "'authority' parameter should be used instead of 'oidc_authority'. "
        )
        raise ValueError(msg)
    return AuthorityEndpoints(
        token_endpoint=token_endpoint,
        authorization_endpoint=authorization_endpoint,
        device_authorization_endpoint=device if isinstance(device, str) else None,
        issuer=issuer,
        tenant=tenant,
        instance=authority.instance,
    )


def parse_aliases(payload: Any) -> list[list[str]]:
    """Read the alias groups of an instance metadata (api-version 1.1) response.

    Args:
        payload: The decoded JSON body; only ``metadata[*].aliases`` is read
            (``preferred_network`` and ``preferred_cache`` are ignored, as in msal).

    Returns:
        One list of host names per metadata entry, in the service's order.

    Raises:
        ValueError: The payload has no ``metadata`` list of objects with ``aliases``.
    """
    metadata = payload.get("metadata") if isinstance(payload, Mapping) else None
    if not isinstance(metadata, list):
        msg = f"Instance metadata has no 'metadata' list: {payload!r:.200}"
        raise ValueError(msg)  # noqa: TRY004 - bad server data is a wrong value
    groups: list[list[str]] = []
    for entry in metadata:
        aliases = entry.get("aliases") if isinstance(entry, Mapping) else None
        if not isinstance(aliases, list):
            msg = f"Instance metadata entry has no 'aliases' list: {entry!r:.200}"
            raise ValueError(msg)  # noqa: TRY004 - bad server data is a wrong value
        groups.append([str(alias) for alias in aliases])
    return groups
