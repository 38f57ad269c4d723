"""get_accounts (spec 7.6) and remove_account (spec 7.9) over the token cache."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from .. import _log
from .._cache.partitions import app_partition
from .._cache.schema import AuthorityType, CredentialType
from .._cache.session import CacheSession
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
    session: CacheSession, environment: str, username: str | None = None
) -> list[dict[str, Any]]:
    """The accounts of one environment, one per ``home_account_id`` (the last one wins).

    With ``username``, only the home accounts that have an Account entry with that username
    (any case) are grouped, through the cache's username index: the cost follows the matches,
    not the number of signed-in accounts.

    Args:
        session: a cache session.
        environment: the authority host.
        username: keep only this username (case-insensitive).

    Returns:
        msal's account dicts.
    """
    if username is None:
        entries = session.search(CredentialType.ACCOUNT, {"environment": environment})
    else:
        entries = session.accounts_named(environment, username)
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
    wanted = username or None
    instance = ctx.authority.instance
    partition = app_partition(ctx.client_id, ctx.authority.tenant)
    async with ctx.cache.session(partition) as session:
        accounts = find_accounts(session, instance, wanted)
        if accounts or (wanted is not None and find_accounts(session, instance)):
            return accounts
    # msal tries the aliases only when the instance has no accounts at all
    for alias in await ctx.discovery.aliases(instance, authority=ctx.authority):
        async with ctx.cache.session(partition) as session:
            if find_accounts(session, alias):
                return find_accounts(session, alias, wanted)
    if username:
        logger.debug(
            "get_accounts(username=...) found no account; tokens acquired without the "
            "'profile' scope carry no username, consider get_accounts(username=None)"
        )
    return []


async def remove_account(ctx: AppContext, account: Mapping[str, Any]) -> None:
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
    async with ctx.cache.session(str(account["home_account_id"])) as session:
        metadata = session.app_metadata(account["environment"], ctx.client_id)
        family = (metadata or {}).get("family_id")
        session.remove(
            CredentialType.REFRESH_TOKEN,
            [
                rt
                for rt in session.search(CredentialType.REFRESH_TOKEN, owned)
                if rt.get("client_id") == ctx.client_id
                or (family and rt.get("family_id") == family)
            ],
        )
        for section in (CredentialType.ACCESS_TOKEN, CredentialType.ID_TOKEN):
            session.remove(section, session.search(section, owned))
        session.remove(CredentialType.ACCOUNT, session.search(CredentialType.ACCOUNT, owned))
