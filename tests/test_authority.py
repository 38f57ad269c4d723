"""Authority parsing, kinds, discovery URLs, issuer rules and realm hints match msal 1.39, offline."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import msal
import msal.authority as msal_authority
import pytest

from msal_async import _authority as ours
from msal_async._authority import Authority, AuthorityBuilder, AuthorityEndpoints, canonicalize
from msal_async._metadata import parse_openid_configuration

GUID = "72f988bf-86f1-41af-91ab-2d7cd011db47"


# --- a recording http client for the real msal (the parity peer), never for our code ---


class _Response:
    def __init__(self, status_code: int, payload: Any) -> None:
        self.status_code = status_code
        self.text = json.dumps(payload)
        self.headers: dict[str, str] = {}

    def raise_for_status(self) -> None:
        """Never raises: the tests feed only successful answers."""


class _RecordingHttpClient:
    """What msal sees as its ``http_client``: records each GET and answers canned JSON."""

    def __init__(self, openid_configuration: Mapping[str, Any] | None = None) -> None:
        self.gets: list[tuple[str, dict[str, str] | None]] = []
        self.openid_configuration = dict(
            openid_configuration
            or {
                "authorization_endpoint": "https://example.test/T/oauth2/v2.0/authorize",
                "token_endpoint": "https://example.test/T/oauth2/v2.0/token",
                "issuer": "https://example.test/T/v2.0",
            }
        )

    def get(self, url: str, params: dict[str, str] | None = None, **_: Any) -> _Response:
        self.gets.append((url, params))
        if params and "authorization_endpoint" in params:  # instance discovery
            if params.get("api-version") == "1.1":
                return _Response(200, {"metadata": []})
            return _Response(200, {"tenant_discovery_endpoint": "https://td.example.test/x"})
        return _Response(200, self.openid_configuration)

    def post(self, *_: Any, **__: Any) -> _Response:
        raise AssertionError("authority handling never POSTs")

    def close(self) -> None:
        """Nothing to close."""


def _configuration(*, issuer: str | None) -> dict[str, Any]:
    return {
        "authorization_endpoint": "https://contoso.com/tenant/authorize",
        "token_endpoint": "https://contoso.com/tenant/token",
        "issuer": issuer,
    }


def _msal_authority(url: Any, **kwargs: Any) -> tuple[Any, _RecordingHttpClient]:
    client = _RecordingHttpClient()
    return msal_authority.Authority(url, client, **kwargs), client


# --- constants ---


def test_constants_match_msal() -> None:
    for name in (
        "AZURE_PUBLIC",
        "AZURE_US_GOVERNMENT",
        "DEPRECATED_AZURE_CHINA",
        "AZURE_GOV_FR",
        "AZURE_GOV_DE",
        "AZURE_GOV_SG",
        "WORLD_WIDE",
        "WELL_KNOWN_AUTHORITY_HOSTS",
        "WELL_KNOWN_B2C_HOSTS",
    ):
        assert getattr(ours, name) == getattr(msal_authority, name), name


def test_authority_builder_renders_like_msal() -> None:
    for host, tenant in [
        (ours.AZURE_PUBLIC, "consumers"),
        (ours.AZURE_US_GOVERNMENT + "/", "/common/"),
        (ours.DEPRECATED_AZURE_CHINA, "organizations"),
    ]:
        assert str(AuthorityBuilder(host, tenant)) == str(
            msal_authority.AuthorityBuilder(host, tenant)
        )
    assert repr(AuthorityBuilder("h", "t")) == "AuthorityBuilder('h', 't')"


# --- canonicalize (msal's TestAuthorityInternalHelperCanonicalize) ---


@pytest.mark.parametrize(
    ("url", "instance", "tenant"),
    [
        ("https://example.com/tenant/subpath?foo=bar#fragment", "example.com", "tenant"),
        ("https://example.com/tenant?foo=bar#fragment", "example.com", "tenant"),
        ("https://example.com/tenant#fragment", "example.com", "tenant"),
        ("https://Login.MicrosoftOnline.COM:443/Common", "login.microsoftonline.com", "Common"),
        ("https://contoso.ciamlogin.com", "contoso.ciamlogin.com", "contoso.onmicrosoft.com"),
        ("https://contoso.ciamlogin.com/", "contoso.ciamlogin.com", "contoso.onmicrosoft.com"),
        ("https://contoso.ciamlogin.com/anything", "contoso.ciamlogin.com", "anything"),
    ],
)
def test_canonicalize(url: str, instance: str, tenant: str) -> None:
    parsed, got_instance, got_tenant = canonicalize(url)
    assert (got_instance, got_tenant) == (instance, tenant)
    assert (parsed, got_instance, got_tenant) == msal_authority.canonicalize(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://non.https.example.com/tenant",
        "https://no.tenant.example.com",
        "https://no.tenant.example.com/",
        "https:///tenant",
        "login.microsoftonline.com/common",
        "",
    ],
)
def test_canonicalize_rejects_like_msal(url: str) -> None:
    with pytest.raises(ValueError, match="should consist of an https url") as ours_error:
        canonicalize(url)
    with pytest.raises(ValueError, match="should consist") as msal_error:
        msal_authority.canonicalize(url)
    assert str(ours_error.value) == str(msal_error.value)


# --- Authority.parse: parity with msal.authority.Authority on kinds and discovery URLs ---

PARITY_CASES: list[tuple[str, dict[str, Any]]] = [
    *[(f"https://{host}/common", {}) for host in sorted(msal_authority.WELL_KNOWN_AUTHORITY_HOSTS)],
    ("https://login.microsoftonline.com/common/", {}),
    ("https://login.microsoftonline.com/organizations", {}),
    (f"https://login.microsoftonline.com/{GUID}", {}),
    ("https://Login.MicrosoftOnline.com:443/Contoso.onmicrosoft.com?x=1#f", {}),
    ("https://login.microsoftonline.us/common", {"validate_authority": False}),
    ("https://contoso.ciamlogin.com", {}),
    ("https://contoso.ciamlogin.com/", {}),
    ("https://contoso.ciamlogin.com/anything", {}),
    ("https://contoso.ciamlogin.com/adfs", {}),
    ("https://contoso.com/adfs", {}),
    ("https://contoso.com/ADFS/", {}),
    ("https://contoso.b2clogin.com/contoso.onmicrosoft.com/B2C_1_signin", {}),
    ("https://login.b2clogin.com/contoso/b2c_policy", {}),
    ("https://fabrikam.com/contoso/B2C_1_policy", {}),
    ("https://fabrikam.com/contoso/B2C_1_policy/extra", {}),
    ("https://fakeb2clogin.com/contoso/policy", {}),
    ("https://private.cloud/foo", {}),
    ("https://private.cloud:8443/foo/bar?q=1", {}),
    ("https://private.cloud/foo", {"validate_authority": False}),
    ("https://private.cloud/foo", {"instance_discovery": False}),
    ("https://private.cloud/foo", {"instance_discovery": True}),
    ("https://private.cloud/foo", {"instance_discovery": "https://custom.test/discover"}),
    ("https://private.cloud/foo", {"instance_discovery": ""}),
    ("https://login.microsoftonline.com/common", {"instance_discovery": False}),
]


@pytest.mark.parametrize(("url", "kwargs"), PARITY_CASES)
def test_parse_matches_msal(url: str, kwargs: dict[str, Any]) -> None:
    a = Authority.parse(url, **kwargs)
    peer, client = _msal_authority(url, **kwargs)
    assert a.instance == peer.instance
    assert a.is_adfs == peer.is_adfs
    assert a.is_b2c == peer._is_b2c
    assert a.known_to_developer == peer._is_known_to_developer
    assert a.tenant == canonicalize(url)[2]
    assert not a.is_oidc
    if a.needs_instance_discovery:
        assert len(client.gets) == 2
        assert client.gets[0] == (a.instance_discovery_url, a.instance_discovery_params)
    else:
        assert client.gets == [(a.tenant_discovery_url, None)]


def test_parse_accepts_authority_builder() -> None:
    a = Authority.parse(AuthorityBuilder(ours.AZURE_US_GOVERNMENT, "common"))
    assert a.url == "https://login.microsoftonline.us/common"
    assert a.tenant_discovery_url == (
        "https://login.microsoftonline.us/common/v2.0/.well-known/openid-configuration"
    )


def test_default_authority_is_common_with_msal_double_slash() -> None:
    a = Authority.parse(None)
    assert a.url == "https://login.microsoftonline.com/common/"
    # msal appends to the path as given, so the trailing slash survives on the wire.
    assert a.tenant_discovery_url == (
        "https://login.microsoftonline.com/common//v2.0/.well-known/openid-configuration"
    )
    assert Authority.parse("") == a


def test_discovery_urls_for_each_kind() -> None:
    def url_of(authority: str) -> str:
        return Authority.parse(authority).tenant_discovery_url

    oidc = "/.well-known/openid-configuration"
    assert url_of("https://contoso.ciamlogin.com") == (
        f"https://contoso.ciamlogin.com/contoso.onmicrosoft.com/v2.0{oidc}"
    )
    assert url_of("https://contoso.ciamlogin.com/anything") == (
        f"https://contoso.ciamlogin.com/anything/v2.0{oidc}"
    )
    assert url_of("https://contoso.com/adfs") == f"https://contoso.com/adfs{oidc}"
    assert url_of("https://x.b2clogin.com/x.onmicrosoft.com/B2C_1_p") == (
        f"https://x.b2clogin.com/x.onmicrosoft.com/B2C_1_p/v2.0{oidc}"
    )
    assert url_of("https://Login.MicrosoftOnline.com:444/t?dc=ESTS-PUB#f") == (
        f"https://Login.MicrosoftOnline.com:444/t/v2.0{oidc}?dc=ESTS-PUB#f"
    )


def test_instance_discovery_request() -> None:
    a = Authority.parse("https://private.cloud:8443/foo/bar")
    assert a.needs_instance_discovery
    assert a.instance_discovery_url == "https://login.microsoftonline.com/common/discovery/instance"
    assert a.instance_discovery_params == {
        "authorization_endpoint": "https://private.cloud/foo/bar/oauth2/v2.0/authorize",
        "api-version": "1.0",
    }
    custom = Authority.parse("https://private.cloud/foo", instance_discovery="https://d.test/i")
    assert custom.instance_discovery_url == "https://d.test/i"
    assert custom.needs_instance_discovery
    assert Authority.parse("https://login.microsoftonline.us/t").instance_discovery_url == (
        "https://login.microsoftonline.us/common/discovery/instance"
    )


@pytest.mark.parametrize(
    ("url", "kwargs"),
    [
        ("https://login.microsoftonline.com/common", {}),  # known to Microsoft
        ("https://contoso.com/adfs", {}),  # ADFS
        ("https://login.b2clogin.com/contoso/b2c_policy", {}),  # B2C
        ("https://contoso.ciamlogin.com", {}),  # CIAM
        ("https://private.cloud/foo", {"validate_authority": False}),
        ("https://private.cloud/foo", {"instance_discovery": False}),
    ],
)
def test_instance_discovery_is_skipped(url: str, kwargs: dict[str, Any]) -> None:
    assert not Authority.parse(url, **kwargs).needs_instance_discovery


@pytest.mark.parametrize(
    ("url", "kwargs", "uses_aliases"),
    [
        ("https://login.microsoftonline.com/common", {}, True),
        ("https://private.cloud/foo", {}, True),
        ("https://contoso.com/common", {"validate_authority": False}, False),
        ("https://contoso.com/adfs", {}, False),
        ("https://login.b2clogin.com/contoso/b2c_policy", {}, False),
        ("https://login.microsoftonline.com/common", {"instance_discovery": False}, False),
        ("https://private.cloud/foo", {"instance_discovery": False}, False),
    ],
)
def test_alias_lookup_rule(url: str, kwargs: dict[str, Any], uses_aliases: bool) -> None:
    """msal's TestMsalBehaviorsWithoutAndWithInstanceDiscoveryBoolean, as a pure rule."""
    assert Authority.parse(url, **kwargs).uses_aliases is uses_aliases
    assert Authority.parse(oidc_authority_url="https://contoso.com/tenant").uses_aliases is False


def test_authority_is_a_frozen_hashable_value() -> None:
    a = Authority.parse("https://login.microsoftonline.com/common")
    assert a == Authority.parse("https://login.microsoftonline.com/common")
    assert hash(a) == hash(Authority.parse("https://login.microsoftonline.com/common"))
    assert a != Authority.parse(
        "https://login.microsoftonline.com/common", instance_discovery=False
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.tenant = "x"  # type: ignore[misc]


# --- errors ---


@pytest.mark.parametrize(
    "url",
    ["http://login.microsoftonline.com/common", "https://login.microsoftonline.com", "https://"],
)
def test_bad_authority_raises_msal_message(url: str) -> None:
    with pytest.raises(ValueError, match="should consist of an https url") as error:
        Authority.parse(url)
    with pytest.raises(ValueError, match="should consist") as msal_error:
        _msal_authority(url)
    assert str(error.value) == str(msal_error.value)


def test_both_authority_and_oidc_authority_raise_like_msal() -> None:
    message = "You can not provide both authority and oidc_authority"
    with pytest.raises(ValueError, match=message):
        Authority.parse(
            "https://login.microsoftonline.com/common", oidc_authority_url="https://c/t"
        )
    with pytest.raises(ValueError, match=message):
        msal.ClientApplication(
            "id",
            authority="https://login.microsoftonline.com/common",
            oidc_authority="https://c/t",
            http_client=_RecordingHttpClient(),
        )


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"authority_url": 42}, "authority="),
        ({"authority_url": None, "oidc_authority_url": b"https://c/t"}, "oidc_authority="),
        ({"authority_url": None, "instance_discovery": 1.5}, "instance_discovery="),
    ],
)
def test_wrong_types_raise_type_error_naming_the_parameter(
    kwargs: dict[str, Any], name: str
) -> None:
    with pytest.raises(TypeError, match=name):
        Authority.parse(**kwargs)


# --- OIDC authority and dSTS ---


def test_oidc_authority() -> None:
    a = Authority.parse(None, oidc_authority_url="https://contoso.com/tenant")
    assert a.is_oidc
    assert a.is_b2c
    assert a.known_to_developer
    assert not a.needs_instance_discovery
    assert (a.instance, a.tenant) == ("contoso.com", "tenant")
    # No "/v2.0" for a generic OIDC authority (msal's OidcAuthorityTestCase).
    assert a.tenant_discovery_url == "https://contoso.com/tenant/.well-known/openid-configuration"
    client = _RecordingHttpClient(_configuration(issuer="https://contoso.com/tenant"))
    msal_authority.Authority(None, client, oidc_authority_url="https://contoso.com/tenant")
    assert client.gets == [(a.tenant_discovery_url, None)]


def test_oidc_authority_needs_a_path_like_msal() -> None:
    with pytest.raises(ValueError, match="should consist"):
        Authority.parse(None, oidc_authority_url="https://accounts.example.com")


def test_oidc_adfs_flag() -> None:
    assert Authority.parse(None, oidc_authority_url="https://contoso.com/adfs").is_adfs


def test_dsts_authority_is_treated_as_oidc() -> None:
    """msal's DstsAuthorityTestCase."""
    url = "https://test-instance1-dsts.dsts.core.azure-test.net/dstsv2/common"
    a = Authority.parse(url)
    assert a.is_oidc
    assert a.tenant_discovery_url == url + "/.well-known/openid-configuration"
    client = _RecordingHttpClient(_configuration(issuer=url))
    msal.ClientApplication("id", authority=url, http_client=client)
    assert client.gets == [(a.tenant_discovery_url, None)]
    # An AuthorityBuilder is never treated as dSTS, as in msal.
    built = Authority.parse(AuthorityBuilder("dsts.example.com", "dstsv2/common"))
    assert not built.is_oidc


# --- realm hints ---


@pytest.mark.parametrize(
    ("url", "kwargs", "realm"),
    [
        ("https://login.microsoftonline.com/common", {}, "common"),
        ("https://login.microsoftonline.com/Organizations", {}, "organizations"),
        ("https://login.microsoftonline.com/consumers/", {}, "consumers"),
        (f"https://login.microsoftonline.com/{GUID.upper()}", {}, GUID),
        (f"https://private.cloud/{GUID}", {}, GUID),
        ("https://contoso.com/adfs", {}, "adfs"),
        ("https://x.b2clogin.com/x.onmicrosoft.com/B2C_1_p", {}, "x.onmicrosoft.com"),
        ("https://login.microsoftonline.com/contoso.onmicrosoft.com", {}, None),
        ("https://contoso.ciamlogin.com", {}, None),
        ("https://contoso.ciamlogin.com/contoso.onmicrosoft.com", {}, None),
        ("https://login.microsoftonline.com/not-a-guid-1234", {}, None),
        (None, {"oidc_authority_url": "https://contoso.com/common"}, None),
    ],
)
def test_realm_hint(url: str | None, kwargs: dict[str, Any], realm: str | None) -> None:
    assert Authority.parse(url, **kwargs).realm_hint == realm


# --- region ---


@pytest.mark.parametrize(
    ("host", "regional"),
    [
        ("login.microsoftonline.com", "westus.login.microsoft.com"),
        ("login.microsoft.com", "westus.login.microsoft.com"),
        ("login.windows.net", "westus.login.microsoft.com"),
        ("sts.windows.net", "westus.login.microsoft.com"),
        ("login.microsoftonline.us", "westus.login.microsoftonline.us"),
        ("login.chinacloudapi.cn", "westus.login.chinacloudapi.cn"),
        ("private.cloud", "westus.private.cloud"),
    ],
)
def test_regional_host(host: str, regional: str) -> None:
    assert Authority.parse(f"https://{host}/common").regional_host("westus") == regional


def test_for_region_uses_central_tenant_and_no_instance_discovery() -> None:
    central = Authority.parse("https://login.microsoftonline.com/contoso.onmicrosoft.com")
    regional = central.for_region("eastus", tenant=GUID)
    assert regional.url == f"https://eastus.login.microsoft.com/{GUID}"
    assert regional.instance_discovery is False
    assert not regional.needs_instance_discovery
    assert regional.tenant_discovery_url == (
        f"https://eastus.login.microsoft.com/{GUID}/v2.0/.well-known/openid-configuration"
    )
    assert central.for_region("eastus").tenant == "contoso.onmicrosoft.com"


# --- issuer rules (msal's has_valid_issuer), checked against msal itself ---

ISSUER_CASES: list[tuple[str, str | None, bool]] = [
    ("https://contoso.com/tenant", "https://contoso.com/tenant", True),  # exact
    ("https://contoso.com/tenant", "https://contoso.com/tenant/", True),  # trailing slash
    ("https://contoso.com/tenant/", "https://contoso.com/tenant", True),
    ("https://contoso.com/tenant", "https://login.microsoftonline.com/x/v2.0", True),  # known
    ("https://contoso.com/tenant", "https://LOGIN.MICROSOFTONLINE.US/x", True),
    ("https://contoso.com/tenant", "https://westus2.login.microsoft.com/x", True),  # regional
    ("https://contoso.com/tenant", "https://us.contoso.com/x", True),  # {x}.{authority host}
    ("https://contoso.com/tenant", "https://a.b.contoso.com/x", False),
    ("https://contoso.com/tenant", "https://contoso.com/other/v2.0", True),  # same netloc
    ("https://contoso.com/tenant", "http://contoso.com/tenant/v2.0", False),  # scheme differs
    ("https://contoso.com:8443/tenant", "https://contoso.com/tenant/v2.0", False),  # port
    ("https://contoso.com/tenant", "https://tenant.b2clogin.com/x", True),  # B2C subdomain
    ("https://contoso.com/tenant", "https://t.ciamlogin.com/x", True),
    ("https://contoso.com/tenant", "https://fakeb2clogin.com/x", False),
    ("https://contoso.com/tenant", "https://evil.example/tenant", False),
    ("https://contoso.com/tenant", "not a url", False),
    ("https://contoso.com/tenant", "", False),
    ("https://contoso.com/tenant", None, False),
]


@pytest.mark.parametrize(("authority", "issuer", "valid"), ISSUER_CASES)
def test_has_valid_issuer_matches_msal(authority: str, issuer: str | None, valid: bool) -> None:
    a = Authority.parse(None, oidc_authority_url=authority)
    assert a.has_valid_issuer(issuer) is valid
    config = _configuration(issuer=issuer)
    if valid:
        msal_authority.Authority(None, _RecordingHttpClient(config), oidc_authority_url=authority)
    else:
        with pytest.raises(ValueError, match="does not match the authority") as msal_error:
            msal_authority.Authority(
                None, _RecordingHttpClient(config), oidc_authority_url=authority
            )
        with pytest.raises(ValueError, match="does not match the authority") as error:
            parse_openid_configuration(a, config)
        assert str(error.value) == str(msal_error.value)


def test_non_oidc_authority_never_validates_an_issuer() -> None:
    a = Authority.parse("https://login.microsoftonline.com/common")
    assert not a.has_valid_issuer("https://login.microsoftonline.com/common")


# --- endpoints learned by discovery (msal's Authority attributes) ---


def test_endpoints_are_readable_once_learned_and_identity_is_unchanged() -> None:
    url = f"https://login.microsoftonline.com/{GUID}"
    first, second = Authority.parse(url), Authority.parse(url)
    for name in ("token_endpoint", "authorization_endpoint", "device_authorization_endpoint"):
        with pytest.raises(AttributeError, match=r"await app\.prefetch\(\)"):
            getattr(first, name)
    first.learn(
        AuthorityEndpoints(
            token_endpoint=f"{url}/oauth2/v2.0/token",
            authorization_endpoint=f"{url}/oauth2/v2.0/authorize",
            device_authorization_endpoint=None,
            issuer=None,
            tenant=GUID,
            instance="login.microsoftonline.com",
        )
    )
    assert first.token_endpoint == f"{url}/oauth2/v2.0/token"
    assert first.authorization_endpoint == f"{url}/oauth2/v2.0/authorize"
    assert first.device_authorization_endpoint is None
    assert first == second
    assert hash(first) == hash(second)
    assert {second: "found"}[first] == "found"
    assert not hasattr(second, "token_endpoint")  # learned per object
    assert "_learned" not in repr(first)
