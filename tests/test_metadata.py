"""Discovery documents: instance discovery, OpenID configuration and aliases, parsed as msal."""

from __future__ import annotations

from typing import Any

import msal
import msal.authority as msal_authority
import pytest

from msal_async._authority import Authority, AuthorityEndpoints
from msal_async._metadata import (
    instance_metadata_request,
    parse_aliases,
    parse_instance_discovery,
    parse_openid_configuration,
)

from .test_authority import _RecordingHttpClient, _Response

GUID = "72f988bf-86f1-41af-91ab-2d7cd011db47"

# --- response parsing ---


def test_parse_openid_configuration_rederives_the_tenant() -> None:
    a = Authority.parse("https://login.microsoftonline.com/contoso.onmicrosoft.com")
    endpoints = parse_openid_configuration(
        a,
        {
            "authorization_endpoint": f"https://login.microsoftonline.com/{GUID}/oauth2/v2.0/authorize",
            "token_endpoint": f"https://login.microsoftonline.com/{GUID}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"https://login.microsoftonline.com/{GUID}/oauth2/v2.0/devicecode",
            "issuer": f"https://login.microsoftonline.com/{GUID}/v2.0",
            "unrelated": 1,
        },
    )
    assert endpoints == AuthorityEndpoints(
        token_endpoint=f"https://login.microsoftonline.com/{GUID}/oauth2/v2.0/token",
        authorization_endpoint=f"https://login.microsoftonline.com/{GUID}/oauth2/v2.0/authorize",
        device_authorization_endpoint=f"https://login.microsoftonline.com/{GUID}/oauth2/v2.0/devicecode",
        issuer=f"https://login.microsoftonline.com/{GUID}/v2.0",
        tenant=GUID,
        instance="login.microsoftonline.com",
    )


def test_parse_openid_configuration_optional_fields() -> None:
    a = Authority.parse("https://contoso.com/adfs")
    endpoints = parse_openid_configuration(
        a,
        {
            "authorization_endpoint": "https://contoso.com/adfs/oauth2/authorize",
            "token_endpoint": "https://contoso.com/adfs/oauth2/token",
        },
    )
    assert endpoints.device_authorization_endpoint is None
    assert endpoints.issuer is None
    assert endpoints.tenant == "adfs"


@pytest.mark.parametrize(
    "payload",
    [
        [],
        "text",
        {"token_endpoint": "https://h/t/token"},
        {"authorization_endpoint": "https://h/t/authorize"},
        {"authorization_endpoint": 1, "token_endpoint": "https://h/t/token"},
    ],
)
def test_parse_openid_configuration_rejects_unusable_documents(payload: Any) -> None:
    a = Authority.parse("https://login.microsoftonline.com/nope")
    with pytest.raises(ValueError, match="Unable to get authority configuration for") as error:
        parse_openid_configuration(a, payload)
    assert "https://login.microsoftonline.com/nope" in str(error.value)
    assert "double check your tenant name or GUID" in str(error.value)


def test_configuration_error_message_for_oidc() -> None:
    a = Authority.parse(None, oidc_authority_url="https://contoso.com/t")
    assert str(a.configuration_error()).startswith(
        "Unable to get OIDC authority configuration for https://contoso.com/t because"
    )


def test_parse_instance_discovery() -> None:
    a = Authority.parse("https://example.com/tenant_doesnt_matter_in_this_case")
    assert parse_instance_discovery(a, {"tenant_discovery_endpoint": "https://td/x"}) == (
        "https://td/x"
    )
    with pytest.raises(ValueError, match=r"^invalid_instance: The authority you provided") as e:
        parse_instance_discovery(a, {"error": "invalid_instance", "error_description": "x"})
    assert "https://example.com/tenant_doesnt_matter_in_this_case" in str(e.value)
    assert "instance_discovery=False" in str(e.value)
    bad_payloads: list[Any] = [{}, [], {"tenant_discovery_endpoint": ""}, {"error": "other"}]
    for bad in bad_payloads:
        with pytest.raises(ValueError, match="no tenant_discovery_endpoint"):
            parse_instance_discovery(a, bad)


def test_invalid_instance_message_matches_msal() -> None:
    url = "https://example.com/tenant"

    class InvalidInstance(_RecordingHttpClient):
        def get(self, url: str, params: dict[str, str] | None = None, **_: Any) -> _Response:
            return _Response(400, {"error": "invalid_instance"})

    with pytest.raises(ValueError, match="invalid_instance") as msal_error:
        msal_authority.Authority(url, InvalidInstance())
    with pytest.raises(ValueError, match="invalid_instance") as error:
        parse_instance_discovery(Authority.parse(url), {"error": "invalid_instance"})
    assert str(error.value) == str(msal_error.value)


def test_instance_metadata_request_matches_msal() -> None:
    for instance in ("login.microsoftonline.com", "login.microsoftonline.us", "private.cloud"):
        client = _RecordingHttpClient()  # a fresh app each time: msal caches GETs for 24 h
        app = msal.ClientApplication(
            "id", authority="https://login.microsoftonline.com/common", http_client=client
        )
        client.gets.clear()
        app._get_instance_metadata(instance)
        url, params = instance_metadata_request(instance)
        assert client.gets == [(url, params)]


def test_parse_aliases() -> None:
    payload = {
        "tenant_discovery_endpoint": "ignored",
        "api-version": "1.1",
        "metadata": [
            {
                "preferred_network": "login.microsoftonline.com",
                "preferred_cache": "login.windows.net",
                "aliases": ["login.microsoftonline.com", "login.windows.net", "sts.windows.net"],
            },
            {"aliases": ["login.microsoftonline.us"]},
        ],
    }
    assert parse_aliases(payload) == [
        ["login.microsoftonline.com", "login.windows.net", "sts.windows.net"],
        ["login.microsoftonline.us"],
    ]
    assert parse_aliases({"metadata": []}) == []
    bad_payloads: list[Any] = [
        {},
        [],
        {"metadata": {}},
        {"metadata": [{"x": 1}]},
        {"metadata": ["h"]},
    ]
    for bad in bad_payloads:
        with pytest.raises(ValueError, match="Instance metadata"):
            parse_aliases(bad)
