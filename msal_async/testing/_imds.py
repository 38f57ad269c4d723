"""Region support: the IMDS compute-metadata endpoint and ESTS-R regional token hosts.

A VM's Instance Metadata Service answers ``GET /metadata/instance/compute`` (header
``Metadata: true``) with the VM's ``location``; msal reads it to pick a regional token
endpoint ``https://{region}.login.microsoft.com/{tenant}/oauth2/v2.0/token``. A client
assertion sent there names the **central** token endpoint as ``aud`` (msal signs it for the
central authority), which ESTS-R accepts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ._entra import EntraError
from ._http import HttpResponse

__all__ = ["CENTRAL_PUBLIC_HOSTS", "central_base_urls", "compute_metadata"]

#: The hosts whose regional twin is ``{region}.login.microsoft.com`` (msal's list).
CENTRAL_PUBLIC_HOSTS = (
    "login.microsoftonline.com",
    "login.microsoft.com",
    "login.windows.net",
    "sts.windows.net",
)
_REGIONAL = re.compile(r"(?P<scheme>https?)://(?P<region>[a-z][a-z0-9-]*)\.(?P<rest>[^/]+)")


def central_base_urls(base_url: str) -> list[str]:
    """The central authority base URLs whose assertions a regional host accepts.

    Args:
        base_url: ``scheme://host[:port]`` the request reached.

    Returns:
        ``https://login.microsoftonline.com`` and its aliases for
        ``https://westus.login.microsoft.com``; ``https://{rest}`` for
        ``https://westus.{rest}``; empty for anything else.
    """
    matched = _REGIONAL.fullmatch(base_url)
    if matched is None or "." not in matched["rest"]:
        return []
    if matched["rest"] == "login.microsoft.com":
        return [f"{matched['scheme']}://{host}" for host in CENTRAL_PUBLIC_HOSTS]
    return [f"{matched['scheme']}://{matched['rest']}"]


def compute_metadata(
    headers: Mapping[str, str], query: Mapping[str, str], *, location: str | None
) -> HttpResponse:
    """Answer ``GET /metadata/instance/compute`` as Azure IMDS does.

    Args:
        headers: the request headers (lower-case names).
        query: the query parameters; ``api-version`` is required.
        location: the VM's region; None answers 404 (not on an Azure VM).

    Returns:
        ``{"location": ..., "azEnvironment": "AzurePublicCloud", ...}``.

    Raises:
        EntraError: 400 without ``Metadata: true`` or ``api-version``.
    """
    if headers.get("metadata", "").lower() != "true":
        raise EntraError(0, "bad_request", "Required metadata header not specified")
    if not query.get("api-version"):
        raise EntraError(0, "bad_request", "Required api-version parameter not specified")
    if location is None:
        return HttpResponse.json({"error": "not_found"}, status=404)
    return HttpResponse.json(
        {
            "azEnvironment": "AzurePublicCloud",
            "location": location,
            "name": "emulated-vm",
            "osType": "Linux",
            "vmId": "00000000-0000-0000-0000-000000000000",
        }
    )
