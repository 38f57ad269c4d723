"""A protected resource for integration tests: Key Vault's secrets API and a plain JSON API.

It verifies bearer tokens with the authority emulator's keys (signature, expiry, audience),
answers a request without a token with Key Vault's challenge (``Bearer authorization=...,
resource=...``), and, once a token is revoked, answers it with a Continuous Access Evaluation
claims challenge (401, ``error="insufficient_claims"``, base64url ``claims=``) as Entra-protected
services do. It records every ``Authorization`` it saw.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from msal_async.testing import AuthorityEmulator

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

VAULT_RESOURCE = "https://vault.azure.net"
API_RESOURCE = "api://orders"


class ProtectedResource:
    """An ASGI app: ``GET /secrets/{name}[/{version}]`` (Key Vault) and ``GET /api/{path}``.

    Args:
        emulator: the authority whose tokens are accepted.
        authority_url: ``{base}/{tenant}``, sent in Key Vault's challenge.
        secrets: secret values by name.
    """

    def __init__(
        self, emulator: AuthorityEmulator, authority_url: str, secrets: dict[str, str]
    ) -> None:
        self.emulator = emulator
        self.authority_url = authority_url
        self.secrets = dict(secrets)
        self.revoked: set[str] = set()
        self.seen_tokens: list[str] = []
        self.status_counts: dict[int, int] = {}
        self._lock = threading.Lock()
        self._revoked_at = 0

    def revoke(self, token: str) -> None:
        """Answer this token with a CAE claims challenge from now on."""
        with self._lock:
            self.revoked.add(token)
            self._revoked_at = int(time.time())

    def claims_challenge(self) -> str:
        """The claims a revoked token's holder must ask for (an ``nbf`` after revocation)."""
        return json.dumps(
            {"access_token": {"nbf": {"essential": True, "value": str(self._revoked_at)}}}
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        while (await receive()).get("more_body"):
            pass
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        status, body, extra = self._handle(scope["path"], headers.get("authorization"))
        with self._lock:
            self.status_counts[status] = self.status_counts.get(status, 0) + 1
        payload = json.dumps(body).encode()
        raw_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            *((k.encode(), v.encode()) for k, v in extra.items()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": payload})

    def _handle(
        self, path: str, authorization: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        resource = VAULT_RESOURCE if path.startswith("/secrets/") else API_RESOURCE
        if not authorization or not authorization.startswith("Bearer "):
            challenge = f'Bearer authorization="{self.authority_url}", resource="{resource}"'
            return 401, _error("Unauthorized", "no token"), {"www-authenticate": challenge}
        token = authorization.removeprefix("Bearer ")
        with self._lock:
            self.seen_tokens.append(token)
            revoked = token in self.revoked
        if revoked:
            encoded = base64.urlsafe_b64encode(self.claims_challenge().encode()).decode()
            challenge = (
                f'Bearer realm="", authorization_uri="{self.authority_url}/oauth2/authorize", '
                f'error="insufficient_claims", claims="{encoded.rstrip("=")}"'
            )
            return 401, _error("Unauthorized", "token revoked"), {"www-authenticate": challenge}
        try:
            claims = self.emulator.decode(token)
        except Exception:  # noqa: BLE001 - any bad token is a plain 401
            return 401, _error("Unauthorized", "invalid token"), {}
        if claims.get("aud") != resource:
            return 403, _error("Forbidden", f"token for {claims.get('aud')}"), {}
        if resource == API_RESOURCE:
            return 200, {"path": path, "appid": claims.get("appid"), "oid": claims.get("oid")}, {}
        return self._secret(path)

    def _secret(self, path: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        name = path.removeprefix("/secrets/").strip("/").split("/")[0]
        if name not in self.secrets:
            return (
                404,
                _error("SecretNotFound", f"A secret with (name/id) {name} was not found"),
                {},
            )
        now = int(time.time())
        return (
            200,
            {
                "value": self.secrets[name],
                "id": f"https://fake.vault.azure.net/secrets/{name}/0123456789abcdef",
                "attributes": {"enabled": True, "created": now, "updated": now},
            },
            {},
        )


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}
