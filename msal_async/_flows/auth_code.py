"""The authorization code flow (spec 5.3, 5.9, 6.1, 6.2): the authorize URL and the redemption."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._oauth2.claims import merge_capabilities
from .._oauth2.grants import AUTHORIZATION_CODE, Grant
from .._oauth2.oidc import (
    build_authorize_url,
    check_id_token,
    new_state,
    nonce_hash,
    pkce_pair,
)
from .._oauth2.requests import NO_OPTIONS, CallOptions
from .._oauth2.user_tokens import anchor_from_client_info
from .context import AppContext, obtain_token

__all__ = [
    "authorization_url",
    "initiate_auth_code_flow",
    "redeem_auth_code_flow",
    "redeem_code",
]


async def authorization_url(ctx: AppContext, params: Mapping[str, Any]) -> str:
    """Append ``client_id``, then ``params`` (None values dropped), to the authorize endpoint.

    Args:
        ctx: the app's context.
        params: the parameters after ``client_id``, in msal's order (spec 5.9).

    Returns:
        The URL.

    Raises:
        ValueError: discovery failed.
    """
    endpoints = await ctx.endpoints()
    return build_authorize_url(
        endpoints.authorization_endpoint, {"client_id": ctx.client_id, **params}
    )


async def initiate_auth_code_flow(
    ctx: AppContext,
    *,
    scopes: list[str],
    redirect_uri: str | None,
    state: str | None,
    prompt: str | None,
    login_hint: str | None,
    domain_hint: str | None,
    claims_challenge: str | None,
    max_age: int | None,
    response_mode: str | None,
) -> dict[str, Any]:
    """Start an auth code flow with PKCE (S256) and a hashed nonce (spec 6.1).

    Returns:
        msal's flow dict: ``auth_uri``, ``state``, ``redirect_uri``, ``scope``,
        ``code_verifier``, ``nonce``, ``claims_challenge`` (and ``max_age`` if given).

    Raises:
        ValueError: see :func:`authorization_url`.
    """
    verifier, challenge = pkce_pair()
    nonce = new_state()
    flow: dict[str, Any] = {
        "state": state or new_state(),
        "redirect_uri": redirect_uri,
        "scope": scopes,
    }
    flow["auth_uri"] = await authorization_url(
        ctx,
        {
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "scope": " ".join(sorted(scopes)),
            "state": flow["state"],
            "response_mode": response_mode,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "nonce": nonce_hash(nonce),
            "client_info": 1,  # CCS routing info (msal)
            "login_hint": login_hint,
            "prompt": prompt,
            "domain_hint": domain_hint,
            "claims": merge_capabilities(ctx.client_capabilities, claims_challenge),
            "max_age": max_age,
            "X-AnchorMailbox": f"UPN:{login_hint}" if login_hint else None,
        },
    )
    flow["code_verifier"] = verifier
    flow["nonce"] = nonce
    if max_age is not None:
        flow["max_age"] = max_age
    flow["claims_challenge"] = claims_challenge
    return flow


async def redeem_code(
    ctx: AppContext,
    *,
    code: str,
    scopes: list[str],
    redirect_uri: str | None,
    claims_challenge: str | None,
    data: Mapping[str, Any],
    code_verifier: str | None = None,
    headers: Mapping[str, str] | None = None,
    nonce: str | None = None,
    max_age: int | None = None,
    grant: Grant = AUTHORIZATION_CODE,
    hashed_nonce: bool = True,
    options: CallOptions = NO_OPTIONS,
) -> dict[str, Any]:
    """POST the ``authorization_code`` grant and store the tokens (spec 5.3).

    The ID token checks (nonce, ``max_age``) run before anything is cached; msal caches first
    and raises afterwards.

    Returns:
        msal's result dict, or an error dict.

    Raises:
        RuntimeError: nonce or ``max_age`` check failed (``hashed_nonce`` True: the flow API).
        ValueError: nonce mismatch in the legacy API (``hashed_nonce`` False, as msal).
        MsalTransportError: the authority could not be reached.
    """
    request, _ = await ctx.token_request(
        grant,
        scopes=scopes,
        fields={"code": code, "redirect_uri": redirect_uri, "code_verifier": code_verifier},
        data=data,
        claims_challenge=claims_challenge,
        headers=headers,
        options=options,
    )
    telemetry = ctx.telemetry.context(grant.api_id, refresh_reason=grant.refresh_reason)

    def check(claims: dict[str, Any], now: float) -> None:
        if hashed_nonce:
            check_id_token(claims, nonce=nonce, max_age=max_age, now=now)
        elif nonce and claims.get("nonce") != nonce:
            msg = "The nonce in the id token does not match the nonce you provided"
            raise ValueError(msg)

    _, result = await obtain_token(
        ctx, request, telemetry, scopes=scopes, data=data, options=options, check_id_token=check
    )
    return result


async def redeem_auth_code_flow(
    ctx: AppContext,
    flow: dict[str, Any],
    auth_response: Mapping[str, Any],
    *,
    scopes: list[str] | None,
    data: Mapping[str, Any],
    grant: Grant = AUTHORIZATION_CODE,
    options: CallOptions = NO_OPTIONS,
) -> dict[str, Any]:
    """Check the auth response against the flow, then redeem its code (spec 6.2).

    Returns:
        msal's result dict; an auth response with ``error`` comes back as
        ``{error, error_description?, error_uri?}``.

    Raises:
        ValueError: missing or mismatched ``state``, scopes outside the flow's, or an auth
            response with neither ``code`` nor ``error``.
        RuntimeError: the ID token's nonce or ``auth_time`` check failed.
    """
    if not flow.get("state"):
        msg = "state missing from auth_code_flow"
        raise ValueError(msg)
    if flow.get("state") != auth_response.get("state"):
        msg = "state mismatch: the auth response does not belong to this auth_code_flow"
        raise ValueError(msg)
    if scopes and set(scopes) - set(flow.get("scope") or []):
        msg = f"scope must be None or a subset of {flow.get('scope')}"
        raise ValueError(msg)
    claims_challenge = flow.pop("claims_challenge", None)
    if auth_response.get("code"):
        anchor = anchor_from_client_info(auth_response.get("client_info"))
        return await redeem_code(
            ctx,
            code=str(auth_response["code"]),
            scopes=list(scopes or flow.get("scope") or []),
            redirect_uri=flow.get("redirect_uri"),
            claims_challenge=claims_challenge,
            data=data,
            code_verifier=flow["code_verifier"],
            headers={"X-AnchorMailbox": anchor} if anchor else None,
            nonce=flow.get("nonce"),
            max_age=flow.get("max_age"),
            grant=grant,
            options=options,
        )
    if auth_response.get("error"):
        error = {"error": auth_response["error"]}
        for name in ("error_description", "error_uri"):
            if auth_response.get(name):
                error[name] = auth_response[name]
        # A failed request in the next request's x-client-last-telemetry, as msal reports it.
        ctx.telemetry.context(grant.api_id, refresh_reason=grant.refresh_reason).record(error)
        return error
    msg = 'auth_response must contain either "code" or "error"'
    raise ValueError(msg)
