"""aiohttp: the app opened and closed by a cleanup context.

Run:  python examples/aiohttp_app.py   (serves on 127.0.0.1:8080)
Configuration: as examples/fastapi_app.py (AZURE_CLIENT_ID, AZURE_TENANT_ID,
AZURE_CLIENT_SECRET, API_SCOPE, and AZURE_AUTHORITY_HOST / MSAL_ASYNC_CA_FILE for a local
authority).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

from aiohttp import web

from msal_async import ConfidentialClientApplication

MSAL_APP = web.AppKey("msal_app", ConfidentialClientApplication)


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


def api_scope() -> str:
    return os.environ.get("API_SCOPE", "https://graph.microsoft.com/.default")


async def msal_context(app: web.Application) -> AsyncIterator[None]:
    async with msal_app_from_env() as msal_app:
        await msal_app.prefetch([api_scope()])
        app[MSAL_APP] = msal_app
        yield


async def token_info(request: web.Request) -> web.Response:
    result = await request.app[MSAL_APP].acquire_token_for_client([api_scope()])
    if "access_token" not in result:
        return web.json_response({"error": result.get("error")}, status=502)
    return web.json_response({"token_source": result["token_source"]})


def make_app() -> web.Application:
    app = web.Application()
    app.cleanup_ctx.append(msal_context)
    app.router.add_get("/token-info", token_info)
    return app


if __name__ == "__main__":
    web.run_app(make_app(), host="127.0.0.1", port=8080)
