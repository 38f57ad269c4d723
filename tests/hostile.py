"""Hostile servers for the hardening tests: fixed answers, and an emulator whose answers are bent.

Both are plain ASGI apps, used in process through ``httpx.ASGITransport`` (or served on
127.0.0.1 for real msal), so the client under test runs its real transport and parsers.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from hypothesis import HealthCheck, settings

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]

#: Nesting that made ``json.loads`` raise RecursionError (issue 10, finding 3).
DEEP = "[" * 200_000
#: A token response body with every field right, to bend one field at a time.
GOOD_TOKEN = '{"access_token": "at", "token_type": "Bearer", "expires_in": 3599'


def fuzz_settings() -> settings:
    """Hypothesis settings of every fuzz test: bounded for CI, more with an environment variable.

    ``MSAL_ASYNC_FUZZ_EXAMPLES`` (default 150) examples per test, no per-example deadline
    (the machine is shared), and no database (tests leave nothing behind).
    """
    return settings(
        max_examples=int(os.environ.get("MSAL_ASYNC_FUZZ_EXAMPLES", "150")),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


def b64url(data: bytes) -> str:
    """Unpadded base64url, as in JWTs and ``client_info``."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unsigned_jwt(claims: dict[str, Any], *, header: str | None = None) -> str:
    """A JWT whose header segment is ``header`` (as written) or an ``alg: none`` header."""
    head = header if header is not None else b64url(b'{"alg":"none","typ":"JWT"}')
    return f"{head}.{b64url(json.dumps(claims).encode())}.sig"


#: An ID token with no ``sub`` claim (the account's id when there is no ``client_info``).
NO_SUB = unsigned_jwt({"name": "no subject", "tid": "t"})


class StaticServer:
    """Answers every request with one fixed status and body (and records the paths asked)."""

    def __init__(self, status: int, body: str | bytes, content_type: str = "application/json"):
        self.status = status
        self.body = body.encode() if isinstance(body, str) else body
        self.content_type = content_type.encode()
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        self.paths.append(scope["path"])
        headers = [(b"content-type", self.content_type)]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


class Bend:
    """Wraps an ASGI app and rewrites the JSON body of the responses ``applies`` selects.

    ``rewrite`` gets the decoded JSON object and returns the new body: a dict (re-encoded) or
    the exact text to send (for bodies ``json.dumps`` cannot write, such as ``1e400``). Set
    ``active`` to False to pass everything through unchanged.
    """

    def __init__(
        self,
        app: Any,
        rewrite: Callable[[dict[str, Any]], dict[str, Any] | str],
        *,
        applies: Callable[[Scope], bool] = lambda scope: scope["path"].endswith("/token"),
    ) -> None:
        self.app = app
        self.rewrite = rewrite
        self.applies = applies
        self.active = True
        self.bent = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.active or not self.applies(scope):
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: Any) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            if start.get("status") == 200:
                body = self._bent(body)
            headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, capture)

    def _bent(self, body: bytes) -> bytes:
        new = self.rewrite(json.loads(body))
        self.bent += 1
        return (json.dumps(new) if isinstance(new, dict) else new).encode()
