"""``msal-async cache list|remove FILE``: what a token cache file holds, and clearing it.

Never prints a secret: accounts, and for each token its kind, client, scopes and expiry.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio

from .. import FilePersistence
from .common import USAGE, CliError

__all__ = ["add_parser", "describe", "remove_account"]

_TOKEN_KINDS = ("AccessToken", "RefreshToken", "IdToken")
_OWN_SUFFIXES = (".lockfile",)


def add_parser(commands: Any) -> None:
    """Register ``cache`` with its ``list`` and ``remove`` subcommands.

    Args:
        commands: the subparsers action.
    """
    cache = commands.add_parser(
        "cache",
        help="list or remove what a token cache file (or folder) holds; never prints a secret",
        description="Inspect or clear a token cache written by msal_async's FilePersistence "
        "(or by msal + msal-extensions: the same format).",
    )
    actions = cache.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list",
        help="list accounts and tokens (scopes, expiry; never a secret)",
        description="List the accounts and tokens of a cache file or folder: for each token "
        "its kind, client id, scopes and expiry. Secrets are never printed.",
    )
    listing.add_argument("file", metavar="FILE", help="the cache file, or folder of partitions")
    listing.add_argument("--json", action="store_true", help="print JSON instead of text")
    _key_option(listing)
    listing.set_defaults(run=_list)
    remove = actions.add_parser(
        "remove",
        help="delete the cache, or only one account's entries (--account)",
        description="Delete the cache file (or every file of a cache folder) and its lock "
        "file; with --account, remove only that user's account and tokens, under the lock.",
    )
    remove.add_argument("file", metavar="FILE", help="the cache file, or folder of partitions")
    remove.add_argument(
        "--account", metavar="USERNAME", help="remove only this account (its tokens included)"
    )
    _key_option(remove)
    remove.set_defaults(run=_remove)


def _key_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--encryption-key-env",
        metavar="NAME",
        help="the environment variable holding the cache's encryption key, in hex",
    )


def _key(args: argparse.Namespace) -> bytes | None:
    if not args.encryption_key_env:
        return None
    text = os.environ.get(args.encryption_key_env, "")
    try:
        return bytes.fromhex(text)
    except ValueError:
        msg = f"${args.encryption_key_env} must hold the encryption key in hex"
        raise CliError(msg) from None


def _files(location: str) -> list[Path]:
    path = Path(location).expanduser()
    if path.is_dir():
        return sorted(
            p
            for p in path.iterdir()
            if p.is_file() and p.suffix == ".json" and ".tmp-" not in p.name
        )
    if not path.exists():
        msg = f"no cache at {path}"
        raise CliError(msg, USAGE)
    return [path]


async def _load(path: Path, key: bytes | None) -> dict[str, Any]:
    try:
        loaded = await FilePersistence(path, encryption_key=key).load(None, None)
    except Exception as failure:  # noqa: BLE001 - any unreadable file is one clear line
        msg = f"cannot read {path}: {type(failure).__name__}: {failure}"
        raise CliError(msg) from None
    return dict(loaded.document) if loaded is not None else {}


def describe(document: Mapping[str, Any], *, now: float) -> dict[str, Any]:
    """The listing of one cache document: accounts and tokens, without any secret.

    Args:
        document: the cache sections (msal's JSON format).
        now: seconds since the epoch, for the time left.

    Returns:
        ``{"accounts": [...], "tokens": [...]}``.
    """
    accounts = [
        {
            "username": entry.get("username"),
            "home_account_id": entry.get("home_account_id"),
            "environment": entry.get("environment"),
            "realm": entry.get("realm"),
            "authority_type": entry.get("authority_type"),
        }
        for entry in _entries(document, "Account")
    ]
    tokens = []
    for kind in _TOKEN_KINDS:
        for entry in _entries(document, kind):
            shown: dict[str, Any] = {
                "kind": kind,
                "client_id": entry.get("client_id"),
                "home_account_id": entry.get("home_account_id") or None,
                "realm": entry.get("realm") or None,
            }
            if kind == "AccessToken":
                expires_on = int(entry.get("expires_on", 0))
                shown["scopes"] = str(entry.get("target", "")).split()
                shown["expires_on"] = _iso(expires_on)
                shown["expires_in"] = max(0, int(expires_on - now))
            elif kind == "RefreshToken":
                shown["family_id"] = entry.get("family_id") or None
            tokens.append(shown)
    return {"accounts": accounts, "tokens": tokens}


def _entries(document: Mapping[str, Any], section: str) -> Iterator[Mapping[str, Any]]:
    items = document.get(section)
    if isinstance(items, Mapping):
        yield from (e for e in items.values() if isinstance(e, Mapping))


def _iso(epoch: int) -> str:
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc).isoformat()


def _list(args: argparse.Namespace) -> int:
    key = _key(args)
    listings = {}
    for path in _files(args.file):
        listings[str(path)] = describe(anyio.run(_load, path, key), now=time.time())
    if args.json:
        print(json.dumps(listings, indent=2))
        return 0
    for location, listing in listings.items():
        print(f"{location}:")
        if not listing["accounts"] and not listing["tokens"]:
            print("  (empty)")
        for account in listing["accounts"]:
            print(f"  account {account['username']}  ({account['home_account_id']})")
        for token in listing["tokens"]:
            line = f"  {token['kind']:<12} client {token['client_id']}"
            if token["kind"] == "AccessToken":
                left = token["expires_in"]
                state = f"expires in {left // 60} min" if left else "expired"
                line += f"  {' '.join(token['scopes'])}  {state} ({token['expires_on']})"
            if token["home_account_id"]:
                line += f"  account {token['home_account_id']}"
            print(line)
    return 0


def remove_account(document: Mapping[str, Any], username: str) -> tuple[dict[str, Any], int]:
    """A document without the accounts named ``username`` and everything of theirs.

    Args:
        document: the cache sections.
        username: the account's username (case-insensitive).

    Returns:
        The new document and how many accounts were removed.
    """
    homes = {
        entry.get("home_account_id")
        for entry in _entries(document, "Account")
        if str(entry.get("username", "")).lower() == username.lower()
    }
    kept: dict[str, Any] = {}
    for section, items in document.items():
        if not isinstance(items, Mapping) or section == "AppMetadata":
            kept[section] = items
            continue
        kept[section] = {
            key: entry
            for key, entry in items.items()
            if not (isinstance(entry, Mapping) and entry.get("home_account_id") in homes)
        }
    return kept, len(homes)


def _remove(args: argparse.Namespace) -> int:
    key = _key(args)
    files = _files(args.file)
    if args.account is None:
        for path in files:
            for victim in (path, path.with_name(path.name + ".lockfile")):
                victim.unlink(missing_ok=True)
            print(f"removed {path}")
        return 0
    removed = 0
    for path in files:
        removed += anyio.run(_remove_from, path, args.account, key)
    if not removed:
        msg = f"no account {args.account} in {args.file}"
        raise CliError(msg, USAGE)
    print(f"removed {args.account} from {args.file}")
    return 0


async def _remove_from(path: Path, username: str, key: bytes | None) -> int:
    counted: list[int] = []

    def update(document: Any) -> Any:
        new, count = remove_account(document, username)
        counted.append(count)
        return new

    try:
        await FilePersistence(path, encryption_key=key).save(None, update)
    except Exception as failure:  # noqa: BLE001 - one clear line for any store failure
        msg = f"cannot update {path}: {type(failure).__name__}: {failure}"
        raise CliError(msg) from None
    return counted[-1] if counted else 0
