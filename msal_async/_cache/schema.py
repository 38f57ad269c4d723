"""msal's unified cache schema: key makers, add-event -> entries, matching (pure; `now` given)."""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlparse

from .. import _json
from .._oauth2.oidc import decode_id_token

__all__ = [
    "EXT_CACHE_KEY_EXCLUDED_FIELDS",
    "INDEX_FIELDS",
    "KEY_MAKERS",
    "AuthorityType",
    "CredentialType",
    "Entry",
    "access_token_key",
    "compute_ext_cache_key",
    "decode_id_token_claims",
    "entries_from_event",
    "entry_matches",
    "environment_and_realm",
    "is_expired",
    "normalize_query",
    "parse_account",
    "redact_event",
]

#: One cache entry, exactly as it is serialized.
Entry = dict[str, Any]

#: A key maker: keyword fields of an entry in, its dictionary key out.
KeyMaker = Callable[..., str]


class CredentialType:
    """Section names of the serialized cache (msal's ``TokenCache.CredentialType``)."""

    ACCESS_TOKEN = "AccessToken"
    ACCESS_TOKEN_EXTENDED = "atext"
    REFRESH_TOKEN = "RefreshToken"
    ACCOUNT = "Account"
    ID_TOKEN = "IdToken"
    APP_METADATA = "AppMetadata"


class AuthorityType:
    """Values of an Account's ``authority_type`` (msal's ``TokenCache.AuthorityType``)."""

    ADFS = "ADFS"
    MSSTS = "MSSTS"  # AAD v2, for both work/school and Microsoft accounts


# Grant types after which the Account records where it came from (spec 7.1, account_source).
# fmt: off
_ACCOUNT_SOURCE_GRANTS = frozenset((
    "broker", "authorization_code", "password", "urn:ietf:params:oauth:grant-type:device_code",
    "user_fic",
))
_CIAM_DOMAIN_SUFFIX = ".ciamlogin.com"

#: Request fields that never feed the extended cache key (spec 7.2; msal token_cache.py:45-72).
EXT_CACHE_KEY_EXCLUDED_FIELDS = frozenset((
    "client_id", "grant_type", "scope", "claims", "username", "password", "refresh_token", "code",
    "redirect_uri", "code_verifier", "device_code", "assertion", "requested_token_use",
    "client_assertion", "client_assertion_type", "client_secret", "token_type", "req_cnf",
    "key_id", "user_federated_identity_credential", "user_id", "client_info",
))
# fmt: on

#: Secondary index partitions of the sections other than AccessToken (which has an index of its
#: own, by partition and scope); search picks the longest one the query covers.
INDEX_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    CredentialType.REFRESH_TOKEN: (("home_account_id", "environment"), ("environment",)),
    CredentialType.ID_TOKEN: (("home_account_id", "environment"),),
    CredentialType.ACCOUNT: (("home_account_id", "environment"), ("environment",)),
    CredentialType.APP_METADATA: (("environment", "client_id"),),
}

_MASK = "********"
# Masked in the debug log of add(); a superset of msal's list (spec 12), which leaks `code`.
# fmt: off
_SECRET_DATA_FIELDS = frozenset((
    "password", "client_secret", "refresh_token", "assertion", "client_assertion", "code",
    "client_claims", "claims", "user_federated_identity_credential", "code_verifier",
    "device_code",
))
_SECRET_RESPONSE_FIELDS = frozenset((
    "access_token", "refresh_token", "id_token", "id_token_claims", "username",
))
# fmt: on


# --- key makers (spec 7.2): each takes a whole entry as keywords, ignoring fields it does not use


def _join(*parts: Any) -> str:
    return "-".join(p or "" for p in parts).lower()


def access_token_key(
    home_account_id: str | None,
    environment: str | None,
    client_id: str | None,
    realm: str | None,
    target: str | None,
    ext_cache_key: str | None = None,
) -> str:
    """The AccessToken key of these fields (``key_id`` is deliberately not part of it, as in
    msal; an extended key makes it an ``atext`` key).

    Returns:
        The key.
    """
    if ext_cache_key:
        kind = CredentialType.ACCESS_TOKEN_EXTENDED
        return _join(home_account_id, environment, kind, client_id, realm, target, ext_cache_key)
    kind = CredentialType.ACCESS_TOKEN
    return _join(home_account_id, environment, kind, client_id, realm, target)


def _access_token_key(**entry: Any) -> str:
    """AccessToken key (see :func:`access_token_key`)."""
    get = entry.get
    return access_token_key(
        get("home_account_id"),
        get("environment"),
        get("client_id"),
        get("realm"),
        get("target"),
        get("ext_cache_key"),
    )


def _refresh_token_key(**entry: Any) -> str:
    """RefreshToken key; RTs are tenant-less, so the realm segment is empty."""
    hid, env = entry.get("home_account_id"), entry.get("environment")
    kind = CredentialType.REFRESH_TOKEN
    return _join(hid, env, kind, entry.get("client_id"), "", entry.get("target"))


def _id_token_key(**entry: Any) -> str:
    """IdToken key; the schema wants an empty scope segment at its end."""
    hid, env = entry.get("home_account_id"), entry.get("environment")
    kind = CredentialType.ID_TOKEN
    return _join(hid, env, kind, entry.get("client_id"), entry.get("realm"), "")


def _account_key(**entry: Any) -> str:
    """Account key."""
    return _join(entry.get("home_account_id"), entry.get("environment"), entry.get("realm"))


def _app_metadata_key(**entry: Any) -> str:
    """AppMetadata key; unlike the others msal does not lowercase it."""
    return f"appmetadata-{entry.get('environment') or ''}-{entry.get('client_id') or ''}"


#: The key maker of each section (copied into every cache as its ``key_makers``).
KEY_MAKERS: dict[str, KeyMaker] = {
    CredentialType.REFRESH_TOKEN: _refresh_token_key,
    CredentialType.ACCESS_TOKEN: _access_token_key,
    CredentialType.ID_TOKEN: _id_token_key,
    CredentialType.ACCOUNT: _account_key,
    CredentialType.APP_METADATA: _app_metadata_key,
}


def compute_ext_cache_key(data: Mapping[str, Any] | None) -> str:
    """Hash the non-standard request fields into the extended cache key (spec 7.2).

    Fields outside :data:`EXT_CACHE_KEY_EXCLUDED_FIELDS` with a truthy value are sorted and written
    as netstrings (``{len(k)}:{k}{len(v)}:{v}``, lengths in UTF-8 bytes) so the serialization is
    injective; the SHA-256 digest is base64url-encoded without padding and lowercased, which is
    byte-compatible with MSAL Go's ``CacheExtKeyGenerator``.

    Args:
        data: The request body fields.

    Returns:
        The key, or ``""`` when no field contributes.
    """
    parts = sorted(
        (k, str(v)) for k, v in (data or {}).items() if k not in EXT_CACHE_KEY_EXCLUDED_FIELDS and v
    )
    if not parts:
        return ""
    netstrings = "".join(
        f"{len(k.encode('utf-8'))}:{k}{len(v.encode('utf-8'))}:{v}" for k, v in parts
    )
    digest = hashlib.sha256(netstrings.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii").lower()


def decode_id_token_claims(id_token: str) -> dict[str, Any]:
    """Decode an ID token's payload WITHOUT validating it (as msal, issue #911).

    The one decoder is :func:`msal_async._oauth2.oidc.decode_id_token` (payload only, as msal).

    Args:
        id_token: A JWT.

    Returns:
        The claims.

    Raises:
        ValueError: It is not a JWT with a JSON object payload.
    """
    return decode_id_token(id_token)


def parse_account(
    response: Mapping[str, Any], id_token_claims: Mapping[str, Any]
) -> tuple[dict[str, Any], str | None]:
    """Find who the tokens belong to.

    Args:
        response: The token response.
        id_token_claims: The decoded ID token claims, or ``{}``.

    Returns:
        ``(client_info, home_account_id)``: ``"{uid}.{utid}"`` from ``client_info``; else the ID
        token ``sub`` (ADFS); else ``({}, None)`` (client credentials).

    Raises:
        ValueError: ``client_info`` is not base64url JSON, or the ID token is the only source
            of the account and has no ``sub`` string.
    """
    if "client_info" in response:
        client_info = _json.b64url_object(response["client_info"], what="client_info")
        if "uid" in client_info and "utid" in client_info:
            return client_info, f"{client_info['uid']}.{client_info['utid']}"
    if id_token_claims:
        sub = id_token_claims.get("sub")  # OIDC Core 2: sub is required
        if not isinstance(sub, str) or not sub:
            msg = "the id_token has no sub claim and no client_info names the user"
            raise ValueError(msg)
        return {"uid": sub}, sub
    return {}, None


@functools.lru_cache(maxsize=64)  # an app writes through one or two token endpoints
def environment_and_realm(token_endpoint: str) -> tuple[str, str]:
    """Split a token endpoint into host and tenant, as msal's ``canonicalize``.

    Args:
        token_endpoint: An https URL such as ``https://login.microsoftonline.com/{tenant}/...``.

    Returns:
        ``(lowercased host, first path segment)``; a CIAM host without a path yields
        ``{subdomain}.onmicrosoft.com``.

    Raises:
        ValueError: It is not an https URL with a host and a tenant segment.
    """
    url = urlparse(token_endpoint)
    if url.scheme == "https" and url.hostname:
        parts = url.path.split("/")
        first = parts[1] if len(parts) >= 2 and parts[1] else None
        if url.hostname.endswith(_CIAM_DOMAIN_SUFFIX):
            sub = url.hostname.rsplit(_CIAM_DOMAIN_SUFFIX, 1)[0]
            return url.hostname, first or f"{sub}.onmicrosoft.com"
        if first:
            return url.hostname, first
    msg = f"token_endpoint={token_endpoint!r} must be an https URL with a tenant segment"
    raise ValueError(msg)


def _access_token_entry(event: Mapping[str, Any], common: Entry, target: str, now: int) -> Entry:
    response, data = event.get("response") or {}, event.get("data") or {}
    if "expires_in" in response:
        expires_in = _seconds(response, "expires_in")  # AAD v1 sends strings
    elif response.get("expires_on"):  # some managed identity sources send only this
        expires_in = _seconds(response, "expires_on") - now
    else:
        expires_in = 600
    if "ext_expires_in" in response:
        ext_expires_in = _seconds(response, "ext_expires_in")
    else:
        ext_expires_in = expires_in
    at: Entry = {
        "credential_type": CredentialType.ACCESS_TOKEN,
        "secret": response["access_token"],
        "home_account_id": common["home_account_id"],
        "environment": common["environment"],
        "client_id": common["client_id"],
        "target": target,
        "realm": common["realm"],
        "token_type": response.get("token_type", "Bearer"),
        "cached_at": str(now),
        "expires_on": str(now + expires_in),
        "extended_expires_on": str(now + ext_expires_in),
    }
    if "key_id" in data:  # SSH-cert / PoP: a search filter, not part of the key
        at["key_id"] = data["key_id"]
    ext_cache_key = compute_ext_cache_key(data)
    if ext_cache_key:
        at["ext_cache_key"] = ext_cache_key
    if "refresh_in" in response:
        at["refresh_on"] = str(now + _seconds(response, "refresh_in"))
    return at


def _seconds(response: Mapping[str, Any], name: str) -> int:
    return _json.int_value(response[name], what=name)


def _account_entry(event: Mapping[str, Any], common: Entry, claims: Mapping[str, Any]) -> Entry:
    data = event.get("data") or {}
    realm = common["realm"]
    account: Entry = {
        "home_account_id": common["home_account_id"],
        "environment": common["environment"],
        "realm": realm,
        # `_account_id` comes from the broker path; it wins even when it is None (as msal)
        "local_account_id": event["_account_id"]
        if "_account_id" in event
        else claims.get("oid", claims.get("sub")),
        "username": _string(claims.get("preferred_username", claims.get("upn")))
        or data.get("username")  # ROPC
        or event.get("username")  # federated ROPC
        or "",  # the schema does not allow null
        "authority_type": event.get(
            "authority_type", AuthorityType.ADFS if realm == "adfs" else AuthorityType.MSSTS
        ),
    }
    if event.get("grant_type") in _ACCOUNT_SOURCE_GRANTS:
        account["account_source"] = event["grant_type"]
    return account


def _string(value: Any) -> str | None:
    # A claim of another JSON type (a hostile or odd ID token) is no username: callers
    # compare usernames as strings.
    return value if isinstance(value, str) else None


def entries_from_event(event: Mapping[str, Any], *, now: int) -> list[tuple[str, Entry]]:
    """Turn a token-obtaining event into the entries to write (spec 7.3).

    Args:
        event: ``{client_id, scope, token_endpoint, environment, grant_type, response, data, ...}``.
        now: Epoch seconds.

    Returns:
        ``(section, entry)`` pairs in msal's write order: AccessToken, Account, IdToken,
        RefreshToken, AppMetadata (the last always).

    Raises:
        ValueError: The token endpoint, ``client_info``, ``id_token`` or a number of seconds
            (``expires_in``, ``ext_expires_in``, ``refresh_in``, ``expires_on``) is malformed.
    """
    environment = realm = None
    if "token_endpoint" in event:
        environment, realm = environment_and_realm(event["token_endpoint"])
    if "environment" in event:  # the app's authority instance wins
        environment = event["environment"]
    response: Mapping[str, Any] = event.get("response") or {}
    id_token = response.get("id_token")
    claims = response.get("id_token_claims") or (
        decode_id_token_claims(id_token) if id_token else {}
    )
    if not isinstance(claims, Mapping):
        msg = "the response's id_token_claims is not an object"
        raise ValueError(msg)  # noqa: TRY004 (a bad value inside the event)
    client_info, home_account_id = parse_account(response, claims)
    if home_account_id is None:
        # A refresh answered without client_info or id_token (a generic OIDC provider asked
        # for no ``openid``) still belongs to the account whose refresh token was redeemed.
        home_account_id = event.get("home_account_id")
    target = " ".join(sorted(event.get("scope") or []))
    common: Entry = {
        "home_account_id": home_account_id,
        "environment": environment,
        "client_id": event.get("client_id"),
        "realm": realm,
    }
    out: list[tuple[str, Entry]] = []
    if response.get("access_token"):
        out.append((CredentialType.ACCESS_TOKEN, _access_token_entry(event, common, target, now)))
    if client_info and not event.get("skip_account_creation"):
        out.append((CredentialType.ACCOUNT, _account_entry(event, common, claims)))
    if id_token:
        idt: Entry = {
            "credential_type": CredentialType.ID_TOKEN,
            "secret": id_token,
            "home_account_id": home_account_id,
            "environment": environment,
            "realm": realm,
            "client_id": common["client_id"],
        }
        out.append((CredentialType.ID_TOKEN, idt))
    if response.get("refresh_token"):
        rt: Entry = {
            "credential_type": CredentialType.REFRESH_TOKEN,
            "secret": response["refresh_token"],
            "home_account_id": home_account_id,
            "environment": environment,
            "client_id": common["client_id"],
            "target": target,
            "last_modification_time": str(now),
        }
        if "foci" in response:
            rt["family_id"] = response["foci"]
        out.append((CredentialType.REFRESH_TOKEN, rt))
    app_metadata: Entry = {"client_id": common["client_id"], "environment": environment}
    if "foci" in response:
        app_metadata["family_id"] = response["foci"]
    out.append((CredentialType.APP_METADATA, app_metadata))
    return out


def redact_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """Copy an event for logging with every secret replaced by ``********`` (spec 12).

    Args:
        event: A cache add-event.

    Returns:
        A shallow copy whose ``data`` and ``response`` secrets are masked.
    """
    clean = dict(event)
    for part, secret_fields in (
        ("data", _SECRET_DATA_FIELDS),
        ("response", _SECRET_RESPONSE_FIELDS),
    ):
        fields = event.get(part) or {}
        clean[part] = {k: _MASK if k in secret_fields else v for k, v in fields.items()}
    return clean


# --- matching ---


def normalize_query(query: Mapping[str, Any] | None) -> dict[str, Any]:
    """Lowercase a query's ``environment``, as add() stored it from the endpoint host.

    Args:
        query: Field values an entry must have.

    Returns:
        A new dict.
    """
    return {
        k: v.lower() if k == "environment" and isinstance(v, str) else v
        for k, v in (query or {}).items()
    }


def entry_matches(
    credential_type: str,
    entry: Mapping[str, Any],
    query: Mapping[str, Any],
    target: Iterable[str] = (),
) -> bool:
    """Apply msal's match rules to one entry.

    Args:
        credential_type: The section.
        entry: The candidate.
        query: A normalized query (see :func:`normalize_query`).
        target: Requested scopes; the entry's target must contain all of them (case-sensitive).

    Returns:
        True on a match. An AccessToken with an ``ext_cache_key`` never matches a query without one.
    """
    if not all(k in entry and entry[k] == v for k, v in query.items()):
        return False
    wanted = set(target)
    if wanted and not wanted <= set((entry.get("target") or "").split()):
        return False
    return not (
        credential_type == CredentialType.ACCESS_TOKEN
        and "ext_cache_key" in entry
        and "ext_cache_key" not in query
    )


def is_expired(entry: Mapping[str, Any], now: int) -> bool:
    """Tell whether an AccessToken's ``expires_on`` lies before ``now`` (no buffer).

    Args:
        entry: An AccessToken entry.
        now: Epoch seconds.

    Returns:
        True when expired; False when ``expires_on`` is missing or not an integer.
    """
    try:
        return int(entry["expires_on"]) < now
    except (KeyError, TypeError, ValueError):
        return False
