"""One transport, many event loops: a client per loop, closed with its loop, no leaked socket.

The loops run as users run them from a sync worker pool: ``asyncio.run`` (or ``trio.run``)
per thread, at the same time, all on one transport, against the emulator over HTTPS.
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest

from msal_async._transport import Transport
from msal_async.testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

from .conftest import HttpsAuthority
from .transport_servers import client_sockets_to

THREADS = 4
CALLS_PER_LOOP = 6
BOUND = 8.0  # seconds: a hang fails the test instead of the suite


@pytest.fixture
def https(https_authority: HttpsAuthority) -> Iterator[HttpsAuthority]:
    """The HTTPS emulator; every test starts and ends with no socket of ours connected to it."""
    port = _port(https_authority)
    assert client_sockets_to(port) in (0, None)
    yield https_authority
    assert client_sockets_to(port) in (0, None)


def _port(https: HttpsAuthority) -> int:
    port = urlsplit(https.base_url).port
    assert port is not None
    return port


def _form(scope: str) -> dict[str, str]:
    return {
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
        "grant_type": "client_credentials",
        "scope": scope,
    }


async def _calls(transport: Transport, https: HttpsAuthority, tag: str) -> None:
    """Concurrent token POSTs and a discovery GET on one loop; each must succeed."""
    endpoint = f"{https.authority}/oauth2/v2.0/token"
    results: list[int] = []

    async def post(i: int) -> None:
        response = await transport.post(endpoint, data=_form(f"api://{tag}-{i}/.default"))
        results.append(response.status_code)

    async with anyio.create_task_group() as group:
        for i in range(CALLS_PER_LOOP):
            group.start_soon(post, i)
    metadata = f"{https.authority}/v2.0/.well-known/openid-configuration"
    results.append((await transport.get(metadata, cache=False)).status_code)
    assert results == [200] * (CALLS_PER_LOOP + 1), results


async def _until_closed(port: int) -> None:
    """Wait (bounded) until no socket of this process is connected to ``port``."""
    with anyio.fail_after(BOUND):
        while client_sockets_to(port) not in (0, None):  # noqa: ASYNC110 (the OS's state)
            await anyio.sleep(0.01)


def _in_threads(targets: list[Callable[[], None]]) -> None:
    """Run each target in its own thread, all released at once; fail on error or hang."""
    barrier = threading.Barrier(len(targets))
    errors: list[BaseException] = []

    def run(target: Callable[[], None]) -> None:
        try:
            barrier.wait(BOUND)
            target()
        except BaseException as exc:  # noqa: BLE001 (reported by the test thread)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,), daemon=True) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(BOUND)
    assert not [t for t in threads if t.is_alive()], "a loop hung"
    assert not errors, errors


def _asyncio_target(transport: Transport, https: HttpsAuthority, tag: str) -> Callable[[], None]:
    return lambda: asyncio.run(_calls(transport, https, tag))


def _trio_target(transport: Transport, https: HttpsAuthority, tag: str) -> Callable[[], None]:
    return lambda: anyio.run(_calls, transport, https, tag, backend="trio")


def test_asyncio_run_per_thread_concurrently(https: HttpsAuthority) -> None:
    transport = Transport(verify=https.ca_file)
    _in_threads([_asyncio_target(transport, https, f"a{i}") for i in range(THREADS)])
    # Every loop closed its own client (and its sockets) when asyncio.run shut it down.
    assert transport.open_clients == 0
    assert client_sockets_to(_port(https)) in (0, None)


def test_trio_run_per_thread_concurrently(https: HttpsAuthority) -> None:
    transport = Transport(verify=https.ca_file)
    _in_threads([_trio_target(transport, https, f"t{i}") for i in range(THREADS)])
    assert transport.open_clients == 0
    assert client_sockets_to(_port(https)) in (0, None)


def test_asyncio_and_trio_threads_together(https: HttpsAuthority) -> None:
    transport = Transport(verify=https.ca_file)
    targets = [
        _asyncio_target(transport, https, "mix-a0"),
        _trio_target(transport, https, "mix-t0"),
    ]
    targets += [
        _asyncio_target(transport, https, "mix-a1"),
        _trio_target(transport, https, "mix-t1"),
    ]
    _in_threads(targets)
    assert transport.open_clients == 0


def test_loops_in_turn_on_one_thread(https: HttpsAuthority) -> None:
    transport = Transport(verify=https.ca_file)
    for round_ in range(3):
        asyncio.run(_calls(transport, https, f"turn{round_}"))
        assert transport.open_clients == 0
        assert client_sockets_to(_port(https)) in (0, None)
    anyio.run(_calls, transport, https, "turn-trio", backend="trio")
    assert transport.open_clients == 0


def test_one_loop_keeps_its_client_between_calls(https: HttpsAuthority) -> None:
    transport = Transport(verify=https.ca_file)

    async def twice() -> tuple[Any, Any]:
        await _calls(transport, https, "same1")
        first = transport.current_client()
        await _calls(transport, https, "same2")
        return first, transport.current_client()

    first, second = asyncio.run(twice())
    assert first is not None
    assert first is second


def test_aclose_closes_the_clients_of_other_running_loops(https: HttpsAuthority) -> None:
    """aclose() on one loop: a loop in another thread loses its connections too, soon."""
    transport = Transport(verify=https.ca_file)
    port = _port(https)
    ready, closed = threading.Event(), threading.Event()
    seen: dict[str, Any] = {}

    async def other_loop() -> None:
        await _calls(transport, https, "other")
        ready.set()
        await anyio.to_thread.run_sync(closed.wait, BOUND)
        await _until_closed(port)  # the close was scheduled on this loop
        try:
            await transport.get(f"{https.authority}/v2.0/.well-known/openid-configuration")
        except RuntimeError as exc:
            seen["error"] = str(exc)

    async def closer() -> None:
        await anyio.to_thread.run_sync(ready.wait, BOUND)
        await _calls(transport, https, "closer")
        await transport.aclose()
        closed.set()

    _in_threads([lambda: asyncio.run(other_loop()), lambda: anyio.run(closer, backend="trio")])
    assert "closed" in seen["error"]
    assert transport.open_clients == 0


def test_a_dropped_transport_closes_its_client_on_its_loop(https: HttpsAuthority) -> None:
    """An app garbage-collected while its loop runs: the finalizer closes its sockets."""
    port = _port(https)

    async def main() -> None:
        transport = Transport(verify=https.ca_file)
        await _calls(transport, https, "dropped")
        assert client_sockets_to(port) != 0
        del transport
        gc.collect()
        await _until_closed(port)

    asyncio.run(main())


_CLOSED_LOOP_SCRIPT = """
import asyncio, sys
from msal_async._transport import Transport
transport = Transport(verify=sys.argv[2])
url = sys.argv[1] + "/v2.0/.well-known/openid-configuration"
loop = asyncio.new_event_loop()
print(loop.run_until_complete(transport.get(url, cache=False)).status_code)
loop.close()  # without shutdown_asyncgens(): the finalizer cannot run there
print(asyncio.run(transport.get(url, cache=False)).status_code, transport.open_clients)
"""


@pytest.mark.slow
def test_a_loop_closed_without_shutdown_does_not_break_the_next(https: HttpsAuthority) -> None:
    """Run as a script: the closed loop's sockets are left to asyncio's collector there."""
    done = subprocess.run(
        [sys.executable, "-c", _CLOSED_LOOP_SCRIPT, https.authority, https.ca_file],
        capture_output=True,
        text=True,
        timeout=BOUND,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["200", "200", "0"]
