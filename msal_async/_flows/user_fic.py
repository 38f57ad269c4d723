"""The ``user_fic`` grant (spec 5.8): an agent trades a federated identity credential for a
user-scoped token, naming the user by UPN or object id."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._oauth2.grants import USER_FIC
from .._oauth2.requests import NO_OPTIONS, CallOptions
from .context import AppContext, obtain_token

__all__ = ["acquire_token_by_user_fic"]


async def acquire_token_by_user_fic(
    ctx: AppContext,
    scopes: list[str],
    assertion: str,
    *,
    username: str | None,
    user_object_id: str | None,
    claims_challenge: str | None = None,
    data: Mapping[str, Any] | None = None,
    options: CallOptions = NO_OPTIONS,
) -> dict[str, Any]:
    """Redeem ``assertion`` for a token of the named user (always network, as msal).

    Args:
        ctx: the app's context.
        scopes: the decorated scopes.
        assertion: the federated identity credential (an agent instance token).
        username: the user's UPN (exclusive with ``user_object_id``).
        user_object_id: the user's object id.
        claims_challenge: a claims JSON from a resource's 401.
        data: extra form fields (``client_claims`` merges into ``claims``, never sent).
        options: per-call transport options.

    Returns:
        msal's result dict, or an error dict.

    Raises:
        MsalTransportError: the token endpoint could not be reached.
    """
    fields: dict[str, object] = {"user_federated_identity_credential": assertion}
    if user_object_id:
        fields["user_id"] = str(user_object_id)
        anchor = f"Oid:{user_object_id}@{ctx.authority.tenant}"
    else:
        fields["username"] = username
        anchor = f"upn:{username}"
    request, _ = await ctx.token_request(
        USER_FIC,
        scopes=scopes,
        fields=fields,
        data=data,
        claims_challenge=claims_challenge,
        headers={"X-AnchorMailbox": anchor},
        options=options,
    )
    telemetry = ctx.telemetry.context(USER_FIC.api_id)
    _, result = await obtain_token(
        ctx, request, telemetry, scopes=scopes, data=data, options=options
    )
    return result
