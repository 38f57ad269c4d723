"""Call a protected API with httpx and msal_async.BearerAuth.

BearerAuth sends the app's token with every request and, when the API answers 401 with a
claims challenge (Continuous Access Evaluation), gets a new token and retries once.

Run:  python examples/httpx_bearer.py
Configuration: API_URL, API_SCOPE (e.g. api://orders/.default), AZURE_CLIENT_ID,
AZURE_TENANT_ID, AZURE_CLIENT_SECRET, and AZURE_AUTHORITY_HOST / MSAL_ASYNC_CA_FILE for a
local authority (the CA is also trusted for the API).
"""

from __future__ import annotations

import os
import ssl
from typing import Any

import anyio
import httpx

from msal_async import BearerAuth, ConfidentialClientApplication


def msal_app_from_env() -> ConfidentialClientApplication:
    """The app, configured from the environment (no I/O here)."""
    host = os.environ.get("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com")
    return ConfidentialClientApplication(
        os.environ["AZURE_CLIENT_ID"],
        client_credential=os.environ["AZURE_CLIENT_SECRET"],
        authority=f"{host}/{os.environ['AZURE_TENANT_ID']}",
        # another authority host (a national cloud, a local emulator) is trusted as given
        instance_discovery=False if "AZURE_AUTHORITY_HOST" in os.environ else None,
        verify=os.environ.get("MSAL_ASYNC_CA_FILE") or True,  # a CA bundle for a local authority
    )


async def call_api() -> Any:
    ca_file = os.environ.get("MSAL_ASYNC_CA_FILE")
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file else True
    async with msal_app_from_env() as app:
        auth = BearerAuth(app, [os.environ["API_SCOPE"]])
        async with httpx.AsyncClient(auth=auth, verify=verify) as client:
            response = await client.get(os.environ["API_URL"])
            response.raise_for_status()
            return response.json()


if __name__ == "__main__":
    print(anyio.run(call_api))
