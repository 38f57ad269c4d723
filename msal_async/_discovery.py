"""Lazy instance discovery and OpenID configuration, memoised per authority, single flight.

msal does these GETs in ``Authority.__init__`` (``msal/authority.py``); here they happen on
the first ``await``, once: N concurrent callers share one request, a success is memoised on
the ``Discovery`` object, and a failure is not (the next call tries again).
"""

from __future__ import annotations

import logging

from . import _json, _log
from ._authority import Authority, AuthorityEndpoints
from ._errors import MsalServiceError
from ._metadata import (
    instance_metadata_request,
    parse_aliases,
    parse_instance_discovery,
    parse_openid_configuration,
)
from ._singleflight import SingleFlight
from ._transport import HttpResponse, Transport

__all__ = ["Discovery"]

logger = logging.getLogger(_log.DISCOVERY)


def _service_error(url: str, response: HttpResponse) -> MsalServiceError:
    # msal raises MsalServiceError("HTTP Error: {status}") for a 5xx discovery answer.
    return MsalServiceError(
        f"HTTP Error: {response.status_code}",
        error="http_error",
        error_description=f"HTTP Error: {response.status_code} from {url}",
        status_code=response.status_code,
    )


def _json_or_none(response: HttpResponse) -> object:
    try:
        return _json.loads(response.text)
    except _json.JSONInputError:
        return None


class Discovery:
    """Resolve authorities to their endpoints, lazily and once.

    Args:
        transport: The app's transport; discovery GETs share its ``http_cache`` (24 h).
        flights: The app's single-flight registry (concurrent callers share one request).
    """

    def __init__(self, transport: Transport, flights: SingleFlight | None = None) -> None:
        self._transport = transport
        self._endpoints: dict[Authority, AuthorityEndpoints] = {}
        self._alias_groups: dict[str, list[list[str]]] = {}
        self._flights = flights if flights is not None else SingleFlight()

    def cached(self, authority: Authority) -> AuthorityEndpoints | None:
        """Return the memoised endpoints of ``authority`` without any I/O.

        Args:
            authority: A parsed authority.

        Returns:
            The endpoints if a previous :meth:`resolve` succeeded, else None.
        """
        return self._endpoints.get(authority)

    async def resolve(self, authority: Authority) -> AuthorityEndpoints:
        """Return the endpoints of ``authority``, discovering them on the first call.

        Runs instance discovery (only when ``authority.needs_instance_discovery``), then
        the OpenID configuration GET.

        Args:
            authority: A parsed authority.

        Returns:
            Its endpoints; ``tenant`` is the realm re-derived from the token endpoint.

        Raises:
            ValueError: ``invalid_instance``; the configuration is missing (4xx, such as an
                unknown tenant), not JSON or incomplete; or an ``oidc_authority`` issuer
                does not match (msal's messages).
            MsalServiceError: A discovery GET answered 5xx.
            MsalTransportError: The request could not be sent.
            RuntimeError: The configuration GET answered neither 200 nor an error status.
        """
        endpoints = self._endpoints.get(authority)
        if endpoints is None:
            endpoints = await self._flights.run(
                ("discovery", authority), lambda: self._resolve_once(authority)
            )
        authority.learn(endpoints)  # app.authority.token_endpoint & co. read them from now on
        return endpoints

    async def resolve_regional(self, authority: Authority, region: str) -> AuthorityEndpoints:
        """Return the endpoints of the regional (ESTS-R) twin of ``authority``.

        As msal's ``_get_regional_authority``: the central authority is resolved first, and
        its realm goes into ``https://{regional_host}/{realm}``, discovered without
        instance discovery.

        Args:
            authority: The central authority.
            region: A validated Azure region, such as ``"westus"``.

        Returns:
            The regional endpoints (``instance`` is the regional host).

        Raises:
            ValueError: See :meth:`resolve`.
            MsalServiceError: See :meth:`resolve`.
            MsalTransportError: See :meth:`resolve`.
            RuntimeError: See :meth:`resolve`.
        """
        central = await self.resolve(authority)
        return await self.resolve(authority.for_region(region, tenant=central.tenant))

    async def aliases(self, instance: str, *, authority: Authority | None = None) -> list[str]:
        """Return the other host names of ``instance`` (api-version 1.1 metadata).

        Args:
            instance: The host whose aliases are wanted, such as ``login.microsoftonline.com``.
            authority: The app's authority; when given and msal would skip the lookup
                (``instance_discovery=False``, ADFS, B2C, OIDC, ``validate_authority=False``),
                no request is made and ``[]`` is returned.

        Returns:
            The aliases of ``instance`` (itself excluded), in the service's order; ``[]``
            when the instance belongs to no group.

        Raises:
            MsalServiceError: The metadata GET answered an error status.
            ValueError: The metadata is not JSON or has no ``metadata`` list.
            MsalTransportError: The request could not be sent.
        """
        if authority is not None and not authority.uses_aliases:
            return []
        url, params = instance_metadata_request(instance)
        groups = self._alias_groups.get(url)
        if groups is None:
            groups = await self._flights.run(
                ("aliases", url), lambda: self._fetch_aliases(url, params)
            )
        for group in groups:
            if instance in group:
                return [alias for alias in group if alias != instance]
        return []

    async def _resolve_once(self, authority: Authority) -> AuthorityEndpoints:
        endpoints = self._endpoints.get(authority)
        if endpoints is not None:  # a flight that finished just before this one started
            return endpoints
        url = authority.tenant_discovery_url
        if authority.needs_instance_discovery and authority.instance_discovery_url:
            url = await self._discover_instance(authority, authority.instance_discovery_url)
        response = await self._transport.get(url)
        endpoints = _read_configuration(authority, url, response)
        self._endpoints[authority] = endpoints
        logger.debug("Discovered %s: token endpoint %s", authority.url, endpoints.token_endpoint)
        return endpoints

    async def _discover_instance(self, authority: Authority, url: str) -> str:
        response = await self._transport.get(url, params=authority.instance_discovery_params)
        if response.status_code >= 500:
            raise _service_error(url, response)
        # An unknown host answers 400 with {"error": "invalid_instance"}: read the body first.
        return parse_instance_discovery(authority, _json_or_none(response))

    async def _fetch_aliases(self, url: str, params: dict[str, str]) -> list[list[str]]:
        groups = self._alias_groups.get(url)
        if groups is not None:
            return groups
        response = await self._transport.get(
            url, params=params, headers={"Accept": "application/json"}
        )
        if response.status_code >= 400:
            raise _service_error(url, response)
        try:
            payload = _json.loads(response.text)
        except _json.JSONInputError as exc:
            msg = f"Instance metadata from {url} is not JSON ({exc})"
            raise ValueError(msg) from None
        groups = parse_aliases(payload)
        self._alias_groups[url] = groups
        return groups


def _read_configuration(
    authority: Authority, url: str, response: HttpResponse
) -> AuthorityEndpoints:
    status = response.status_code
    if status == 200:
        try:
            payload = _json.loads(response.text)
        except _json.JSONInputError as exc:
            raise authority.configuration_error() from exc
        return parse_openid_configuration(authority, payload)
    if 400 <= status < 500:
        # An unknown tenant lands here. OIDC defines no error format: keep the body as-is.
        msg = f"OIDC Discovery failed on {url}. HTTP status: {status}, Error: {response.text}"
        raise authority.configuration_error() from ValueError(msg)
    if status >= 500:
        raise _service_error(url, response)
    msg = f"Unable to complete OIDC Discovery: {status}, {response.text}"
    raise RuntimeError(msg)
