"""ConfidentialClientApplication: apps that hold a credential (web apps, daemons, APIs)."""

from __future__ import annotations

import warnings
from typing import Any, cast

from .._cache.partitions import app_partition
from .._credentials import ClientCredential
from .._flows import client_credentials, on_behalf_of, user_fic
from .._oauth2.scopes import decorate_scopes, validate_scopes
from .._region import region_detector
from .._types import Scopes, TokenResult
from . import options
from .base import ClientApplication

__all__ = ["ConfidentialClientApplication"]

_COMMON_TENANTS = ("common", "organizations")


class ConfidentialClientApplication(ClientApplication):
    """An app with a client credential; every ``acquire_*`` method is a coroutine.

    Takes the same arguments as :class:`ClientApplication`; ``client_credential`` is required.
    """

    def _parse_credential(
        self, client_credential: object, *, client_claims: dict[str, Any] | None
    ) -> ClientCredential | None:
        if client_credential is None:
            msg = (
                "ConfidentialClientApplication needs a client_credential (a client secret "
                "string or a certificate dict); for apps without one use "
                "PublicClientApplication"
            )
            raise ValueError(msg)
        return super()._parse_credential(client_credential, client_claims=client_claims)

    def _check_broker(self, requested: bool) -> None:
        if requested:
            msg = "allow_broker=True is only supported in PublicClientApplication"
            raise ValueError(msg)

    async def acquire_token_for_client(
        self,
        scopes: Scopes,
        claims_challenge: str | None = None,
        fmi_path: str | None = None,
        forwarded_client_claims: str | None = None,
        **kwargs: Any,
    ) -> TokenResult:
        """Acquire an app-only token: from the cache when it has one, else from the authority.

        Concurrent calls for the same token share one request.

        Args:
            scopes: e.g. ``["https://graph.microsoft.com/.default"]`` (not decorated).
            claims_challenge: a claims JSON from a resource's 401; bypasses the cache.
            fmi_path: a Federated Managed Identity path, sent as ``fmi_path``; tokens are
                cached separately per path.
            forwarded_client_claims: a claims JSON string merged into ``claims``; tokens are
                cached per value.
            data: extra form fields for the token request (msal's ``data=``).
            timeout, params, headers: for this call's requests (msal relays them).

        Returns:
            msal's result dict: ``access_token``, ``token_type``, ``expires_in``,
            ``token_source`` ("cache" or "identity_provider"), or an error dict with
            ``error``, ``error_description`` and ``correlation_id``.

        Raises:
            ValueError: bad arguments (``force_refresh`` is not supported, as in msal).
            MsalTransportError: the authority could not be reached.
        """
        self._check_open()
        plain = not kwargs and claims_challenge is None and fmi_path is None
        if plain and forwarded_client_claims is None and type(scopes) in (list, tuple):
            try:
                hit = self._hot.hit(tuple(scopes))
            except TypeError:  # unhashable items: the full path explains what is wrong
                hit = None
            if hit is not None:
                self._ctx.telemetry.hit()
                return hit
        if kwargs.pop("force_refresh", None):
            msg = "Historically, this method does not support force_refresh behavior. "
            raise ValueError(msg)
        data, call = options.call_arguments(
            "acquire_token_for_client", kwargs, forwarded_client_claims=forwarded_client_claims
        )
        scope_list = validate_scopes(scopes)
        options.check_claims("claims_challenge", claims_challenge, wrong_type=TypeError)
        if fmi_path is not None:
            if not isinstance(fmi_path, str):
                msg = f"fmi_path must be a string, got {type(fmi_path).__name__}"
                raise ValueError(msg)
            data["fmi_path"] = fmi_path
        common = self.authority.tenant.lower() in _COMMON_TENANTS
        if common:
            warnings.warn(
                "Using /common or /organizations authority "
                "in acquire_token_for_client() is unreliable. "
                "Please use a specific tenant instead.",
                DeprecationWarning,
                stacklevel=2,
            )
        region = await region_detector.region(
            self._azure_region, self._transport, flights=self._ctx.flights
        )
        result, key = await client_credentials.acquire_token_for_client(
            self._ctx,
            scope_list,
            claims_challenge=claims_challenge,
            data=data,
            region=region,
            options=call,
        )
        # Only plain list/tuple calls are hot (their tuple is the slot); a tenant that warns
        # must warn on every call, so it stays on the full path.
        if plain and not data and not common and "error" not in result:
            self._hot.remember(tuple(scope_list), key)
        return cast("TokenResult", result)

    async def acquire_token_on_behalf_of(
        self,
        user_assertion: str,
        scopes: Scopes,
        claims_challenge: str | None = None,
        forwarded_client_claims: str | None = None,
        **kwargs: Any,
    ) -> TokenResult:
        """Acquire a token for a downstream API on behalf of the user who called this API.

        Always asks the authority (no cache lookup, as msal); the result is cached under the
        user's account, so ``acquire_token_silent`` finds it later.

        Args:
            user_assertion: the access token this API received from its caller.
            scopes: the downstream scopes (``openid profile offline_access`` are added).
            claims_challenge: a claims JSON from a resource's 401.
            forwarded_client_claims: a claims JSON string merged into ``claims``; tokens are
                cached per value.
            data: extra form fields for the token request (msal's ``data=``).
            timeout, params, headers: for this call's requests (msal relays them).

        Returns:
            msal's result dict (``access_token``, ``id_token_claims``, ``token_source``...),
            or an error dict with ``error``, ``error_description`` and ``correlation_id``.

        Raises:
            ValueError: bad scopes or claims.
            TypeError: ``user_assertion`` is not a string, or unexpected keyword arguments.
            MsalTransportError: the authority could not be reached.
        """
        self._check_open()
        if not isinstance(user_assertion, str) or not user_assertion:
            msg = (
                "user_assertion must be the access token your API received (a non-empty str), "
                f"got {type(user_assertion).__name__}"
            )
            raise TypeError(msg)
        data, call = options.call_arguments(
            "acquire_token_on_behalf_of", kwargs, forwarded_client_claims=forwarded_client_claims
        )
        decorated = decorate_scopes(scopes, self._exclude_scopes)
        options.check_claims("claims_challenge", claims_challenge)
        return cast(
            "TokenResult",
            await on_behalf_of.acquire_token_on_behalf_of(
                self._ctx,
                user_assertion,
                decorated,
                claims_challenge=claims_challenge,
                data=data,
                options=call,
            ),
        )

    async def acquire_token_by_user_federated_identity_credential(
        self,
        scopes: Scopes,
        assertion: str,
        username: str | None = None,
        user_object_id: str | None = None,
        claims_challenge: str | None = None,
        forwarded_client_claims: str | None = None,
        **kwargs: Any,
    ) -> TokenResult:
        """Acquire a user-scoped token with the ``user_fic`` grant (agent identities).

        Exchanges a federated identity credential (typically an agent instance token) for a
        token of the named user; always asks the authority, and caches the result under the
        user's account (``account_source`` ``user_fic``), as msal does.

        Args:
            scopes: the downstream scopes (``openid profile offline_access`` are added).
            assertion: the federated identity credential.
            username: the user's UPN; exactly one of ``username`` and ``user_object_id``.
            user_object_id: the user's object id.
            claims_challenge: a claims JSON from a resource's 401.
            forwarded_client_claims: a claims JSON string merged into ``claims``.
            data: extra form fields for the token request (msal's ``data=``).
            timeout, params, headers: for this call's requests (msal relays them).

        Returns:
            msal's result dict, or an error dict with ``error``, ``error_description`` and
            ``correlation_id``.

        Raises:
            ValueError: no assertion, or not exactly one of ``username`` and
                ``user_object_id`` (msal's messages), or bad scopes or claims.
            MsalTransportError: the authority could not be reached.
        """
        self._check_open()
        if not assertion:
            msg = "assertion is required and must be non-empty"
            raise ValueError(msg)
        if not username and not user_object_id:
            msg = "Either username or user_object_id must be provided"
            raise ValueError(msg)
        if username and user_object_id:
            msg = "username and user_object_id are mutually exclusive"
            raise ValueError(msg)
        data, call = options.call_arguments(
            "acquire_token_by_user_federated_identity_credential",
            kwargs,
            forwarded_client_claims=forwarded_client_claims,
        )
        decorated = decorate_scopes(scopes, self._exclude_scopes)
        options.check_claims("claims_challenge", claims_challenge)
        return cast(
            "TokenResult",
            await user_fic.acquire_token_by_user_fic(
                self._ctx,
                decorated,
                assertion,
                username=username,
                user_object_id=user_object_id,
                claims_challenge=claims_challenge,
                data=data,
                options=call,
            ),
        )

    async def remove_tokens_for_client(self) -> None:
        """Remove the app-only tokens this client acquired with acquire_token_for_client."""
        self._check_open()
        environments = [self.authority.instance]
        if self.authority.uses_aliases:  # msal also cleans the authority's aliases
            environments += await self._ctx.discovery.aliases(
                self.authority.instance, authority=self.authority
            )
        partition = app_partition(self.client_id, await self._ctx.realm())
        async with self.token_cache.session(partition) as session:  # the store forgets them too
            session.remove_app_tokens(client_id=self.client_id, environments=environments)
