"""get_accounts (spec 7.6) and remove_account (spec 7.9) over the token cache."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from .. import _log
from .._cache.schema import AuthorityType, CredentialType
from .context import AppContext

__all__ = ["find_accounts", "get_accounts", "remove_account"]

logger = logging.getLogger(_log.APPLICATION)

_ACCOUNT_FIELDS = (
    "home_account_id",
    "environment",
    "username",
    "account_source",
    "authority_type",
    "local_account_id",
    "realm",
)
_INTERESTING = frozenset((AuthorityType.ADFS, AuthorityType.MSSTS))


def find_accounts(
    ctx: AppContext, environment: str, username: str | None = None
) -> list[dict[str, Any]]:
    """The accounts of one environment, one per ``home_account_id`` (the last one wins).

    With ``username``, only the home accounts that have an Account entry with that username
    (any case) are grouped, through the cache's username index: the cost follows the matches,
    not the number of signed-in accounts.

    Args:
        ctx: the app's context.
        environment: the authority host.
        username: keep only this username (case-insensitive).

    Returns:
        msal's account dicts.
    """
    if username is None:
        entries = list(ctx.cache.search(CredentialType.ACCOUNT, query={"environment": environment}))
    else:
        entries = ctx.cache.accounts_for_username(environment, username, whole_accounts=True)
    grouped: dict[Any, dict[str, Any]] = {}
    for entry in entries:
        if entry.get("authority_type") in _INTERESTING:
            grouped[entry.get("home_account_id")] = {f: entry.get(f) for f in _ACCOUNT_FIELDS}
    accounts = list(grouped.values())
    if username is not None:
        wanted = username.lower()
        accounts = [a for a in accounts if (a.get("username") or "").lower() == wanted]
    return accounts


async def get_accounts(ctx: AppContext, username: str | None = None) -> list[dict[str, Any]]:
    """Accounts signed in at the app's authority, or at its first alias that has some.

    Args:
        ctx: the app's context.
        username: keep only this username (case-insensitive).

    Returns:
        msal's account dicts.

    Raises:
        MsalServiceError: the alias lookup (needed only when no account is found) failed.
        MsalTransportError: the alias lookup could not be sent.
    """
    await ctx.cache_before_lookup(realm=ctx.authority.tenant)
    wanted = username or None
    accounts = find_accounts(ctx, ctx.authority.instance, wanted)
    if not accounts and (wanted is None or not find_accounts(ctx, ctx.authority.instance)):
        # msal tries the aliases only when the instance has no accounts at all
        for alias in await ctx.discovery.aliases(ctx.authority.instance, authority=ctx.authority):
            if find_accounts(ctx, alias):
                accounts = find_accounts(ctx, alias, wanted)
                break
    if username and not accounts:
        logger.debug(
            "get_accounts(username=...) found no account; tokens acquired without the "
            "'profile' scope carry no username, consider get_accounts(username=None)"
        )
    return accounts


def remove_account(ctx: AppContext, account: Mapping[str, Any]) -> None:
    """Sign the account out of this app and forget it (spec 7.9).

    Removes this app's (and its family's) RTs, then every AT, IdToken and Account entry of the
    home account in that environment, for any client and realm.

    Args:
        ctx: the app's context.
        account: an account dict from :func:`get_accounts`.
    """
    owned = {
        "environment": account["environment"],
        "home_account_id": account["home_account_id"],
    }
    family = None
    for metadata in ctx.cache.search(
        CredentialType.APP_METADATA,
        query={"environment": account["environment"], "client_id": ctx.client_id},
    ):
        family = metadata.get("family_id")
        break
    cache = ctx.cache
    for rt in list(cache.search(CredentialType.REFRESH_TOKEN, query=owned)):
        if rt.get("client_id") == ctx.client_id or (family and rt.get("family_id") == family):
            cache.remove_rt(rt)
    for at in list(cache.search(CredentialType.ACCESS_TOKEN, query=owned)):
        cache.remove_at(at)
    for idt in list(cache.search(CredentialType.ID_TOKEN, query=owned)):
        cache.remove_idt(idt)
    for entry in list(cache.search(CredentialType.ACCOUNT, query=owned)):
        cache.remove_account(entry)
