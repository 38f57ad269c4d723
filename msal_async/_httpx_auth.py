"""BearerAuth: an ``httpx.Auth`` that sends an msal_async app's token, and answers claims challenges."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Iterable, Mapping
from typing import Any

import httpx

from . import _token_source
from ._apps.base import ClientApplication
from ._errors import MsalServiceError
from ._managed_identity.client import ManagedIdentityClient
from ._oauth2.challenge import claims_challenge

__all__ = ["BearerAuth"]


class BearerAuth(httpx.Auth):
    """Authenticate every request of an ``httpx.AsyncClient`` with a token from an app.

    The token comes from the app as :class:`msal_async.azure.AzureCredential` gets it: a
    confidential app's client token, a managed identity's token for the scope's resource, or
    a user's token silently from the cache (``account``, or a public app's only account). It
    is served from the app's cache, so concurrent requests share one acquisition.

    When a response is 401 with a claims challenge (``WWW-Authenticate: Bearer
    error="insufficient_claims", claims="..."``, sent by Entra-protected APIs under Continuous
    Access Evaluation or for an authentication context), the token is acquired again with that
    challenge and the request is retried once. When another request already did that (the
    cached token changed since this request was sent), the new token is used without
    another acquisition. Request bodies are buffered so that the retry can send them again.

    Async only: an ``httpx.Client`` using it raises RuntimeError.

    Args:
        app: a ConfidentialClientApplication, PublicClientApplication or
            ManagedIdentityClient.
        scopes: the scopes of the API, such as ``["api://orders/.default"]`` (a managed
            identity takes exactly one).
        account: a user account (from ``await app.get_accounts()``) to act for.

    Raises:
        TypeError: a wrong app, account or scopes type.
        ValueError: no scopes, or not exactly one for a managed identity.
    """

    requires_request_body = True

    def __init__(
        self,
        app: ClientApplication | ManagedIdentityClient,
        scopes: Iterable[str],
        *,
        account: Mapping[str, Any] | None = None,
    ) -> None:
        self._account = _token_source.check_source("BearerAuth", app, account)
        if isinstance(scopes, str) or not all(isinstance(s, str) for s in scopes):
            msg = f"BearerAuth(scopes=...) takes a list of strings, got {scopes!r}"
            raise TypeError(msg)
        self._scopes = list(scopes)
        if not self._scopes:
            msg = "BearerAuth(scopes=...) needs at least one scope"
            raise ValueError(msg)
        if isinstance(app, ManagedIdentityClient):
            _token_source.resource_of(self._scopes)
        self._app = app

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        """Refuse synchronous use.

        Raises:
            RuntimeError: always; use an ``httpx.AsyncClient``.
        """
        msg = (
            "msal_async.BearerAuth is async-only: use it with httpx.AsyncClient (an "
            "httpx.Client cannot await the app's token acquisition)"
        )
        raise RuntimeError(msg)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Send ``request`` with the token; after a claims challenge, once more with a new one.

        Raises:
            MsalServiceError: no token could be acquired (the error dict's text).
            MsalTransportError: the authority could not be reached.
        """
        sent = await self._token(None)
        request.headers["Authorization"] = f"Bearer {sent}"
        response = yield request
        if response.status_code != 401:
            return
        claims = claims_challenge(response.headers.get_list("www-authenticate"))
        if claims is None:
            return
        token = await self._token(None)
        if token == sent:  # nobody answered this challenge yet
            token = await self._token(claims)
        request.headers["Authorization"] = f"Bearer {token}"
        yield request

    async def _token(self, claims: str | None) -> str:
        result = await _token_source.acquire(
            self._app, self._scopes, account=self._account, claims=claims
        )
        if "access_token" not in result:
            error, description = _token_source.error_parts(result)
            raise MsalServiceError(error=error, error_description=description)
        token: str = result["access_token"]
        return token
