"""Every msal_async logger has a public, documented name under ``msal_async``, one per concern."""

from __future__ import annotations

import ast
import importlib
import logging
import re
from pathlib import Path

import pytest

from msal_async import _log
from msal_async.testing import AuthorityEmulator

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "msal_async"
MODULES = sorted(PACKAGE.rglob("*.py"))


def _get_logger_calls(path: Path) -> list[ast.Call]:
    tree = ast.parse(path.read_text())
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "getLogger"
    ]


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(PACKAGE)) for p in MODULES])
def test_loggers_take_their_name_from_one_place(path: Path) -> None:
    for call in _get_logger_calls(path):
        [arg] = call.args
        assert isinstance(arg, ast.Attribute), ast.unparse(call)
        assert ast.unparse(arg.value) == "_log", ast.unparse(call)
        assert getattr(_log, arg.attr) in _log.LOGGER_NAMES, ast.unparse(call)


def test_every_logger_in_use_is_a_documented_name() -> None:
    in_use = set()
    for path in MODULES:
        if path.name == "__main__.py":  # runs the CLI
            continue
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        try:
            module = importlib.import_module(name)
        except ImportError:  # an optional extra (redis, uvicorn) is not installed
            continue
        logger = getattr(module, "logger", None)
        if isinstance(logger, logging.Logger):
            in_use.add(logger.name)
    assert in_use == set(_log.LOGGER_NAMES)  # each concern logs, and nothing else does
    assert all(not part.startswith("_") for name in in_use for part in name.split("."))


def test_docs_list_every_logger() -> None:
    documented = set(
        re.findall(
            r"^\| `(msal_async\.\w+)` \|", (ROOT / "docs/logging.md").read_text(), re.MULTILINE
        )
    )
    assert documented == set(_log.LOGGER_NAMES)
    assert "docs/logging.md" in (ROOT / "README.md").read_text()


@pytest.mark.anyio
async def test_discovery_logs_under_its_public_name(caplog: pytest.LogCaptureFixture) -> None:
    import httpx

    from msal_async import ConfidentialClientApplication
    from msal_async.testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

    emulator = AuthorityEmulator()
    caplog.set_level(logging.DEBUG, logger=_log.ROOT)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as http:
        app = ConfidentialClientApplication(
            DEMO_CLIENT_ID,
            client_credential=DEMO_CLIENT_SECRET,
            authority="https://login.microsoftonline.com/contoso.onmicrosoft.com",
            http_client=http,
        )
        assert "access_token" in await app.acquire_token_for_client(["api://a/.default"])
    names = {record.name for record in caplog.records}
    assert _log.DISCOVERY in names
    assert names <= set(_log.LOGGER_NAMES)
