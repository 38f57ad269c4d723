"""Fuzz the token-response path: any body is a result or an error dict, and a result is cacheable.

Property (issue 10): whatever the token endpoint answers - any bytes, or a JSON object whose
fields hold any JSON value - parsing gives an msal result or an error dict; a result goes into
the cache without an exception, cleans into what the caller gets, and the cache document it
makes reads back through the codec (what we write, we can read); an error leaves the cache as
it was. ID tokens and ``client_info`` are fuzzed as part of the responses, and on their own.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import event, given
from hypothesis import strategies as st

from msal_async import SerializableTokenCache
from msal_async._cache import codec
from msal_async._cache.schema import parse_account
from msal_async._oauth2.oidc import add_id_token_claims, decode_id_token
from msal_async._oauth2.responses import clean_result, parse_token_response
from msal_async._oauth2.user_tokens import event_scopes, token_event

from ..hostile import b64url, fuzz_settings

NOW = 1_700_000_000
ENDPOINT = "https://login.microsoftonline.com/tenant/oauth2/v2.0/token"

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["3599", "abc", "-1", " 60 ", "1.5", "", "!!!", "1e400"])
)
JSON_ANY = st.recursive(
    SCALARS,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
    max_leaves=6,
)
TEXT = st.text(min_size=1, max_size=10)
SECONDS = st.integers(0, 10**6) | st.integers(0, 10**6).map(str)
CLAIM_NAMES = ("sub", "oid", "preferred_username", "upn", "tid", "nonce")


def encoded(value: Any) -> str:
    return b64url(json.dumps(value).encode())


def jwt(header: str, claims: Any) -> str:
    return f"{header}.{encoded(claims)}.sig"


# A response a server would send: every field right...
VALID_FIELDS = {
    "token_type": TEXT,
    "expires_in": SECONDS,
    "ext_expires_in": SECONDS,
    "refresh_in": SECONDS,
    "refresh_token": TEXT,
    "id_token": st.builds(jwt, TEXT, st.fixed_dictionaries({"sub": TEXT, "name": TEXT})),
    "client_info": st.fixed_dictionaries({"uid": TEXT, "utid": TEXT}).map(encoded),
    "foci": TEXT,
    "scope": TEXT,
}
VALID = st.fixed_dictionaries({"access_token": TEXT}, optional=VALID_FIELDS)
# ... then one to three fields bent into anything: any JSON, a text, a JWT or base64url of
# anything (so the decoders see everything too).
HOSTILE = (
    JSON_ANY
    | st.text(max_size=40)
    | st.builds(jwt, st.text(max_size=8), st.dictionaries(st.sampled_from(CLAIM_NAMES), JSON_ANY))
    | JSON_ANY.map(encoded)
    | st.dictionaries(st.sampled_from(["uid", "utid"]), JSON_ANY).map(encoded)
)
BENT = st.builds(
    lambda body, bent: {**body, **bent},
    VALID,
    st.dictionaries(
        st.sampled_from(["access_token", "expires_on", "id_token_claims", *VALID_FIELDS]),
        HOSTILE,
        min_size=1,
        max_size=3,
    ),
)
ERRORS = st.fixed_dictionaries({"error": TEXT | JSON_ANY}, optional=VALID_FIELDS)
# json.dumps writes NaN and Infinity as such: hostile bodies too.
TOKEN_RESPONSES = st.sampled_from([VALID, BENT, BENT, ERRORS]).flatmap(lambda s: s).map(json.dumps)


def check(status: int, body: str) -> None:
    raw = parse_token_response(status, body, correlation_id="corr")
    assert isinstance(raw, dict)
    event("error" if "error" in raw else "result")
    cache = SerializableTokenCache()
    before = cache.serialize()
    if "error" in raw:
        assert isinstance(raw["error_description"], str)
        assert raw["correlation_id"] == "corr"
        assert cache.serialize() == before
        return
    assert status < 400
    assert isinstance(raw["access_token"], str)
    assert add_id_token_claims(raw) is None  # parse already refused a bad id_token
    cache.add(
        token_event(
            client_id="client",
            scopes=event_scopes(raw, ["User.Read"]),
            token_endpoint=ENDPOINT,
            grant_type="authorization_code",
            response=raw,
            data={},
            environment="login.microsoftonline.com",
        ),
        now=NOW,
    )
    result = clean_result(raw, now=NOW)
    assert result["token_source"] == "identity_provider"
    document = json.loads(cache.serialize())
    assert codec.decode(codec.encode(document, None), None) == document


@fuzz_settings()
@given(st.sampled_from([200, 200, 400, 401, 500, 503]), TOKEN_RESPONSES)
def test_fuzz_token_responses(status: int, body: str) -> None:
    check(status, body)


@fuzz_settings()
@given(st.sampled_from([200, 400, 500]), st.binary(max_size=300))
def test_fuzz_token_response_bytes(status: int, body: bytes) -> None:
    check(status, body.decode("utf-8", errors="replace"))


@fuzz_settings()
@given(
    st.integers(400, 599),
    st.fixed_dictionaries(
        {"error": st.text(max_size=10) | JSON_ANY},
        optional={"error_description": JSON_ANY, "suberror": JSON_ANY, "claims": JSON_ANY},
    ),
)
def test_fuzz_error_bodies(status: int, body: dict[str, Any]) -> None:
    raw = parse_token_response(status, json.dumps(body), correlation_id="corr")
    assert isinstance(raw["error"], str)
    assert "correlation_id" in raw


@fuzz_settings()
@given(HOSTILE | st.binary(max_size=100).map(lambda b: b.decode("latin-1")))
def test_fuzz_id_tokens_decode_or_raise_value_error(id_token: Any) -> None:
    try:
        claims = decode_id_token(id_token)
    except ValueError:
        return
    assert isinstance(claims, dict)


@fuzz_settings()
@given(HOSTILE, st.dictionaries(st.sampled_from(CLAIM_NAMES), JSON_ANY))
def test_fuzz_client_info_gives_an_account_or_value_error(client_info: Any, claims: Any) -> None:
    try:
        info, home_account_id = parse_account({"client_info": client_info}, claims)
    except ValueError:
        return
    assert isinstance(info, dict)
    assert home_account_id is None or isinstance(home_account_id, str)
