"""Claims: capabilities merged into claims challenges; forwarded claims deep-merged."""

from __future__ import annotations

import json

import pytest

from msal_async._oauth2.claims import merge_capabilities, merge_claims, parse_claims


def test_capabilities_alone() -> None:
    merged = merge_capabilities(["CP1"], None)
    assert merged is not None
    assert json.loads(merged) == {"access_token": {"xms_cc": {"values": ["CP1"]}}}


def test_capabilities_overwrite_xms_cc_and_keep_the_challenge() -> None:
    challenge = json.dumps({"access_token": {"nbf": {"essential": True}, "xms_cc": {"x": 1}}})
    merged = merge_capabilities(["CP1"], challenge)
    assert merged is not None
    assert json.loads(merged) == {
        "access_token": {"nbf": {"essential": True}, "xms_cc": {"values": ["CP1"]}}
    }


def test_no_capabilities_passes_challenge_through() -> None:
    assert merge_capabilities(None, '{"a": 1}') == '{"a": 1}'
    assert merge_capabilities([], None) is None


def test_deep_merge() -> None:
    merged = merge_claims('{"access_token": {"a": 1}}', '{"access_token": {"b": 2}, "id": 3}')
    assert merged is not None
    assert json.loads(merged) == {"access_token": {"a": 1, "b": 2}, "id": 3}
    assert merge_claims(None, "x") == "x"


@pytest.mark.parametrize("bad", ["not json", "[1, 2]", '"str"'])
def test_bad_claims_name_the_parameter(bad: str) -> None:
    with pytest.raises(ValueError, match="claims_challenge must be a JSON object"):
        parse_claims(bad)
