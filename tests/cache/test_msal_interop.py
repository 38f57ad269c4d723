"""Our token cache writes, reads and searches exactly what real msal 1.39 does, both ways."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import msal
import pytest

from msal_async._cache.token_cache import SerializableTokenCache

from .conftest import at_candidates

NOW = 1_700_000_000
FIXTURES = Path(__file__).parent.parent / "fixtures"
ENDPOINT = "https://login.microsoftonline.com/{}/oauth2/v2.0/token"
AT, RT = "AccessToken", "RefreshToken"
ACCOUNT, IDT, APPMETA = "Account", "IdToken", "AppMetadata"


def b64url_json(obj: dict[str, Any]) -> str:
    """Encode an object as unpadded base64url JSON."""
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def fake_jwt(claims: dict[str, Any]) -> str:
    """Build an unsigned JWT (the cache never validates ID tokens)."""
    return f"{b64url_json({'alg': 'none', 'typ': 'JWT'})}.{b64url_json(claims)}.c2ln"


def client_credentials_event(**data: Any) -> dict[str, Any]:
    """A client-credentials add-event as msal's app layer builds it."""
    return {
        "client_id": "app-client-id",
        "scope": ["https://graph.microsoft.com/.default"],
        "token_endpoint": ENDPOINT.format("72f988bf-86f1-41af-91ab-2d7cd011db47"),
        "environment": "login.microsoftonline.com",
        "grant_type": "client_credentials",
        "params": {},
        "data": {"client_id": "app-client-id", "client_secret": "s3cr3t", **data},
        "response": {
            "access_token": "app-at-secret",
            "token_type": "Bearer",
            "expires_in": 3599,
            "ext_expires_in": 3599,
        },
    }


def user_event(**response: Any) -> dict[str, Any]:
    """An auth-code add-event with id_token, client_info, a refresh token and FOCI."""
    claims = {
        "iss": "https://login.microsoftonline.com/utid1/v2.0",
        "sub": "subject-1",
        "oid": "object-id-1",
        "tid": "utid1",
        "aud": "user-client-id",
        "preferred_username": "alice@contoso.com",
        "iat": NOW,
        "exp": NOW + 3600,
    }
    return {
        "client_id": "user-client-id",
        "scope": ["User.Read", "email", "openid", "profile"],
        "token_endpoint": ENDPOINT.format("organizations"),
        "environment": "login.microsoftonline.com",
        "grant_type": "authorization_code",
        "params": {},
        "data": {"code": "auth-code", "redirect_uri": "http://localhost", "code_verifier": "v"},
        "response": {
            "token_type": "Bearer",
            "scope": "User.Read email openid profile",
            "expires_in": 4000,
            "ext_expires_in": 5000,
            "access_token": "user-at-secret",
            "refresh_token": "user-rt-secret",
            "id_token": fake_jwt(claims),
            "client_info": b64url_json({"uid": "uid1", "utid": "utid1"}),
            "foci": "1",
            **response,
        },
    }


def adfs_event() -> dict[str, Any]:
    """An ADFS password event: no client_info, the account is the ID token's sub."""
    return {
        "client_id": "adfs-client",
        "scope": ["openid", "profile"],
        "token_endpoint": "https://fs.contoso.com/adfs/oauth2/token",
        "grant_type": "password",
        "data": {"username": "bob@contoso.com", "password": "pw"},
        "response": {
            "access_token": "adfs-at",
            "refresh_token": "adfs-rt",
            "expires_in": "3600",
            "id_token": fake_jwt({"sub": "adfs-sub", "upn": "bob@contoso.com"}),
        },
    }


EVENTS = {
    "client_credentials": client_credentials_event(),
    "fmi_path": client_credentials_event(fmi_path="SomeFmiPath/fmi"),
    "ssh_key_id": client_credentials_event(key_id="kid-1", token_type="ssh-cert", req_cnf="x"),
    "user": user_event(),
    "user_refresh_in": user_event(refresh_in=1800),
    "user_skip_account": {**user_event(), "skip_account_creation": True},
    "user_no_foci": user_event(foci=None),
    "managed_identity_expires_on": {
        **client_credentials_event(),
        "response": {"access_token": "mi-at", "expires_on": str(NOW + 86400)},
    },
    "adfs": adfs_event(),
}


def both(*events: dict[str, Any]) -> tuple[SerializableTokenCache, Any]:
    """Feed the same events to our cache and to msal's."""
    ours, theirs = SerializableTokenCache(), msal.SerializableTokenCache()
    for event in events:
        ours.add(json.loads(json.dumps(event)), now=NOW)
        theirs.add(json.loads(json.dumps(event)), now=NOW)
    return ours, theirs


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_add_serializes_byte_for_byte_like_msal(name: str) -> None:
    ours, theirs = both(EVENTS[name])
    assert json.loads(ours.serialize()) == json.loads(theirs.serialize())
    assert ours.serialize() == theirs.serialize()


def test_many_events_in_sequence_match_msal() -> None:
    events = list(EVENTS.values())
    ours, theirs = both(*events, *events[:3])  # re-adding overwrites in place
    assert ours.serialize() == theirs.serialize()


@pytest.mark.parametrize(
    ("fixture", "event"),
    [
        ("msal_cache_client_credentials.json", client_credentials_event()),
        ("msal_cache_user.json", user_event()),
    ],
)
def test_golden_fixture_written_by_msal(fixture: str, event: dict[str, Any]) -> None:
    golden = json.loads((FIXTURES / fixture).read_text())
    ours, theirs = both(event)
    assert json.loads(ours.serialize()) == golden
    assert json.loads(theirs.serialize()) == golden


def test_we_read_a_cache_written_by_msal() -> None:
    cache = SerializableTokenCache()
    cache.deserialize((FIXTURES / "msal_cache_user.json").read_text())
    assert not cache.has_state_changed
    query = {"home_account_id": "uid1.utid1", "environment": "login.microsoftonline.com"}
    ats = list(cache.search(AT, ["User.Read"], {**query, "client_id": "user-client-id"}, now=NOW))
    assert [at["secret"] for at in ats] == ["user-at-secret"]
    rts = list(cache.search(RT, query={**query, "family_id": "1"}))
    assert [rt["secret"] for rt in rts] == ["user-rt-secret"]
    assert [a["username"] for a in cache.search(ACCOUNT, query=query)] == ["alice@contoso.com"]
    assert len(list(cache.search(IDT, query=query))) == 1
    found = at_candidates(
        cache,
        client_id="user-client-id",
        environment="login.microsoftonline.com",
        realm="organizations",
        scopes=["email", "User.Read"],
        home_account_id="uid1.utid1",
    )
    assert [at["secret"] for at in found] == ["user-at-secret"]

    app_cache = SerializableTokenCache()
    app_cache.deserialize((FIXTURES / "msal_cache_client_credentials.json").read_text())
    found = at_candidates(
        app_cache,
        client_id="app-client-id",
        environment="login.microsoftonline.com",
        realm="72f988bf-86f1-41af-91ab-2d7cd011db47",
        scopes=["https://graph.microsoft.com/.default"],
    )
    assert [at["secret"] for at in found] == ["app-at-secret"]


def test_msal_reads_a_cache_written_by_us() -> None:
    ours = SerializableTokenCache()
    for event in EVENTS.values():
        ours.add(event, now=NOW)
    theirs = msal.SerializableTokenCache()
    theirs.deserialize(ours.serialize())
    query = {
        "home_account_id": "uid1.utid1",
        "environment": "login.microsoftonline.com",
        "client_id": "user-client-id",
        "realm": "organizations",
    }
    ats = list(theirs.search(AT, target=["User.Read"], query=query, now=NOW))
    assert [at["secret"] for at in ats] == ["user-at-secret"]
    rts = list(theirs.search(RT, query={"home_account_id": "uid1.utid1"}))
    assert [rt["secret"] for rt in rts] == ["user-rt-secret"]
    app_query = {
        "home_account_id": None,
        "environment": "login.microsoftonline.com",
        "client_id": "app-client-id",
        "realm": "72f988bf-86f1-41af-91ab-2d7cd011db47",
    }
    graph = ["https://graph.microsoft.com/.default"]
    plain = list(theirs.search(AT, target=graph, query=app_query, now=NOW))
    assert [at["secret"] for at in plain] == ["mi-at"]  # the same key as the earlier app ATs
    fmi = [e for e in json.loads(ours.serialize())[AT].values() if "ext_cache_key" in e]
    with_ext = {**app_query, "ext_cache_key": fmi[0]["ext_cache_key"]}
    isolated = list(theirs.search(AT, target=graph, query=with_ext, now=NOW))
    assert [at["secret"] for at in isolated] == ["app-at-secret"]


SEARCHES: list[tuple[str, list[str] | None, dict[str, Any] | None]] = [
    (AT, None, None),
    (AT, ["User.Read"], {"home_account_id": "uid1.utid1"}),
    (AT, ["user.read"], {"home_account_id": "uid1.utid1"}),  # target match is case-sensitive
    (AT, ["User.Read", "email"], None),
    (AT, None, {"environment": "LOGIN.microsoftonline.com"}),
    (
        AT,
        ["https://graph.microsoft.com/.default"],
        {
            "home_account_id": None,
            "environment": "login.microsoftonline.com",
            "client_id": "app-client-id",
            "realm": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        },
    ),
    (AT, None, {"key_id": "kid-1"}),
    (RT, None, {"environment": "login.microsoftonline.com"}),
    (RT, None, {"home_account_id": "adfs-sub", "environment": "fs.contoso.com"}),
    (ACCOUNT, None, {"environment": "login.microsoftonline.com"}),
    (ACCOUNT, None, {"home_account_id": "adfs-sub"}),
    (IDT, None, {"home_account_id": "uid1.utid1", "environment": "login.microsoftonline.com"}),
    (APPMETA, None, {"environment": "login.microsoftonline.com", "client_id": "app-client-id"}),
]


@pytest.mark.parametrize(("credential_type", "target", "query"), SEARCHES)
def test_search_returns_what_msal_returns(
    credential_type: str, target: list[str] | None, query: dict[str, Any] | None
) -> None:
    events = [e for n, e in EVENTS.items() if n not in {"managed_identity_expires_on"}]
    ours, theirs = both(*events)
    mine = list(ours.search(credential_type, target=target, query=query, now=NOW))
    expected = list(theirs.search(credential_type, target=target, query=query, now=NOW))
    assert sorted(map(json.dumps, mine)) == sorted(map(json.dumps, expected))


def test_expired_purge_and_removals_leave_msal_identical_state() -> None:
    ours, theirs = both(client_credentials_event(), user_event(), adfs_event())
    for cache in (ours, theirs):
        list(cache.search(AT, now=NOW + 10**6))  # exhausting purges every expired AT
        for rt in list(cache.search(RT, query={"home_account_id": "adfs-sub"})):
            cache.remove_rt(rt)
        for idt in list(cache.search(IDT, query={"home_account_id": "uid1.utid1"})):
            cache.remove_idt(idt)
        for account in list(cache.search(ACCOUNT, query={"home_account_id": "uid1.utid1"})):
            cache.remove_account(account)
        cache.modify(AT, {"credential_type": AT, "environment": "nowhere"})  # removing nothing
    assert ours.serialize() == theirs.serialize()


def test_removing_from_an_empty_cache_creates_the_section_like_msal() -> None:
    ours, theirs = SerializableTokenCache(), msal.SerializableTokenCache()
    for cache in (ours, theirs):
        cache.modify(RT, {"credential_type": RT, "home_account_id": "x"})
    assert ours.serialize() == theirs.serialize() == '{\n    "RefreshToken": {}\n}'


def test_key_makers_agree_with_msal_on_foreign_entries() -> None:
    ours, theirs = SerializableTokenCache(), msal.SerializableTokenCache()
    entry: dict[str, Any] = {
        "home_account_id": "UID.UTID",
        "environment": "Login.Windows.Net",
        "client_id": "CID",
        "realm": "Contoso.OnMicrosoft.com",
        "target": "Scope.A Scope.B",
        "ext_cache_key": "abc",
        "key_id": "ignored",
        "family_id": "1",
    }
    for name, maker in ours.key_makers.items():
        assert maker(**entry) == theirs.key_makers[name](**entry)
        assert maker() == theirs.key_makers[name]()
