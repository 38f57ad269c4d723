"""Drivers for the docs' blocks that define things (an app, a route, a function) to be used.

A block runs as it is; when its id is a key here, the driver then uses what it defined, the
way the page says to. ``test_blocks.py`` fails on a driver whose block is gone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx

from msal_async import ConfidentialClientApplication, PublicClientApplication
from msal_async.testing import parse_form_post

from .environment import (
    CLIENT_ID,
    CLIENT_SECRET,
    PUBLIC_CLIENT_ID,
    TENANT,
    USERNAME,
    DocEnvironment,
)

Driver = Callable[[dict[str, Any], DocEnvironment], None]
AUTHORITY = f"https://login.microsoftonline.com/{TENANT}"


async def _get(app: Any, path: str, lifespan: Any = None) -> Any:
    async def call() -> Any:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            response = await client.get(path)
        response.raise_for_status()
        return response.json()

    if lifespan is None:
        return await call()
    async with lifespan(app):
        return await call()


def fastapi_token(path: str, *, with_lifespan: bool = False) -> Driver:
    """GET the block's route on its FastAPI ``app`` (inside its lifespan when it has one)."""

    def drive(ns: dict[str, Any], env: DocEnvironment) -> None:
        lifespan = ns["lifespan"] if with_lifespan else None
        body = anyio.run(_get, ns["app"], path, lifespan)
        assert body in (
            {"ok": True, "source": "identity_provider"},
            {"source": "identity_provider"},
        )
        assert env.emulator.counts["client_credentials"] == 1

    return drive


def readme_examples(ns: dict[str, Any], env: DocEnvironment) -> None:
    async def run() -> None:
        transport = httpx.ASGITransport(app=env.managed_identity)
        async with httpx.AsyncClient(transport=transport) as http:
            await ns["examples"](http)

    anyio.run(run)
    assert env.emulator.counts["urn:ietf:params:oauth:grant-type:device_code"] == 1
    assert len(env.managed_identity.requests) == 1


def readme_emulator(ns: dict[str, Any], env: DocEnvironment) -> None:
    app: ConfidentialClientApplication = ns["app"]
    result = anyio.run(app.acquire_token_for_client, ["https://graph.microsoft.com/.default"])
    assert result["error"], result  # the injected 429
    assert ns["emulator"].pending_faults == 0


def auth_code(ns: dict[str, Any], env: DocEnvironment) -> None:
    async def run() -> str:
        auth_uri = await ns["login"]("session-1")
        transport = httpx.ASGITransport(app=env.emulator)
        async with httpx.AsyncClient(transport=transport) as browser:
            page = await browser.get(auth_uri)  # Alice is signed in: straight back
        result: str = await ns["callback"]("session-1", parse_form_post(page.text))
        return result

    assert anyio.run(run) == "Hello Alice"


def on_behalf_of(ns: dict[str, Any], env: DocEnvironment) -> None:
    incoming = env.emulator.issue_access_token(
        audience=CLIENT_ID,
        client_id="the-front-end-app",
        user_oid="4b6e0b5e-0000-4000-8000-000000000001",
        scp="access_as_user",
        extra_claims={"preferred_username": USERNAME},
    )
    result = anyio.run(ns["call_downstream_as_the_user"], incoming)
    assert result == {"status": 200, "token_type": "Bearer"}, result
    assert env.emulator.counts["urn:ietf:params:oauth:grant-type:jwt-bearer"] == 1


def user_fic(ns: dict[str, Any], env: DocEnvironment) -> None:
    async def run() -> dict[str, Any]:
        async with ConfidentialClientApplication(
            CLIENT_ID, client_credential=CLIENT_SECRET, authority=AUTHORITY
        ) as agent:
            result: dict[str, Any] = await ns["user_token_for_agent"](agent, USERNAME)
            assert [a["username"] for a in await agent.get_accounts()] == [USERNAME]
            return result

    assert "access_token" in anyio.run(run)


def silent(ns: dict[str, Any], env: DocEnvironment) -> None:
    async def run() -> None:
        async with PublicClientApplication(PUBLIC_CLIENT_ID, authority=AUTHORITY) as app:
            assert await ns["token_for"](app, USERNAME) is None
            flow = await app.initiate_device_flow(["User.Read"])  # approved at the first poll
            signed_in = await app.acquire_token_by_device_flow(flow)
            assert "access_token" in signed_in, signed_in
            found = await ns["token_for"](app, USERNAME)
            assert found is not None
            assert found["token_source"] == "cache"
            await ns["sign_out"](app, USERNAME)
            assert await ns["token_for"](app, USERNAME) is None

    anyio.run(run)


def concepts_apps(ns: dict[str, Any], env: DocEnvironment) -> None:
    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=env.emulator)) as http:
            await ns["with_your_client"](http)
            assert not http.is_closed  # the app never closes a client it was given

    anyio.run(run)
    assert env.emulator.counts["client_credentials"] == 2


def managed_identity(ns: dict[str, Any], env: DocEnvironment) -> None:
    vault_token: Callable[..., Awaitable[str]] = ns["vault_token"]

    async def run() -> None:
        transport = httpx.ASGITransport(app=env.managed_identity)
        async with httpx.AsyncClient(transport=transport) as http:
            system = await vault_token(http)
            user = await vault_token(http, "0d1c2b3a-0000-4000-8000-00000000abcd")
        assert env.managed_identity.decode(system)["aud"] == "https://vault.azure.net"
        assert env.managed_identity.decode(user)["aud"] == "https://vault.azure.net"

    anyio.run(run)


DRIVERS: dict[str, Driver] = {
    "README.md#fastapi-in-ten-lines": fastapi_token("/token"),
    "README.md#what-is-covered": readme_examples,
    "README.md#persistent-and-shared-caches-2": fastapi_token("/token", with_lifespan=True),
    "README.md#the-authority-emulator-for-your-tests": readme_emulator,
    "docs/caches.md#a-redis-cache-fleets": fastapi_token("/token-source", with_lifespan=True),
    "docs/quickstart.md#in-a-web-service": fastapi_token("/graph-token-source", with_lifespan=True),
    "docs/concepts.md#apps": concepts_apps,
    "docs/flows/auth-code.md#auth-code-web-apps": auth_code,
    "docs/flows/on-behalf-of.md#on-behalf-of-obo": on_behalf_of,
    "docs/flows/user-fic.md#user-federated-identity-credential": user_fic,
    "docs/flows/silent.md#silent-refresh-and-accounts": silent,
    "docs/flows/managed-identity.md#managed-identity": managed_identity,
}

#: Blocks that need a service besides the emulator.
NEEDS_REDIS = {
    "README.md#persistent-and-shared-caches-2",
    "docs/caches.md#a-redis-cache-fleets",
    "docs/deployment.md#deploying-a-shared-token-cache-on-redis-2",
}
