"""The user-token half of ClientApplication: auth code, silent, refresh tokens, accounts."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, cast

from .._flows import accounts as accounts_flow
from .._flows import auth_code, refresh, silent
from .._flows.context import AppContext
from .._oauth2.claims import merge_capabilities
from .._oauth2.scopes import decorate_scopes, validate_scopes
from .._types import AuthCodeFlow, Scopes, TokenResult
from . import options
from .hot import HotSlots

__all__ = ["UserTokenMethods"]

_AUTHORITY_IGNORED = "We haven't decided how/if this method will accept authority parameter"


class UserTokenMethods:
    """Mixin of :class:`ClientApplication` with msal's user-token methods, all coroutines.

    When the app is used as ``async with app:``, it runs background jobs: a silent call that
    finds a token past its ``refresh_on`` (but still valid) returns it at once and refreshes it
    in a job; leaving the block waits for such refreshes.
    Outside ``async with``, the refresh happens inline.
    """

    _ctx: AppContext
    _hot: HotSlots
    _exclude_scopes: list[str]

    if TYPE_CHECKING:

        def _check_open(self) -> None: ...

    def _decorate(self, scopes: object) -> list[str]:
        return decorate_scopes(scopes, self._exclude_scopes)

    # -- auth code flow ---------------------------------------------------------------------

    async def initiate_auth_code_flow(
        self,
        scopes: Scopes,
        redirect_uri: str | None = None,
        state: str | None = None,
        prompt: str | None = None,
        login_hint: str | None = None,
        domain_hint: str | None = None,
        claims_challenge: str | None = None,
        max_age: int | None = None,
        response_mode: str | None = None,
    ) -> AuthCodeFlow:
        """Start an auth code flow (PKCE S256, state, hashed nonce); no token request yet.

        Args:
            scopes: the scopes to consent to (``openid profile offline_access`` are added).
            redirect_uri: where the authority sends the browser back.
            state: your CSRF state; a random one when None.
            prompt: a :class:`Prompt` value.
            login_hint: the username to pre-fill (also sent as msal's ``X-AnchorMailbox``).
            domain_hint: ``consumers``, ``organizations`` or a tenant domain.
            claims_challenge: a claims JSON from a resource's 401.
            max_age: the maximum age in seconds of the user's last authentication.
            response_mode: ``form_post`` (recommended) or ``query``.

        Returns:
            The flow dict: keep it in the user's session and give it, with the auth response,
            to :meth:`acquire_token_by_auth_code_flow`. Its ``auth_uri`` is where to send the
            browser.

        Raises:
            ValueError: bad scopes (reserved ones included), or the authority is unreachable.
        """
        self._check_open()
        decorated = self._decorate(scopes)
        options.check_claims("claims_challenge", claims_challenge)
        if response_mode != "form_post":
            warnings.warn(
                "response_mode='form_post' is recommended for better security. "
                "See https://www.rfc-editor.org/rfc/rfc9700.html#section-4.3.1",
                UserWarning,
                stacklevel=2,
            )
        return cast(
            "AuthCodeFlow",
            await auth_code.initiate_auth_code_flow(
                self._ctx,
                scopes=decorated,
                redirect_uri=redirect_uri,
                state=state,
                prompt=prompt,
                login_hint=login_hint,
                domain_hint=domain_hint,
                claims_challenge=claims_challenge,
                max_age=max_age,
                response_mode=response_mode,
            ),
        )

    async def get_authorization_request_url(
        self,
        scopes: Scopes,
        login_hint: str | None = None,
        state: str | None = None,
        redirect_uri: str | None = None,
        response_type: str = "code",
        prompt: str | None = None,
        nonce: str | None = None,
        domain_hint: str | None = None,
        claims_challenge: str | None = None,
        **kwargs: Any,
    ) -> str:
        """Build an authorize URL without PKCE (deprecated, as in msal).

        Use :meth:`initiate_auth_code_flow` instead.

        Args:
            scopes: the scopes (decorated).
            login_hint, state, redirect_uri, response_type, prompt, nonce, domain_hint,
            claims_challenge: the authorization request parameters (``nonce`` is sent raw).
            **kwargs: ``authority=`` is accepted with a warning and ignored.

        Returns:
            The URL.

        Raises:
            ValueError: bad scopes, or the authority is unreachable.
            TypeError: an unknown keyword argument.
        """
        self._check_open()
        if kwargs.pop("authority", None):
            warnings.warn(
                "We haven't decided if this method will accept authority parameter",
                UserWarning,
                stacklevel=2,
            )
        options.reject_kwargs("get_authorization_request_url", kwargs)
        # Before the scopes are checked, as msal: a call with bad scopes still warns.
        warnings.warn(
            "Change your get_authorization_request_url() to initiate_auth_code_flow()",
            DeprecationWarning,
            stacklevel=2,
        )
        decorated = self._decorate(scopes)
        options.check_claims("claims_challenge", claims_challenge)
        return await auth_code.authorization_url(
            self._ctx,
            {
                "response_type": response_type,
                "redirect_uri": redirect_uri,
                "scope": " ".join(sorted(decorated)),
                "state": state,
                "nonce": nonce,
                "login_hint": login_hint,
                "prompt": prompt,
                "domain_hint": domain_hint,
                "claims": merge_capabilities(self._ctx.client_capabilities, claims_challenge),
            },
        )

    async def acquire_token_by_auth_code_flow(
        self,
        auth_code_flow: AuthCodeFlow | dict[str, Any],
        auth_response: dict[str, Any],
        scopes: Scopes | None = None,
        **kwargs: Any,
    ) -> TokenResult:
        """Redeem the auth response of a flow from :meth:`initiate_auth_code_flow`.

        Args:
            auth_code_flow: the flow dict (its ``claims_challenge`` is popped, as msal).
            auth_response: the query or form parameters the redirect_uri received.
            scopes: a subset of the flow's scopes to redeem for; all of them when None.
            data: extra form fields (msal's ``data=``).
            timeout, params, headers: for this call's requests (msal relays them).

        Returns:
            msal's result dict (``access_token``, ``id_token_claims``...), or an error dict.

        Raises:
            ValueError: state mismatch, scopes not in the flow, no code nor error.
            RuntimeError: the ID token's nonce or ``auth_time`` check failed.
            MsalTransportError: the authority could not be reached.
        """
        self._check_open()
        if not isinstance(auth_code_flow, dict) or not isinstance(auth_response, dict):
            msg = "auth_code_flow and auth_response must be dicts"
            raise TypeError(msg)
        data, call = options.call_arguments("acquire_token_by_auth_code_flow", kwargs)
        return cast(
            "TokenResult",
            await auth_code.redeem_auth_code_flow(
                self._ctx,
                cast("dict[str, Any]", auth_code_flow),
                auth_response,
                scopes=self._decorate(scopes) if scopes else None,
                data=data,
                options=call,
            ),
        )

    async def acquire_token_by_authorization_code(
        self,
        code: str,
        scopes: list[str],
        redirect_uri: str | None = None,
        nonce: str | None = None,
        claims_challenge: str | None = None,
        forwarded_client_claims: str | None = None,
        **kwargs: Any,
    ) -> TokenResult:
        """Redeem an authorization code without PKCE (deprecated, as in msal).

        Use :meth:`acquire_token_by_auth_code_flow` instead.

        Args:
            code: the authorization code.
            scopes: a list of scopes (decorated).
            redirect_uri: the redirect_uri of the authorization request.
            nonce: the raw nonce sent with :meth:`get_authorization_request_url`.
            claims_challenge: a claims JSON.
            forwarded_client_claims: a claims JSON merged into ``claims``.
            data: extra form fields.
            timeout, params, headers: for this call's requests (msal relays them).

        Returns:
            msal's result dict, or an error dict.

        Raises:
            AssertionError: scopes is not a list (msal's check).
            ValueError: the ID token's nonce does not match.
        """
        self._check_open()
        if not isinstance(scopes, list):
            msg = "Invalid parameter type"
            raise AssertionError(msg)  # noqa: TRY004 (msal asserts)
        data, call = options.call_arguments(
            "acquire_token_by_authorization_code",
            kwargs,
            forwarded_client_claims=forwarded_client_claims,
        )
        options.check_claims("claims_challenge", claims_challenge)
        warnings.warn(
            "Change your acquire_token_by_authorization_code() "
            "to acquire_token_by_auth_code_flow()",
            DeprecationWarning,
            stacklevel=2,
        )
        return cast(
            "TokenResult",
            await auth_code.redeem_code(
                self._ctx,
                code=code,
                scopes=self._decorate(scopes),
                redirect_uri=redirect_uri,
                claims_challenge=claims_challenge,
                data=data,
                nonce=nonce,
                hashed_nonce=False,
                options=call,
            ),
        )

    # -- accounts ---------------------------------------------------------------------------

    async def get_accounts(self, username: str | None = None) -> list[dict[str, Any]]:
        """List the accounts signed in to this app's authority (from the cache).

        A coroutine because, when no account is found, msal looks for accounts under the
        authority's aliases, which needs one (memoised) metadata request.

        Args:
            username: keep only this username (case-insensitive).

        Returns:
            Account dicts: ``home_account_id``, ``environment``, ``username``,
            ``account_source``, ``authority_type``, ``local_account_id``, ``realm``.

        Raises:
            MsalServiceError: the alias metadata request failed.
            MsalTransportError: the alias metadata request could not be sent.
        """
        self._check_open()
        return await accounts_flow.get_accounts(self._ctx, username)

    async def remove_account(self, account: dict[str, Any]) -> None:
        """Sign the account out of this app: forget its tokens and the account (spec 7.9).

        Args:
            account: an account dict from :meth:`get_accounts`.
        """
        self._check_open()
        await accounts_flow.remove_account(self._ctx, account)

    # -- silent and refresh tokens ----------------------------------------------------------

    async def acquire_token_silent(
        self,
        scopes: list[str],
        account: dict[str, Any] | None,
        authority: str | None = None,
        force_refresh: bool = False,
        claims_challenge: str | None = None,
        forwarded_client_claims: str | None = None,
        auth_scheme: Any = None,
        **kwargs: Any,
    ) -> TokenResult | None:
        """Return a token for the account from the cache, refreshing it when needed.

        Like msal, None means both "nothing usable is cached" and "the refresh failed"; use
        :meth:`acquire_token_silent_with_error` to see the error.

        Args:
            scopes: the scopes (not decorated for the cache lookup).
            account: an account from :meth:`get_accounts`; None returns None.
            authority: ignored, with a warning (as msal).
            force_refresh: skip the cached access token.
            claims_challenge: a claims JSON from a resource's 401; skips the cached AT.
            forwarded_client_claims: a claims JSON; tokens are cached per value.
            auth_scheme: PoP needs a broker, which msal_async has not (ValueError).
            data: extra form fields.
            timeout, params, headers: for this call's requests (msal relays them).

        Returns:
            A token result, or None.

        Raises:
            ValueError: bad arguments, or an ``auth_scheme``.
            MsalTransportError: the refresh could not reach the authority (no token cached).
        """
        result = await self.acquire_token_silent_with_error(
            scopes,
            account,
            authority=authority,
            force_refresh=force_refresh,
            claims_challenge=claims_challenge,
            forwarded_client_claims=forwarded_client_claims,
            auth_scheme=auth_scheme,
            **kwargs,
        )
        return result if result and "error" not in result else None

    async def acquire_token_silent_with_error(
        self,
        scopes: list[str],
        account: dict[str, Any] | None,
        authority: str | None = None,
        force_refresh: bool = False,
        claims_challenge: str | None = None,
        forwarded_client_claims: str | None = None,
        auth_scheme: Any = None,
        **kwargs: Any,
    ) -> TokenResult | None:
        """As :meth:`acquire_token_silent`, but a failed refresh returns its error dict.

        Args:
            scopes, account, authority, force_refresh, claims_challenge,
            forwarded_client_claims, auth_scheme, data: see :meth:`acquire_token_silent`.

        Returns:
            A token result, None (nothing cached), or an error dict with ``classification``
            when the error has a ``suberror``.

        Raises:
            ValueError: bad arguments, or an ``auth_scheme``.
            MsalTransportError: the refresh could not reach the authority (no token cached).
        """
        self._check_open()
        if not account:
            return None
        plain = not (
            force_refresh
            or claims_challenge is not None
            or forwarded_client_claims is not None
            or auth_scheme is not None
            or authority
            or kwargs
        )
        if plain and type(scopes) is list:
            try:
                hit = self._hot.hit((tuple(scopes), account.get("home_account_id")))
            except (TypeError, AttributeError):  # the full path explains what is wrong
                hit = None
            if hit is not None:
                self._ctx.telemetry.hit()
                return hit
        if not isinstance(scopes, list):
            msg = "Invalid parameter type"
            raise AssertionError(msg)  # noqa: TRY004 (msal asserts)
        data, call = options.call_arguments(
            "acquire_token_silent", kwargs, forwarded_client_claims=forwarded_client_claims
        )
        options.check_claims("claims_challenge", claims_challenge)
        if authority:
            warnings.warn(_AUTHORITY_IGNORED, UserWarning, stacklevel=2)
        if auth_scheme is not None:
            msg = (
                "auth_scheme is not supported: PoP tokens need a broker, and msal_async has "
                "none (msal raises ValueError here too without a broker)"
            )
            raise ValueError(msg)
        request = silent.SilentRequest(
            scopes=validate_scopes(scopes),
            account=account,
            exclude_scopes=self._exclude_scopes,
            force_refresh=bool(force_refresh),
            claims_challenge=claims_challenge,
            data=data,
            options=call,
        )
        result, key = await silent.acquire_token_silent(self._ctx, request)
        if plain and result and "access_token" in result:
            self._hot.remember((tuple(request.scopes), request.home_account_id), key)
        return cast("TokenResult | None", result)

    async def acquire_token_by_refresh_token(
        self, refresh_token: str, scopes: Scopes, **kwargs: Any
    ) -> TokenResult:
        """Redeem a refresh token obtained elsewhere (migration); always network.

        The tokens (the new refresh token included) go to the cache, after which
        :meth:`get_accounts` and :meth:`acquire_token_silent` take over.

        Args:
            refresh_token: the refresh token.
            scopes: the scopes (decorated).
            data: extra form fields.
            timeout, params, headers: for this call's requests (msal relays them).

        Returns:
            msal's result dict, or an error dict.

        Raises:
            ValueError: bad scopes.
            MsalTransportError: the authority could not be reached.
        """
        self._check_open()
        data, call = options.call_arguments("acquire_token_by_refresh_token", kwargs)
        return cast(
            "TokenResult",
            await refresh.acquire_token_by_refresh_token(
                self._ctx, refresh_token, self._decorate(scopes), data=data, options=call
            ),
        )
