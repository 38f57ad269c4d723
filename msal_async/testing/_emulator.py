"""The authority emulator: a plain ASGI app speaking the Microsoft Entra endpoints msal uses."""

from __future__ import annotations

import dataclasses
import re
import threading
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

import anyio
from cryptography import x509

from ._authorize import authorize_endpoint
from ._clients import RegisteredClient, authenticate_client
from ._device import DEVICE_GRANTS, SignInUsersMixin, device_code_endpoint
from ._endpoints import (
    GENERIC_TENANTS,
    instance_discovery,
    issuer_tenant,
    openid_configuration,
    unknown_tenant,
)
from ._entra import NO_STORE, EntraError, error_response
from ._faults import ENDPOINTS, Fault, FaultQueue
from ._grants import DEFAULT_GRANTS, GrantHandler, TokenRequest
from ._http import (
    HttpResponse,
    Receive,
    RecordedRequest,
    Scope,
    Send,
    lifespan,
    plain_text,
    read_request,
    send_response,
)
from ._imds import central_base_urls, compute_metadata
from ._interaction import device_login_endpoint, login_endpoint
from ._issuer import TokenIssuer
from ._obo import JWT_BEARER, on_behalf_of
from ._password import PASSWORD_GRANTS, user_realm_endpoint
from ._tokens import SigningKey
from ._user_fic import USER_FIC, user_fic_grant
from ._user_grants import USER_GRANTS
from ._users import UserTokensMixin

__all__ = [
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "DEMO_TENANT_ID",
    "STATS_PATH",
    "AuthorityEmulator",
]

#: The tenant every emulator has unless told otherwise.
DEMO_TENANT_ID = "8eaef023-2b34-4da1-9baa-8bc8c9d6a490"
#: The application registered when ``clients`` is not given.
DEMO_CLIENT_ID = "3b4b1a8c-7d5e-4f1a-a8c2-6f0e9d2b1c7a"
#: The secret of :data:`DEMO_CLIENT_ID`; only good against an emulator.
DEMO_CLIENT_SECRET = "emulator-demo-secret~not-a-real-one"
#: ``GET`` here answers :meth:`AuthorityEmulator.stats` as JSON (not counted or recorded).
STATS_PATH = "/_emulator/stats"


@dataclass(frozen=True)
class _Context:
    http: RecordedRequest
    base_url: str
    tenant: str
    now: int


_Handler = Callable[["AuthorityEmulator", _Context], Awaitable[HttpResponse]]


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    name: str
    handler: _Handler


def _check_positive(name: str, value: object, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        msg = f"AuthorityEmulator({name}={value!r}): expected a positive int of seconds"
        raise ValueError(msg)


class AuthorityEmulator(TokenIssuer, SignInUsersMixin, UserTokensMixin):
    """An in-process Microsoft Entra authority for tests: an ASGI app with inspectable state.

    Mount it under ``httpx.ASGITransport`` at ``https://login.microsoftonline.com`` or serve it
    on 127.0.0.1 with :func:`serve_in_thread`; it builds every URL it returns from the scheme
    and ``Host`` it was reached at.

    Args:
        tenant_id: the directory's GUID.
        tenant_domain: the directory's domain name, accepted wherever the GUID is.
        clients: ``{client_id: secret}`` to register; one demo client when None
            (:data:`DEMO_CLIENT_ID` / :data:`DEMO_CLIENT_SECRET`).
        token_lifetime: ``expires_in`` (and ``ext_expires_in``) of issued tokens, in seconds.
        refresh_in: when set, token responses carry ``refresh_in`` (Entra's proactive-refresh
            hint), in seconds.
        latency: seconds to wait (``anyio.sleep``) before answering every request.
        signing_key: the token signing key; a fresh one (generated on first use) when None.
        clock: seconds since the epoch; msal_async's clock (a :class:`FakeClock` while one is
            installed, else the wall clock) when None.

    Raises:
        ValueError: a malformed tenant id or a non-positive lifetime.
    """

    def __init__(
        self,
        *,
        tenant_id: str = DEMO_TENANT_ID,
        tenant_domain: str = "contoso.onmicrosoft.com",
        clients: Mapping[str, str] | None = None,
        token_lifetime: int = 3600,
        refresh_in: int | None = None,
        latency: float = 0.0,
        signing_key: SigningKey | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        try:
            canonical_tenant_id = str(uuid.UUID(tenant_id))
        except (ValueError, TypeError, AttributeError):
            msg = f"AuthorityEmulator(tenant_id={tenant_id!r}): expected a GUID"
            raise ValueError(msg) from None
        _check_positive("token_lifetime", token_lifetime)
        _check_positive("refresh_in", refresh_in, allow_none=True)
        if latency < 0:
            msg = f"AuthorityEmulator(latency={latency!r}): the delay cannot be negative"
            raise ValueError(msg)
        super().__init__(
            tenant_id=canonical_tenant_id,
            token_lifetime=token_lifetime,
            refresh_in=refresh_in,
            signing_key=signing_key,
            clock=clock,
        )
        self.tenant_domain = tenant_domain.lower()
        self.latency = latency
        #: Host names whose authorization endpoints instance discovery rejects.
        self.invalid_instances: set[str] = set()
        #: Grant handlers by ``grant_type``; see :meth:`add_grant`.
        self.grants: dict[str, GrantHandler] = dict(DEFAULT_GRANTS)
        self.grants.setdefault(JWT_BEARER, on_behalf_of)
        self.grants.setdefault(USER_FIC, user_fic_grant)
        #: Reject a client assertion whose ``jti`` was already accepted (OIDC Core section 9).
        self.reject_replayed_assertions = True
        #: The VM region IMDS reports at ``/metadata/instance/compute``; None answers 404.
        self.region: str | None = None
        self._seen_assertions: dict[tuple[str, str], float] = {}
        self._extra_tenants: set[str] = set()
        self.grants.update(DEVICE_GRANTS)
        self.grants.update(PASSWORD_GRANTS)
        self.grants.update(USER_GRANTS)
        #: Requests by grant type (token POSTs) or by endpoint name (GETs).
        self.counts: Counter[str] = Counter()
        #: Every request received, in order.
        self.requests: list[RecordedRequest] = []
        self._clients: dict[str, RegisteredClient] = {}
        self._faults = FaultQueue()
        self._lock = threading.Lock()
        for client_id, secret in (clients or {DEMO_CLIENT_ID: DEMO_CLIENT_SECRET}).items():
            self.register_client(client_id, secret)

    # -- configuration ---------------------------------------------------------------------

    @property
    def clients(self) -> Mapping[str, RegisteredClient]:
        """The registered applications by client id (read-only view).

        Returns:
            The mapping.
        """
        return dict(self._clients)

    def register_client(
        self,
        client_id: str,
        secret: str | None = None,
        *,
        certificate: str | bytes | None = None,
        roles: Iterable[str] = (),
    ) -> RegisteredClient:
        """Register (or replace) an application.

        Args:
            client_id: the application id.
            secret: its client secret; None for a public client (or certificate only).
            certificate: a PEM X.509 certificate whose private key signs client assertions.
            roles: app roles for the ``roles`` claim of its app-only tokens.

        Returns:
            The registration.

        Raises:
            ValueError: an empty client id or a certificate that is not PEM X.509.
        """
        if not client_id:
            msg = f"register_client(client_id={client_id!r}): expected a non-empty id"
            raise ValueError(msg)
        certificates: tuple[bytes, ...] = ()
        if certificate is not None:
            pem = certificate.encode() if isinstance(certificate, str) else certificate
            try:
                x509.load_pem_x509_certificate(pem)
            except ValueError:
                msg = "register_client(certificate=...): expected a PEM X.509 certificate"
                raise ValueError(msg) from None
            certificates = (pem,)
        client = RegisteredClient(client_id, secret, certificates, tuple(roles))
        with self._lock:
            self._clients[client_id] = client
        return client

    def add_tenant(self, tenant_id: str) -> None:
        """Serve one more directory, by GUID (its tokens carry it as ``tid``).

        Args:
            tenant_id: the tenant GUID.

        Raises:
            ValueError: not a GUID.
        """
        try:
            canonical = str(uuid.UUID(tenant_id))
        except (ValueError, TypeError, AttributeError):
            msg = f"add_tenant(tenant_id={tenant_id!r}): expected a GUID"
            raise ValueError(msg) from None
        with self._lock:
            self._extra_tenants.add(canonical)

    def add_grant(self, grant_type: str, handler: GrantHandler) -> None:
        """Handle ``grant_type`` at the token endpoint with ``handler`` (replacing any).

        Args:
            grant_type: the ``grant_type`` form value.
            handler: ``async (TokenRequest) -> Mapping`` returning the JSON body of success;
                it raises ``EntraError`` to answer with an error.
        """
        self.grants[grant_type] = handler

    def inject(
        self,
        fault: Fault,
        *,
        times: int = 1,
        grant_type: str | None = None,
        endpoint: str = "token",
    ) -> None:
        """Play ``fault`` on the next ``times`` matching requests.

        Args:
            fault: what to do (see :class:`Fault`).
            times: how many requests it applies to.
            grant_type: only token requests with this ``grant_type``; any when None.
            endpoint: ``"token"`` (default), ``"discovery"``, ``"openid-configuration"`` or
                ``"jwks"``.

        Raises:
            ValueError: an unknown endpoint, ``times < 1``, or ``grant_type`` off the token
                endpoint.
        """
        if endpoint not in ENDPOINTS:
            msg = f"inject(endpoint={endpoint!r}): expected one of {sorted(ENDPOINTS)}"
            raise ValueError(msg)
        if times < 1:
            msg = f"inject(times={times!r}): expected at least 1"
            raise ValueError(msg)
        if grant_type is not None and endpoint != "token":
            msg = f"inject(grant_type={grant_type!r}): only token requests have a grant type"
            raise ValueError(msg)
        self._faults.arm(fault, times=times, endpoint=endpoint, grant_type=grant_type)

    @property
    def pending_faults(self) -> int:
        """How many injected fault plays have not happened yet.

        Returns:
            The count.
        """
        return self._faults.pending()

    def reset(self) -> None:
        """Forget recorded requests and counts and disarm faults (clients and grants stay)."""
        with self._lock:
            self.counts.clear()
            self.requests.clear()
        self._faults.clear()

    def stats(self) -> dict[str, object]:
        """What the emulator served so far, as ``GET /_emulator/stats`` answers it.

        Returns:
            ``{"counts": {grant type or endpoint: requests}, "requests": total}``.
        """
        with self._lock:
            return {"counts": dict(self.counts), "requests": len(self.requests)}

    # -- requests --------------------------------------------------------------------------

    def resolve_tenant(self, tenant: str) -> str | None:
        """Resolve a tenant path segment as Entra does.

        Args:
            tenant: a GUID, a domain, ``common``, ``organizations`` or ``consumers``.

        Returns:
            The tenant GUID for this directory's GUID or domain, the generic name as is
            (lower case), or None for an unknown tenant.
        """
        lowered = tenant.lower()
        if lowered in GENERIC_TENANTS:
            return lowered
        if lowered in (self.tenant_id, self.tenant_domain):
            return self.tenant_id
        if lowered in self._extra_tenants:
            return lowered
        return None

    # -- ASGI ------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI 3 entry point (``http`` and ``lifespan`` scopes).

        Args:
            scope: the ASGI scope.
            receive: the receive channel.
            send: the send channel.
        """
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        http, base_url = await read_request(scope, receive)
        response = await self._handle(http, base_url)
        await send_response(send, response)

    async def _handle(self, http: RecordedRequest, base_url: str) -> HttpResponse:
        if http.path == STATS_PATH and http.method == "GET":
            return HttpResponse.json(self.stats(), headers=NO_STORE)
        now = self.clock()
        correlation_id = http.headers.get("client-request-id")
        with self._lock:
            self.requests.append(http)
        found = _match(http)
        if isinstance(found, HttpResponse):
            return found
        route, tenant = found
        grant_type = http.form.get("grant_type") if route.name == "token" else None
        with self._lock:
            self.counts[grant_type or route.name] += 1
        if self.latency:
            await anyio.sleep(self.latency)
        fault = self._faults.take(route.name, grant_type)
        if fault is not None and fault.kind == "latency":
            await anyio.sleep(fault.seconds)
        if fault is not None and fault.response is not None:
            return dataclasses.replace(fault.response, headers=dict(fault.response.headers))
        if fault is not None and fault.error is not None:
            return error_response(
                fault.error, base_url=base_url, correlation_id=correlation_id, now=now
            )
        context = _Context(http=http, base_url=base_url, tenant=tenant, now=int(now))
        try:
            response = await route.handler(self, context)
        except EntraError as failure:
            response = error_response(
                failure, base_url=base_url, correlation_id=correlation_id, now=now
            )
        if fault is not None and fault.kind == "huge_body":
            response = fault.pad(response)
        return response

    def _known_tenant(self, context: _Context, *, error: str = "invalid_tenant") -> str:
        resolved = self.resolve_tenant(context.tenant)
        if resolved is None:
            raise unknown_tenant(context.tenant, error=error)
        return resolved

    async def _discovery(self, context: _Context) -> HttpResponse:
        hosts = frozenset(host.lower() for host in self.invalid_instances)
        return HttpResponse.json(instance_discovery(context.http.query, invalid_hosts=hosts))

    async def _openid_configuration(self, context: _Context) -> HttpResponse:
        tenant_path = self._known_tenant(context)
        return HttpResponse.json(openid_configuration(context.base_url, tenant_path))

    async def _jwks(self, context: _Context) -> HttpResponse:
        tenant_path = self._known_tenant(context)
        issuer = f"{context.base_url}/{issuer_tenant(tenant_path)}/v2.0"
        return HttpResponse.json(self.jwks(issuer=issuer))

    async def _compute_metadata(self, context: _Context) -> HttpResponse:
        return compute_metadata(context.http.headers, context.http.query, location=self.region)

    async def _token(self, context: _Context) -> HttpResponse:
        tenant_path = self._known_tenant(context, error="invalid_request")
        tenant_id = self.tenant_id if tenant_path in GENERIC_TENANTS else tenant_path
        form = context.http.form
        grant_type = form.get("grant_type")
        if not grant_type:
            raise EntraError(
                900144,
                "invalid_request",
                "The request body must contain the following parameter: 'grant_type'.",
            )
        endpoints = [
            f"{base}/{segment}/oauth2/v2.0/token"
            for base in (context.base_url, *central_base_urls(context.base_url))
            for segment in (context.tenant, tenant_path)
        ]
        client = authenticate_client(
            self.clients,
            form,
            context.http.headers,
            token_endpoints=endpoints,
            directory=self.tenant_domain,
            now=context.now,
            seen_assertions=self._seen_assertions if self.reject_replayed_assertions else None,
        )
        handler = self.grants.get(grant_type)
        if handler is None:
            raise EntraError(
                70003,
                "unsupported_grant_type",
                f"The app requested an unsupported grant type '{grant_type}'.",
            )
        request = TokenRequest(
            emulator=self,
            http=context.http,
            base_url=context.base_url,
            tenant=context.tenant,
            tenant_id=tenant_id,
            grant_type=grant_type,
            client=client,
            correlation_id=context.http.headers.get("client-request-id"),
            now=context.now,
        )
        body = await handler(request)
        return HttpResponse.json(body, headers=NO_STORE)


_ROUTES: tuple[_Route, ...] = (
    _Route(
        "GET",
        re.compile(r"/(?P<tenant>[^/]+)/oauth2/v2\.0/authorize"),
        "authorize",
        authorize_endpoint,
    ),
    _Route("POST", re.compile(r"/(?P<tenant>[^/]+)/login"), "login", login_endpoint),
    _Route("GET", re.compile(r"/devicelogin"), "devicelogin", device_login_endpoint),
    _Route("POST", re.compile(r"/devicelogin"), "devicelogin", device_login_endpoint),
    _Route(
        "GET",
        re.compile(r"/metadata/instance/compute"),
        "imds-region",
        AuthorityEmulator._compute_metadata,
    ),
    _Route(
        "POST",
        re.compile(r"/(?P<tenant>[^/]+)/oauth2/v2\.0/devicecode"),
        "devicecode",
        device_code_endpoint,
    ),
    _Route(
        "GET",
        re.compile(r"/(?P<tenant>common)/userrealm/[^/]+"),
        "userrealm",
        user_realm_endpoint,
    ),
    _Route(
        "GET",
        re.compile(r"/(?P<tenant>[^/]+)/discovery/instance"),
        "discovery",
        AuthorityEmulator._discovery,
    ),
    _Route(
        "GET",
        re.compile(r"/(?P<tenant>[^/]+)/*(?:/v2\.0)?/\.well-known/openid-configuration"),
        "openid-configuration",
        AuthorityEmulator._openid_configuration,
    ),
    _Route(
        "GET",
        re.compile(r"/(?P<tenant>[^/]+)/discovery(?:/v2\.0)?/keys"),
        "jwks",
        AuthorityEmulator._jwks,
    ),
    _Route(
        "POST",
        re.compile(r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token"),
        "token",
        AuthorityEmulator._token,
    ),
)


def _match(http: RecordedRequest) -> tuple[_Route, str] | HttpResponse:
    allowed: list[str] = []
    for route in _ROUTES:
        matched = route.pattern.fullmatch(http.path)
        if matched is None:
            continue
        if route.method != http.method:
            allowed.append(route.method)
            continue
        return route, matched.groupdict().get("tenant") or ""
    if allowed:
        return plain_text(405, "Method Not Allowed", allow=", ".join(allowed))
    return plain_text(404, "Not Found")
