"""FastAPI: one ConfidentialClientApplication per process, opened in the lifespan, injected.

Run:  uvicorn examples.fastapi_app:app
Configuration (environment): AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_CLIENT_SECRET,
API_SCOPE (default https://graph.microsoft.com/.default); against a local authority
(``msal-async serve-authority --tls`` prints them) also AZURE_AUTHORITY_HOST and
MSAL_ASYNC_CA_FILE.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request

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


def api_scope() -> str:
    return os.environ.get("API_SCOPE", "https://graph.microsoft.com/.default")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with msal_app_from_env() as msal_app:  # closed (and its refreshes stopped) on shutdown
        await msal_app.prefetch([api_scope()])  # discovery and the token, before the first request
        app.state.msal_app = msal_app
        yield


app = FastAPI(lifespan=lifespan)


def get_msal_app(request: Request) -> ConfidentialClientApplication:
    msal_app: ConfidentialClientApplication = request.app.state.msal_app
    return msal_app


MsalApp = Annotated[ConfidentialClientApplication, Depends(get_msal_app)]


@app.get("/token-info")
async def token_info(msal_app: MsalApp) -> dict[str, Any]:
    result = await msal_app.acquire_token_for_client([api_scope()])
    if "access_token" not in result:
        raise HTTPException(status_code=502, detail=result.get("error"))
    # a real service would call its downstream API with the token here
    return {"token_source": result["token_source"], "expires_in": result["expires_in"]}
