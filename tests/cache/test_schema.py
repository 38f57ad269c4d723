"""The cache schema: msal's key formats, extended cache key, add-event rules and matching."""

from __future__ import annotations

import base64
import json
from typing import Any

import msal
import pytest
from msal.token_cache import _compute_ext_cache_key

from msal_async._cache import schema
from msal_async._cache.schema import CredentialType

NOW = 1_700_000_000
TOKEN_ENDPOINT = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"


def b64url_json(obj: Any) -> str:
    """Encode a value as unpadded base64url JSON."""
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def fake_jwt(claims: dict[str, Any]) -> str:
    """Build an unsigned JWT."""
    return f"{b64url_json({'alg': 'none'})}.{b64url_json(claims)}.sig"


def event(
    response: dict[str, Any] | None = None, data: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """A minimal add-event with an access token."""
    return {
        "client_id": "cid",
        "scope": ["b", "a"],
        "token_endpoint": TOKEN_ENDPOINT,
        "response": {"access_token": "at", **(response or {})},
        "data": data or {},
        **extra,
    }


def entries(ev: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Run entries_from_event and index the result by section."""
    out = schema.entries_from_event(ev, now=NOW)
    assert len({ct for ct, _ in out}) == len(out)
    return dict(out)


# --- key formats ---

ENTRIES: list[dict[str, Any]] = [
    {"home_account_id": None, "environment": "login.microsoftonline.com", "client_id": "c"},
    {
        "home_account_id": "Uid.Utid",
        "environment": "Login.MicrosoftOnline.com",
        "client_id": "CID",
        "realm": "Contoso",
        "target": "User.Read openid",
    },
    {"environment": "e", "client_id": "c", "realm": "r", "target": "t", "ext_cache_key": "K"},
    {"environment": "e", "client_id": "c", "realm": "r", "target": None, "key_id": "kid"},
    {},
]


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("credential_type", sorted(schema.KEY_MAKERS))
def test_key_makers_match_msal(credential_type: str, entry: dict[str, Any]) -> None:
    theirs = msal.TokenCache().key_makers[credential_type](**entry)
    assert schema.KEY_MAKERS[credential_type](**entry) == theirs


def test_probed_key_examples_from_the_spec() -> None:
    at = schema.KEY_MAKERS[CredentialType.ACCESS_TOKEN]
    assert (
        at(environment="login.microsoftonline.com", client_id="cid", realm="T", target="S")
        == "-login.microsoftonline.com-accesstoken-cid-t-s"
    )
    assert at(environment="e", client_id="c", realm="r", target="s", ext_cache_key="X") == (
        "-e-atext-c-r-s-x"
    )
    assert schema.KEY_MAKERS[CredentialType.APP_METADATA](environment="E", client_id="C") == (
        "appmetadata-E-C"  # the one key msal does not lowercase
    )


# --- extended cache key ---

EXT_VECTORS: list[dict[str, Any] | None] = [
    None,
    {},
    {"client_id": "c", "scope": "s", "client_secret": "x", "key_id": "k", "client_info": "1"},
    {"fmi_path": "SomeFmiPath/fmi"},
    {"fmi_path": "a", "client_claims": '{"xms_cc":["cp1"]}', "grant_type": "client_credentials"},
    {"fmi_path": "", "other": None, "zero": 0},
    {"fmi_path": "ünïcödé/路径", "n": 42},
    {"fmi_path": "value"},
    {"fmi_pat": "hvalue"},
]


@pytest.mark.parametrize("data", EXT_VECTORS)
def test_ext_cache_key_matches_msal(data: dict[str, Any] | None) -> None:
    assert schema.compute_ext_cache_key(data) == _compute_ext_cache_key(data)


def test_ext_cache_key_shape_and_injectivity() -> None:
    key = schema.compute_ext_cache_key({"fmi_path": "value"})
    assert key == key.lower()
    assert len(key) == 43  # 32 bytes of SHA-256, base64url without padding
    assert "=" not in key
    assert key != schema.compute_ext_cache_key({"fmi_pat": "hvalue"})
    assert schema.compute_ext_cache_key({"password": "p", "code": "c"}) == ""


# --- decoding ---


def test_decode_id_token_claims() -> None:
    assert schema.decode_id_token_claims(fake_jwt({"sub": "s"})) == {"sub": "s"}
    for bad in ("not-a-jwt", "a.!!!.c", f"a.{b64url_json([1, 2])}.c", "a.bm90IGpzb24.c"):
        with pytest.raises(ValueError, match="id_token"):
            schema.decode_id_token_claims(bad)


def test_parse_account() -> None:
    info = b64url_json({"uid": "u", "utid": "t"})
    assert schema.parse_account({"client_info": info}, {}) == ({"uid": "u", "utid": "t"}, "u.t")
    half = b64url_json({"uid": "u"})  # msal issue 387: falls back to the ID token
    assert schema.parse_account({"client_info": half}, {"sub": "s"}) == ({"uid": "s"}, "s")
    assert schema.parse_account({}, {}) == ({}, None)
    with pytest.raises(ValueError, match="client_info"):
        schema.parse_account({"client_info": "%%%"}, {})


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        (TOKEN_ENDPOINT, ("login.microsoftonline.com", "contoso.onmicrosoft.com")),
        ("https://LOGIN.example.com/Common/oauth2/token", ("login.example.com", "Common")),
        ("https://fs.contoso.com/adfs/oauth2/token", ("fs.contoso.com", "adfs")),
        ("https://contoso.ciamlogin.com/", ("contoso.ciamlogin.com", "contoso.onmicrosoft.com")),
        ("https://contoso.ciamlogin.com/tid/oauth2/v2.0/token", ("contoso.ciamlogin.com", "tid")),
    ],
)
def test_environment_and_realm(endpoint: str, expected: tuple[str, str]) -> None:
    assert schema.environment_and_realm(endpoint) == expected
    _, env, realm = msal.authority.canonicalize(endpoint)
    assert (env, realm) == expected


@pytest.mark.parametrize("endpoint", ["http://login.example.com/t", "https://host/", "nonsense"])
def test_environment_and_realm_rejects(endpoint: str) -> None:
    with pytest.raises(ValueError, match="token_endpoint"):
        schema.environment_and_realm(endpoint)


# --- add-event rules (spec 7.3) ---


def test_client_credentials_event_makes_an_app_at_and_app_metadata_only() -> None:
    out = entries(event({"expires_in": 3600}))
    assert set(out) == {CredentialType.ACCESS_TOKEN, CredentialType.APP_METADATA}
    at = out[CredentialType.ACCESS_TOKEN]
    assert at["home_account_id"] is None
    assert at["target"] == "a b"  # sorted
    assert at["realm"] == "contoso.onmicrosoft.com"
    assert at["token_type"] == "Bearer"
    assert (at["cached_at"], at["expires_on"], at["extended_expires_on"]) == (
        str(NOW),
        str(NOW + 3600),
        str(NOW + 3600),
    )
    assert "refresh_on" not in at
    assert "ext_cache_key" not in at


@pytest.mark.parametrize(
    ("response", "expires", "ext_expires"),
    [
        ({"expires_in": "100", "ext_expires_in": "200"}, 100, 200),  # AAD v1 strings
        ({"expires_on": str(NOW + 500)}, 500, 500),  # managed identity
        ({}, 600, 600),  # RFC 6749 5.1 leaves it optional
    ],
)
def test_expiry_rules(response: dict[str, Any], expires: int, ext_expires: int) -> None:
    at = entries(event(response))[CredentialType.ACCESS_TOKEN]
    assert at["expires_on"] == str(NOW + expires)
    assert at["extended_expires_on"] == str(NOW + ext_expires)


def test_refresh_in_key_id_and_ext_cache_key() -> None:
    ev = event({"refresh_in": 60, "token_type": "ssh-cert"}, {"key_id": "kid", "fmi_path": "p"})
    at = entries(ev)[CredentialType.ACCESS_TOKEN]
    assert at["refresh_on"] == str(NOW + 60)
    assert at["key_id"] == "kid"
    assert at["token_type"] == "ssh-cert"
    assert at["ext_cache_key"] == schema.compute_ext_cache_key({"fmi_path": "p"})


def test_environment_from_the_event_wins() -> None:
    out = entries(event(environment="login.windows.net"))
    assert out[CredentialType.ACCESS_TOKEN]["environment"] == "login.windows.net"
    assert entries({"client_id": "c"}) == {
        CredentialType.APP_METADATA: {"client_id": "c", "environment": None}
    }


def user_response(**claims: Any) -> dict[str, Any]:
    """A user response with an ID token, client_info, a refresh token and FOCI."""
    return {
        "id_token": fake_jwt({"sub": "sub", "oid": "oid", **claims}),
        "client_info": b64url_json({"uid": "u", "utid": "t"}),
        "refresh_token": "rt",
        "foci": "1",
    }


def test_user_event_makes_every_entry() -> None:
    out = entries(event(user_response(preferred_username="p@x"), grant_type="authorization_code"))
    assert list(out) == [
        CredentialType.ACCESS_TOKEN,
        CredentialType.ACCOUNT,
        CredentialType.ID_TOKEN,
        CredentialType.REFRESH_TOKEN,
        CredentialType.APP_METADATA,
    ]
    account = out[CredentialType.ACCOUNT]
    assert account["home_account_id"] == "u.t"
    assert account["local_account_id"] == "oid"
    assert account["username"] == "p@x"
    assert account["authority_type"] == "MSSTS"
    assert account["account_source"] == "authorization_code"
    assert out[CredentialType.REFRESH_TOKEN]["family_id"] == "1"
    assert out[CredentialType.REFRESH_TOKEN]["last_modification_time"] == str(NOW)
    assert out[CredentialType.APP_METADATA]["family_id"] == "1"
    assert out[CredentialType.ID_TOKEN]["realm"] == "contoso.onmicrosoft.com"


@pytest.mark.parametrize(
    ("claims", "data", "extra", "username"),
    [
        ({"preferred_username": "p", "upn": "u"}, {}, {}, "p"),
        ({"upn": "u"}, {"username": "d"}, {}, "u"),
        ({}, {"username": "d"}, {"username": "e"}, "d"),
        ({"preferred_username": ""}, {}, {"username": "e"}, "e"),
        ({}, {}, {}, ""),
    ],
)
def test_username_fallbacks(
    claims: dict[str, Any], data: dict[str, Any], extra: dict[str, Any], username: str
) -> None:
    out = entries(event(user_response(**claims), data, **extra))
    assert out[CredentialType.ACCOUNT]["username"] == username


def test_account_rules() -> None:
    no_account = entries(event(user_response(), skip_account_creation=True))
    assert CredentialType.ACCOUNT not in no_account
    assert CredentialType.REFRESH_TOKEN in no_account
    broker = event({**user_response(), "id_token_claims": {"sub": "bs"}}, _account_id="acc")
    account = entries(broker)[CredentialType.ACCOUNT]
    assert account["local_account_id"] == "acc"
    assert "account_source" not in account  # grant_type missing
    adfs = event(
        {"id_token": fake_jwt({"sub": "s"})},
        token_endpoint="https://fs.contoso.com/adfs/oauth2/token",
        grant_type="password",
    )
    account = entries(adfs)[CredentialType.ACCOUNT]
    assert (account["home_account_id"], account["local_account_id"]) == ("s", "s")
    assert account["authority_type"] == "ADFS"
    forced = entries(event(user_response(), authority_type="CLOUDSHELL"))
    assert forced[CredentialType.ACCOUNT]["authority_type"] == "CLOUDSHELL"


ACCOUNT_GRANTS = (
    "broker",
    "authorization_code",
    "password",
    "urn:ietf:params:oauth:grant-type:device_code",
    "user_fic",
)


@pytest.mark.parametrize("grant", ACCOUNT_GRANTS)
def test_account_source(grant: str) -> None:
    assert entries(event(user_response(), grant_type=grant))[CredentialType.ACCOUNT][
        "account_source"
    ] == (grant)
    refresh = entries(event(user_response(), grant_type="refresh_token"))
    assert "account_source" not in refresh[CredentialType.ACCOUNT]


def test_no_foci_no_family() -> None:
    response = user_response()
    del response["foci"]
    out = entries(event(response))
    assert "family_id" not in out[CredentialType.REFRESH_TOKEN]
    assert "family_id" not in out[CredentialType.APP_METADATA]


def test_redact_event_hides_every_secret() -> None:
    ev = event(
        user_response(),
        {"client_secret": "S1", "client_assertion": "S2", "code": "S3", "password": "S4"},
    )
    ev["response"]["access_token"] = "S5"
    text = json.dumps(schema.redact_event(ev), default=str)
    for secret in ("S1", "S2", "S3", "S4", "S5", ev["response"]["refresh_token"]):
        assert f'"{secret}"' not in text
    assert ev["data"]["code"] == "S3"  # the event itself is untouched


# --- matching ---


def test_entry_matches() -> None:
    at = {"credential_type": "AccessToken", "environment": "e", "target": "A b c"}
    q = schema.normalize_query({"environment": "E"})
    assert q == {"environment": "e"}
    assert schema.entry_matches("AccessToken", at, q, ["A", "c"])
    assert not schema.entry_matches("AccessToken", at, q, ["a"])  # case-sensitive
    assert not schema.entry_matches("AccessToken", at, {"environment": "e", "realm": None})
    ext = {**at, "ext_cache_key": "k"}
    assert not schema.entry_matches("AccessToken", ext, q)
    assert schema.entry_matches("AccessToken", ext, {**q, "ext_cache_key": "k"})
    assert schema.entry_matches("RefreshToken", ext, q)  # isolation is for ATs only
    assert schema.entry_matches("Account", {"target": None}, {})


def test_is_expired() -> None:
    assert schema.is_expired({"expires_on": str(NOW - 1)}, NOW)
    assert not schema.is_expired({"expires_on": str(NOW)}, NOW)
    assert not schema.is_expired({}, NOW)
    assert not schema.is_expired({"expires_on": "soon"}, NOW)


# --- the account of a refresh answer that names no one ---


def test_a_refresh_answer_without_account_keeps_the_refreshed_account() -> None:
    """A generic OIDC provider's refresh answer (no client_info, no id_token): the AT belongs
    to the account whose refresh token was redeemed, not to "no account"."""
    at = entries(event(home_account_id="sub-1"))[CredentialType.ACCESS_TOKEN]
    assert at["home_account_id"] == "sub-1"
    assert entries(event())[CredentialType.ACCESS_TOKEN]["home_account_id"] is None
    named = event({"client_info": b64url_json({"uid": "u", "utid": "t"})}, home_account_id="x")
    assert entries(named)[CredentialType.ACCESS_TOKEN]["home_account_id"] == "u.t"
