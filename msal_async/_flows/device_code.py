"""The device authorization grant (RFC 8628; spec 5.5): initiate, then poll until done.

Polling sleeps with ``anyio.sleep`` at the server's ``interval`` (``slow_down`` adds 5 s, as
RFC 8628 section 3.5 asks), so a caller cancels it like any other await: nothing is committed
to the cache unless a token response arrived, and the commit itself never awaits.
"""

from __future__ import annotations

import inspect
import logging
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import anyio

from .. import _clock, _log
from .._errors import error_result
from .._oauth2.claims import merge_capabilities
from .._oauth2.grants import DEVICE_CODE
from .._oauth2.requests import NO_OPTIONS, CallOptions
from .._oauth2.responses import INVALID_RESPONSE, parse_token_response
from .._oauth2.scopes import join_scopes
from .._telemetry import TelemetryContext
from .context import AppContext, obtain_token

__all__ = [
    "CORRELATION_ID_KEY",
    "acquire_token_by_device_flow",
    "initiate_device_flow",
    "normalize_device_flow",
]

logger = logging.getLogger(_log.APPLICATION)

#: msal's ``PublicClientApplication.DEVICE_FLOW_CORRELATION_ID``.
CORRELATION_ID_KEY = "_correlation_id"
#: Where the flow keeps the scopes it asked for (the cache entry's target).
SCOPE_KEY = "_scope"
#: RFC 8628 section 3.2 defaults, which msal applies too.
DEFAULT_INTERVAL = 5
DEFAULT_EXPIRES_IN = 1800
#: RFC 8628 section 3.5: slow_down adds 5 seconds to the interval.
SLOW_DOWN_STEP = 5
_RETRIABLE = frozenset({"authorization_pending", "slow_down"})

ExitCondition = Callable[[dict[str, Any]], Any]


class _PollTelemetry(TelemetryContext):
    """msal records a device flow's outcome once, at the end: not every pending poll."""

    def record(self, result: dict[str, Any]) -> None:
        if result.get("error") not in _RETRIABLE:
            super().record(result)

    def record_final(self, result: dict[str, Any]) -> None:
        super().record(result)


def _int_field(payload: Mapping[str, Any], name: str, default: int) -> int:
    value = payload.get(name, default)
    if isinstance(value, bool):
        raise TypeError(name)
    number = int(value)  # some providers send strings ("5"); msal int()s them too
    if number < 0:
        raise ValueError(name)
    return number


def normalize_device_flow(payload: dict[str, Any], *, now: float) -> dict[str, Any]:
    """Complete a device authorization response as msal does (and where msal does not).

    ``interval`` (default 5) and ``expires_in`` (default 1800) become ints, ``expires_at`` is
    ``now + expires_in``; a response without ``message`` (generic OpenID providers: RFC 8628
    does not define one) gets one built from ``verification_uri`` and ``user_code``.

    Args:
        payload: the parsed JSON object of a successful response.
        now: seconds since the epoch.

    Returns:
        The flow dict (``payload`` itself, completed).

    Raises:
        ValueError: ``interval`` or ``expires_in`` is not a non-negative integer.
        TypeError: the same, for a boolean.
    """
    payload["interval"] = _int_field(payload, "interval", DEFAULT_INTERVAL)
    payload["expires_in"] = _int_field(payload, "expires_in", DEFAULT_EXPIRES_IN)
    payload["expires_at"] = now + payload["expires_in"]
    if not payload.get("message"):
        uri = payload.get("verification_uri") or payload.get("verification_url")
        if uri and payload.get("user_code"):
            payload["message"] = (
                f"To sign in, use a web browser to open the page {uri} "
                f"and enter the code {payload['user_code']} to authenticate."
            )
    return payload


async def initiate_device_flow(
    ctx: AppContext,
    scopes: Sequence[str],
    *,
    correlation_id: str,
    claims_challenge: str | None = None,
    options: CallOptions = NO_OPTIONS,
) -> dict[str, Any]:
    """POST the device authorization request (spec 5.5).

    Args:
        ctx: the app.
        scopes: the decorated scopes.
        correlation_id: the ``client-request-id``, reused by every poll.
        claims_challenge: a claims JSON; merged with the app's client capabilities.
        options: per-call transport options.

    Returns:
        The flow: the server's answer plus ``interval``, ``expires_in``, ``expires_at`` and
        ``_correlation_id``; or an error dict.

    Raises:
        ValueError: the authority advertises no device authorization endpoint.
        MsalTransportError: the endpoint could not be reached.
    """
    endpoints = await ctx.endpoints()
    url = endpoints.device_authorization_endpoint
    if not url:
        msg = (
            "You need to provide device authorization endpoint: the authority's OpenID "
            "configuration has no device_authorization_endpoint"
        )
        raise ValueError(msg)
    form = {"client_id": ctx.client_id, "scope": join_scopes(scopes)}
    claims = merge_capabilities(ctx.client_capabilities, claims_challenge)
    if claims:
        form["claims"] = claims
    # msal sends its default headers and the correlation id here, but no Accept (so the
    # HTTP library's "*/*") and no telemetry headers (spec 5.5, probed).
    headers = {k.lower(): v for k, v in options.headers.items()}
    headers.update({"client-request-id": correlation_id, "accept": "*/*"})
    response = await ctx.transport.post(
        url,
        data=form,
        params=dict(options.params) or None,
        headers=headers,
        timeout=options.timeout,
    )
    payload = parse_token_response(
        response.status_code,
        response.text,
        content_type=response.headers.get("content-type", ""),
        too_large=response.too_large,
        correlation_id=correlation_id,
        require_access_token=False,
    )
    if "error" in payload:
        return payload
    if not payload.get("device_code"):
        return error_result(
            INVALID_RESPONSE,
            "The device authorization response has no device_code.",
            correlation_id=correlation_id,
        )
    try:
        flow = normalize_device_flow(payload, now=_clock.now())
    except (TypeError, ValueError) as exc:
        return error_result(
            INVALID_RESPONSE,
            f"The device authorization response has a malformed {exc}.",
            correlation_id=correlation_id,
        )
    flow[SCOPE_KEY] = list(scopes)
    flow[CORRELATION_ID_KEY] = correlation_id
    return flow


async def _should_exit(exit_condition: ExitCondition, flow: dict[str, Any]) -> bool:
    verdict = exit_condition(flow)
    if inspect.isawaitable(verdict):
        verdict = await verdict
    return bool(verdict)


async def _wait(flow: dict[str, Any], exit_condition: ExitCondition) -> bool:
    """Sleep ``flow["interval"]`` seconds in ticks of at most 1 s; True to stop polling."""
    remaining = float(flow.get("interval", DEFAULT_INTERVAL))
    while True:
        if await _should_exit(exit_condition, flow):
            return True
        if remaining <= 0:
            return False
        step = min(1.0, remaining)  # short ticks, so that exit_condition is seen quickly
        await anyio.sleep(step)
        remaining -= step


def _check_flow(flow: object) -> dict[str, Any]:
    if not isinstance(flow, dict):
        msg = f"flow must be the dict initiate_device_flow() returned, got {type(flow).__name__}"
        raise TypeError(msg)
    if not flow.get("device_code"):
        msg = (
            "flow has no device_code: pass the dict initiate_device_flow() returned, after "
            "checking that it has a user_code (an error dict cannot be polled)"
        )
        raise ValueError(msg)
    return flow


async def acquire_token_by_device_flow(
    ctx: AppContext,
    flow: dict[str, Any],
    *,
    claims_challenge: str | None = None,
    exit_condition: ExitCondition | None = None,
    data: Mapping[str, Any] | None = None,
    options: CallOptions = NO_OPTIONS,
) -> dict[str, Any]:
    """Poll the token endpoint until the user finishes, declines, or the flow expires.

    ``flow`` is updated in place as msal does (``interval`` after ``slow_down``,
    ``latest_attempt_at``). Cancelling the awaiting task stops the polling at once.

    Args:
        ctx: the app.
        flow: what :func:`initiate_device_flow` returned.
        claims_challenge: a claims JSON; merged with the app's client capabilities.
        exit_condition: ``(flow) -> bool`` (or an awaitable of it), asked before each tick of
            the wait; the default stops once ``flow["expires_at"]`` has passed.
        data: extra form fields (msal's ``data=``).
        options: per-call transport options.

    Returns:
        msal's result: a token dict, or the last error dict (``authorization_pending`` when
        stopped by ``exit_condition``, ``expired_token``, ``authorization_declined``...).

    Raises:
        TypeError: ``flow`` is not a dict.
        ValueError: ``flow`` has no ``device_code``.
        MsalTransportError: the token endpoint could not be reached.
    """
    flow = _check_flow(flow)
    if exit_condition is None:

        def exit_condition(flow: dict[str, Any]) -> bool:
            return float(flow.get("expires_at", 0)) < _clock.now()

    # msal sends the legacy "code" twin of device_code as well (spec 5.5, quirk 15.8).
    request, _ = await ctx.token_request(
        DEVICE_CODE,
        scopes=None,
        fields={"code": flow["device_code"], "device_code": flow["device_code"]},
        data=data,
        claims_challenge=claims_challenge,
        options=options,
    )
    scopes = list(flow.get(SCOPE_KEY) or [])
    correlation_id = flow.get(CORRELATION_ID_KEY)
    while True:
        now = _clock.now()
        interval = float(flow.get("interval", DEFAULT_INTERVAL))
        if float(flow.get("latest_attempt_at", -math.inf)) + interval - 1 > now:
            warnings.warn(
                'Attempted too soon. Please do time.sleep(flow["interval"])', stacklevel=2
            )
        base_telemetry = ctx.telemetry.context(DEVICE_CODE.api_id, correlation_id=correlation_id)
        telemetry = _PollTelemetry(
            ctx.telemetry,
            DEVICE_CODE.api_id,
            base_telemetry.refresh_reason,
            base_telemetry.correlation_id,
        )
        raw, result = await obtain_token(
            ctx, request, telemetry, scopes=scopes, data=data, options=options
        )
        if raw.get("error") == "slow_down":
            flow["interval"] = int(flow.get("interval", DEFAULT_INTERVAL)) + SLOW_DOWN_STEP
        flow["latest_attempt_at"] = now
        if "error" not in raw:
            return result
        if raw["error"] not in _RETRIABLE:
            return result
        if await _wait(flow, exit_condition):
            telemetry.record_final(raw)
            return result
