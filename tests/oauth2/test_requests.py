"""Token request bodies: msal's field rules."""

from __future__ import annotations

from msal_async._oauth2.requests import build_token_request


def test_client_credentials_body() -> None:
    request = build_token_request(
        "https://h/t/oauth2/v2.0/token",
        client_id="cid",
        grant_type="client_credentials",
        scopes=["b", "a"],
        credential_fields={"client_secret": "s"},
        fields={"fmi_path": "p", "client_claims": '{"x":1}', "empty": ""},
        claims=None,
    )
    assert request.form == {
        "client_id": "cid",
        "grant_type": "client_credentials",
        "client_secret": "s",
        "client_info": "1",
        "scope": "a b",
        "fmi_path": "p",
    }


def test_claims_sent_when_present_and_fields_override() -> None:
    request = build_token_request(
        "u", client_id="c", grant_type="g", claims="{}", fields={"client_info": "0"}
    )
    assert request.form["claims"] == "{}"
    assert request.form["client_info"] == "0"
    assert "scope" not in request.form
