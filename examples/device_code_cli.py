"""A command-line tool that signs its user in once (device code) and then works silently.

The tokens live in a file cache (msal's format, mode 0600), so the second run needs no
sign-in: it finds the account and refreshes its token when needed.

Run:  python examples/device_code_cli.py
Configuration: AZURE_CLIENT_ID (a public client app registration), AZURE_TENANT_ID (default
organizations), SCOPES (default User.Read), TOKEN_CACHE (default
~/.cache/my-cli/token_cache.json), and AZURE_AUTHORITY_HOST / MSAL_ASYNC_CA_FILE for a local
authority.
"""

from __future__ import annotations

import os
import sys

import anyio

from msal_async import FilePersistence, PersistedTokenCache, PublicClientApplication, TokenResult


def msal_app_from_env() -> PublicClientApplication:
    """The app and its file cache, configured from the environment (no I/O here)."""
    host = os.environ.get("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com")
    cache_file = os.environ.get("TOKEN_CACHE", "~/.cache/my-cli/token_cache.json")
    return PublicClientApplication(
        os.environ["AZURE_CLIENT_ID"],
        authority=f"{host}/{os.environ.get('AZURE_TENANT_ID', 'organizations')}",
        # another authority host (a national cloud, a local emulator) is trusted as given
        instance_discovery=False if "AZURE_AUTHORITY_HOST" in os.environ else None,
        verify=os.environ.get("MSAL_ASYNC_CA_FILE") or True,  # a CA bundle for a local authority
        token_cache=PersistedTokenCache(FilePersistence(cache_file)),
    )


async def sign_in() -> TokenResult:
    scopes = os.environ.get("SCOPES", "User.Read").split()
    async with msal_app_from_env() as app:
        accounts = await app.get_accounts()
        if accounts:
            result = await app.acquire_token_silent(scopes, accounts[0])
            if result:
                return result
        flow = await app.initiate_device_flow(scopes)
        if "user_code" not in flow:  # the authority refused to start a flow
            return {
                "error": flow.get("error", ""),
                "error_description": flow.get("error_description", ""),
            }
        print(flow["message"], file=sys.stderr, flush=True)
        return await app.acquire_token_by_device_flow(flow)


def main() -> int:
    result = anyio.run(sign_in)
    if "access_token" not in result:
        print(f"sign-in failed: {result.get('error')}: {result.get('error_description')}")
        return 1
    user = result.get("id_token_claims", {}).get("preferred_username", "the cached account")
    print(f"signed in as {user}; token from {result['token_source']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
