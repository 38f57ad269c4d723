"""Typed results (TokenResult...) and scopes: what mypy accepts and rejects, and the runtime.

The functions at the top are checked by the project's own ``mypy`` run (it covers tests/): a
``type: ignore`` that stops being needed is itself an error under ``--strict``
(``warn_unused_ignores``), so a misspelt key that type-checks again fails CI there. The
mypy test below checks the same on a snippet and names the error, so it fails here too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from msal_async import (
    AuthCodeFlow,
    ConfidentialClientApplication,
    DeviceFlow,
    PublicClientApplication,
    TokenResult,
)
from msal_async.testing import DEMO_TENANT_ID, AuthorityEmulator

ROOT = Path(__file__).resolve().parents[1]
Make = Callable[..., ConfidentialClientApplication]
PUBLIC_CLIENT_ID = "0c1f4a7e-5b3d-4e2a-9f80-7d6c5b4a3e21"


# --- checked statically by the project's mypy run --------------------------------------------


async def _misspelt_key(app: ConfidentialClientApplication) -> object:
    result = await app.acquire_token_for_client(["api://resource/.default"])
    return result["acess_token"]  # type: ignore[typeddict-item]


async def _bare_string_scope(app: ConfidentialClientApplication) -> TokenResult:
    return await app.acquire_token_for_client("api://resource/.default")  # type: ignore[arg-type]


async def _every_collection_the_runtime_accepts(app: ConfidentialClientApplication) -> str:
    await app.acquire_token_for_client(("api://a/.default",))
    await app.acquire_token_for_client({"api://a/.default"})
    await app.acquire_token_for_client(frozenset({"api://a/.default"}))
    result: TokenResult = await app.acquire_token_for_client(["api://a/.default"])
    if "error" in result:
        return result.get("error_description", "")
    return result["access_token"]


async def _flows_are_typed(app: PublicClientApplication) -> str:
    device: DeviceFlow = await app.initiate_device_flow(("User.Read",))
    code: AuthCodeFlow = await app.initiate_auth_code_flow({"User.Read"})
    return device.get("message", "") + code["auth_uri"]


# --- the same, asserted on mypy's own output ---------------------------------------------------

SNIPPET = """
from msal_async import ConfidentialClientApplication


async def token(app: ConfidentialClientApplication) -> str:
    result = await app.acquire_token_for_client(("api://resource/.default",))
    await app.acquire_token_for_client("api://resource/.default")
    return result["acess_token"]
"""


def test_mypy_rejects_a_misspelt_result_key_and_a_bare_string_scope(tmp_path: Path) -> None:
    from mypy import api

    snippet = tmp_path / "snippet.py"
    snippet.write_text(SNIPPET)
    stdout, stderr, status = api.run(
        [
            "--strict",
            "--no-error-summary",
            "--show-error-codes",
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            str(snippet),
        ]
    )
    errors = [line.split(":", 1)[1] for line in stdout.splitlines() if ": error:" in line]
    assert status == 1, (stdout, stderr)
    assert any(
        line.startswith("8:") and 'TypedDict "TokenResult" has no key "acess_token"' in line
        for line in errors
    ), stdout
    assert any(line.startswith("7:") and "[arg-type]" in line for line in errors), stdout
    assert not any(line.startswith("6:") for line in errors), stdout  # a tuple is fine


# --- the runtime accepts what the types say ----------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    "scopes",
    [["api://resource/.default"], ("api://resource/.default",), {"api://resource/.default"}],
    ids=["list", "tuple", "set"],
)
async def test_every_scope_collection_is_accepted(make_cca: Make, scopes: object) -> None:
    app = make_cca()
    first = await app.acquire_token_for_client(frozenset({"api://resource/.default"}))
    again = await app.acquire_token_for_client(scopes)  # type: ignore[arg-type]
    assert again["access_token"] == first["access_token"]
    assert again["token_source"] == "cache"


@pytest.mark.anyio
async def test_a_bare_string_scope_raises_naming_the_fix(make_cca: Make) -> None:
    app = make_cca()
    with pytest.raises(ValueError, match=r"for one scope write \['api://resource/.default'\]"):
        await app.acquire_token_for_client("api://resource/.default")  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_prefetch_takes_a_tuple_on_a_public_app(
    emulator: AuthorityEmulator, http: httpx.AsyncClient
) -> None:
    """prefetch's silent path used to hand a tuple to acquire_token_silent (list only)."""
    emulator.register_client(PUBLIC_CLIENT_ID)
    emulator.device_flow.interval = 0
    app = PublicClientApplication(
        PUBLIC_CLIENT_ID,
        authority=f"https://login.microsoftonline.com/{DEMO_TENANT_ID}",
        http_client=http,
    )
    flow = await app.initiate_device_flow(("User.Read",))
    emulator.approve_device_code(flow["user_code"], "alice@contoso.onmicrosoft.com")
    assert "access_token" in await app.acquire_token_by_device_flow(flow)
    warmed = await app.prefetch(("Files.Read",))
    assert warmed is not None
    assert "access_token" in warmed, warmed
