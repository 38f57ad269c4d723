"""Token request bodies: msal's field rules, and a caller's data= never overriding the request."""

from __future__ import annotations

import pytest

from msal_async._oauth2 import grants
from msal_async._oauth2.requests import CallOptions, build_token_request


def test_client_credentials_body() -> None:
    request = build_token_request(
        "https://h/t/oauth2/v2.0/token",
        grant=grants.CLIENT_CREDENTIALS,
        client_id="cid",
        scopes=["b", "a"],
        data={"fmi_path": "p", "client_claims": '{"x":1}', "empty": ""},
        claims=None,
    )
    assert request.form == {
        "client_id": "cid",
        "grant_type": "client_credentials",
        "client_info": "1",
        "scope": "a b",
        "fmi_path": "p",
    }


def test_claims_sent_when_present_and_no_scope_without_scopes() -> None:
    request = build_token_request("u", grant=grants.DEVICE_CODE, client_id="c", claims="{}")
    assert request.form["claims"] == "{}"
    assert "scope" not in request.form


@pytest.mark.parametrize(
    "field",
    [
        "client_id",
        "grant_type",
        "scope",
        "claims",
        "client_info",
        "client_secret",
        "client_assertion",
        "client_assertion_type",
    ],
)
def test_data_cannot_override_the_requests_own_fields(field: str) -> None:
    request = build_token_request(
        "u",
        grant=grants.CLIENT_CREDENTIALS,
        client_id="cid",
        scopes=["api://a/.default"],
        data={field: "evil", "foo": "bar"},
    )
    assert request.form.get(field) != "evil"
    assert request.form["foo"] == "bar"  # other extras still go


def test_data_cannot_set_the_grants_own_fields() -> None:
    request = build_token_request(
        "u",
        grant=grants.USER_FIC,
        client_id="cid",
        scopes=["s"],
        data={"user_id": "someone-else", "username": "x"},
        fields={"user_federated_identity_credential": "fic", "username": "alice"},
    )
    assert request.form["username"] == "alice"
    assert "user_id" not in request.form


def test_per_call_headers_and_params_and_the_flight_key() -> None:
    options = CallOptions(params={"p": "1"}, headers={"X-Custom": "a", "X-AnchorMailbox": "x"})
    request = build_token_request(
        "u",
        grant=grants.PASSWORD,
        client_id="cid",
        scopes=["s"],
        headers={"X-AnchorMailbox": "upn:alice"},
        options=options,
    )
    assert request.params == {"p": "1"}
    assert request.headers == {"x-custom": "a", "x-anchormailbox": "upn:alice"}  # ours win
    plain = build_token_request("u", grant=grants.PASSWORD, client_id="cid", scopes=["s"])
    assert request.flight_key() != plain.flight_key()
