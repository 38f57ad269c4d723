"""Property: a cache answer never serves a token issued for other parameters.

Random access tokens (scopes, realms, clients, environments, home accounts, Bearer / PoP /
SSH-certificate tokens with key ids, extended cache keys, ages) are committed through a
:class:`CacheSession`, as flows commit them; random queries then ask the session. Whatever is
served must have been issued for the query's client, environment, realm, account, key id and
extended key, with scopes covering the requested ones (msal's rule: see ``_covers``), and fresh by the one freshness rule. And when the cache holds such a fresh token, one is served.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from msal_async import TokenCache
from msal_async._cache.freshness import EXPIRY_BUFFER, TokenQuery
from msal_async._cache.schema import compute_ext_cache_key
from msal_async.testing import AuthorityEmulator

NOW = 1_800_000_000
SCOPES = ["User.Read", "user.read", "Mail.Read", "api://x/.default", "openid"]
CLIENTS = ["client-1", "client-2"]
ENVIRONMENTS = ["login.microsoftonline.com", "login.example.test"]
REALMS = ["tenant-a", "tenant-b"]
HOMES: list[tuple[str, str] | None] = [None, ("uid1", "utid1"), ("uid2", "utid1")]
KINDS: list[tuple[str, str | None]] = [
    ("Bearer", None),
    ("pop", "key-1"),
    ("pop", "key-2"),
    ("ssh-cert", "key-1"),
]
EXTRAS: list[dict[str, str]] = [{}, {"fmi_path": "a/b"}, {"fmi_path": "c"}]


@dataclass(frozen=True)
class Issued:
    """What one access token was issued for."""

    client_id: str
    environment: str
    realm: str
    home_account_id: str | None
    scopes: frozenset[str]
    token_type: str
    key_id: str | None
    ext_cache_key: str | None
    expires_on: int


def _b64(obj: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


tokens = st.tuples(
    st.sampled_from(CLIENTS),
    st.sampled_from(ENVIRONMENTS),
    st.sampled_from(REALMS),
    st.sampled_from(HOMES),
    st.sets(st.sampled_from(SCOPES), min_size=1, max_size=3),
    st.sampled_from(KINDS),
    st.sampled_from(EXTRAS),
    st.integers(min_value=0, max_value=3600),  # age at NOW of a one-hour token
)
queries = st.tuples(
    st.sampled_from(CLIENTS),
    st.sampled_from(ENVIRONMENTS),
    st.sampled_from(REALMS),
    st.sampled_from(HOMES),
    st.sets(st.sampled_from(SCOPES), min_size=1, max_size=2),
    st.sampled_from([None, "key-1", "key-2"]),
    st.sampled_from(EXTRAS),
)


def _event(serial: int, token: tuple[Any, ...]) -> tuple[dict[str, Any], str, Issued, int]:
    client_id, env, realm, home, scopes, (token_type, key_id), extra, age = token
    secret = f"at-{serial}"
    response: dict[str, Any] = {
        "access_token": secret,
        "token_type": token_type,
        "expires_in": 3600,
    }
    if home is not None:
        response["client_info"] = _b64({"uid": home[0], "utid": home[1]})
    data: dict[str, Any] = dict(extra)
    if key_id is not None:
        data["key_id"] = key_id
        data["token_type"] = token_type
    event = {
        "client_id": client_id,
        "scope": sorted(scopes),
        "token_endpoint": f"https://{env}/{realm}/oauth2/v2.0/token",
        "environment": env,
        "grant_type": "client_credentials" if home is None else "refresh_token",
        "response": response,
        "data": data,
        "skip_account_creation": True,
    }
    written_at = NOW - age
    issued = Issued(
        client_id=client_id,
        environment=env,
        realm=realm,
        home_account_id=None if home is None else f"{home[0]}.{home[1]}",
        scopes=frozenset(scopes),
        token_type=token_type,
        key_id=key_id,
        ext_cache_key=compute_ext_cache_key(extra) or None,
        expires_on=written_at + 3600,
    )
    return event, secret, issued, written_at


def _query(raw: tuple[Any, ...]) -> TokenQuery:
    client_id, env, realm, home, scopes, key_id, extra = raw
    return TokenQuery(
        client_id=client_id,
        environment=env,
        realm=realm,
        scopes=tuple(sorted(scopes)),
        home_account_id=None if home is None else f"{home[0]}.{home[1]}",
        ext_cache_key=compute_ext_cache_key(extra) or None,
        key_id=key_id,
    )


def _covers(granted: frozenset[str], asked: tuple[str, ...]) -> bool:
    """msal's scope rule: a superset, case-sensitive; or the exact cache key, whose target is
    lowercased (msal probes that key first, so ``user.read`` finds a ``User.Read`` token:
    Entra compares scopes case-insensitively)."""
    same_key = " ".join(sorted(granted)).lower() == " ".join(sorted(asked)).lower()
    return set(asked) <= granted or same_key


def _serves(issued: Issued, query: TokenQuery) -> bool:
    """Whether a token issued so may answer the query (msal's rules, key ids strict)."""
    return (
        issued.client_id == query.client_id
        and issued.environment == query.environment
        and issued.realm == query.realm
        and issued.home_account_id == query.home_account_id
        and _covers(issued.scopes, query.scopes)
        and issued.key_id == query.key_id
        and issued.ext_cache_key == query.ext_cache_key
        and issued.expires_on - NOW >= EXPIRY_BUFFER
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    written=st.lists(tokens, min_size=1, max_size=25),
    asked=st.lists(queries, min_size=1, max_size=12),
)
def test_a_cache_answer_never_serves_a_token_issued_for_other_parameters(
    written: list[tuple[Any, ...]], asked: list[tuple[Any, ...]]
) -> None:
    cache = TokenCache()
    issued: dict[str, Issued] = {}

    async def main() -> list[tuple[TokenQuery, str | None]]:
        async with cache.session(None) as session:
            for serial, token in enumerate(written):
                event, secret, what, written_at = _event(serial, token)
                issued[secret] = what
                session.commit(event, written_at)
        answers: list[tuple[TokenQuery, str | None]] = []
        for raw in asked:
            query = _query(raw)
            async with cache.session(None) as session:
                found, _ = session.access_token(query, NOW)
            answers.append((query, None if found is None else found.secret))
        return answers

    answers = anyio.run(main)
    stored = {entry["secret"] for entry in cache.search("AccessToken")}
    for query, secret in answers:
        if secret is not None:
            assert _serves(issued[secret], query), (query, issued[secret])
        else:
            servable = [s for s in stored if _serves(issued[s], query)]
            assert not servable, (query, [issued[s] for s in servable])


@pytest.mark.anyio
async def test_an_ssh_certificate_is_never_a_bearer_answer(
    make_cca: Any, emulator: AuthorityEmulator
) -> None:
    """Found by the property above: msal 1.39 answers a plain call with the SSH certificate
    an earlier call cached for the same scopes (the key id is not part of msal's key)."""
    app = make_cca()
    ssh = {"token_type": "ssh-cert", "key_id": "key-1", "req_cnf": '{"kid":"key-1"}'}
    cert = await app.acquire_token_for_client(["api://ssh/.default"], data=ssh)
    [entry] = app.token_cache.search("AccessToken")
    assert entry["key_id"] == "key-1"  # (the emulator answers token_type Bearer regardless)
    plain = await app.acquire_token_for_client(["api://ssh/.default"])
    assert plain["token_source"] == "identity_provider"
    assert plain["token_type"] == "Bearer"
    assert plain["access_token"] != cert["access_token"]
    again = await app.acquire_token_for_client(["api://ssh/.default"])
    assert again["access_token"] == plain["access_token"]
