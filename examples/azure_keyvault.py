"""An Azure SDK client (Key Vault secrets) authenticated by an msal_async app.

Run:  python examples/azure_keyvault.py SECRET_NAME
Configuration: VAULT_URL (https://<vault>.vault.azure.net), AZURE_CLIENT_ID, AZURE_TENANT_ID,
AZURE_CLIENT_SECRET, and for a local authority AZURE_AUTHORITY_HOST / MSAL_ASYNC_CA_FILE
(the CA is also trusted for the vault). KEYVAULT_VERIFY_CHALLENGE_RESOURCE=false lets a
vault outside *.vault.azure.net (a local test double) name its resource.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from azure.keyvault.secrets.aio import SecretClient

from msal_async import ConfidentialClientApplication
from msal_async.azure import AzureCredential


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


async def read_secrets(names: list[str]) -> dict[str, str | None]:
    options: dict[str, Any] = {}
    if "MSAL_ASYNC_CA_FILE" in os.environ:
        options["connection_verify"] = os.environ["MSAL_ASYNC_CA_FILE"]
    if os.environ.get("KEYVAULT_VERIFY_CHALLENGE_RESOURCE", "true").lower() == "false":
        options["verify_challenge_resource"] = False
    # the credential closes the app when it is closed
    async with (
        AzureCredential(msal_app_from_env()) as credential,
        SecretClient(os.environ["VAULT_URL"], credential, **options) as client,
    ):
        secrets = await asyncio.gather(*(client.get_secret(name) for name in names))
    return {secret.name or "": secret.value for secret in secrets}


def main(argv: list[str]) -> None:
    for name, value in asyncio.run(read_secrets(argv)).items():
        print(f"{name}: {len(value or '')} characters")  # never print a secret itself


if __name__ == "__main__":
    main(sys.argv[1:])
