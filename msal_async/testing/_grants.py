"""Grant handlers: one coroutine per ``grant_type``, looked up in ``emulator.grants``.

A handler receives a :class:`TokenRequest` (the form, the resolved tenant, the authenticated
client, the emulator for issuing tokens) and returns the JSON body of a successful answer, or
raises :class:`EntraError` for an Entra-shaped error. Client authentication (secret, HTTP Basic,
client assertion) has already happened; a grant that needs a confidential client calls
:meth:`TokenRequest.require_client_credential`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._clients import ClientIdentity, credential_required
from ._entra import EntraError
from ._http import RecordedRequest

if TYPE_CHECKING:
    from ._emulator import AuthorityEmulator

__all__ = ["DEFAULT_GRANTS", "GrantHandler", "TokenRequest", "client_credentials"]


@dataclass(frozen=True)
class TokenRequest:
    """A token request as a grant handler sees it.

    Attributes:
        emulator: the emulator, to issue tokens (``issue_access_token``, ``issue_id_token``,
            ``token_response``) and to keep per-grant state.
        http: the recorded HTTP request.
        base_url: ``scheme://host[:port]`` the request reached.
        tenant: the tenant path segment as sent (``"contoso.onmicrosoft.com"``, ``"common"``).
        tenant_id: the tenant GUID it resolves to (the emulator's tenant for ``common``,
            ``organizations`` and domains).
        grant_type: the ``grant_type`` field.
        client: the calling application and how it authenticated.
        correlation_id: the ``client-request-id`` header, or None.
        now: seconds since the epoch, from the emulator's clock.
    """

    emulator: AuthorityEmulator
    http: RecordedRequest
    base_url: str
    tenant: str
    tenant_id: str
    grant_type: str
    client: ClientIdentity
    correlation_id: str | None
    now: int

    @property
    def form(self) -> dict[str, str]:
        """The form fields of the request body.

        Returns:
            The fields.
        """
        return self.http.form

    @property
    def scopes(self) -> list[str]:
        """The ``scope`` field split on spaces.

        Returns:
            The scopes, in the order sent.
        """
        return self.form.get("scope", "").split()

    def require(self, name: str) -> str:
        """Read a required form field.

        Args:
            name: the field.

        Returns:
            Its value.

        Raises:
            EntraError: 400 ``invalid_request`` AADSTS900144 when the field is missing or empty.
        """
        value = self.form.get(name)
        if not value:
            raise EntraError(
                900144,
                "invalid_request",
                f"The request body must contain the following parameter: '{name}'.",
            )
        return value

    def require_client_credential(self) -> None:
        """Demand that the caller authenticated with a secret or an assertion.

        Raises:
            EntraError: 401 ``invalid_client`` AADSTS7000218 otherwise.
        """
        if not self.client.authenticated:
            raise credential_required(self.client.client_id)

    def requested_claims(self) -> dict[str, Any]:
        """Parse the ``claims`` field (OIDC Core section 5.5), if any.

        Returns:
            The claims request; empty when absent.

        Raises:
            EntraError: 400 ``invalid_request`` AADSTS90100 when it is not a JSON object.
        """
        raw = self.form.get("claims")
        if not raw:
            return {}
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise EntraError(
                90100, "invalid_request", "The 'claims' parameter is empty or not valid."
            )
        return parsed

    def client_capabilities(self) -> list[str]:
        """The ``xms_cc`` values the client declared through ``claims`` (msal's
        ``client_capabilities``).

        Returns:
            The capabilities, for example ``["cp1"]``; empty when none.
        """
        access_token = self.requested_claims().get("access_token")
        if not isinstance(access_token, Mapping):
            return []
        xms_cc = access_token.get("xms_cc")
        values = xms_cc.get("values") if isinstance(xms_cc, Mapping) else None
        return [str(value) for value in values] if isinstance(values, list) else []


#: A grant handler: the request in, the successful JSON body out (raise EntraError to fail).
GrantHandler = Callable[[TokenRequest], Awaitable[Mapping[str, Any]]]


def _resource_of(scopes: list[str]) -> str:
    """The resource of a client-credentials scope (``api://x/.default`` -> ``api://x``)."""
    if not scopes:
        raise EntraError(
            900144,
            "invalid_request",
            "The request body must contain the following parameter: 'scope'.",
        )
    if len(scopes) > 1:
        raise EntraError(
            70011,
            "invalid_scope",
            f"The provided request must include a 'scope' input parameter. The provided value "
            f"for the input parameter 'scope' is not valid. The scope {' '.join(scopes)} is not "
            "valid. Client credential flows ask for exactly one resource's '/.default' scope.",
        )
    scope = scopes[0]
    if not scope.endswith("/.default") or scope == "/.default":
        raise EntraError(
            1002012,
            "invalid_scope",
            f"The provided value for scope {scope} is not valid. Client credential flows must "
            "have a scope value with /.default suffixed to the resource identifier "
            "(application ID URI).",
        )
    return scope[: -len("/.default")]


async def client_credentials(request: TokenRequest) -> Mapping[str, Any]:
    """``grant_type=client_credentials`` (RFC 6749 section 4.4): an app-only access token.

    Args:
        request: the token request; the client must have authenticated.

    Returns:
        ``token_type``, ``expires_in``, ``ext_expires_in``, ``access_token`` (and
        ``refresh_in`` when the emulator is configured with one).

    Raises:
        EntraError: no credential (401), a missing or non-``/.default`` scope (400).
    """
    request.require_client_credential()
    audience = _resource_of(request.scopes)
    token = request.emulator.issue_access_token(
        audience=audience,
        client_id=request.client.client_id,
        tenant_id=request.tenant_id,
        roles=request.client.client.roles,
        app_auth_method=request.client.method,
        client_capabilities=request.client_capabilities(),
    )
    return request.emulator.token_response(token)


#: The grants every new emulator starts with.
DEFAULT_GRANTS: Mapping[str, GrantHandler] = {"client_credentials": client_credentials}
