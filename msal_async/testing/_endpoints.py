"""The GET endpoints msal reads: instance discovery, OpenID configuration and JWKS."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ._entra import EntraError

__all__ = [
    "CONSUMERS_TENANT_ID",
    "GENERIC_TENANTS",
    "PUBLIC_CLOUD_METADATA",
    "instance_discovery",
    "openid_configuration",
    "unknown_tenant",
]

#: Tenants that are not a directory but a sign-in audience; Entra keeps them literally.
GENERIC_TENANTS = frozenset({"common", "organizations", "consumers"})

#: The Microsoft account (MSA) tenant that ``consumers`` stands for.
CONSUMERS_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"

#: Alias groups as ``/common/discovery/instance?api-version=1.1`` lists them for public clouds.
PUBLIC_CLOUD_METADATA: tuple[Mapping[str, Any], ...] = (
    {
        "preferred_network": "login.microsoftonline.com",
        "preferred_cache": "login.windows.net",
        "aliases": [
            "login.microsoftonline.com",
            "login.windows.net",
            "login.microsoft.com",
            "sts.windows.net",
        ],
    },
    {
        "preferred_network": "login.partner.microsoftonline.cn",
        "preferred_cache": "login.partner.microsoftonline.cn",
        "aliases": ["login.partner.microsoftonline.cn", "login.chinacloudapi.cn"],
    },
    {
        "preferred_network": "login.microsoftonline.de",
        "preferred_cache": "login.microsoftonline.de",
        "aliases": ["login.microsoftonline.de"],
    },
    {
        "preferred_network": "login.microsoftonline.us",
        "preferred_cache": "login.microsoftonline.us",
        "aliases": ["login.microsoftonline.us", "login.usgovcloudapi.net"],
    },
    {
        "preferred_network": "login-us.microsoftonline.com",
        "preferred_cache": "login-us.microsoftonline.com",
        "aliases": ["login-us.microsoftonline.com"],
    },
)


def unknown_tenant(tenant: str, *, error: str = "invalid_tenant") -> EntraError:
    """Entra's answer for a tenant that does not exist (AADSTS90002).

    Args:
        tenant: the tenant segment as sent.
        error: ``invalid_tenant`` for discovery, ``invalid_request`` at the token endpoint.

    Returns:
        The 400 error.
    """
    return EntraError(
        90002,
        error,
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and "
        "are signing into the correct cloud. Check with your subscription administrator, this "
        "may happen if there are no active subscriptions for the tenant.",
    )


def _missing_query(*, name: str) -> EntraError:
    return EntraError(90014, "invalid_request", f"The required field '{name}' is missing.")


def instance_discovery(
    query: Mapping[str, str], *, invalid_hosts: frozenset[str]
) -> dict[str, Any]:
    """Answer ``GET /{tenant}/discovery/instance``.

    Args:
        query: the query parameters (``api-version``, ``authorization_endpoint``).
        invalid_hosts: host names to answer with ``invalid_instance``.

    Returns:
        ``{"tenant_discovery_endpoint": ...}`` for ``api-version=1.0``; plus ``api-version`` and
        ``metadata`` (alias groups) for ``1.1``.

    Raises:
        EntraError: a missing parameter, an unsupported version, an invalid instance.
    """
    version = query.get("api-version")
    if not version:
        raise _missing_query(name="api-version")
    if version not in ("1.0", "1.1"):
        raise EntraError(
            90012, "invalid_request", f"The requested API version '{version}' is not supported."
        )
    endpoint = query.get("authorization_endpoint")
    if not endpoint:
        raise _missing_query(name="authorization_endpoint")
    parts = urlsplit(endpoint)
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or not host or host in invalid_hosts:
        raise EntraError(50049, "invalid_instance", "Unknown or invalid instance.")
    segments = [segment for segment in parts.path.split("/") if segment]
    tenant = segments[0] if segments else "common"
    version_path = "/v2.0" if "v2.0" in segments else ""
    body: dict[str, Any] = {
        "tenant_discovery_endpoint": (
            f"https://{parts.netloc}/{tenant}{version_path}/.well-known/openid-configuration"
        )
    }
    if version == "1.1":
        metadata = [dict(group) for group in PUBLIC_CLOUD_METADATA]
        if not any(host in group["aliases"] for group in metadata):
            metadata.append({"preferred_network": host, "preferred_cache": host, "aliases": [host]})
        body["api-version"] = "1.1"
        body["metadata"] = metadata
    return body


def issuer_tenant(tenant_path: str) -> str:
    """The tenant part of the v2.0 ``issuer`` for a tenant path segment.

    Args:
        tenant_path: a tenant GUID or one of :data:`GENERIC_TENANTS`.

    Returns:
        The GUID, the MSA tenant for ``consumers``, or the ``{tenantid}`` template Entra shows
        for ``common`` and ``organizations``.
    """
    if tenant_path == "consumers":
        return CONSUMERS_TENANT_ID
    if tenant_path in GENERIC_TENANTS:
        return "{tenantid}"
    return tenant_path


def openid_configuration(base_url: str, tenant_path: str) -> dict[str, Any]:
    """The OpenID Provider metadata Entra serves at ``/{tenant}/v2.0/.well-known/...``.

    Args:
        base_url: ``scheme://host[:port]`` the request reached.
        tenant_path: the tenant GUID (a domain already resolved) or a generic tenant.

    Returns:
        The document (RFC 8414 / OpenID Connect Discovery 1.0 members, plus Entra's own).
    """
    root = f"{base_url}/{tenant_path}"
    return {
        "token_endpoint": f"{root}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{root}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{base_url}/{issuer_tenant(tenant_path)}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
        "claims_supported": [
            "sub",
            "iss",
            "cloud_instance_name",
            "cloud_instance_host_name",
            "cloud_graph_host_name",
            "msgraph_host",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "acr",
            "nonce",
            "preferred_username",
            "name",
            "tid",
            "ver",
            "at_hash",
            "c_hash",
            "email",
        ],
        "kerberos_endpoint": f"{root}/kerberos",
        "tenant_region_scope": "NA",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }
