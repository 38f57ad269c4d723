"""Constructor arguments: every wrong type or value raises at the call and names itself."""

from __future__ import annotations

import ssl
from typing import Any

import httpx
import pytest

from msal_async import (
    ClientApplication,
    ConfidentialClientApplication,
    PublicClientApplication,
    TokenCache,
)

AUTH = "https://login.microsoftonline.com/contoso.onmicrosoft.com"

BAD: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"client_id": 123}, TypeError, "client_id"),
    ({"client_id": "  "}, ValueError, "client_id"),
    ({"client_credential": 42}, TypeError, "client_credential"),
    ({"client_credential": ""}, ValueError, "client_credential"),
    ({"client_credential": {"nothing": "here"}}, ValueError, "client_credential"),
    ({"authority": "http://login.microsoftonline.com/t"}, ValueError, "https"),
    ({"authority": "https://login.microsoftonline.com"}, ValueError, "segment"),
    ({"authority": AUTH, "oidc_authority": "https://op.example"}, ValueError, "oidc_authority"),
    ({"validate_authority": "yes"}, TypeError, "validate_authority"),
    ({"token_cache": {}}, TypeError, "token_cache"),
    ({"http_client": httpx.Client()}, TypeError, "http_client"),
    ({"verify": 3}, TypeError, "verify"),
    ({"proxies": 8080}, TypeError, "proxies"),
    ({"proxies": {"ftp": "x"}}, TypeError, "proxies"),
    ({"timeout": "10"}, TypeError, "timeout"),
    ({"timeout": -1}, ValueError, "timeout"),
    ({"client_claims": "x"}, TypeError, "client_claims"),
    ({"app_name": 1}, TypeError, "app_name"),
    ({"app_version": 1.0}, TypeError, "app_version"),
    ({"client_capabilities": "CP1"}, TypeError, "client_capabilities"),
    ({"azure_region": "West US"}, ValueError, "azure_region"),
    ({"azure_region": 5}, TypeError, "azure_region"),
    ({"exclude_scopes": "offline_access"}, ValueError, "exclude_scopes"),
    ({"exclude_scopes": ["openid"]}, ValueError, "openid"),
    ({"http_cache": []}, TypeError, "http_cache"),
    ({"instance_discovery": 1}, TypeError, "instance_discovery"),
    ({"instance_discovery": "http://x"}, ValueError, "instance_discovery"),
    ({"enable_pii_log": "on"}, TypeError, "enable_pii_log"),
    ({"oidc_authority": 5}, TypeError, "oidc_authority"),
]


@pytest.mark.parametrize(("kwargs", "error", "names"), BAD, ids=[n for _, _, n in BAD])
def test_bad_argument_raises_naming_it(
    kwargs: dict[str, Any], error: type[Exception], names: str
) -> None:
    args = {"client_id": "cid", "client_credential": "secret", "authority": AUTH, **kwargs}
    if "oidc_authority" in kwargs and "authority" not in kwargs:
        args.pop("authority")
    with pytest.raises(error, match=names):
        ConfidentialClientApplication(**args)


def test_secret_never_in_error_messages() -> None:
    with pytest.raises(TypeError) as info:
        ConfidentialClientApplication("cid", client_credential="s3cr3t", verify=3)
    assert "s3cr3t" not in str(info.value)


def test_confidential_needs_a_credential_public_refuses_one() -> None:
    with pytest.raises(ValueError, match="client_credential"):
        ConfidentialClientApplication("cid")
    with pytest.raises(ValueError, match="credentials"):
        PublicClientApplication("cid", client_credential="s")


def test_allow_broker_is_deprecated_and_refused_for_confidential() -> None:
    with (
        pytest.warns(DeprecationWarning, match="allow_broker"),
        pytest.raises(ValueError, match="allow_broker"),
    ):
        ConfidentialClientApplication("cid", client_credential="s", allow_broker=True)


def test_broker_request_on_public_client_logs_and_falls_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = PublicClientApplication("cid", enable_broker_on_windows=True)
    assert "no broker" in caplog.text
    assert app.is_pop_supported() is False


def test_good_arguments_are_accepted_and_defaults_are_msals() -> None:
    app = ClientApplication(
        "cid",
        verify=ssl.create_default_context(),
        proxies={"https": "http://proxy:3128"},
        timeout=(3, 10),
        http_cache={},
        token_cache=TokenCache(),
        azure_region="westus",
        exclude_scopes=["offline_access"],
        client_capabilities=["CP1"],
        instance_discovery=False,
    )
    assert app.authority.instance == "login.microsoftonline.com"
    assert app.authority.tenant == "common"
    assert isinstance(app.token_cache, TokenCache)


@pytest.mark.anyio
async def test_bad_call_arguments() -> None:
    app = ConfidentialClientApplication("cid", client_credential="s", authority=AUTH)
    with pytest.raises(ValueError, match="force_refresh"):
        await app.acquire_token_for_client(["s/.default"], force_refresh=True)
    with pytest.raises(ValueError, match="scopes"):
        await app.acquire_token_for_client("s/.default")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fmi_path"):
        await app.acquire_token_for_client(["s/.default"], fmi_path=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="forwarded_client_claims"):
        await app.acquire_token_for_client(["s/.default"], forwarded_client_claims="{")
    with pytest.raises(TypeError, match="claims_challenge"):
        await app.acquire_token_for_client(["s/.default"], claims_challenge={"a": 1})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unexpected keyword"):
        await app.acquire_token_for_client(["s/.default"], nonsense=1)
    with pytest.raises(TypeError, match="data"):
        await app.acquire_token_for_client(["s/.default"], data="x=1")
    await app.aclose()


def test_a_proxy_password_never_reaches_the_message() -> None:
    with pytest.raises(TypeError, match="proxies") as info:
        ConfidentialClientApplication(
            "cid", client_credential="s", proxies={"https://": "http://bob:S3cret@proxy:3128"}
        )
    assert "S3cret" not in str(info.value)
