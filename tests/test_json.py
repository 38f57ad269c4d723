"""The one JSON reader: bounded depth and size, finite numbers, msal's int fields, base64url."""

from __future__ import annotations

import base64
import json
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from msal_async import _json

from .hostile import DEEP, fuzz_settings

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**50), 10**50)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@pytest.mark.parametrize(
    "text",
    [DEEP, DEEP + "]" * 200_000, '{"a":' * 100_000 + "1" + "}" * 100_000, "[" * 65 + "]" * 65],
    ids=["200,000 unclosed", "200,000 balanced", "100,000 objects", "65 levels"],
)
def test_deep_nesting_is_refused_without_recursion_error(text: str) -> None:
    limit = sys.getrecursionlimit()
    with pytest.raises(_json.JSONInputError) as caught:
        _json.loads(text)
    assert caught.value.reason == "depth"
    assert sys.getrecursionlimit() == limit


def test_nesting_up_to_the_bound_is_read() -> None:
    assert _json.loads("[" * 64 + "]" * 64) is not None
    brackets_in_strings = json.dumps({"k": "[" * 1000, "e": '\\"[[[' * 100})
    assert _json.loads(brackets_in_strings)["k"] == "[" * 1000


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[1e400]", "number"),
        ("[-1e400]", "number"),
        ("[NaN]", "number"),
        ("[Infinity]", "number"),
        ("[" + "9" * 101 + "]", "number"),
        ("{", "syntax"),
        ("", "syntax"),
        ("\ufeff{}", "syntax"),
    ],
)
def test_numbers_that_break_msal_and_syntax_errors(text: str, reason: str) -> None:
    with pytest.raises(_json.JSONInputError) as caught:
        _json.loads(text)
    assert caught.value.reason == reason
    assert isinstance(caught.value, ValueError)  # what json.JSONDecodeError was


def test_size_and_encoding() -> None:
    with pytest.raises(_json.JSONInputError, match="larger") as caught:
        _json.loads(" " * 11 + "{}", limit=10)
    assert caught.value.reason == "size"
    with pytest.raises(_json.JSONInputError) as caught:
        _json.loads(b'{"a": "\xff"}')
    assert caught.value.reason == "encoding"
    assert _json.loads('{"a": "é"}'.encode()) == {"a": "é"}


def test_loads_object_names_what_it_read() -> None:
    with pytest.raises(_json.JSONInputError, match="the answer is JSON list") as caught:
        _json.loads_object("[]", what="the answer")
    assert caught.value.reason == "type"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3599, 3599), ("3599", 3599), (" 42 ", 42), (3599.9, 3599), (0, 0)],
)
def test_int_value_reads_what_msal_int_reads(value: object, expected: int) -> None:
    assert _json.int_value(value, what="expires_in") == expected


@pytest.mark.parametrize(
    "value",
    [None, True, "abc", "1.5", "", float("inf"), float("nan"), -1, 2**40, [1], {"a": 1}, "1" * 30],
)
def test_int_value_refuses_what_breaks_msal(value: object) -> None:
    with pytest.raises(_json.JSONInputError, match="expires_in") as caught:
        _json.int_value(value, what="expires_in")
    assert caught.value.reason == "number"


def test_b64url_object_is_as_lenient_as_msal() -> None:
    encoded = base64.urlsafe_b64encode(b'{"uid": "u", "utid": "t"}').decode()
    assert _json.b64url_object(encoded.rstrip("="), what="x") == {"uid": "u", "utid": "t"}
    assert _json.b64url_object(encoded, what="x") == {"uid": "u", "utid": "t"}
    assert _json.b64url_object("e30", what="x") == {}
    assert _json.b64url_object("e3 0 ", what="x") == {}  # the spaces are skipped, as by msal


@pytest.mark.parametrize("bad", ["!!!", "", "W10", 7, None], ids=repr)
def test_b64url_object_refuses_what_is_not_an_encoded_object(bad: object) -> None:
    with pytest.raises(_json.JSONInputError, match="client_info"):
        _json.b64url_object(bad, what="client_info")


@fuzz_settings()
@given(st.binary(max_size=512) | st.text(max_size=512).map(str.encode))
def test_fuzz_any_bytes_give_a_value_or_json_input_error(data: bytes) -> None:
    try:
        value = _json.loads(data)
    except _json.JSONInputError as exc:
        reason = exc.reason
    else:
        reason = "read"
        json.dumps(value, allow_nan=False)  # finite, re-encodable
    assert reason in ("read", "syntax", "depth", "size", "number", "encoding")


@fuzz_settings()
@given(JSON_VALUES)
def test_fuzz_every_json_value_within_bounds_reads_back(value: object) -> None:
    assert _json.loads(json.dumps(value)) == value


@fuzz_settings()
@given(st.text(alphabet='[]{}"\\,:1 ', max_size=300))
def test_fuzz_the_nesting_check_agrees_with_the_decoder(text: str) -> None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return
    depth = _depth(value)
    assert _json.nesting_within(text, 64) == (depth <= 64)
    assert _json.nesting_within(text, 3) == (depth <= 3)


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0
