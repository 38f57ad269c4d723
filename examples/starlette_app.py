"""Starlette: the app opened in the lifespan and kept in the lifespan state.

Run:  uvicorn examples.starlette_app:app
Configuration: as examples/fastapi_app.py (AZURE_CLIENT_ID, AZURE_TENANT_ID,
AZURE_CLIENT_SECRET, API_SCOPE, and AZURE_AUTHORITY_HOST / MSAL_ASYNC_CA_FILE for a local
authority).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from msal_async import ConfidentialClientApplication


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


SCOPE = os.environ.get("API_SCOPE", "https://graph.microsoft.com/.default")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    async with msal_app_from_env() as msal_app:
        await msal_app.prefetch([SCOPE])
        yield {"msal_app": msal_app}  # request.state.msal_app in every request


async def token_info(request: Request) -> JSONResponse:
    msal_app: ConfidentialClientApplication = request.state.msal_app
    result = await msal_app.acquire_token_for_client([SCOPE])
    if "access_token" not in result:
        return JSONResponse({"error": result.get("error")}, status_code=502)
    return JSONResponse({"token_source": result["token_source"]})


app = Starlette(routes=[Route("/token-info", token_info)], lifespan=lifespan)
