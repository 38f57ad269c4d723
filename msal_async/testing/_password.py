"""Username/password sign-in at the emulator: user realm discovery, the password grant
(managed users) and the SAML bearer grants (federated users, after WS-Trust).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from ._entra import EntraError
from ._http import HttpResponse, RouteContext
from ._signin import UserDirectory, tracked_token_response

if TYPE_CHECKING:
    from ._grants import GrantHandler, TokenRequest

__all__ = [
    "PASSWORD_GRANTS",
    "SAML1_1_GRANT",
    "SAML2_GRANT",
    "password_grant",
    "saml_bearer_grant",
    "user_realm_endpoint",
]

SAML1_1_GRANT = "urn:ietf:params:oauth:grant-type:saml1_1-bearer"
SAML2_GRANT = "urn:ietf:params:oauth:grant-type:saml2-bearer"
#: Where the federation server (``FederationServer``) answers, relative to the base URL.
MEX_PATH = "/adfs/services/trust/mex"
ACTIVE_AUTH_PATH = "/adfs/services/trust/2005/usernamemixed"
CLOUD_AUDIENCE_URN = "urn:federation:MicrosoftOnline"


def _bad_credentials() -> EntraError:
    return EntraError(
        50126,
        "invalid_grant",
        "Error validating credentials due to invalid username or password.",
    )


async def user_realm_endpoint(emulator: Any, context: RouteContext) -> HttpResponse:
    """``GET /common/userrealm/{username}?api-version=1.0``: managed or federated.

    Args:
        emulator: the emulator.
        context: the request.

    Returns:
        Entra's user realm document; a federated domain points at the federation server
        on the same host (``/adfs/services/trust/...``).

    Raises:
        EntraError: a missing ``api-version``.
    """
    if not context.http.query.get("api-version"):
        raise EntraError(90014, "invalid_request", "The required field 'api-version' is missing.")
    username = unquote(context.http.path.rsplit("/", 1)[-1])
    domain = username.rpartition("@")[2].lower()
    directory: UserDirectory = emulator.password_users
    body: dict[str, Any] = {"ver": "1.0", "cloud_instance_name": "microsoftonline.com"}
    if directory.is_federated_domain(domain):
        body.update(
            account_type="Federated",
            domain_name=domain,
            federation_protocol="WSTrust",
            federation_metadata_url=f"{context.base_url}{MEX_PATH}",
            federation_active_auth_url=f"{context.base_url}{ACTIVE_AUTH_PATH}",
            cloud_audience_urn=CLOUD_AUDIENCE_URN,
        )
    elif directory.knows_domain(domain) or domain == emulator.tenant_domain:
        body.update(
            account_type="Managed", domain_name=domain, cloud_audience_urn=CLOUD_AUDIENCE_URN
        )
    else:
        body["account_type"] = "Unknown"
    return HttpResponse.json(body)


async def password_grant(request: TokenRequest) -> Mapping[str, Any]:
    """``grant_type=password`` (RFC 6749 section 4.3) for a managed user.

    Args:
        request: the token request.

    Returns:
        The user's tokens.

    Raises:
        EntraError: 400 ``invalid_grant`` AADSTS50126 for an unknown user, a wrong password
            or a federated user (whose password only the federation server knows).
    """
    username = request.require("username")
    password = request.require("password")
    emulator: Any = request.emulator
    directory: UserDirectory = emulator.password_users
    user = directory.get(username)
    if user is None or user.federated or user.password is None or user.password != password:
        raise _bad_credentials()
    return tracked_token_response(request, user, request.scopes)


def _decode_assertion(value: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise EntraError(
            50107, "invalid_grant", "The SAML assertion is not base64url encoded."
        ) from None


async def saml_bearer_grant(request: TokenRequest) -> Mapping[str, Any]:
    """The SAML 1.1 and 2.0 bearer grants (RFC 7522) for a federated user.

    The assertion must be byte for byte one the federation server issued (a real one is
    signed, so re-serialized XML would be rejected too).

    Args:
        request: the token request.

    Returns:
        The user's tokens.

    Raises:
        EntraError: 400 ``invalid_grant`` for an unknown, altered or expired assertion.
    """
    raw = _decode_assertion(request.require("assertion"))
    emulator: Any = request.emulator
    directory: UserDirectory = emulator.password_users
    username = directory.redeem_assertion(raw, request.now)
    user = directory.get(username) if username else None
    if user is None:
        raise EntraError(
            50008,
            "invalid_grant",
            "SAML token is invalid: it was not issued by the federation server, was altered "
            "or has expired.",
        )
    return tracked_token_response(request, user, request.scopes)


#: The grants this module adds to every emulator.
PASSWORD_GRANTS: Mapping[str, GrantHandler] = {
    "password": password_grant,
    SAML1_1_GRANT: saml_bearer_grant,
    SAML2_GRANT: saml_bearer_grant,
}
