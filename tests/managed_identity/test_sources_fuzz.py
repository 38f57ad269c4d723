"""Fuzz the managed identity parsers: any answer is a token, an error dict or msal's ValueError.

Property: for every source and status, any body gives a normalized token (a string
``access_token`` and an integer ``expires_in``) or an error dict; only a body that is not JSON
at all raises ValueError (msal lets its JSONDecodeError escape). Every token parsed goes into
the cache without an exception.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from msal_async import TokenCache
from msal_async._managed_identity import sources

from ..hostile import fuzz_settings

NOW = 1_700_000_000
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=10)
    | st.sampled_from(["abc", "1700003600", "3600", "", "1e400", " 1 "])
)
JSON_ANY = st.recursive(
    SCALARS,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
    max_leaves=6,
)
VALID = st.fixed_dictionaries(
    {
        "access_token": st.text(min_size=1, max_size=8),
        "expires_on": st.integers(NOW - 10**5, NOW + 10**6).map(str),
        "expires_in": st.integers(0, 10**6).map(str),
    },
    optional={"token_type": st.text(max_size=8), "resource": st.text(max_size=8)},
)
FIELDS = [
    "access_token",
    "expires_on",
    "expires_in",
    "token_type",
    "resource",
    "error",
    "error_description",
    "statusCode",
    "message",
]
BENT = st.builds(
    lambda body, bent: {**body, **bent},
    VALID,
    st.dictionaries(st.sampled_from(FIELDS), JSON_ANY, min_size=1, max_size=3),
)
ANSWERS = (
    st.sampled_from([VALID, BENT, BENT]).flatmap(lambda s: s).map(json.dumps)
    | st.text(max_size=50)
    | JSON_ANY.map(json.dumps)
)
PARSERS = st.sampled_from(
    [(name, source.parse) for name, source in sorted(sources.SOURCES.items())]
)


@fuzz_settings()
@given(PARSERS, st.sampled_from([200, 400, 401, 404, 500]), ANSWERS)
def test_fuzz_managed_identity_answers(parser: Any, status: int, body: str) -> None:
    name, parse = parser
    try:
        result = parse(name, status, body, now=NOW)
    except ValueError:
        try:
            json.loads(body)
        except ValueError:
            return  # not JSON at all: msal's ValueError
        raise
    assert isinstance(result, dict)
    if "access_token" not in result:
        assert "error" in result
        return
    assert isinstance(result["access_token"], str)
    assert isinstance(result["expires_in"], int)
    TokenCache().add(
        {
            "client_id": "system_assigned_managed_identity",
            "scope": ["https://vault.azure.net"],
            "token_endpoint": "https://managed_identity/managed_identity",
            "response": result,
            "params": {},
            "data": {},
        },
        now=NOW,
    )
