"""``import msal_async`` and every in-memory flow work where ``fcntl`` does not exist (Windows).

Issue 10, finding 9: ``_cache/file_lock.py`` imported ``fcntl`` at module level, so the package
could not even be imported on Windows. A subprocess hides ``fcntl`` (an import hook that makes
``import fcntl`` raise ImportError, as on Windows) and runs the import, an in-memory
acquisition against the emulator through ``httpx.ASGITransport`` under asyncio and trio, and a
file cache, whose lock then falls back to the holder's pid and age.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

WITHOUT_FCNTL = """
import sys
import subprocess  # the standard library's own users of fcntl load it while it exists: on
                   # Windows they use msvcrt instead, so this is no help to msal_async

class NoFcntl:
    def find_spec(self, name, path=None, target=None):
        if name == "fcntl":
            raise ModuleNotFoundError("No module named 'fcntl'", name="fcntl")
        return None

sys.modules.pop("fcntl", None)
sys.meta_path.insert(0, NoFcntl())
try:
    import fcntl
except ImportError:
    pass
else:
    raise SystemExit("fcntl is not hidden")

import anyio
import httpx

import msal_async
from msal_async import ConfidentialClientApplication, FilePersistence, PersistedTokenCache
from msal_async.testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID
from msal_async.testing import AuthorityEmulator

AUTHORITY = f"https://login.microsoftonline.com/{DEMO_TENANT_ID}"


async def main(cache_file):
    emulator = AuthorityEmulator()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as http:
        async with ConfidentialClientApplication(
            DEMO_CLIENT_ID, client_credential=DEMO_CLIENT_SECRET, authority=AUTHORITY,
            http_client=http,
        ) as app:
            first = await app.acquire_token_for_client(["api://portable/.default"])
            again = await app.acquire_token_for_client(["api://portable/.default"])
        cache = PersistedTokenCache(FilePersistence(cache_file))
        async with ConfidentialClientApplication(
            DEMO_CLIENT_ID, client_credential=DEMO_CLIENT_SECRET, authority=AUTHORITY,
            http_client=http, token_cache=cache,
        ) as app:
            stored = await app.acquire_token_for_client(["api://portable/.default"])
    print(first["token_source"], again["token_source"], stored["token_source"])


anyio.run(main, sys.argv[1], backend=sys.argv[2])
print("fcntl" in sys.modules)
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_import_and_flows_without_fcntl(tmp_path: Path, backend: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_FCNTL, str(tmp_path / "cache.json"), backend],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["identity_provider", "cache", "identity_provider", "False"]
    assert (tmp_path / "cache.json").exists()
    assert not (tmp_path / "cache.json.lockfile").exists()


def test_supported_platforms_are_stated() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    for system in ("POSIX :: Linux", "MacOS", "Microsoft :: Windows"):
        assert f'"Operating System :: {system}",' in pyproject
    readme = (ROOT / "README.md").read_text()
    assert "Linux, macOS and Windows" in readme
