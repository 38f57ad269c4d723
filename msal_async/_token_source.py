"""What a token for an integration means for each kind of app (Azure SDK credential, httpx auth).

An integration is handed an app and maybe a user account, and asks for "a token for these
scopes" (with a claims challenge after a resource's 401). Which msal method answers depends on
the app: a confidential app acquires its client token, a managed identity its token for the
scope's resource, and a public app (or any app given an account) a token of that account,
silently from its cache. The rule lives here once; the integrations only adapt the result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from ._apps.base import ClientApplication
from ._managed_identity.client import ManagedIdentityClient

__all__ = [
    "SourceApp",
    "acquire",
    "check_source",
    "describe_error",
    "error_parts",
    "resource_of",
]

SourceApp = ClientApplication | ManagedIdentityClient

_DEFAULT_SUFFIX = "/.default"


def check_source(owner: str, app: object, account: object) -> dict[str, Any] | None:
    """Validate an integration's ``app`` and ``account`` arguments.

    Args:
        owner: the integration's name, for messages (``"AzureCredential"``).
        app: the application.
        account: None, or an account dict from ``await app.get_accounts()``.

    Returns:
        A copy of the account, or None.

    Raises:
        TypeError: ``app`` is not an msal_async app, or ``account`` is not an account dict.
        ValueError: an account was given with a managed identity.
    """
    if not isinstance(app, ClientApplication | ManagedIdentityClient):
        msg = (
            f"{owner}(app=...) takes a msal_async ConfidentialClientApplication, "
            f"PublicClientApplication or ManagedIdentityClient, got {type(app).__name__}"
        )
        raise TypeError(msg)
    if account is None:
        return None
    if isinstance(app, ManagedIdentityClient):
        msg = f"{owner}(account=...) does not apply to a ManagedIdentityClient: it has no users"
        raise ValueError(msg)  # noqa: TRY004 (the app is fine; the account is the wrong value)
    if not isinstance(account, Mapping) or not account.get("home_account_id"):
        msg = (
            f"{owner}(account=...) takes an account dict from `await app.get_accounts()`, "
            f"got {type(account).__name__}"
        )
        raise TypeError(msg)
    return dict(account)


def resource_of(scopes: Sequence[str]) -> str:
    """The managed-identity resource of a scope list (``https://vault.azure.net/.default``).

    Args:
        scopes: exactly one scope.

    Returns:
        The scope without its ``/.default`` suffix.

    Raises:
        ValueError: not exactly one scope.
    """
    if len(scopes) != 1:
        msg = (
            "a managed identity takes exactly one scope (a resource with '/.default'), "
            f"got {len(scopes)}"
        )
        raise ValueError(msg)
    scope = scopes[0]
    return scope.removesuffix(_DEFAULT_SUFFIX)


async def acquire(
    app: SourceApp,
    scopes: Sequence[str],
    *,
    account: Mapping[str, Any] | None,
    claims: str | None = None,
) -> dict[str, Any]:
    """Acquire the token ``app`` (and ``account``) stands for.

    Args:
        app: the application.
        scopes: the scopes (for a managed identity, one scope naming the resource).
        account: a user account to act for; None for the app itself (a public app then
            uses its only signed-in account).
        claims: a claims challenge from a resource's 401 (JSON): bypasses the cache.

    Returns:
        msal's token result, or an error dict (``interaction_required`` when no account
        is signed in or its tokens cannot be refreshed silently).

    Raises:
        ValueError: bad scopes or claims.
        MsalTransportError: the authority could not be reached.
    """
    if isinstance(app, ManagedIdentityClient):
        mi_result = await app.acquire_token_for_client(
            resource=resource_of(scopes), claims_challenge=claims
        )
        return cast("dict[str, Any]", mi_result)
    scope_list = list(scopes)
    if account is None:
        acquire_for_client = getattr(app, "acquire_token_for_client", None)
        if acquire_for_client is not None:
            result: dict[str, Any] = await acquire_for_client(scope_list, claims_challenge=claims)
            return result
        accounts = await app.get_accounts()
        if len(accounts) != 1:
            return _no_single_account(len(accounts))
        account = accounts[0]
    found = await app.acquire_token_silent_with_error(
        scope_list, dict(account), claims_challenge=claims
    )
    if found is None:
        return {
            "error": "interaction_required",
            "error_description": (
                "No token for this account is in the cache: sign the user in again "
                "(for example with the device code flow)"
            ),
        }
    return cast("dict[str, Any]", found)


def _no_single_account(count: int) -> dict[str, Any]:
    if count == 0:
        description = (
            "No account is signed in to this PublicClientApplication: sign a user in first "
            "(for example with the device code flow)"
        )
    else:
        description = (
            f"{count} accounts are signed in to this PublicClientApplication: pass the one "
            "to use as account= (from `await app.get_accounts()`)"
        )
    return {"error": "interaction_required", "error_description": description}


def error_parts(result: Mapping[str, Any]) -> tuple[str, str]:
    """The error code and a description (with the correlation id) of an msal error dict.

    Args:
        result: the error dict (it never holds a token).

    Returns:
        ``(error, description)``.
    """
    description = str(result.get("error_description") or "no description")
    correlation_id = result.get("correlation_id")
    if correlation_id:
        description += f" (correlation_id {correlation_id})"
    return str(result.get("error")), description


def describe_error(result: Mapping[str, Any]) -> str:
    """One line for an msal error dict: ``error: description (correlation_id ...)``.

    Args:
        result: the error dict.

    Returns:
        The text.
    """
    return ": ".join(error_parts(result))
