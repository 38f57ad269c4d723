"""The resource owner password grant (spec 5.7): managed users directly, federated ones
through user realm discovery, MEX, WS-Trust and a SAML bearer grant (RFC 7522).

The password goes into exactly two places, the token request form and the WS-Trust envelope;
neither is ever logged, and no error message quotes either.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from .. import _clock, _json, _log
from .._errors import error_result
from .._oauth2.grants import PASSWORD, SAML_BEARER
from .._oauth2.requests import NO_OPTIONS, CallOptions, TokenRequest
from .._oauth2.responses import INVALID_RESPONSE, SERVER_ERROR
from .._transport import HttpResponse
from .context import AppContext, obtain_token

# WS-Trust (and its XML parser) loads with the first federated sign-in.
if TYPE_CHECKING:
    from .._oauth2 import wstrust

__all__ = ["acquire_token_by_username_password", "user_realm_url"]

logger = logging.getLogger(_log.APPLICATION)

DEFAULT_AUDIENCE = "urn:federation:MicrosoftOnline"


def user_realm_url(token_endpoint: str, username: str) -> str:
    """The user realm discovery URL on the authority's host (spec 3.5).

    msal builds it from the host name alone; the port of the token endpoint is kept here, so
    that an authority on a non-default port (an emulator) is asked, not port 443.

    Args:
        token_endpoint: the authority's token endpoint.
        username: the user.

    Returns:
        ``https://{host}/common/userrealm/{username}?api-version=1.0``.
    """
    netloc = urlsplit(token_endpoint).netloc
    return f"https://{netloc}/common/userrealm/{quote(username, safe='@')}?api-version=1.0"


def _json_object(status: int, text: str, what: str, correlation_id: str) -> dict[str, Any]:
    if status >= 500:
        return error_result(
            SERVER_ERROR, f"The {what} answered HTTP {status}.", correlation_id=correlation_id
        )
    try:
        payload = _json.loads(text)
    except _json.JSONInputError:
        payload = None
    if status >= 400 or not isinstance(payload, dict):
        return error_result(
            INVALID_RESPONSE,
            f"The {what} answered HTTP {status} without a JSON object.",
            correlation_id=correlation_id,
        )
    return payload


async def _user_realm(
    ctx: AppContext, token_endpoint: str, username: str, correlation_id: str
) -> dict[str, Any]:
    response = await ctx.transport.get(
        user_realm_url(token_endpoint, username), headers={"client-request-id": correlation_id}
    )
    if response.status_code == 404:  # no user realm on this host: the managed path
        return {}
    return _json_object(response.status_code, response.text, "user realm endpoint", correlation_id)


async def _wstrust_endpoint(
    ctx: AppContext, realm: Mapping[str, Any], correlation_id: str
) -> wstrust.WsTrustEndpoint | dict[str, Any]:
    from .._oauth2 import wstrust

    mex_url = realm.get("federation_metadata_url")
    fallback = realm.get("federation_active_auth_url") or ""
    if not mex_url:
        return wstrust.WsTrustEndpoint(fallback, wstrust.soap_action_for(fallback, None))
    response = await ctx.transport.get(str(mex_url))
    if response.status_code >= 400:
        return error_result(
            INVALID_RESPONSE,
            f"The federation metadata (MEX) endpoint answered HTTP {response.status_code}.",
            correlation_id=correlation_id,
        )
    try:
        endpoint = wstrust.parse_mex(response.text)
    except ValueError as exc:
        return error_result(
            INVALID_RESPONSE, f"Malformed MEX document: {exc}", correlation_id=correlation_id
        )
    if endpoint is None:
        return error_result(
            INVALID_RESPONSE,
            "Unable to find wstrust endpoint from MEX. This typically happens when attempting "
            "MSA accounts. More details available here. https://github.com/AzureAD/"
            "microsoft-authentication-library-for-python/wiki/Username-Password-Authentication",
            correlation_id=correlation_id,
        )
    return endpoint


async def _saml_assertion(
    ctx: AppContext,
    realm: Mapping[str, Any],
    username: str,
    password: str,
    correlation_id: str,
) -> wstrust.RstrResult | dict[str, Any]:
    from .._oauth2 import wstrust

    endpoint = await _wstrust_endpoint(ctx, realm, correlation_id)
    if isinstance(endpoint, dict):
        return endpoint
    envelope = wstrust.build_rst(
        username=username,
        password=password,
        audience=str(realm.get("cloud_audience_urn") or DEFAULT_AUDIENCE),
        endpoint=endpoint,
        now=datetime.fromtimestamp(_clock.now(), tz=timezone.utc),
    )
    headers = {
        "content-type": "application/soap+xml; charset=utf-8",
        "soapaction": endpoint.action,
        "client-request-id": correlation_id,
    }
    response = await _post_soap(ctx, endpoint.address, envelope, headers)
    parsed = wstrust.parse_rstr(response.text)
    if isinstance(parsed, str):
        logger.info(
            "WS-Trust sign-in failed at %s (HTTP %s)", endpoint.address, response.status_code
        )
        return error_result("invalid_grant", parsed, correlation_id=correlation_id)
    return parsed


async def _post_soap(
    ctx: AppContext, url: str, envelope: str, headers: Mapping[str, str]
) -> HttpResponse:
    return await ctx.transport.post_content(url, content=envelope.encode("utf-8"), headers=headers)


async def _federated_request(
    ctx: AppContext,
    realm: Mapping[str, Any],
    username: str,
    password: str,
    base: dict[str, Any],
    correlation_id: str,
) -> TokenRequest | dict[str, Any]:
    from .._oauth2 import wstrust

    saml = await _saml_assertion(ctx, realm, username, password, correlation_id)
    if isinstance(saml, dict):
        return saml
    grant_type = wstrust.grant_type_for(saml.token_type)
    if grant_type is None:
        return error_result(
            INVALID_RESPONSE,
            f"RSTR returned unknown token type: {saml.token_type}",
            correlation_id=correlation_id,
        )
    request, _ = await ctx.token_request(
        SAML_BEARER,
        grant_type=grant_type,
        fields={"assertion": wstrust.encode_assertion(saml.token)},
        **base,
    )
    return request


async def acquire_token_by_username_password(
    ctx: AppContext,
    username: str,
    password: str,
    scopes: Sequence[str],
    *,
    claims_challenge: str | None = None,
    data: Mapping[str, Any] | None = None,
    options: CallOptions = NO_OPTIONS,
) -> dict[str, Any]:
    """Sign a user in with a password: always a network call, never the cache first.

    Args:
        ctx: the app.
        username: the UPN.
        password: the password.
        scopes: the decorated scopes.
        claims_challenge: a claims JSON; merged with the app's client capabilities.
        data: extra form fields (msal's ``data=``).
        options: per-call transport options.

    Returns:
        A token dict or an error dict (a failed WS-Trust exchange included).

    Raises:
        MsalTransportError: an endpoint could not be reached.
        ValueError: the user realm names an unsupported WS-Trust endpoint.
    """
    telemetry = ctx.telemetry.context(PASSWORD.api_id)
    correlation_id = telemetry.correlation_id
    endpoints = await ctx.endpoints()
    base: dict[str, Any] = {
        "scopes": scopes,
        "data": data,
        "claims_challenge": claims_challenge,
        "options": options,
        "endpoint": endpoints.token_endpoint,
    }
    realm: dict[str, Any] = {}
    if not ctx.authority.is_adfs:
        realm = await _user_realm(ctx, endpoints.token_endpoint, username, correlation_id)
        if "error" in realm:
            return realm
    request: TokenRequest | dict[str, Any]
    if realm.get("account_type") == "Federated":
        request = await _federated_request(ctx, realm, username, password, base, correlation_id)
        if isinstance(request, dict):
            telemetry.record(request)
            return request
    else:
        request, _ = await ctx.token_request(
            PASSWORD,
            fields={"username": username, "password": password},
            headers={"X-AnchorMailbox": f"upn:{username}"},
            **base,
        )
    _, result = await obtain_token(
        ctx,
        request,
        telemetry,
        scopes=scopes,
        data=data,
        options=options,
        event_extra={"username": username},  # the account's name when the IDT has none
    )
    return result
