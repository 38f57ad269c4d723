"""Azure SDK integration: an msal_async app as an azure-core async credential.

Azure SDK async clients (``azure.keyvault.secrets.aio.SecretClient``,
``azure.storage.blob.aio.BlobServiceClient``...) take a ``credential=`` implementing
azure-core's ``AsyncTokenCredential``. :class:`AzureCredential` is one, built on any msal_async
app, so the SDK shares the app's cache, its single flight (a thousand concurrent callers on a
cold cache send one token request) and its O(1) cache hits::

    from azure.keyvault.secrets.aio import SecretClient
    from msal_async import ConfidentialClientApplication
    from msal_async.azure import AzureCredential

    app = ConfidentialClientApplication(client_id, client_credential=secret, authority=authority)
    async with AzureCredential(app) as credential:
        client = SecretClient(vault_url, credential)
        secret = await client.get_secret("db-password")

Needs azure-core: ``pip install "msal-async[azure]"``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

try:
    from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions
    from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
except ImportError as missing:  # pragma: no cover - exercised in a subprocess test
    _msg = 'msal_async.azure needs azure-core: pip install "msal-async[azure]"'
    raise ImportError(_msg) from missing

if sys.version_info >= (3, 11):
    from typing import Self
else:  # typing_extensions comes with anyio on Python < 3.13
    from typing_extensions import Self

from . import _clock, _log, _token_source
from ._apps.base import ClientApplication
from ._errors import ManagedIdentityError, MsalTransportError
from ._managed_identity.client import ManagedIdentityClient

__all__ = ["AzureCredential"]

logger = logging.getLogger(_log.AZURE)

#: azure-identity's switch to ignore requested tenants (multi-tenant authentication off).
DISABLE_MULTITENANT_ENV = "AZURE_IDENTITY_DISABLE_MULTITENANTAUTH"
_TENANT_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")
_CAE_CAPABILITY = "CP1"


def resolve_tenant(
    configured: str,
    requested: str | None,
    *,
    allowed: tuple[str, ...],
    switchable: bool = True,
    environ: Mapping[str, str] | None = None,
) -> str | None:
    """The tenant a token request goes to, by azure-identity's rules.

    Args:
        configured: the app's tenant (its authority's first path segment).
        requested: ``tenant_id`` from the caller; None for the configured one.
        allowed: ``additionally_allowed_tenants`` (``"*"`` allows any).
        switchable: False for authorities without tenants (AD FS, B2C, generic OIDC).
        environ: the environment (``AZURE_IDENTITY_DISABLE_MULTITENANTAUTH``).

    Returns:
        None to use the app as configured, else the tenant to switch to.

    Raises:
        ValueError: ``requested`` is not a valid tenant id.
        ClientAuthenticationError: ``requested`` is another tenant and is not allowed.
    """
    if requested is None or requested.lower() == configured.lower():
        return None
    if not requested or any(c not in _TENANT_CHARACTERS for c in requested):
        msg = f"tenant_id={requested!r} is not a valid tenant id (a GUID or a domain name)"
        raise ValueError(msg)
    env = os.environ if environ is None else environ
    if not switchable or env.get(DISABLE_MULTITENANT_ENV, "").lower() in ("1", "true"):
        logger.info("A token was requested for another tenant; using the configured one")
        return None
    if "*" in allowed or requested.lower() in (t.lower() for t in allowed):
        return requested
    if not allowed and configured.lower() == "organizations":
        return requested  # a multi-tenant user app: any of the user's tenants
    msg = (
        f"The credential is not configured to acquire tokens for tenant {requested}. To "
        "enable acquiring tokens for this tenant add it to additionally_allowed_tenants when "
        'creating the credential, or add "*" to additionally_allowed_tenants to allow '
        "acquiring tokens for any tenant."
    )
    raise ClientAuthenticationError(message=msg)


class AzureCredential:
    """An msal_async app as an azure-core ``AsyncTokenCredential`` and ``AsyncSupportsTokenInfo``.

    What a token means depends on the app: a ``ConfidentialClientApplication`` acquires its
    client token (client credentials); a ``ManagedIdentityClient`` acquires a token for the
    scope's resource (``https://vault.azure.net/.default`` -> ``https://vault.azure.net``);
    a ``PublicClientApplication``, or any app given ``account``, returns that user's token
    silently from the cache (refreshing it when needed; a public app without ``account``
    uses its only signed-in account).

    ``claims`` (from a resource's claims challenge) is sent as the claims challenge, past the
    cache. ``enable_cae=True`` declares the ``CP1`` client capability (Continuous Access
    Evaluation): when the app does not already, a sibling app that does is made once and
    reused. ``tenant_id`` follows azure-identity: the configured tenant unless another one
    is in ``additionally_allowed_tenants`` (``"*"``: any) or the app's tenant is
    ``organizations``; one sibling app per tenant. Siblings share the app's token cache,
    HTTP client and discovery. Tenants and CAE do not apply to a managed identity.

    ``close()`` and ``async with`` close the app (and so its siblings).

    Args:
        app: a ConfidentialClientApplication, PublicClientApplication or
            ManagedIdentityClient.
        account: a user account (from ``await app.get_accounts()``) to act for.
        additionally_allowed_tenants: tenants besides the app's that ``tenant_id`` may name;
            ``"*"`` allows any.

    Raises:
        TypeError: ``app`` is not an msal_async app, ``account`` is not an account dict, or
            ``additionally_allowed_tenants`` is not a collection of strings.
        ValueError: an account with a managed identity.
    """

    def __init__(
        self,
        app: ClientApplication | ManagedIdentityClient,
        *,
        account: Mapping[str, Any] | None = None,
        additionally_allowed_tenants: Iterable[str] = (),
    ) -> None:
        self._account = _token_source.check_source("AzureCredential", app, account)
        if isinstance(additionally_allowed_tenants, str) or not all(
            isinstance(t, str) for t in additionally_allowed_tenants
        ):
            msg = (
                "AzureCredential(additionally_allowed_tenants=...) takes a list of tenant ids "
                f'(or ["*"]), got {additionally_allowed_tenants!r}'
            )
            raise TypeError(msg)
        self._allowed = tuple(additionally_allowed_tenants)
        self._app = app
        self._siblings: dict[tuple[str | None, bool], ClientApplication] = {}

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """Return an access token for ``scopes`` (called by Azure SDK clients).

        Args:
            scopes: the scopes, such as ``"https://vault.azure.net/.default"``.
            claims: a claims challenge (JSON) from a resource's 401.
            tenant_id: the tenant to ask; see the class docstring.
            enable_cae: declare the CP1 capability (Continuous Access Evaluation).
            **kwargs: other keywords azure-core may pass; ignored.

        Returns:
            ``AccessToken(token, expires_on)``.

        Raises:
            ValueError: no scope, or a bad scope, claims or tenant id.
            ClientAuthenticationError: the authority refused, no user is signed in, or the
                tenant is not allowed (the message is the error dict's text, never a token).
            ServiceRequestError: the authority could not be reached.
        """
        info = await self._token_info(
            scopes, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae, method="get_token"
        )
        return AccessToken(info.token, info.expires_on)

    async def get_token_info(
        self, *scopes: str, options: TokenRequestOptions | None = None
    ) -> AccessTokenInfo:
        """Return an access token with its ``refresh_on`` (azure-core 1.31+ clients call this).

        Args:
            scopes: the scopes.
            options: ``claims``, ``tenant_id`` and ``enable_cae``; other keys are ignored.

        Returns:
            ``AccessTokenInfo`` with ``token``, ``expires_on``, ``token_type`` and
            ``refresh_on`` (when the authority sent ``refresh_in``).

        Raises:
            ValueError: see :meth:`get_token`.
            ClientAuthenticationError: see :meth:`get_token`.
            ServiceRequestError: see :meth:`get_token`.
        """
        given = options or {}
        return await self._token_info(
            scopes,
            claims=given.get("claims"),
            tenant_id=given.get("tenant_id"),
            enable_cae=bool(given.get("enable_cae", False)),
            method="get_token_info",
        )

    async def _token_info(
        self,
        scopes: tuple[str, ...],
        *,
        claims: str | None,
        tenant_id: str | None,
        enable_cae: bool,
        method: str,
    ) -> AccessTokenInfo:
        if not scopes:
            msg = f'"{method}" requires at least one scope'
            raise ValueError(msg)
        if not all(isinstance(scope, str) and scope for scope in scopes):
            msg = f'"{method}" takes scopes as non-empty strings, got {scopes!r}'
            raise ValueError(msg)
        app = self._app_for(tenant_id, enable_cae)
        try:
            result = await _token_source.acquire(
                app, scopes, account=self._account, claims=claims or None
            )
        except MsalTransportError as failure:
            raise ServiceRequestError(message=str(failure)) from failure
        except ManagedIdentityError as failure:
            raise ClientAuthenticationError(message=str(failure)) from failure
        if "access_token" not in result:
            text = _token_source.describe_error(result)
            logger.warning("AzureCredential.%s failed: %s", method, text)
            raise ClientAuthenticationError(message=text)
        refresh_on = result.get("refresh_on")
        return AccessTokenInfo(
            result["access_token"],
            int(_clock.now()) + int(result["expires_in"]),
            token_type=str(result.get("token_type") or "Bearer"),
            refresh_on=int(refresh_on) if refresh_on is not None else None,
        )

    def _app_for(self, tenant_id: str | None, enable_cae: bool) -> _token_source.SourceApp:
        app = self._app
        if not isinstance(app, ClientApplication):
            return app  # a managed identity has one tenant and fixed capabilities
        authority = app.authority
        tenant = resolve_tenant(
            authority.tenant,
            tenant_id,
            allowed=self._allowed,
            switchable=not (authority.is_adfs or authority.is_b2c or authority.is_oidc),
        )
        capabilities = list(app._client_capabilities or [])
        add_cae = enable_cae and _CAE_CAPABILITY not in (c.upper() for c in capabilities)
        if tenant is None and not add_cae:
            return app
        key = (tenant.lower() if tenant else None, add_cae)
        sibling = self._siblings.get(key)
        if sibling is None:
            sibling = app._derive(
                tenant=tenant,
                client_capabilities=[*capabilities, _CAE_CAPABILITY] if add_cae else None,
            )
            self._siblings[key] = sibling
        return sibling

    async def close(self) -> None:
        """Close the app (its HTTP client, if it made one; a given ``http_client`` stays open)."""
        await self._app.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.close()
