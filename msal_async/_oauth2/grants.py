"""The grant registry: each grant's wire name, telemetry id and own form fields, declared once.

A flow names its grant; ``AppContext.token_request`` builds every token request from it, so the
rules about which fields a caller's ``data=`` may not override live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._telemetry import FORCE_REFRESH, NON_SILENT

__all__ = [
    "AUTHORIZATION_CODE",
    "CLIENT_CREDENTIALS",
    "DEVICE_CODE",
    "INTERACTIVE",
    "JWT_BEARER",
    "ON_BEHALF_OF",
    "PASSWORD",
    "REFRESH_TOKEN",
    "SAML_BEARER",
    "SILENT_REFRESH",
    "USER_FIC",
    "Grant",
]

#: RFC 7523 section 2.1: the grant type of an assertion that is a JWT (on-behalf-of).
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: RFC 8628 section 3.4.
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@dataclass(frozen=True)
class Grant:
    """One token grant.

    Attributes:
        grant_type: the ``grant_type`` form value (None: chosen per request, as the SAML
            version of a federated password sign-in).
        api_id: msal's telemetry API id of the method that uses it.
        own_fields: the form fields the grant itself sets; ``data=`` cannot override them (nor
            ``client_id``, ``grant_type``, ``scope``, ``claims`` and the credential's fields).
        refresh_reason: msal's telemetry refresh reason when the flow does not say otherwise.
    """

    grant_type: str | None
    api_id: str
    own_fields: tuple[str, ...] = ()
    refresh_reason: int = NON_SILENT


CLIENT_CREDENTIALS = Grant("client_credentials", "730")
ON_BEHALF_OF = Grant(JWT_BEARER, "523", ("assertion", "requested_token_use"))
USER_FIC = Grant("user_fic", "950", ("user_federated_identity_credential", "user_id", "username"))
AUTHORIZATION_CODE = Grant("authorization_code", "832", ("code", "redirect_uri", "code_verifier"))
INTERACTIVE = Grant("authorization_code", "169", ("code", "redirect_uri", "code_verifier"))
DEVICE_CODE = Grant(DEVICE_CODE_GRANT, "622", ("code", "device_code"))
PASSWORD = Grant("password", "301", ("username", "password"))
#: The federated password sign-in's second leg; its grant type follows the SAML version.
SAML_BEARER = Grant(None, "301", ("assertion",))
#: acquire_token_silent's refresh (its reason comes from the cache lookup).
SILENT_REFRESH = Grant("refresh_token", "84", ("refresh_token",))
#: acquire_token_by_refresh_token (a migration: always a forced refresh, as msal reports it).
REFRESH_TOKEN = Grant("refresh_token", "85", ("refresh_token",), FORCE_REFRESH)
