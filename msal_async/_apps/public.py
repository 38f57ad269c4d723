"""PublicClientApplication: apps that cannot keep a secret (desktop, CLI, mobile)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from .._credentials import ClientCredential
from .._errors import BrowserInteractionTimeoutError, error_result
from .._flows import auth_code, device_code, interactive
from .._loopback import LoopbackListener
from .._oauth2.grants import INTERACTIVE
from .._oauth2.scopes import decorate_scopes
from .._telemetry import new_correlation_id
from .._types import DeviceFlow, Scopes, TokenResult
from . import options
from .base import ClientApplication

__all__ = ["PublicClientApplication"]


class PublicClientApplication(ClientApplication):
    """An app without a client credential.

    Args:
        client_id: the application (client) id.
        client_credential: must be None (msal's rule).
        enable_broker_on_windows: accepted for compatibility, as are ``enable_broker_on_mac``,
            ``enable_broker_on_linux`` and ``enable_broker_on_wsl``; there is no broker here,
            so asking for one logs a warning and the browser flows are used, as msal does
            where no broker is available.
        **kwargs: the other :class:`ClientApplication` arguments.

    Raises:
        ValueError: a client_credential was given.
    """

    CONSOLE_WINDOW_HANDLE = object()
    DEVICE_FLOW_CORRELATION_ID = device_code.CORRELATION_ID_KEY

    def __init__(
        self,
        client_id: str,
        client_credential: Any = None,
        *,
        enable_broker_on_windows: bool | None = None,
        enable_broker_on_mac: bool | None = None,
        enable_broker_on_linux: bool | None = None,
        enable_broker_on_wsl: bool | None = None,
        **kwargs: Any,
    ) -> None:
        if client_credential is not None:
            msg = "Public Client should not possess credentials"
            raise ValueError(msg)
        self._broker_requested = any(
            (
                enable_broker_on_windows,
                enable_broker_on_mac,
                enable_broker_on_linux,
                enable_broker_on_wsl,
            )
        )
        super().__init__(client_id, client_credential, **kwargs)

    def _parse_credential(
        self, client_credential: object, *, client_claims: dict[str, Any] | None
    ) -> ClientCredential | None:
        return None

    def _check_broker(self, requested: bool) -> None:
        super()._check_broker(requested or self._broker_requested)

    async def initiate_device_flow(
        self, scopes: Scopes | None = None, *, claims_challenge: str | None = None, **kwargs: Any
    ) -> DeviceFlow:
        """Start a device code flow: ask the authority for a user code to show the user.

        Args:
            scopes: the scopes to ask for (``openid profile offline_access`` are added).
            claims_challenge: a claims JSON from a resource's 401.

        Returns:
            The flow: ``user_code``, ``device_code``, ``verification_uri``, ``message`` (built
            when the provider sends none), ``interval``, ``expires_in``, ``expires_at`` and
            ``_correlation_id``; or an error dict. Show ``flow["message"]`` to the user, then
            pass the flow to :meth:`acquire_token_by_device_flow`.

        Raises:
            ValueError: bad scopes, a bad claims_challenge, or no device code endpoint.
            TypeError: unexpected keyword arguments.
            MsalTransportError: the authority could not be reached.
        """
        self._check_open()
        data, call = options.call_arguments("initiate_device_flow", kwargs)
        if data:
            msg = "initiate_device_flow() takes no data=; pass extra fields when polling"
            raise TypeError(msg)
        decorated = decorate_scopes(scopes or [], self._ctx.exclude_scopes)
        options.check_claims("claims_challenge", claims_challenge, wrong_type=TypeError)
        return cast(
            "DeviceFlow",
            await device_code.initiate_device_flow(
                self._ctx,
                decorated,
                correlation_id=new_correlation_id(),
                claims_challenge=claims_challenge,
                options=call,
            ),
        )

    async def acquire_token_by_device_flow(
        self, flow: DeviceFlow | dict[str, Any], claims_challenge: str | None = None, **kwargs: Any
    ) -> TokenResult:
        """Poll until the user signs in with the flow's user code (or it expires).

        Polling waits the server's ``interval`` between requests with ``anyio.sleep``;
        cancel the awaiting task (or scope) to stop it: nothing is written to the cache
        unless a token arrived. msal's ways to stop work too: ``exit_condition=`` or setting
        ``flow["expires_at"] = 0``.

        Args:
            flow: the dict :meth:`initiate_device_flow` returned (updated in place).
            claims_challenge: a claims JSON from a resource's 401.
            exit_condition: ``(flow) -> bool``, or a coroutine function; checked before each
                second of waiting; the default stops when ``flow["expires_at"]`` has passed.
            data: extra form fields for the token request.

        Returns:
            A token dict (``access_token``, ``id_token_claims``...), or the last error dict
            (``authorization_pending`` when stopped early, ``expired_token``,
            ``authorization_declined``...).

        Raises:
            TypeError: ``flow`` is not a dict, or unexpected keyword arguments.
            ValueError: ``flow`` has no ``device_code``, or a bad claims_challenge.
            MsalTransportError: the authority could not be reached.
        """
        self._check_open()
        exit_condition = kwargs.pop("exit_condition", None)
        if exit_condition is not None and not callable(exit_condition):
            msg = f"exit_condition must be a callable (flow) -> bool, got {exit_condition!r}"
            raise TypeError(msg)
        data, call = options.call_arguments("acquire_token_by_device_flow", kwargs)
        options.check_claims("claims_challenge", claims_challenge, wrong_type=TypeError)
        return cast(
            "TokenResult",
            await device_code.acquire_token_by_device_flow(
                self._ctx,
                cast("dict[str, Any]", flow),
                claims_challenge=claims_challenge,
                exit_condition=exit_condition,
                data=data,
                options=call,
            ),
        )

    async def acquire_token_interactive(
        self,
        scopes: Scopes,
        prompt: str | None = None,
        login_hint: str | None = None,
        domain_hint: str | None = None,
        claims_challenge: str | None = None,
        timeout: float | None = None,
        port: int | None = None,
        extra_scopes_to_consent: Scopes | None = None,
        max_age: int | None = None,
        parent_window_handle: Any = None,
        on_before_launching_ui: Callable[..., Any] | None = None,
        auth_scheme: Any = None,
        **kwargs: Any,
    ) -> TokenResult:
        """Sign the user in with the system browser and a loopback redirect on 127.0.0.1.

        The redirect_uri is ``http://localhost:{port}`` (register it in your app); the
        response arrives as a ``form_post``. Cancelling the awaiting task closes the listener
        at once and leaves the cache untouched.

        Args:
            scopes: the scopes to ask for (``openid profile offline_access`` are added).
            prompt: a ``Prompt`` value.
            login_hint: the username to pre-fill.
            domain_hint: ``consumers``, ``organizations`` or a tenant domain.
            claims_challenge: a claims JSON from a resource's 401.
            timeout: seconds to wait for the user; None waits until cancelled.
            port: the loopback port; None or 0 for any free one.
            extra_scopes_to_consent: scopes to consent to now without a token for them.
            max_age: the maximum age in seconds of the user's last authentication.
            parent_window_handle: for a broker only; ignored.
            on_before_launching_ui: called as ``on_before_launching_ui(ui="browser")``.
            auth_scheme: PoP needs a broker: must be None.
            data: extra form fields for the token request.
            welcome_template, success_template, error_template: pages (``string.Template``).
            auth_uri_callback: called with the sign-in URI when no browser could be opened.

        Returns:
            A token dict, or an error dict (an error the authority sent to the browser too).

        Raises:
            BrowserInteractionTimeoutError: no response within ``timeout``.
            ValueError: bad scopes, an ``auth_scheme``, or the port cannot be listened on.
            RuntimeError: the ID token's nonce or ``auth_time`` check failed.
            MsalTransportError: the authority could not be reached.
        """
        self._check_open()
        kwargs.pop("enable_msa_passthrough", None)  # a broker-only setting
        pages = {k: kwargs.pop(k, None) for k in _PAGE_KWARGS}
        auth_uri_callback = kwargs.pop("auth_uri_callback", None)
        data, call = options.call_arguments("acquire_token_interactive", kwargs)
        if auth_scheme is not None:
            msg = "auth_scheme is currently only available from broker, which msal_async lacks"
            raise ValueError(msg)
        decorated = decorate_scopes(scopes, self._ctx.exclude_scopes) if scopes else []
        consent = sorted(set(decorated) | set(extra_scopes_to_consent or []))
        options.check_claims("claims_challenge", claims_challenge, wrong_type=TypeError)
        if on_before_launching_ui is not None:
            on_before_launching_ui(ui="browser")
        async with LoopbackListener(port) as listener:
            flow = await auth_code.initiate_auth_code_flow(
                self._ctx,
                scopes=consent,
                redirect_uri=f"http://localhost:{listener.port}",
                state=None,
                prompt=prompt,
                login_hint=login_hint,
                domain_hint=domain_hint,
                claims_challenge=claims_challenge,
                max_age=max_age,
                response_mode="form_post",
            )
            response = await interactive.wait_for_auth_response(
                listener,
                auth_uri=flow["auth_uri"],
                state=flow["state"],
                timeout=timeout,
                auth_uri_callback=auth_uri_callback,
                **pages,
            )
        if response is None:
            msg = "User did not complete the flow in time"
            raise BrowserInteractionTimeoutError(msg)
        if response.get("error") == "abort" and "state" not in response:
            return cast(
                "TokenResult",
                error_result("abort", "The user aborted the sign-in at the loopback page."),
            )
        return cast(
            "TokenResult",
            await auth_code.redeem_auth_code_flow(
                self._ctx,
                flow,
                response,
                scopes=decorated or None,
                data=data,
                grant=INTERACTIVE,
                options=call,
            ),
        )


_PAGE_KWARGS = ("welcome_template", "success_template", "error_template")
