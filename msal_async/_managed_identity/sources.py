"""Managed-identity sources (spec 9): detection and one request builder / parser per source.

Everything here is pure: the environment, the platform, ``now`` and whether the Azure Arc
agent is installed are parameters. ``detect_source`` is the one place that decides which
source applies (msal decides it twice, in ``get_managed_identity_source`` and
``_obtain_token``).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from .. import _json
from .._errors import ManagedIdentityError
from .._telemetry import new_correlation_id
from .._version import CLIENT_SKU, __version__

__all__ = [
    "APP_SERVICE",
    "ARC_DEFAULT_ENDPOINT",
    "ARC_KEY_DIRECTORIES",
    "AZURE_ARC",
    "CLOUD_SHELL",
    "DEFAULT_TO_VM",
    "MACHINE_LEARNING",
    "SERVICE_FABRIC",
    "SOURCES",
    "MIRequest",
    "Source",
    "arc_agent_file",
    "arc_challenge_key_file",
    "detect_source",
    "header_secret",
    "identity_params",
    "normalize_thumbprint",
]

SERVICE_FABRIC = "SERVICE_FABRIC"
APP_SERVICE = "APP_SERVICE"
MACHINE_LEARNING = "MACHINE_LEARNING"
AZURE_ARC = "AZURE_ARC"
CLOUD_SHELL = "CLOUD_SHELL"
DEFAULT_TO_VM = "DEFAULT_TO_VM"

#: The Azure Arc agent's token endpoint when only the agent binary is present.
ARC_DEFAULT_ENDPOINT = "http://localhost:40342/metadata/identity/oauth2/token"
#: Where the Arc agent writes the challenge key files, per ``sys.platform``
#: (``%Name%`` / ``${Name}`` are expanded from the environment, as msal does).
ARC_KEY_DIRECTORIES: Mapping[str, str] = {
    "linux": "/var/opt/azcmagent/tokens",
    "win32": r"%ProgramData%\AzureConnectedMachineAgent\Tokens",
}
#: The Arc agent binary whose presence means "this is an Arc-enabled server" (expanded
#: from the environment by :func:`arc_agent_file`).
ARC_AGENT_FILES: Mapping[str, str] = {
    "linux": "/opt/azcmagent/bin/himds",
    "win32": r"${ProgramFiles}\AzureConnectedMachineAgent\himds.exe",
}
# Windows' values when the environment lacks them (names compared case-insensitively).
_WINDOWS_DEFAULTS = {"programfiles": r"C:\Program Files", "programdata": r"C:\ProgramData"}
_VARIABLE = re.compile(r"\$\{(\w+)\}|%(\w+)%")
# What an HTTP header value may hold: visible ASCII, inner spaces and tabs.
_HEADER_VALUE = re.compile(r"([\x21-\x7e]([\x20-\x7e\t]*[\x21-\x7e])?)?")
#: The largest Arc key file msal reads.
ARC_KEY_MAX_BYTES = 4096

_ID_TYPE, _ID = "ManagedIdentityIdType", "Id"
# How each source spells the user-assigned identity in its query (msal's mappings).
_IMDS_NAMES = {"ClientId": "client_id", "ResourceId": "msi_res_id", "ObjectId": "object_id"}
_APP_SERVICE_NAMES = {"ClientId": "client_id", "ResourceId": "mi_res_id", "ObjectId": "object_id"}
_ML_NAMES = {"ClientId": "clientid", "ResourceId": "msi_res_id", "ObjectId": "object_id"}


@dataclass(frozen=True)
class MIRequest:
    """One GET to a managed-identity endpoint.

    Attributes:
        source: the source that built it.
        url: the endpoint, without query.
        params: the query parameters.
        headers: the request headers.
        pinned_thumbprint: Service Fabric: the SHA-1 thumbprint the server certificate must
            have (40 lower-case hex digits); None elsewhere.
    """

    source: str
    url: str
    params: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)
    pinned_thumbprint: str | None = None


def detect_source(
    environ: Mapping[str, str], *, platform: str = sys.platform, arc_agent_installed: bool = False
) -> str:
    """Decide which managed-identity source this machine offers (msal's order).

    Args:
        environ: the environment variables.
        platform: ``sys.platform``.
        arc_agent_installed: whether :data:`ARC_AGENT_FILES` exists for ``platform``.

    Returns:
        One of the source names (``SERVICE_FABRIC``, ``APP_SERVICE``, ``MACHINE_LEARNING``,
        ``AZURE_ARC``, ``CLOUD_SHELL``, ``DEFAULT_TO_VM``).
    """
    if "IDENTITY_ENDPOINT" in environ and "IDENTITY_HEADER" in environ:
        if "IDENTITY_SERVER_THUMBPRINT" in environ:
            return SERVICE_FABRIC
        return APP_SERVICE
    if "MSI_ENDPOINT" in environ and "MSI_SECRET" in environ:
        return MACHINE_LEARNING
    if "IDENTITY_ENDPOINT" in environ and "IMDS_ENDPOINT" in environ:
        return AZURE_ARC
    if arc_agent_installed and platform in ARC_AGENT_FILES:
        return AZURE_ARC
    if environ.get("AZUREPS_HOST_ENVIRONMENT", "").startswith("cloud-shell"):
        return CLOUD_SHELL
    return DEFAULT_TO_VM


def _expand(path: str, environ: Mapping[str, str]) -> str:
    """Expand ``%Name%`` and ``${Name}`` from ``environ`` (Windows: any case) or its default."""
    folded = {k.lower(): v for k, v in environ.items()}

    def value(match: re.Match[str]) -> str:
        name = (match.group(1) or match.group(2)).lower()
        return folded.get(name) or _WINDOWS_DEFAULTS.get(name) or match.group(0)

    return _VARIABLE.sub(value, path)


def arc_agent_file(environ: Mapping[str, str], *, platform: str = sys.platform) -> str | None:
    """Where the Azure Arc agent binary is on ``platform`` (msal expands ``${ProgramFiles}``).

    Args:
        environ: the environment variables (``ProgramFiles`` on Windows).
        platform: ``sys.platform``.

    Returns:
        The path whose existence means "Arc-enabled server", or None off Linux and Windows.
    """
    template = ARC_AGENT_FILES.get(platform)
    return None if template is None else _expand(template, environ)


def header_secret(value: str, name: str) -> str:
    """A secret header value (``IDENTITY_HEADER``, ``MSI_SECRET``, Arc key) stripped and checked.

    Surrounding whitespace (a key file's trailing newline) is removed; a value an HTTP header
    cannot carry is refused here, so it never reaches the HTTP stack, whose errors would
    quote it.

    Args:
        value: the secret.
        name: what holds it, for the error message (never the value itself).

    Returns:
        The stripped secret.

    Raises:
        ManagedIdentityError: it holds characters an HTTP header cannot carry.
    """
    stripped = str(value).strip()
    if not _HEADER_VALUE.fullmatch(stripped):
        msg = f"{name} holds characters an HTTP header cannot carry"
        raise ManagedIdentityError(msg)
    return stripped


def identity_params(identity: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, str]:
    """The query parameter naming a user-assigned identity, in a source's spelling.

    Args:
        identity: ``{"ManagedIdentityIdType": ..., "Id": ...}``.
        names: the source's names by id type.

    Returns:
        ``{name: id}``, or ``{}`` for a system-assigned identity.
    """
    name = names.get(str(identity.get(_ID_TYPE)))
    return {name: str(identity[_ID])} if name and identity.get(_ID) else {}


def normalize_thumbprint(value: str) -> str:
    """Normalize ``IDENTITY_SERVER_THUMBPRINT`` as msal does (40 hex digits, lower case).

    Raises:
        ManagedIdentityError: it is not a SHA-1 thumbprint.
    """
    cleaned = "".join(c for c in str(value) if c not in " \t\r\n:")
    if len(cleaned) != 40 or any(c not in "0123456789abcdefABCDEF" for c in cleaned):
        msg = "IDENTITY_SERVER_THUMBPRINT must be a SHA-1 certificate thumbprint."
        raise ManagedIdentityError(msg)
    return cleaned.lower()


def _service_fabric(
    env: Mapping[str, str], identity: Mapping[str, Any], resource: str, extra: Mapping[str, Any]
) -> MIRequest:
    endpoint = env["IDENTITY_ENDPOINT"]
    parsed = urlparse(endpoint)
    if parsed.scheme.lower() != "https" or not parsed.hostname:
        msg = "Service Fabric managed identity endpoint must use HTTPS."
        raise ManagedIdentityError(msg)
    params = {"api-version": "2019-07-01-preview", "resource": resource}
    if extra.get("token_sha256_to_refresh"):
        params["token_sha256_to_refresh"] = str(extra["token_sha256_to_refresh"])
    if extra.get("client_capabilities"):
        params["xms_cc"] = ",".join(extra["client_capabilities"])
    # The identity is configured in the cluster; msal ignores the managed_identity argument.
    return MIRequest(
        SERVICE_FABRIC,
        endpoint,
        params,
        {"Secret": header_secret(env["IDENTITY_HEADER"], "IDENTITY_HEADER")},
        pinned_thumbprint=normalize_thumbprint(env["IDENTITY_SERVER_THUMBPRINT"]),
    )


def _app_service(
    env: Mapping[str, str], identity: Mapping[str, Any], resource: str, extra: Mapping[str, Any]
) -> MIRequest:
    params = {"api-version": "2019-08-01", "resource": resource}
    params.update(identity_params(identity, _APP_SERVICE_NAMES))
    secret = header_secret(env["IDENTITY_HEADER"], "IDENTITY_HEADER")
    headers = {"X-IDENTITY-HEADER": secret, "Metadata": "true"}
    return MIRequest(APP_SERVICE, env["IDENTITY_ENDPOINT"], params, headers)


def _machine_learning(
    env: Mapping[str, str], identity: Mapping[str, Any], resource: str, extra: Mapping[str, Any]
) -> MIRequest:
    params = {"api-version": "2017-09-01", "resource": resource}
    params.update(identity_params(identity, _ML_NAMES))
    secret = header_secret(env["MSI_SECRET"], "MSI_SECRET")
    return MIRequest(MACHINE_LEARNING, env["MSI_ENDPOINT"], params, {"secret": secret})


def _azure_arc(
    env: Mapping[str, str], identity: Mapping[str, Any], resource: str, extra: Mapping[str, Any]
) -> MIRequest:
    endpoint = env["IDENTITY_ENDPOINT"] if "IMDS_ENDPOINT" in env else ARC_DEFAULT_ENDPOINT
    params = {"api-version": "2020-06-01", "resource": resource}
    params.update(identity_params(identity, _IMDS_NAMES))
    return MIRequest(AZURE_ARC, endpoint, params, {"Metadata": "true"})


def _vm(
    env: Mapping[str, str], identity: Mapping[str, Any], resource: str, extra: Mapping[str, Any]
) -> MIRequest:
    host = env.get("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://169.254.169.254").strip("/")
    params = {"api-version": "2018-02-01", "resource": resource}
    params.update(identity_params(identity, _IMDS_NAMES))
    headers = {
        "Metadata": "true",
        "x-client-SKU": CLIENT_SKU,
        "x-client-Ver": __version__,
        "x-ms-client-request-id": new_correlation_id(),
    }
    return MIRequest(DEFAULT_TO_VM, f"{host}/metadata/identity/oauth2/token", params, headers)


def arc_challenge_key_file(
    www_authenticate: str,
    *,
    platform: str,
    directories: Mapping[str, str] = ARC_KEY_DIRECTORIES,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The key file an Arc ``401`` challenge points at (``Basic realm=<path>``).

    Args:
        www_authenticate: the ``WWW-Authenticate`` header.
        platform: ``sys.platform``.
        directories: the key directory per platform.
        environ: expands ``%ProgramData%`` (else ``C:\\ProgramData``) in the directory.

    Returns:
        ``{directories[platform]}/{basename without extension}.key``; the directory
        is fixed, so a hostile realm cannot point outside it.

    Raises:
        ManagedIdentityError: the header is not ``Basic realm=...``.
        ArcPlatformNotSupportedError: no key directory for ``platform``.
    """
    from .._errors import ArcPlatformNotSupportedError

    parts = www_authenticate.split("=")
    if len(parts) != 2 or parts[0].strip().lower() != "basic realm":
        msg = "Unrecognizable WWW-Authenticate header from Azure Arc"
        raise ManagedIdentityError(msg)
    if platform not in directories:
        msg = f"Platform {platform} was undefined and unsupported"
        raise ArcPlatformNotSupportedError(msg)
    name = parts[1].replace("\\", "/").rsplit("/", 1)[-1]
    stem = name.rsplit(".", 1)[0] if "." in name else name
    separator = "\\" if platform == "win32" else "/"
    return f"{_expand(directories[platform], environ or {})}{separator}{stem}.key"


def _token(
    payload: Mapping[str, Any], expires_in: int, *, token_type: str | None
) -> dict[str, Any]:
    return {
        "access_token": payload["access_token"],
        "expires_in": expires_in,
        "resource": payload.get("resource"),
        "token_type": token_type or payload.get("token_type", "Bearer"),
    }


def _invalid(what: str) -> dict[str, Any]:
    return {
        "error": "invalid_response",
        "error_description": f"The managed identity endpoint answered {what}.",
    }


def _load(text: str) -> Any:
    """The body as JSON, or an error dict for JSON that must not be processed.

    A body that is not JSON at all raises ValueError, as msal lets it escape; JSON nested too
    deeply, too large, or with a non-finite or overlong number is an ``invalid_response``.
    """
    try:
        return _json.loads(text)
    except _json.JSONInputError as exc:
        if exc.reason in ("syntax", "encoding"):
            raise
        return _Refused(_invalid(f"a body that is not acceptable JSON ({exc})"))


@dataclass(frozen=True)
class _Refused:
    error: dict[str, Any]


def _checked_token(
    payload: Mapping[str, Any], field_name: str, now: float, *, token_type: str | None
) -> dict[str, Any]:
    if not isinstance(payload["access_token"], str):
        return _invalid("an access_token that is not a string")
    try:
        seconds = _json.int_value(payload[field_name], what=field_name)
    except _json.JSONInputError as exc:
        return _invalid(f"a malformed token: {exc}")
    # An expires_on already past (clock skew) is a token that expires now, not a negative life.
    expires_in = max(0, seconds - int(now)) if field_name == "expires_on" else seconds
    return _token(payload, expires_in, token_type=token_type)


def parse_with_expires_on(source: str, status: int, text: str, *, now: float) -> dict[str, Any]:
    """App Service, Azure ML and Service Fabric answer ``expires_on`` (epoch seconds).

    Returns:
        The normalized token, msal's error dict for the source, or ``invalid_response`` for a
        malformed answer (an ``expires_on`` that is not a time, JSON nested too deeply...).

    Raises:
        ValueError: the body is not JSON (as msal).
    """
    payload = _load(text)
    if isinstance(payload, _Refused):
        return payload.error
    if not isinstance(payload, dict):
        payload = {}
    if payload.get("access_token") and payload.get("expires_on"):
        if source == SERVICE_FABRIC:
            token_type = str(payload.get("token_type"))
            return _checked_token(payload, "expires_on", now, token_type=token_type)
        return _checked_token(payload, "expires_on", now, token_type=None)
    if source == SERVICE_FABRIC:
        raw_error = payload.get("error")
        error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
        mapping = {
            "SecretHeaderNotFound": "unauthorized_client",
            "ManagedIdentityNotFound": "invalid_client",
            "ArgumentNullOrEmpty": "invalid_scope",
        }
        return {
            "error": mapping.get(str(error.get("code")), "invalid_request"),
            "error_description": text,
        }
    if source == APP_SERVICE:
        description = f"{payload.get('statusCode')}, {payload.get('message')}"
        return {"error": "invalid_scope", "error_description": description}
    return {"error": "invalid_scope", "error_description": str(payload)}


def parse_with_expires_in(source: str, status: int, text: str, *, now: float) -> dict[str, Any]:
    """VM IMDS and Azure Arc answer ``expires_in``.

    Returns:
        The normalized token; IMDS errors as sent, Arc errors as ``invalid_request``;
        ``invalid_response`` for a malformed answer.

    Raises:
        ValueError: an IMDS body that is not JSON (as msal).
    """
    try:
        payload = _load(text)
    except ValueError:
        if source == AZURE_ARC:
            return {"error": "invalid_request", "error_description": text}
        raise
    if isinstance(payload, _Refused):
        return payload.error
    if isinstance(payload, dict) and payload.get("access_token") and payload.get("expires_in"):
        return _checked_token(payload, "expires_in", now, token_type=None)
    if source == AZURE_ARC or not isinstance(payload, dict):
        return {"error": "invalid_request", "error_description": text}
    if not isinstance(payload.get("error"), str) or not payload["error"]:
        return _invalid("neither a token nor an error")  # msal returns it as it is
    return {k: v for k, v in payload.items() if k != "access_token"}  # IMDS's error, as sent


def check_arc_echo(identity: Mapping[str, Any], payload_text: str) -> None:
    """Fail closed when Arc does not confirm a requested user-assigned identity.

    Raises:
        ManagedIdentityError: the response does not echo the requested id.
    """
    id_type = identity.get(_ID_TYPE)
    if id_type not in _IMDS_NAMES or not identity.get(_ID):
        return
    try:
        payload = _json.loads(payload_text)
    except _json.JSONInputError:
        return  # no token can be read from it either: the parser reports the answer
    if not isinstance(payload, dict):
        return
    echoed = {
        "ClientId": payload.get("client_id"),
        "ObjectId": payload.get("object_id"),
        "ResourceId": payload.get("msi_res_id") or payload.get("mi_res_id"),
    }.get(str(id_type))
    if not echoed or str(echoed).lower() != str(identity[_ID]).lower():
        msg = (
            "Azure Arc did not confirm the requested user-assigned managed identity in the "
            "token response; the agent likely returned the system-assigned identity."
        )
        raise ManagedIdentityError(msg)


_Builder = Callable[[Mapping[str, str], Mapping[str, Any], str, Mapping[str, Any]], MIRequest]
_Parser = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Source:
    """How to ask one source for a token and read its answer."""

    build: _Builder
    parse: _Parser


#: The sources a ManagedIdentityClient can use; Cloud Shell falls back to VM, as in msal.
SOURCES: Mapping[str, Source] = {
    SERVICE_FABRIC: Source(_service_fabric, parse_with_expires_on),
    APP_SERVICE: Source(_app_service, parse_with_expires_on),
    MACHINE_LEARNING: Source(_machine_learning, parse_with_expires_on),
    AZURE_ARC: Source(_azure_arc, parse_with_expires_in),
    CLOUD_SHELL: Source(_vm, parse_with_expires_in),
    DEFAULT_TO_VM: Source(_vm, parse_with_expires_in),
}
