"""Authority value object: parse and validate an authority URL without any I/O.

Mirrors msal 1.39 ``msal/authority.py`` plus the authority parts of
``ClientApplication.__init__`` (dSTS, ``oidc_authority``) and ``_get_regional_authority``.
The network half (instance discovery, OIDC discovery) lives in ``_discovery`` and the parsing
of its documents in ``_metadata``, so every rule is testable offline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import ParseResult, urlparse

__all__ = [
    "AZURE_GOV_DE",
    "AZURE_GOV_FR",
    "AZURE_GOV_SG",
    "AZURE_PUBLIC",
    "AZURE_US_GOVERNMENT",
    "DEPRECATED_AZURE_CHINA",
    "WELL_KNOWN_AUTHORITY_HOSTS",
    "WELL_KNOWN_B2C_HOSTS",
    "WORLD_WIDE",
    "Authority",
    "AuthorityBuilder",
    "AuthorityEndpoints",
    "canonicalize",
    "discovery_host",
]

# National clouds: https://learn.microsoft.com/entra/identity-platform/authentication-national-cloud
AZURE_US_GOVERNMENT = "login.microsoftonline.us"
DEPRECATED_AZURE_CHINA = "login.chinacloudapi.cn"
AZURE_PUBLIC = "login.microsoftonline.com"
AZURE_GOV_FR = "login.sovcloud-identity.fr"
AZURE_GOV_DE = "login.sovcloud-identity.de"
AZURE_GOV_SG = "login.sovcloud-identity.sg"
WORLD_WIDE = "login.microsoftonline.com"

WELL_KNOWN_AUTHORITY_HOSTS = frozenset(
    {
        WORLD_WIDE,
        "login.microsoft.com",
        "login.windows.net",
        "sts.windows.net",
        DEPRECATED_AZURE_CHINA,
        "login.partner.microsoftonline.cn",
        "login.microsoftonline.de",
        "login-us.microsoftonline.com",
        AZURE_US_GOVERNMENT,
        "login.usgovcloudapi.net",
        AZURE_GOV_FR,
        AZURE_GOV_DE,
        AZURE_GOV_SG,
    }
)

WELL_KNOWN_B2C_HOSTS = [
    "b2clogin.com",
    "b2clogin.cn",
    "b2clogin.us",
    "b2clogin.de",
    "ciamlogin.com",
]

_CIAM_SUFFIX = ".ciamlogin.com"
_DEFAULT_AUTHORITY = f"https://{WORLD_WIDE}/common/"
# The central hosts whose regional (ESTS-R) endpoint is {region}.login.microsoft.com.
_REGIONAL_PUBLIC_HOSTS = frozenset(
    {"login.microsoftonline.com", "login.microsoft.com", "login.windows.net", "sts.windows.net"}
)
_WELL_KNOWN_TENANTS = frozenset({"common", "organizations", "consumers"})
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_OIDC_CONFIG = "/.well-known/openid-configuration"


def discovery_host(instance: str) -> str:
    """The host that answers instance discovery for ``instance``.

    Returns:
        ``instance`` when it is a well-known cloud, else ``login.microsoftonline.com``.
    """
    return instance if instance in WELL_KNOWN_AUTHORITY_HOSTS else WORLD_WIDE


class AuthorityBuilder:
    """Build an authority URL from a host and a tenant, as ``msal.authority.AuthorityBuilder``.

    Args:
        instance: The host, such as ``AZURE_PUBLIC``; a trailing ``/`` is dropped.
        tenant: The tenant, such as ``"common"`` or a GUID; surrounding ``/`` are dropped.
    """

    def __init__(self, instance: str, tenant: str) -> None:
        self._instance = instance.rstrip("/")
        self._tenant = tenant.strip("/")

    def __str__(self) -> str:
        """Return ``https://{instance}/{tenant}``."""
        return f"https://{self._instance}/{self._tenant}"

    def __repr__(self) -> str:
        """Return a constructor-like representation."""
        return f"AuthorityBuilder({self._instance!r}, {self._tenant!r})"


def canonicalize(url: str) -> tuple[ParseResult, str, str]:
    """Split an authority (or endpoint) URL into its parts, as msal's ``canonicalize``.

    Args:
        url: An https URL with a host and at least one path segment; a path-less
            ``*.ciamlogin.com`` URL is accepted and gets ``{subdomain}.onmicrosoft.com``.

    Returns:
        ``(parsed_url, instance, tenant)``: ``instance`` is the host name in lower case
        (without the port); ``tenant`` is the first path segment.

    Raises:
        ValueError: The URL is not https, has no host, or has no path segment.
    """
    parsed = urlparse(url)
    host = parsed.hostname
    if parsed.scheme == "https" and host:
        segments = parsed.path.split("/")
        first = segments[1] if len(segments) >= 2 and segments[1] else None
        if host.endswith(_CIAM_SUFFIX):
            # A path-less CIAM authority falls back to the sub-domain; OIDC discovery validates it.
            tenant = first or f"{host.rsplit(_CIAM_SUFFIX, 1)[0]}.onmicrosoft.com"
            return parsed, host, tenant
        if first:
            return parsed, host, first
    msg = (
        f"Your given address ({url}) should consist of "
        "an https url with hostname and a minimum of one segment in a path: e.g. "
        "https://login.microsoftonline.com/{tenant} "
        "or https://{tenant_name}.ciamlogin.com/{tenant} "
        "or https://{tenant_name}.b2clogin.com/{tenant_name}.onmicrosoft.com/policy"
    )
    raise ValueError(msg)


@dataclass(frozen=True, kw_only=True)
class AuthorityEndpoints:
    """The endpoints of an authority, learned from its OpenID configuration.

    Attributes:
        token_endpoint: Where token requests are POSTed.
        authorization_endpoint: Where the browser is sent to sign in.
        device_authorization_endpoint: The device-code endpoint, when advertised.
        issuer: The ``issuer`` of the configuration, when present.
        tenant: The realm: the first path segment of ``token_endpoint`` (msal re-derives
            the tenant this way, so ``contoso.onmicrosoft.com`` becomes the tenant GUID).
        instance: The authority host (lower case), the cache ``environment``.
    """

    token_endpoint: str
    authorization_endpoint: str
    device_authorization_endpoint: str | None
    issuer: str | None
    tenant: str
    instance: str


class _Learned:
    """What discovery found out about an authority; kept beside its identity, not in it."""

    __slots__ = ("endpoints",)

    def __init__(self) -> None:
        self.endpoints: AuthorityEndpoints | None = None


@dataclass(frozen=True, kw_only=True)
class Authority:
    """A validated authority; built by :meth:`Authority.parse`, never touches the network.

    Equality and hashing cover the parsed settings only, so an authority is a stable dict
    key. Discovery records the endpoints it finds on the authority it resolved
    (:meth:`learn`); from then on :attr:`token_endpoint`, :attr:`authorization_endpoint`
    and :attr:`device_authorization_endpoint` read them, as msal's attributes of the same
    names (msal sets them in its constructor, which here does no I/O).

    Attributes:
        url: The authority as given (an ``AuthorityBuilder`` rendered, or the OIDC URL).
        instance: The host name in lower case, without the port.
        tenant: The first path segment (before discovery; see ``AuthorityEndpoints.tenant``).
        path: The URL path as given; it feeds the instance-discovery request.
        is_adfs: The tenant is ``adfs`` (and the host is not CIAM).
        is_b2c: B2C or CIAM (or any OIDC authority, which msal marks so to bypass the broker).
        is_ciam: The host is ``*.ciamlogin.com``.
        is_oidc: Given as ``oidc_authority`` (or a dSTS ``/dstsv2`` URL).
        known_to_developer: ADFS, B2C, OIDC or ``validate_authority=False``: no instance
            discovery and no alias lookup.
        validate_authority: The ``validate_authority`` setting.
        instance_discovery: The ``instance_discovery`` setting (None, a bool or a URL).
        tenant_discovery_url: The OIDC configuration URL used when instance discovery is
            skipped (the original port, query and fragment are kept, as msal does).
    """

    url: str
    instance: str
    tenant: str
    path: str
    is_adfs: bool
    is_b2c: bool
    is_ciam: bool
    is_oidc: bool
    known_to_developer: bool
    validate_authority: bool
    instance_discovery: bool | str | None
    tenant_discovery_url: str
    _learned: _Learned = field(default_factory=_Learned, init=False, repr=False, compare=False)

    def learn(self, endpoints: AuthorityEndpoints) -> None:
        """Record the endpoints discovery found for this authority (identity unchanged).

        Args:
            endpoints: the result of resolving this authority.
        """
        self._learned.endpoints = endpoints

    def _discovered(self, name: str) -> AuthorityEndpoints:
        endpoints = self._learned.endpoints
        if endpoints is None:
            msg = (
                f"authority.{name} is not known yet: msal_async discovers {self.url} on the "
                "first await, never in the constructor. Run `await app.prefetch()` (or any "
                "acquire_* call) first."
            )
            raise AttributeError(msg)
        return endpoints

    @property
    def token_endpoint(self) -> str:
        """The token endpoint, once discovery has run.

        Returns:
            The ``token_endpoint`` of the OpenID configuration.

        Raises:
            AttributeError: discovery has not run yet (``await app.prefetch()`` runs it).
        """
        return self._discovered("token_endpoint").token_endpoint

    @property
    def authorization_endpoint(self) -> str:
        """The authorization endpoint, once discovery has run.

        Returns:
            The ``authorization_endpoint`` of the OpenID configuration.

        Raises:
            AttributeError: discovery has not run yet (``await app.prefetch()`` runs it).
        """
        return self._discovered("authorization_endpoint").authorization_endpoint

    @property
    def device_authorization_endpoint(self) -> str | None:
        """The device code endpoint, once discovery has run (None when not advertised).

        Returns:
            The ``device_authorization_endpoint`` of the OpenID configuration, or None.

        Raises:
            AttributeError: discovery has not run yet (``await app.prefetch()`` runs it).
        """
        return self._discovered("device_authorization_endpoint").device_authorization_endpoint

    @classmethod
    def parse(
        cls,
        authority_url: str | AuthorityBuilder | None = None,
        *,
        validate_authority: bool = True,
        instance_discovery: bool | str | None = None,
        oidc_authority_url: str | None = None,
    ) -> Authority:
        """Validate an authority as msal's ``ClientApplication`` and ``Authority`` do.

        Args:
            authority_url: The ``authority`` parameter; None means
                ``https://login.microsoftonline.com/common/``. A path starting with
                ``/dstsv2`` is treated as an ``oidc_authority``.
            validate_authority: False marks the authority as known to the developer.
            instance_discovery: None or True: discover unknown hosts at
                ``login.microsoftonline.com``; a str: that discovery endpoint; False: never.
            oidc_authority_url: A generic OpenID Connect authority (``oidc_authority``).

        Returns:
            The validated authority. No request is made.

        Raises:
            TypeError: A parameter has the wrong type.
            ValueError: Both ``authority`` and ``oidc_authority`` are given, or the URL is
                not an https URL with a host and a tenant path segment.
        """
        if authority_url is not None and not isinstance(authority_url, (str, AuthorityBuilder)):
            msg = (
                f"authority={authority_url!r} is not supported: "
                "pass a str URL such as 'https://login.microsoftonline.com/your_tenant' "
                "or an AuthorityBuilder"
            )
            raise TypeError(msg)
        if oidc_authority_url is not None and not isinstance(oidc_authority_url, str):
            msg = f"oidc_authority={oidc_authority_url!r} must be a str URL"
            raise TypeError(msg)
        if instance_discovery is not None and not isinstance(instance_discovery, (bool, str)):
            msg = (
                f"instance_discovery={instance_discovery!r} must be None, a bool, "
                "or the URL of an instance discovery endpoint"
            )
            raise TypeError(msg)
        if oidc_authority_url and authority_url:
            msg = "You can not provide both authority and oidc_authority"
            raise ValueError(msg)
        if isinstance(authority_url, str) and urlparse(authority_url).path.startswith("/dstsv2"):
            oidc_authority_url = authority_url  # dSTS paths always start with /dstsv2
        validate = bool(validate_authority)
        if oidc_authority_url:
            return cls._parse_oidc(
                oidc_authority_url,
                validate_authority=validate,
                instance_discovery=instance_discovery,
            )
        return cls._parse_entra(
            str(authority_url or _DEFAULT_AUTHORITY),
            validate_authority=validate,
            instance_discovery=instance_discovery,
        )

    @classmethod
    def _parse_oidc(
        cls, url: str, *, validate_authority: bool, instance_discovery: bool | str | None
    ) -> Authority:
        parsed, instance, tenant = canonicalize(url)
        return cls(
            url=url,
            instance=instance,
            tenant=tenant,
            path=parsed.path,
            is_adfs=tenant.lower() == "adfs",
            is_b2c=True,  # as msal: OIDC authorities are treated like (next-gen) B2C
            is_ciam=instance.endswith(_CIAM_SUFFIX),
            is_oidc=True,
            known_to_developer=True,
            validate_authority=validate_authority,
            instance_discovery=instance_discovery,
            tenant_discovery_url=url + _OIDC_CONFIG,  # plain concatenation, as msal
        )

    @classmethod
    def _parse_entra(
        cls, url: str, *, validate_authority: bool, instance_discovery: bool | str | None
    ) -> Authority:
        parsed, instance, tenant = canonicalize(url)
        is_ciam = instance.endswith(_CIAM_SUFFIX)
        is_adfs = tenant.lower() == "adfs" and not is_ciam
        segments = parsed.path.split("/")
        is_b2c = any(instance.endswith("." + host) for host in WELL_KNOWN_B2C_HOSTS) or (
            len(segments) == 3 and segments[2].lower().startswith("b2c_")
        )
        # Path-less CIAM uses the tenant; B2C keeps "/tenant/policy"; ADFS has no "/v2.0".
        prefix = tenant if is_ciam and len(parsed.path) <= 1 else parsed.path
        version = "" if is_adfs else "/v2.0"
        tenant_discovery_url = parsed._replace(path=f"{prefix}{version}{_OIDC_CONFIG}").geturl()
        return cls(
            url=url,
            instance=instance,
            tenant=tenant,
            path=parsed.path,
            is_adfs=is_adfs,
            is_b2c=is_b2c,
            is_ciam=is_ciam,
            is_oidc=False,
            known_to_developer=is_adfs or is_b2c or not validate_authority,
            validate_authority=validate_authority,
            instance_discovery=instance_discovery,
            tenant_discovery_url=tenant_discovery_url,
        )

    @property
    def instance_discovery_url(self) -> str | None:
        """The instance discovery endpoint this authority would use.

        Returns:
            ``https://{host}/common/discovery/instance`` (``host`` is the instance when it
            is well known, else ``login.microsoftonline.com``), the custom URL given as
            ``instance_discovery``, or None when instance discovery is turned off.
        """
        if self.instance_discovery is None or self.instance_discovery is True:
            return f"https://{discovery_host(self.instance)}/common/discovery/instance"
        return self.instance_discovery or None

    @property
    def instance_discovery_params(self) -> dict[str, str]:
        """The query of the instance discovery GET (api-version 1.0).

        Returns:
            ``{"authorization_endpoint": "https://{instance}{path}/oauth2/v2.0/authorize",
            "api-version": "1.0"}``.
        """
        return {
            "authorization_endpoint": f"https://{self.instance}{self.path}/oauth2/v2.0/authorize",
            "api-version": "1.0",
        }

    @property
    def needs_instance_discovery(self) -> bool:
        """Whether resolving this authority starts with an instance discovery GET.

        Returns:
            True only for an Entra host that is neither well known nor known to the
            developer, while instance discovery is not turned off.
        """
        return bool(
            not self.is_oidc
            and self.instance_discovery_url
            and self.instance not in WELL_KNOWN_AUTHORITY_HOSTS
            and not self.known_to_developer
        )

    @property
    def uses_aliases(self) -> bool:
        """Whether msal would look up this authority's aliases (api-version 1.1 metadata).

        Returns:
            False when ``instance_discovery is False`` or the authority is known to the
            developer (ADFS, B2C, OIDC, ``validate_authority=False``); else True.
        """
        return self.instance_discovery is not False and not self.known_to_developer

    @property
    def realm_hint(self) -> str | None:
        """The cache realm when it is known without a network round trip.

        After discovery msal uses the first path segment of the token endpoint as the realm.
        That segment is predictable for a GUID tenant, ``common``/``organizations``/
        ``consumers``, ADFS and B2C; a domain tenant becomes a GUID only the server knows.

        Returns:
            The realm (lower case), or None when discovery must run first.
        """
        if self.is_oidc or self.is_ciam:
            return None  # the server chooses the token endpoint path
        tenant = self.tenant.lower()
        if self.is_adfs or self.is_b2c or tenant in _WELL_KNOWN_TENANTS:
            return tenant
        if _GUID.fullmatch(tenant):
            return tenant
        return None

    def regional_host(self, region: str) -> str:
        """Return the ESTS-R host for ``region``, as msal's ``_get_regional_authority``.

        Args:
            region: A validated Azure region, such as ``"westus"``.

        Returns:
            ``{region}.login.microsoft.com`` for the public cloud hosts, else
            ``{region}.{instance}``.
        """
        if self.instance in _REGIONAL_PUBLIC_HOSTS:
            return f"{region}.login.microsoft.com"
        return f"{region}.{self.instance}"

    def for_region(self, region: str, *, tenant: str | None = None) -> Authority:
        """Return the regional authority msal builds for client-credential requests.

        Args:
            region: A validated Azure region.
            tenant: The central realm after discovery (msal uses the re-derived tenant);
                defaults to this authority's tenant.

        Returns:
            ``https://{regional_host}/{tenant}`` with instance discovery turned off.

        Raises:
            ValueError: The regional URL is not valid (for example an empty region).
        """
        url = f"https://{self.regional_host(region)}/{tenant or self.tenant}"
        return Authority.parse(url, instance_discovery=False)

    def has_valid_issuer(self, issuer: str | None) -> bool:
        """Apply msal's issuer rules for an ``oidc_authority``.

        Args:
            issuer: The ``issuer`` of the OpenID configuration.

        Returns:
            True if the issuer equals the authority (trailing ``/`` ignored); or its host is
            well known; or it is ``{label}.{well-known host}`` or ``{label}.{authority host}``;
            or it has the authority's scheme and netloc; or its host is a sub-domain of a
            B2C host. Always False for a non-OIDC authority or a missing issuer.
        """
        if not issuer or not self.is_oidc:
            return False
        if issuer.rstrip("/") == self.url.rstrip("/"):
            return True
        issuer_url, authority_url = urlparse(issuer), urlparse(self.url)
        host = (issuer_url.hostname or "").lower()
        if not host:
            return False
        if host in WELL_KNOWN_AUTHORITY_HOSTS:
            return True
        label, dot, base = host.partition(".")
        if label and dot:  # a single label in front of a trusted host: a regional variant
            if base in WELL_KNOWN_AUTHORITY_HOSTS:
                return True
            if base == (authority_url.hostname or "").lower():
                return True
        if (issuer_url.scheme, issuer_url.netloc) == (authority_url.scheme, authority_url.netloc):
            return True
        return any(host.endswith("." + b2c) for b2c in WELL_KNOWN_B2C_HOSTS)

    def configuration_error(self) -> ValueError:
        """Build msal's error for an unavailable or unusable OpenID configuration.

        Returns:
            The ValueError msal raises (its message names the authority and its format).
        """
        if self.is_oidc:
            msg = (
                f"Unable to get OIDC authority configuration for {self.url} "
                "because its OIDC Discovery endpoint is unavailable at "
                f"{self.url}/.well-known/openid-configuration "
            )
        else:
            msg = (
                f"Unable to get authority configuration for {self.url}. "
                "Authority would typically be in a format of "
                "https://login.microsoftonline.com/your_tenant "
                "or https://tenant_name.ciamlogin.com "
                "or https://tenant_name.b2clogin.com/tenant.onmicrosoft.com/policy. "
            )
        return ValueError(msg + " Also please double check your tenant name or GUID is correct.")
