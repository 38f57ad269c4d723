"""Managed-identity endpoints: VM IMDS, Azure Arc, App Service, Azure ML and Service Fabric.

One ASGI app answers every source at its own path, as the real hosts do:

=================  ======================================  ====================  ===========
source             path                                    api-version           secret
=================  ======================================  ====================  ===========
VM IMDS            ``/metadata/identity/oauth2/token``     2018-02-01            ``Metadata``
Azure Arc          ``/metadata/identity/oauth2/token``     2020-06-01            401 + key
App Service        ``/msi/token``                          2019-08-01            header
Azure ML           ``/azureml/msi/token``                  2017-09-01            ``secret``
Service Fabric     ``/servicefabric/token`` (HTTPS)        2019-07-01-preview    ``Secret``
=================  ======================================  ====================  ===========

Point a client at it with the variables each source reads, e.g.
``IDENTITY_ENDPOINT=http://127.0.0.1:PORT/msi/token`` and ``IDENTITY_HEADER=emulator.secret``.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from ._emulator import DEMO_TENANT_ID
from ._http import HttpResponse, Receive, RecordedRequest, Scope, Send, lifespan, read_request
from ._http import send_response as _send_response
from ._issuer import TokenIssuer

__all__ = ["ManagedIdentityEmulator"]

_IDS = {"client_id": "client_id", "clientid": "client_id", "object_id": "object_id"}
_RES_IDS = ("msi_res_id", "mi_res_id")


def _error(status: int, error: str, description: str) -> HttpResponse:
    return HttpResponse.json({"error": error, "error_description": description}, status=status)


class ManagedIdentityEmulator(TokenIssuer):
    """Every managed-identity source msal supports, as one inspectable ASGI app.

    Args:
        secret: the value ``IDENTITY_HEADER`` / ``MSI_SECRET`` must carry.
        arc_secret: the content of the Azure Arc challenge key file.
        arc_key_name: the key file's stem in the Arc ``401`` challenge realm.
        token_lifetime: seconds; 86399 (a day, as IMDS) by default.
        echo_user_assigned: Azure Arc echoes the requested user-assigned id (a modern agent).
        clock: seconds since the epoch.
    """

    IMDS_PATH = "/metadata/identity/oauth2/token"
    APP_SERVICE_PATH = "/msi/token"
    MACHINE_LEARNING_PATH = "/azureml/msi/token"
    SERVICE_FABRIC_PATH = "/servicefabric/token"

    def __init__(
        self,
        *,
        secret: str = "emulator-identity-header",  # noqa: S107 - a test fixture value
        arc_secret: str = "emulator-arc-key",  # noqa: S107 - a test fixture value
        arc_key_name: str = "emulated",
        token_lifetime: int = 86399,
        echo_user_assigned: bool = True,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(
            tenant_id=DEMO_TENANT_ID,
            token_lifetime=token_lifetime,
            refresh_in=None,
            signing_key=None,
            clock=clock,
        )
        self.secret = secret
        self.arc_secret = arc_secret
        self.arc_key_name = arc_key_name
        self.echo_user_assigned = echo_user_assigned
        #: Requests by source name (``imds``, ``arc``, ``app_service``, ...).
        self.counts: Counter[str] = Counter()
        #: Every request received, in order.
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI 3 entry point.

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
        http, _ = await read_request(scope, receive)
        with self._lock:
            self.requests.append(http)
        await _send_response(send, self._route(http))

    def _route(self, http: RecordedRequest) -> HttpResponse:
        version = http.query.get("api-version", "")
        routes: Mapping[tuple[str, str], Callable[[RecordedRequest], HttpResponse]] = {
            (self.IMDS_PATH, "2018-02-01"): self._imds,
            (self.IMDS_PATH, "2020-06-01"): self._arc,
            (self.APP_SERVICE_PATH, "2019-08-01"): self._app_service,
            (self.MACHINE_LEARNING_PATH, "2017-09-01"): self._machine_learning,
            (self.SERVICE_FABRIC_PATH, "2019-07-01-preview"): self._service_fabric,
        }
        handler = routes.get((http.path, version))
        if http.method != "GET" or handler is None:
            return _error(404, "not_found", f"No endpoint for {http.method} {http.path}")
        if not http.query.get("resource"):
            return _error(400, "invalid_request", "Required query parameter resource missing")
        return handler(http)

    def _count(self, source: str) -> None:
        with self._lock:
            self.counts[source] += 1

    def _issue(self, http: RecordedRequest) -> tuple[str, dict[str, str]]:
        query = http.query
        echoed = {k: query[k] for k in (*_IDS, *_RES_IDS) if query.get(k)}
        identity = next(iter(echoed.values()), "system-assigned")
        token = self.issue_access_token(
            audience=query["resource"], client_id=identity, tenant_id=self.tenant_id
        )
        return token, echoed

    def _expires_on(self) -> str:
        return str(int(self.clock()) + self.token_lifetime)

    def _imds(self, http: RecordedRequest) -> HttpResponse:
        self._count("imds")
        if http.headers.get("metadata") != "true":
            return _error(400, "invalid_request", "Required metadata header not specified")
        token, _ = self._issue(http)
        return HttpResponse.json(
            {
                "access_token": token,
                "expires_in": str(self.token_lifetime),  # IMDS sends strings
                "expires_on": self._expires_on(),
                "resource": http.query["resource"],
                "token_type": "Bearer",
            }
        )

    def _arc(self, http: RecordedRequest) -> HttpResponse:
        self._count("arc")
        if http.headers.get("metadata") != "true":
            return _error(400, "invalid_request", "Required metadata header not specified")
        authorization = http.headers.get("authorization")
        if authorization is None:
            realm = f"/var/opt/azcmagent/tokens/{self.arc_key_name}.key"
            return HttpResponse(
                status=401,
                body=b"",
                headers={"www-authenticate": f"Basic realm={realm}"},
            )
        if authorization != f"Basic {self.arc_secret}":
            return _error(401, "unauthorized", "Invalid key")
        token, echoed = self._issue(http)
        body: dict[str, Any] = {
            "access_token": token,
            "expires_in": self.token_lifetime,
            "resource": http.query["resource"],
            "token_type": "Bearer",
        }
        if self.echo_user_assigned:
            body.update(echoed)
        return HttpResponse.json(body)

    def _app_service(self, http: RecordedRequest) -> HttpResponse:
        self._count("app_service")
        if http.headers.get("x-identity-header") != self.secret:
            return HttpResponse.json({"statusCode": 400, "message": "bad header"}, status=400)
        token, echoed = self._issue(http)
        return HttpResponse.json(
            {
                "access_token": token,
                "expires_on": self._expires_on(),
                "resource": http.query["resource"],
                "token_type": "Bearer",
                "client_id": echoed.get("client_id", str(uuid.UUID(int=0))),
            }
        )

    def _machine_learning(self, http: RecordedRequest) -> HttpResponse:
        self._count("machine_learning")
        if http.headers.get("secret") != self.secret:
            return _error(401, "unauthorized", "secret header mismatch")
        token, _ = self._issue(http)
        return HttpResponse.json(
            {
                "access_token": token,
                "expires_on": self._expires_on(),
                "resource": http.query["resource"],
                "token_type": "Bearer",
            }
        )

    def _service_fabric(self, http: RecordedRequest) -> HttpResponse:
        self._count("service_fabric")
        if http.headers.get("secret") != self.secret:
            return HttpResponse.json(
                {"error": {"code": "SecretHeaderNotFound", "message": "Secret is not found"}},
                status=401,
            )
        token, _ = self._issue(http)
        return HttpResponse.json(
            {
                "access_token": token,
                "expires_on": int(self._expires_on()),
                "resource": http.query["resource"],
                "token_type": "Bearer",
            }
        )
