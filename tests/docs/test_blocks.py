"""Every code block of README.md and docs/ runs (against the emulator) and passes mypy --strict."""

from __future__ import annotations

import ast
import importlib.util
import json
import logging
import os
import shutil
import sys
import types
import warnings
import webbrowser
from collections.abc import Iterator
from pathlib import Path

import pytest

from msal_async.testing import ManagedIdentityEmulator, emulate

from .blocks import ROOT, Block, all_blocks
from .drivers import DRIVERS, NEEDS_REDIS
from .environment import DocEnvironment, ScriptedBrowser, docs_emulator

BLOCKS = all_blocks()
PYTHON = [b for b in BLOCKS if b.language == "python"]
RUNNABLE = [b for b in PYTHON if b.not_runnable is None]
IN_CI = os.environ.get("MSAL_ASYNC_CI") == "1"
#: Variables that would point a managed identity somewhere else than IMDS.
MI_VARIABLES = (
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "AZUREPS_HOST_ENVIRONMENT",
)
#: Warnings a page says its example raises.
EXPECTED_WARNINGS: dict[str, type[Warning]] = {
    # msal's DeprecationWarning for ROPC from a public client, kept (the page says so)
    "docs/flows/username-password.md#username-and-password": DeprecationWarning,
}
BROWSER = ScriptedBrowser()
webbrowser.register(BROWSER.name, None, BROWSER, preferred=True)


def missing_modules(block: Block) -> list[str]:
    """Third-party modules the block imports that are not installed (fastapi: the docs extra)."""
    tree = ast.parse(block.code)
    names = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and not node.level
    }
    return sorted(name for name in names if importlib.util.find_spec(name) is None)


def skip_or_fail(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason}; MSAL_ASYNC_CI=1 makes this a failure (.ci/run installs it)")
    pytest.skip(reason)


def test_every_block_is_checked_or_marked_not_runnable() -> None:
    for block in BLOCKS:
        where = f"{block.path}:{block.line}"
        assert block.language, f"{where}: name the fence's language (```python, ```text...)"
        if block.language not in ("python", "text", "json"):
            assert block.not_runnable, (
                f"{where}: a ```{block.language} block is not run by the tests: mark it with "
                "<!-- not-runnable: REASON --> on the line before it"
            )


def test_data_blocks_parse() -> None:
    for block in BLOCKS:
        if block.language == "json":
            json.loads(block.code)


def test_every_driver_has_its_runnable_block() -> None:
    runnable = {block.id for block in RUNNABLE}
    assert set(DRIVERS) <= runnable, set(DRIVERS) - runnable
    assert runnable.isdisjoint(b.id for b in PYTHON if b.not_runnable)
    assert len({b.id for b in BLOCKS}) == len(BLOCKS), "two blocks share an id"


@pytest.fixture
def doc_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[DocEnvironment]:
    """A sandbox: HOME and the working folder are temporary, the emulator is fresh."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    for name in MI_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    env = DocEnvironment(docs_emulator(), ManagedIdentityEmulator(), tmp_path)
    BROWSER.emulator = env.emulator
    levels = {name: logging.getLogger(name).level for name in ("", "msal_async")}
    try:
        yield env
    finally:
        BROWSER.emulator = None
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> str:
    """The session's redis-server (tests/cache), flushed; skipped where it is missing."""
    if shutil.which("redis-server") is None:
        skip_or_fail("redis-server is not installed")
    server = request.getfixturevalue("redis")
    url: str = server.url
    return url


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.id for b in RUNNABLE])
def test_block_runs(
    block: Block,
    doc_env: DocEnvironment,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    missing = missing_modules(block)
    if missing:
        skip_or_fail(f"{block.id} needs {', '.join(missing)} (pip install -e '.[docs]')")
    if block.id in NEEDS_REDIS:
        doc_env.redis_url = request.getfixturevalue("redis_url")
        monkeypatch.setenv("REDIS_URL", doc_env.redis_url)
    name = "docs_block_" + "".join(c if c.isalnum() else "_" for c in block.id)
    module = types.ModuleType(name)
    module.__file__ = str(ROOT / block.path)
    sys.modules[name] = module
    try:
        code = compile(block.code, f"{block.path}:{block.line}", "exec")
        with emulate(doc_env.emulator), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            exec(code, module.__dict__)  # noqa: S102 (our own docs, the point of the test)
            driver = DRIVERS.get(block.id)
            if driver is not None:
                driver(module.__dict__, doc_env)
    finally:
        del sys.modules[name]
    expected = EXPECTED_WARNINGS.get(block.id)
    unexpected = [w for w in caught if expected is None or not issubclass(w.category, expected)]
    assert not unexpected, [str(w.message) for w in unexpected]
    if expected is not None:
        assert any(issubclass(w.category, expected) for w in caught), f"no {expected.__name__}"


@pytest.mark.slow
def test_blocks_pass_mypy_strict(tmp_path: Path) -> None:
    from mypy import api

    files: dict[str, Block] = {}
    for index, block in enumerate(PYTHON):
        missing = missing_modules(block)
        if missing:
            skip_or_fail(f"{block.id} needs {', '.join(missing)} to be type-checked")
        path = tmp_path / f"block_{index:02d}.py"
        path.write_text(block.code)
        files[path.name] = block
    stdout, stderr, status = api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            "--strict",
            "--no-error-summary",
            "--show-error-codes",
            *(str(tmp_path / name) for name in files),
        ]
    )
    problems = []
    for line in stdout.splitlines():
        name, _, rest = line.partition(":")
        source = files.get(Path(name).name)
        if source is None:
            problems.append(line)
            continue
        number, _, message = rest.partition(":")
        problems.append(f"{source.path}:{source.line + int(number)}: {message.strip()}")
    assert not problems, "\n".join(problems)
    assert status == 0, stderr
