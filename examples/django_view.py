"""Django: an async view with one app per process (a single-file Django project).

Run:  uvicorn examples.django_view:application   (any ASGI server)
Configuration: AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_CLIENT_SECRET, API_SCOPE, and
AZURE_AUTHORITY_HOST / MSAL_ASYNC_CA_FILE for a local authority. In a real project the app
lives in a module of yours (e.g. ``myproject/auth.py``) and the settings in settings.py.

Django has no lifespan hook: the app is made lazily and lives as long as the process. It
opens its HTTP client on first use and rebuilds it if it is used from another event loop
(as under WSGI, where each request runs in a new loop).
"""

from __future__ import annotations

import functools
import os

from django.conf import settings
from django.core.asgi import get_asgi_application
from django.http import HttpRequest, JsonResponse
from django.urls import path

from msal_async import ConfidentialClientApplication

if not settings.configured:
    settings.configure(
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost 127.0.0.1").split(),
        SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "only-for-this-example"),
    )


@functools.cache
def msal_app() -> ConfidentialClientApplication:
    """The process's app, configured from the environment (no I/O here)."""
    host = os.environ.get("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com")
    return ConfidentialClientApplication(
        os.environ["AZURE_CLIENT_ID"],
        client_credential=os.environ["AZURE_CLIENT_SECRET"],
        authority=f"{host}/{os.environ['AZURE_TENANT_ID']}",
        # another authority host (a national cloud, a local emulator) is trusted as given
        instance_discovery=False if "AZURE_AUTHORITY_HOST" in os.environ else None,
        verify=os.environ.get("MSAL_ASYNC_CA_FILE") or True,  # a CA bundle for a local authority
    )


async def token_info(request: HttpRequest) -> JsonResponse:
    scope = os.environ.get("API_SCOPE", "https://graph.microsoft.com/.default")
    result = await msal_app().acquire_token_for_client([scope])
    if "access_token" not in result:
        return JsonResponse({"error": result.get("error")}, status=502)
    return JsonResponse({"token_source": result["token_source"]})


urlpatterns = [path("token-info", token_info)]
application = get_asgi_application()
