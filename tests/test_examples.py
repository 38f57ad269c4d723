"""Every recipe in examples/ runs against the emulator served over HTTPS on 127.0.0.1.

The recipes read their configuration from the environment, as they would in production; the
tests set what ``msal-async serve-authority --tls`` prints.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from msal_async.testing import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_TENANT_ID,
    AuthorityEmulator,
    serve_in_thread,
)

from .conftest import ServeAuthority, ServeHttps
from .resource_server import ProtectedResource

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PUBLIC_CLIENT_ID = "0c1f4a7e-5b3d-4e2a-9f80-7d6c5b4a3e21"


@dataclass
class Stack:
    """The authority and a protected API (Key Vault + JSON), both on HTTPS with one CA."""

    emulator: AuthorityEmulator
    resource: ProtectedResource
    authority_host: str
    api_url: str
    env: dict[str, str]


@pytest.fixture(scope="module")
def stack(serve_authority: ServeAuthority, serve_https: ServeHttps) -> Iterator[Stack]:
    emulator = AuthorityEmulator()
    emulator.register_client(PUBLIC_CLIENT_ID)
    with serve_authority(emulator) as https:
        authority_host = https.base_url
        resource = ProtectedResource(emulator, https.authority, {"db-password": "s3cr3t"})
        with serve_https(resource) as api_url:
            env = {
                "AZURE_AUTHORITY_HOST": authority_host,
                "AZURE_TENANT_ID": DEMO_TENANT_ID,
                "AZURE_CLIENT_ID": DEMO_CLIENT_ID,
                "AZURE_CLIENT_SECRET": DEMO_CLIENT_SECRET,
                "MSAL_ASYNC_CA_FILE": https.ca_file,
                "API_SCOPE": "api://orders/.default",
            }
            yield Stack(emulator, resource, authority_host, api_url, env)


@pytest.fixture
def env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    stack.emulator.reset()
    for name, value in stack.env.items():
        monkeypatch.setenv(name, value)
    return stack


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"examples_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # Django finds its URLconf by module name
    spec.loader.exec_module(module)
    return module


def test_fastapi_lifespan_prefetches_and_the_dependency_serves_from_cache(env: Stack) -> None:
    module = load("fastapi_app")
    with serve_in_thread(module.app) as base_url:  # uvicorn, lifespan included
        assert env.emulator.counts["client_credentials"] == 1  # prefetched at start-up
        responses = [httpx.get(f"{base_url}/token-info") for _ in range(3)]
    assert [r.json()["token_source"] for r in responses] == ["cache"] * 3
    assert env.emulator.counts["client_credentials"] == 1


def test_starlette_lifespan_state(env: Stack) -> None:
    module = load("starlette_app")
    with serve_in_thread(module.app) as base_url:
        response = httpx.get(f"{base_url}/token-info")
    assert response.json() == {"token_source": "cache"}
    assert env.emulator.counts["client_credentials"] == 1


def test_aiohttp_cleanup_context(env: Stack) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    module = load("aiohttp_app")

    async def run() -> Any:
        async with TestClient(TestServer(module.make_app())) as client:
            response = await client.get("/token-info")
            return await response.json()

    assert asyncio.run(run()) == {"token_source": "cache"}
    assert env.emulator.counts["client_credentials"] == 1


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_anyio_worker_pool(
    env: Stack, backend: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("API_SCOPES", "api://a/.default api://b/.default api://c/.default")
    load("worker_pool").main(["--backend", backend, "--workers", "10", "--jobs", "90"])
    assert capsys.readouterr().out.startswith("90 jobs: {")
    assert env.emulator.counts["client_credentials"] == 3  # one per API, however many workers


def test_django_async_view(env: Stack) -> None:
    module = load("django_view")

    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=module.application)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
            await c.get("/token-info")
            return await c.get("/token-info")

    response = asyncio.run(run())
    assert response.json() == {"token_source": "cache"}
    assert env.emulator.counts["client_credentials"] == 1


def test_azure_sdk_key_vault_through_azure_credential(
    env: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_URL", env.api_url)
    monkeypatch.setenv("KEYVAULT_VERIFY_CHALLENGE_RESOURCE", "false")
    module = load("azure_keyvault")
    secrets = asyncio.run(module.read_secrets(["db-password"] * 20))
    assert secrets == {"db-password": "s3cr3t"}
    assert env.emulator.counts["client_credentials"] == 1


def test_httpx_through_bearer_auth(env: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    import anyio

    monkeypatch.setenv("API_URL", f"{env.api_url}/api/orders")
    body = anyio.run(load("httpx_bearer").call_api)
    assert body["path"] == "/api/orders"
    assert body["appid"] == DEMO_CLIENT_ID


@pytest.mark.slow
def test_device_code_cli_signs_in_then_runs_silently(env: Stack, tmp_path: Path) -> None:
    env.emulator.device_flow.interval = 0
    env.emulator.device_flow.on_poll = lambda auth: env.emulator.approve_device_code(
        auth.user_code, "alice@contoso.onmicrosoft.com"
    )
    child_env = {**os.environ, "AZURE_CLIENT_ID": PUBLIC_CLIENT_ID}
    child_env["TOKEN_CACHE"] = str(tmp_path / "cache.json")
    command = [sys.executable, str(EXAMPLES / "device_code_cli.py")]
    runs = [
        subprocess.run(
            command, env=child_env, capture_output=True, text=True, timeout=60, check=False
        )
        for _ in range(2)
    ]
    assert [run.returncode for run in runs] == [0, 0], runs[0].stderr
    assert "code" in runs[0].stderr
    assert runs[0].stdout == (
        "signed in as alice@contoso.onmicrosoft.com; token from identity_provider\n"
    )
    assert runs[1].stderr == ""
    assert runs[1].stdout == "signed in as the cached account; token from cache\n"
    assert env.emulator.counts["devicecode"] == 1
