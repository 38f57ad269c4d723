"""Imports point down the layers of design.md; the emulator shares no client code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "msal_async"

# Layer of each private module (by dotted name under msal_async, prefix match).
LAYERS: dict[str, int] = {
    "_version": 0,
    "_log": 0,
    "_errors": 0,
    "_types": 0,
    "_observe": 0,
    "_clock": 0,
    "_json": 0,
    "_routing": 0,
    "_oauth2": 1,
    "_authority": 1,
    "_metadata": 1,
    "_auth_scheme": 1,
    "_credentials": 1,
    "_certificates": 1,
    "_throttle": 1,
    "_telemetry": 1,
    "_cache.schema": 1,
    "_cache.freshness": 1,
    "_cache.session": 2,
    "_cache.engine": 2,
    "_managed_identity.sources": 1,
    "_transport": 2,
    "_http": 2,
    "_singleflight": 2,
    "_jobs": 2,
    "_cache.token_cache": 2,
    "_cache.indexes": 1,
    "_cache": 2,
    "_discovery": 3,
    "_region": 3,
    "_loopback": 3,
    "_cache.persistence": 3,
    "_cache.file_store": 3,
    "_cache.file_lock": 2,
    "_cache.file_io": 2,
    "_cache.protocol": 2,
    "_cache.redis_store": 3,
    "_cache.redis_clients": 2,
    "_cache.redis_breaker": 2,
    "_cache.redis_layout": 1,
    "_cache.redis_tracking": 2,
    "_cache.redis_subscriber": 2,
    "_cache.redis_values": 2,
    "_cache.codec": 1,
    "_flows": 4,
    "_apps": 5,
    "_managed_identity": 5,
    "_cli": 6,
    "_token_source": 5,
    "_httpx_auth": 5,
    "azure": 6,
    "_otel": 5,
    "__init__": 6,
    "__main__": 6,
    "testing": 7,
}
# Third-party imports forbidden per layer (pure core: no I/O libraries).
FORBIDDEN_THIRD_PARTY = {1: {"httpx", "anyio", "os"}}


def layer_of(module: str) -> int:
    best = ""
    for prefix in LAYERS:
        if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    assert best, f"{module} has no layer in design.md's table; add it"
    return LAYERS[best]


def _module_exists(dotted: str) -> bool:
    parts = dotted.split(".")[1:]  # below msal_async
    base = PACKAGE.joinpath(*parts) if parts else PACKAGE
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(path: Path, module: str) -> list[str]:
    """Every module ``path`` imports, with ``from pkg import mod`` resolved to ``pkg.mod``."""
    tree = ast.parse(path.read_text())
    found: list[str] = []
    # The package a relative import starts from: the module's folder (for a/b.py and for
    # a/__init__.py alike, "a"); each extra dot climbs one level.
    package_parts = module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
                source = "msal_async." + target if target else "msal_async"
            elif node.module:
                source = node.module
            else:
                continue
            found.append(source)
            if source == "msal_async" or source.startswith("msal_async."):
                # `from . import options` imports the module msal_async._apps.options
                found.extend(
                    f"{source}.{alias.name}"
                    for alias in node.names
                    if _module_exists(f"{source}.{alias.name}")
                )
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return found


def test_relative_module_imports_are_resolved() -> None:
    """`from . import X` counts as an import of the module X (a layer-1 module can't hide one)."""
    found = imports_of(PACKAGE / "_apps" / "base.py", "_apps.base")
    assert "msal_async._apps.options" in found
    found = imports_of(PACKAGE / "_cache" / "token_cache.py", "_cache.token_cache")
    assert "msal_async._cache.schema" in found


MODULES = sorted(
    (str(p.relative_to(PACKAGE).with_suffix("")).replace("/", "."), p)
    for p in PACKAGE.rglob("*.py")
)


@pytest.mark.parametrize(("module", "path"), MODULES, ids=[m for m, _ in MODULES])
def test_imports_point_down(module: str, path: Path) -> None:
    own = layer_of(module.removesuffix(".__init__"))
    for imported in imports_of(path, module):
        top = imported.split(".")[0]
        if imported.startswith("msal_async."):
            target = imported.removeprefix("msal_async.")
            other = layer_of(target)
            if own == 7:  # the emulator may use leaf modules only
                assert other in (0, 7), f"{module} (emulator) imports client code {imported}"
            elif module == "__init__":
                # The one public surface re-exports public classes wherever they live
                # (TokenCache at layer 2, the persistence back ends at layer 3); it defines
                # nothing itself, so it cannot create a cycle.
                assert other <= 5, f"{module} imports {imported}"
            elif own == 6:
                assert other in (0, 5, 6) or target.startswith("testing") or other <= 1, (
                    f"{module} imports {imported}"
                )
            else:
                assert other < own or (other == own and own in (0, 1, 2, 4, 5)), (
                    f"{module} (layer {own}) imports {imported} (layer {other})"
                )
        assert top not in FORBIDDEN_THIRD_PARTY.get(own, set()), f"{module} imports {top}"


def test_flows_never_import_each_other() -> None:
    for module, path in MODULES:
        if module.startswith("_flows.") and module not in ("_flows.__init__", "_flows.context"):
            for imported in imports_of(path, module):
                if imported.startswith("msal_async._flows."):
                    assert imported == "msal_async._flows.context", f"{module} -> {imported}"
