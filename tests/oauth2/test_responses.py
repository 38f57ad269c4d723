"""Token response parsing: results, msal-style error dicts for every malformed answer."""

from __future__ import annotations

import json

from msal_async._oauth2.responses import (
    cache_hit_result,
    check_token_fields,
    clean_result,
    parse_token_response,
)


def parse(status: int, body: str, **kw: object) -> dict[str, object]:
    return parse_token_response(status, body, correlation_id="corr", **kw)  # type: ignore[arg-type]


def test_success_passes_through_and_coerces_expires_in() -> None:
    raw = parse(200, json.dumps({"access_token": "a", "expires_in": "3599", "token_type": "B"}))
    assert raw == {"access_token": "a", "expires_in": 3599, "token_type": "B"}


def test_oauth_error_is_returned_with_correlation_id() -> None:
    raw = parse(400, json.dumps({"error": "invalid_client", "error_description": "bad"}))
    assert raw["error"] == "invalid_client"
    assert raw["correlation_id"] == "corr"


def test_5xx_with_json_error_keeps_it_and_without_becomes_server_error() -> None:
    assert parse(503, json.dumps({"error": "temporarily_unavailable"}))["error"] == (
        "temporarily_unavailable"
    )
    raw = parse(502, "<html>Bad gateway</html>", content_type="text/html")
    assert raw["error"] == "server_error"
    assert "502" in str(raw["error_description"])
    assert raw["correlation_id"] == "corr"


def test_non_json_truncated_missing_fields_and_huge_bodies() -> None:
    assert parse(200, '{"access_token": "a"')["error"] == "invalid_response"
    assert parse(200, "[1]")["error"] == "invalid_response"
    assert parse(200, "{}")["error"] == "invalid_response"
    assert parse(200, '{"access_token": "a", "expires_in": "soon"}')["error"] == (
        "invalid_response"
    )
    assert parse(200, "", too_large=True)["error"] == "invalid_response"
    assert parse(401, "{}")["error"] == "invalid_response"


def test_error_descriptions_never_echo_the_body() -> None:
    raw = parse(200, '{"access_token": "SECRET-TOKEN", "expires_in": "x"}')
    assert "SECRET-TOKEN" not in json.dumps(raw)


def test_clean_result_refresh_in_becomes_refresh_on() -> None:
    result = clean_result({"access_token": "a", "refresh_in": 100, "_x": 1}, now=1000.5)
    assert result == {"access_token": "a", "refresh_on": 1100, "token_source": "identity_provider"}
    assert "token_source" not in clean_result({"error": "e"}, now=0)


def test_cache_hit_result() -> None:
    entry = {"secret": "s", "expires_on": "2000", "refresh_on": "1500"}
    assert cache_hit_result(entry, now=1000.2) == {
        "access_token": "s",
        "token_type": "Bearer",
        "expires_in": 999,
        "token_source": "cache",
        "refresh_on": 1500,
    }


def test_numbers_msal_takes_are_normalized() -> None:
    payload = {"access_token": "a", "expires_in": "3599", "ext_expires_in": 7199.0}
    assert check_token_fields(payload) is None
    assert payload == {"access_token": "a", "expires_in": 3599, "ext_expires_in": 7199}
    assert check_token_fields({"access_token": "a", "refresh_in": True}) is not None
    assert check_token_fields({"access_token": "a", "expires_in": -1}) is not None
