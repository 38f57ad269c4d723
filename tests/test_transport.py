"""The transport: client headers, throttling in http_cache, retry, size cap, ownership."""

from __future__ import annotations

import json
import pickle
import socket
from collections.abc import Iterator, MutableMapping

import anyio
import httpx
import pytest

from msal_async._errors import MsalTransportError
from msal_async._http.reply import MAX_RESPONSE_BYTES
from msal_async._transport import HttpResponse, Transport

pytestmark = pytest.mark.anyio

URL = "https://login.example.test/tenant/oauth2/v2.0/token"


class Recorder:
    """A real httpx transport that answers from a script and records what it received."""

    def __init__(self, *responses: httpx.Response | Exception) -> None:
        self.script = list(responses)
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        item = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(item, Exception):
            raise item
        return item


def make(recorder: Recorder, **kwargs: object) -> Transport:
    client = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    return Transport(http_client=client, **kwargs)  # type: ignore[arg-type]


def ok(body: object = None, **headers: str) -> httpx.Response:
    return httpx.Response(200, json=body or {"access_token": "at"}, headers=headers)


async def test_client_headers_and_fresh_request_id() -> None:
    rec = Recorder(ok())
    transport = make(rec, app_name="app", app_version="1.2")
    await transport.post(URL, data={"client_id": "c", "scope": "s1"})
    await transport.post(URL, data={"client_id": "c", "scope": "s2"})
    first, second = rec.seen
    for name in ("x-client-sku", "x-client-ver", "x-client-os", "x-ms-lib-capability"):
        assert name in first.headers
    assert first.headers["x-app-name"] == "app"
    assert first.headers["x-app-ver"] == "1.2"
    assert first.headers["accept"] == "application/json"
    assert first.headers["client-request-id"] != second.headers["client-request-id"]


async def test_caller_request_id_is_kept() -> None:
    rec = Recorder(ok())
    await make(rec).post(URL, data={"a": "b"}, headers={"client-request-id": "fixed"})
    assert rec.seen[0].headers["client-request-id"] == "fixed"


async def test_429_with_retry_after_is_held_in_http_cache() -> None:
    rec = Recorder(httpx.Response(429, json={"error": "throttled"}, headers={"Retry-After": "7"}))
    cache: dict[str, object] = {}
    transport = make(rec, http_cache=cache)
    first = await transport.post(URL, data={"client_id": "c", "scope": "s"})
    second = await transport.post(URL, data={"client_id": "c", "scope": "s"})
    assert first.status_code == second.status_code == 429
    assert second.from_cache
    assert len(rec.seen) == 1
    other = await transport.post(URL, data={"client_id": "c", "scope": "other"})
    assert not other.from_cache
    assert len(rec.seen) == 2
    pickle.loads(pickle.dumps(cache))  # noqa: S301 - a persisted http_cache must be picklable


async def test_5xx_held_for_the_default_then_released() -> None:
    rec = Recorder(httpx.Response(503, text="busy"))
    transport = make(rec)
    await transport.post(URL, data={"client_id": "c", "scope": "s"})
    held = await transport.post(URL, data={"client_id": "c", "scope": "s"})
    assert held.from_cache
    assert held.status_code == 503
    assert len(rec.seen) == 1


async def test_400_replayed_only_for_identical_requests() -> None:
    rec = Recorder(httpx.Response(400, json={"error": "invalid_grant"}))
    transport = make(rec)
    data = {"client_id": "c", "grant_type": "refresh_token", "refresh_token": "rt"}
    await transport.post(URL, data=data)
    replay = await transport.post(URL, data=data)
    assert replay.from_cache
    await transport.post(URL, data={**data, "refresh_token": "rt2"})
    assert len(rec.seen) == 2


class _Mapping(MutableMapping[str, object]):
    """A mapping that is not a dict (as a ``shelve`` is not)."""

    def __init__(self) -> None:
        self.data: dict[str, object] = {}

    def __getitem__(self, key: str) -> object:
        return self.data[key]

    def __setitem__(self, key: str, value: object) -> None:
        self.data[key] = value

    def __delitem__(self, key: str) -> None:
        del self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


@pytest.mark.parametrize("mapping", [dict, _Mapping])
async def test_a_shared_http_cache_throttles_every_app_that_shares_it(
    mapping: type[MutableMapping[str, object]],
) -> None:
    """Another app's held POST is seen, whether the shared mapping is a dict or not."""
    cache = mapping()
    data = {"client_id": "c", "grant_type": "refresh_token", "refresh_token": "rt"}
    first = Recorder(ok())
    await make(first, http_cache=cache).post(URL, data={"client_id": "c", "scope": "s"})
    second = make(Recorder(ok()), http_cache=cache)
    await second.post(URL, data={"client_id": "c", "scope": "s"})  # nothing held yet
    await make(
        Recorder(httpx.Response(400, json={"error": "invalid_grant"})), http_cache=cache
    ).post(URL, data=data)
    replay = await second.post(URL, data=data)
    assert replay.from_cache
    assert replay.status_code == 400


async def test_a_held_post_in_a_loaded_http_cache_is_honoured() -> None:
    rec = Recorder(httpx.Response(429, json={"error": "throttled"}, headers={"Retry-After": "60"}))
    cache: dict[str, object] = {}
    await make(rec, http_cache=cache).post(URL, data={"client_id": "c", "scope": "s"})
    loaded = pickle.loads(pickle.dumps(cache))  # noqa: S301 - as an app persists http_cache
    later = Recorder(ok())
    held = await make(later, http_cache=loaded).post(URL, data={"client_id": "c", "scope": "s"})
    assert held.from_cache
    assert later.seen == []


async def test_device_code_400_is_never_replayed() -> None:
    rec = Recorder(httpx.Response(400, json={"error": "authorization_pending"}))
    transport = make(rec)
    data = {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": "d"}
    await transport.post(URL, data=data)
    await transport.post(URL, data=data)
    assert len(rec.seen) == 2


async def test_get_2xx_is_cached_failures_are_not() -> None:
    rec = Recorder(httpx.Response(500, text="no"), ok({"issuer": "x"}))
    transport = make(rec)
    assert (await transport.get("https://h/doc")).status_code == 500
    assert (await transport.get("https://h/doc")).status_code == 200
    assert (await transport.get("https://h/doc")).from_cache
    assert len(rec.seen) == 2


async def test_post_retried_once_after_connection_error() -> None:
    rec = Recorder(httpx.ConnectError("refused"), ok())
    response = await make(rec).post(URL, data={"a": "1"})
    assert response.status_code == 200
    assert len(rec.seen) == 2


async def test_second_connection_error_raises_transport_error_without_secrets() -> None:
    rec = Recorder(httpx.ConnectError("refused"))
    with pytest.raises(MsalTransportError) as info:
        await make(rec).post(URL, data={"client_secret": "s3cr3t-value"})
    assert "s3cr3t-value" not in str(info.value)
    assert len(rec.seen) == 2


async def test_user_realm_failures_name_no_username(caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder(httpx.ConnectError("refused"), httpx.ConnectError("refused"))
    url = "https://login.example.com/common/userrealm/alice@contoso.com?api-version=1.0"
    with caplog.at_level("INFO"), pytest.raises(MsalTransportError) as info:
        await make(rec).get(url)
    text = str(info.value) + caplog.text
    assert "alice" not in text
    assert "https://login.example.com/common/userrealm/{username} failed" in str(info.value)


async def test_real_refused_connection_becomes_transport_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    transport = Transport(timeout=2)
    try:
        with pytest.raises(MsalTransportError, match="ConnectError"):
            await transport.post(f"http://127.0.0.1:{port}/t", data={"a": "b"})
    finally:
        await transport.aclose()


async def test_huge_body_is_flagged_not_buffered() -> None:
    rec = Recorder(httpx.Response(200, content=b"x" * (MAX_RESPONSE_BYTES + 10)))
    response = await make(rec).post(URL, data={"a": "1"})
    assert response.too_large
    assert response.text == ""


async def test_owned_client_closed_given_client_left_open() -> None:
    given = httpx.AsyncClient(transport=httpx.MockTransport(Recorder(ok())))
    transport = Transport(http_client=given)
    await transport.aclose()
    assert not given.is_closed
    await given.aclose()
    owned = Transport()
    assert owned.owns_client
    await owned.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await owned.get("https://h/doc")


def test_http_response_json() -> None:
    assert HttpResponse(200, json.dumps({"a": 1})).json() == {"a": 1}
    with pytest.raises(ValueError):  # noqa: PT011
        HttpResponse(200, "<html>").json()


async def test_owned_client_bounds_requests_in_flight_to_its_pool() -> None:
    """A burst waits for a connection permit of the pool, at most MAX_CONNECTIONS in flight."""
    import asyncio
    import threading

    from msal_async._http.config import MAX_CONNECTIONS
    from msal_async.testing import serve_in_thread

    state = {"now": 0, "most": 0}
    lock = threading.Lock()

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        if scope["type"] != "http":
            return
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        await asyncio.sleep(0.02)  # uvicorn runs this app on asyncio, in its own thread
        with lock:
            state["now"] -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"{}"})  # type: ignore[operator]

    with serve_in_thread(app) as base_url:
        transport = Transport(timeout=10)
        try:

            async def post(i: int) -> None:
                await transport.post(f"{base_url}/t", data={"i": str(i)})

            async with anyio.create_task_group() as tg:
                for i in range(60):
                    tg.start_soon(post, i)
        finally:
            await transport.aclose()
    assert 1 < state["most"] <= MAX_CONNECTIONS


async def test_a_post_the_server_may_have_handled_is_not_sent_again() -> None:
    """An auth code is single-use: a dropped connection after sending must not re-send it."""
    rec = Recorder(httpx.RemoteProtocolError("Server disconnected without sending a response."))
    with pytest.raises(MsalTransportError, match="RemoteProtocolError"):
        await make(rec).post(URL, data={"grant_type": "authorization_code", "code": "c"})
    assert len(rec.seen) == 1


async def test_a_get_is_retried_after_a_dropped_keep_alive_connection() -> None:
    rec = Recorder(httpx.RemoteProtocolError("Server disconnected."), ok({"issuer": "x"}))
    assert (await make(rec).get("https://h/doc")).status_code == 200
    assert len(rec.seen) == 2


async def test_protocol_error_text_is_not_echoed() -> None:
    """h11 quotes an illegal header value, which may be a secret; only the kind is reported."""
    rec = Recorder(httpx.LocalProtocolError("Illegal header value b'Basic S3CR3T\\n'"))
    with pytest.raises(MsalTransportError) as info:
        await make(rec).post(URL, data={"a": "b"})
    assert "S3CR3T" not in str(info.value)


_TWO_LOOPS_SCRIPT = """
import asyncio, sys
from msal_async._transport import Transport
transport = Transport(timeout=10)
for _ in range(2):
    response = asyncio.run(transport.post(sys.argv[1] + "/t", data={"a": "b"}))
    print(response.status_code)
"""


def test_an_app_used_from_two_event_loops_rebuilds_its_client() -> None:
    """asyncio.run() twice in a script: the second run must not hit the first, dead loop.

    Run as a script in its own process, as users meet it (the first loop's idle connection is
    left to the garbage collector there, which this test process need not watch).
    """
    import subprocess
    import sys

    from msal_async.testing import serve_in_thread

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"{}"})  # type: ignore[operator]

    with serve_in_thread(app) as base_url:
        done = subprocess.run(
            [sys.executable, "-c", _TWO_LOOPS_SCRIPT, base_url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["200", "200"]


async def test_error_message_keeps_the_port_drops_query_and_userinfo() -> None:
    """Issue 11 item 9: ``GET https://127.0.0.1/...`` hid which server failed."""
    rec = Recorder(httpx.ConnectError("refused"))
    url = "https://bob:hunter2@127.0.0.1:18999/tenant/oauth2/v2.0/token"
    with pytest.raises(MsalTransportError) as info:
        await make(rec).post(url, data={"a": "b"}, params={"code": "s3cr3t-code"})
    text = str(info.value)
    assert "POST https://127.0.0.1:18999/tenant/oauth2/v2.0/token failed" in text
    assert "s3cr3t-code" not in text
    assert "hunter2" not in text
    assert "bob" not in text


async def test_real_refused_connection_names_host_and_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    transport = Transport(timeout=2)
    try:
        with pytest.raises(MsalTransportError) as info:
            await transport.get(f"http://127.0.0.1:{port}/t/v2.0/.well-known?x=1")
    finally:
        await transport.aclose()
    assert f"GET http://127.0.0.1:{port}/t/v2.0/.well-known failed: ConnectError" in str(info.value)
    assert "x=1" not in str(info.value)


async def test_default_port_is_not_spelled_out() -> None:
    rec = Recorder(httpx.ConnectError("refused"))
    with pytest.raises(MsalTransportError, match=r"GET https://login\.example\.test/doc failed"):
        await make(rec).get("https://login.example.test:443/doc")


async def test_current_client_is_the_client_requests_go_through() -> None:
    given = httpx.AsyncClient(transport=httpx.MockTransport(Recorder(ok())))
    assert Transport(http_client=given).current_client() is given
    await given.aclose()
    owned = Transport(timeout=2)
    assert owned.current_client() is None  # built by the first request of this event loop
    with pytest.raises(MsalTransportError):
        await owned.get("https://127.0.0.1:9/doc", cache=False)  # nothing listens there
    client = owned.current_client()
    assert isinstance(client, httpx.AsyncClient)
    assert owned.current_client() is client  # one client per event loop, built once
    await owned.aclose()
    assert owned.current_client() is None


def test_an_owned_client_belongs_to_an_event_loop() -> None:
    assert Transport().current_client() is None  # no loop, no client (and no error)


async def test_response_headers_are_read_as_httpx_reads_them() -> None:
    """Names lowercased, repeated headers joined, a non-ASCII value decoded as httpx does."""
    for raw in (
        [(b"Content-Type", b"application/json"), (b"X-Twice", b"a"), (b"x-twice", b"b")],
        [(b"Content-Type", b"application/json"), (b"X-Odd", "caf\u00e9".encode())],
    ):
        answer = httpx.Response(200, headers=raw, content=b'{"access_token": "at"}')
        expected = {k.lower(): v for k, v in answer.headers.items()}
        result = await make(Recorder(answer)).post(URL, data={"a": "b"})
        assert dict(result.headers) == expected
