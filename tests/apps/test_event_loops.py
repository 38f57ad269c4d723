"""One app, many event loops at once: ``asyncio.run`` / ``trio.run`` per thread, as a sync
worker pool (Flask, Django, Celery) uses it.

Every loop gets its own single-flight state and its own HTTP client (the app builds them: no
``http_client=``), the token cache is shared. Over real HTTPS on 127.0.0.1, so sockets are real
and can leak: none may stay open once the loops ended and the app was closed.

A hang fails through the module's pytest timeout (the threads are daemons), never through a
timed assertion.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest

from msal_async import ConfidentialClientApplication
from msal_async.testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

from ..conftest import HttpsAuthority
from ..transport_servers import client_sockets_to

pytestmark = pytest.mark.timeout(60)

THREADS = 4
CALLS_PER_LOOP = 8  # concurrent acquire_token_for_client calls inside each loop

Runner = Callable[[Callable[[], Any]], Any]


def _asyncio(main: Callable[[], Any]) -> Any:
    return asyncio.run(main())


def _trio(main: Callable[[], Any]) -> Any:
    return anyio.run(main, backend="trio")


RUNNERS: dict[str, list[Runner]] = {
    "asyncio": [_asyncio] * THREADS,
    "trio": [_trio] * THREADS,
    "mixed": [_asyncio, _trio, _asyncio, _trio],
}


@pytest.fixture
def https(https_authority: HttpsAuthority) -> Iterator[HttpsAuthority]:
    """The shared HTTPS emulator, its counts reset; no socket of ours to it before or after."""
    https_authority.emulator.reset()
    assert client_sockets_to(_port(https_authority)) in (0, None)
    yield https_authority
    assert client_sockets_to(_port(https_authority)) in (0, None)


def _port(https: HttpsAuthority) -> int:
    port = urlsplit(https.base_url).port
    assert port is not None
    return port


def _app(https: HttpsAuthority) -> ConfidentialClientApplication:
    return ConfidentialClientApplication(
        DEMO_CLIENT_ID,
        client_credential=DEMO_CLIENT_SECRET,
        authority=https.authority,
        verify=https.ca_file,
        instance_discovery=False,
    )


def _in_threads(runners: list[Runner], mains: list[Callable[[], Any]]) -> list[Any]:
    """Run ``runner(main)`` per thread, all released together; re-raise the first error."""
    barrier = threading.Barrier(len(runners))
    results: list[Any] = [None] * len(runners)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait()
            results[i] = runners[i](mains[i])
        except BaseException as exc:  # noqa: BLE001 (reported by the test thread)
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(runners))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()  # a hang is caught by the pytest timeout
    if errors:
        raise errors[0]
    return results


def _loop_main(app: ConfidentialClientApplication, scope: str) -> Callable[[], Any]:
    """CALLS_PER_LOOP concurrent fetches of one scope on the running loop; their results."""

    async def main() -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []

        async def one() -> None:
            results.append(dict(await app.acquire_token_for_client([scope])))

        async with anyio.create_task_group() as group:
            for _ in range(CALLS_PER_LOOP):
                group.start_soon(one)
        return results

    return main


def _close(app: ConfidentialClientApplication) -> None:
    asyncio.run(app.aclose())


@pytest.mark.parametrize("kind", list(RUNNERS))
def test_one_scope_from_every_loop(https: HttpsAuthority, kind: str) -> None:
    app = _app(https)
    scope = "api://loops-same/.default"
    per_loop = _in_threads(RUNNERS[kind], [_loop_main(app, scope)] * THREADS)
    tokens: set[str] = set()
    for results in per_loop:
        assert len(results) == CALLS_PER_LOOP
        assert all("access_token" in r for r in results), results
        tokens |= {r["access_token"] for r in results}
    # The calls of one loop share one request (a loop may also find another loop's token in
    # the shared cache first): at most one request per loop, not one per call.
    sent = https.emulator.counts["client_credentials"]
    assert 1 <= sent <= THREADS
    assert 1 <= len(tokens) <= sent
    # Each loop's client closed with its loop; the app's close leaves nothing open either.
    assert app._transport.open_clients == 0
    _close(app)
    assert app._transport.open_clients == 0


@pytest.mark.parametrize("kind", list(RUNNERS))
def test_different_scopes_from_every_loop(https: HttpsAuthority, kind: str) -> None:
    app = _app(https)
    scopes = [f"api://loops-{kind}-{i}/.default" for i in range(THREADS)]
    per_loop = _in_threads(RUNNERS[kind], [_loop_main(app, s) for s in scopes])
    for scope, results in zip(scopes, per_loop, strict=True):
        assert len(results) == CALLS_PER_LOOP
        assert {r.get("token_type") for r in results} == {"Bearer"}, results
        assert len({r["access_token"] for r in results}) == 1
        posts = [
            r
            for r in https.emulator.requests
            if r.form.get("grant_type") == "client_credentials" and scope in r.form["scope"]
        ]
        assert len(posts) == 1  # one request per scope, shared by the loop's calls
    assert https.emulator.counts["client_credentials"] == THREADS
    assert app._transport.open_clients == 0

    # The cache is shared: a new loop is served every scope from it, with no request.
    async def again() -> list[str]:
        found = [await app.acquire_token_for_client([s]) for s in scopes]
        return [r["token_source"] for r in found]

    assert asyncio.run(again()) == ["cache"] * THREADS
    assert https.emulator.counts["client_credentials"] == THREADS
    _close(app)
    assert app._transport.open_clients == 0


def test_loops_in_turn_then_at_once_on_one_app(https: HttpsAuthority) -> None:
    """A loop that ended (its client closed) does not break the loops that come after."""
    app = _app(https)
    for turn in range(2):
        asyncio.run(_loop_main(app, f"api://turn-{turn}/.default")())
        anyio.run(_loop_main(app, f"api://turn-trio-{turn}/.default"), backend="trio")
        assert app._transport.open_clients == 0
    mains = [_loop_main(app, f"api://after-{i}/.default") for i in range(THREADS)]
    _in_threads(RUNNERS["mixed"], mains)
    assert https.emulator.counts["client_credentials"] == 4 + THREADS
    _close(app)
    assert app._transport.open_clients == 0
