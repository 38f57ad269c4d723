"""``import msal_async`` loads only the package itself; the rest loads on first use."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

import msal_async

# Heavy dependencies (and our own heavy modules) that must wait until something needs them.
DEFERRED = (
    "httpx",
    "httpcore",
    "h11",
    "cryptography",
    "joserfc",
    "trio",
    "anyio",
    "msal_async._managed_identity.client",
    "msal_async._oauth2.wstrust",
    "msal_async._loopback",
    "msal_async._cache.redis_store",
    "msal_async._cache.file_store",
    "msal_async._cache.persistence",
)


def run_fresh(code: str) -> Any:
    """Run ``code`` in a fresh interpreter; it prints one JSON object, returned here."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_loads_no_heavy_dependency() -> None:
    result = run_fresh(
        """
        import json, sys
        import msal_async
        print(json.dumps(sorted(sys.modules)))
        """
    )
    loaded = set(result)
    for name in DEFERRED:
        assert name not in loaded, f"import msal_async imported {name}"
    ours = sorted(m for m in loaded if m.startswith("msal_async"))
    assert ours == ["msal_async", "msal_async._version"]


def test_the_confidential_app_class_loads_no_certificate_or_optional_support() -> None:
    """A secret-only app pays for neither cryptography, joserfc nor trio, WS-Trust, MI, Redis."""
    loaded = set(
        run_fresh(
            """
            import json, sys
            from msal_async import ConfidentialClientApplication
            print(json.dumps(sorted(sys.modules)))
            """
        )
    )
    for name in (
        "cryptography",
        "joserfc",
        "trio",
        "msal_async._managed_identity.client",
        "msal_async._oauth2.wstrust",
        "msal_async._loopback",
        "msal_async._cache.redis_store",
        "msal_async._cache.file_store",
    ):
        assert name not in loaded, f"ConfidentialClientApplication imported {name}"


def test_every_public_name_loads_on_first_access() -> None:
    result = run_fresh(
        """
        import json
        import msal_async
        names = {}
        for name in msal_async.__all__:
            ns = {}
            exec(f"from msal_async import {name} as value", ns)
            names[name] = ns["value"] is getattr(msal_async, name)
        print(json.dumps({"names": names, "dir": dir(msal_async)}))
        """
    )
    names = result["names"]
    assert isinstance(names, dict)
    assert sorted(names) == sorted(msal_async.__all__)
    assert all(names.values()), names
    listed = result["dir"]
    assert isinstance(listed, list)
    assert set(msal_async.__all__) <= set(listed)
    assert [name for name in listed if not name.startswith("__")] == sorted(
        n for n in msal_async.__all__ if not n.startswith("__")
    )


def test_every_lazy_name_is_public() -> None:
    assert set(msal_async._SOURCES) == set(msal_async.__all__) - {"__version__"}


def test_unknown_name_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        msal_async.NoSuchThing  # noqa: B018
    with pytest.raises(ImportError, match="NoSuchThing"):
        exec("from msal_async import NoSuchThing")  # noqa: S102


def test_confidential_app_with_secret_constructs_without_io_then_works() -> None:
    """Construction touches no socket or subprocess and loads no HTTP stack; acquiring works."""
    result = run_fresh(
        """
        import json, sys
        import msal_async

        events = []

        def audit(event, args):
            if event.startswith(("socket.", "subprocess.", "os.system", "http.client")):
                events.append(event)

        sys.addaudithook(audit)
        app = msal_async.ConfidentialClientApplication(
            "5f1b4a4e-2c0d-4b8e-9c43-2b1e8f5d7a10",
            client_credential="a-client-secret",
            authority="https://login.microsoftonline.com/contoso.onmicrosoft.com",
        )
        during_construction = list(events)
        heavy = ("httpx", "httpcore", "h11", "asyncio", "cryptography", "joserfc", "trio")
        loaded = [name for name in heavy if name in sys.modules]

        import anyio
        from msal_async.testing import (
            DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, AuthorityEmulator, emulate,
        )

        # The emulator's demo client, on an app built before the emulator was routed in.
        app = msal_async.ConfidentialClientApplication(
            DEMO_CLIENT_ID,
            client_credential=DEMO_CLIENT_SECRET,
            authority=f"https://login.microsoftonline.com/{DEMO_TENANT_ID}",
        )

        async def main():
            async with app:
                return await app.acquire_token_for_client(["api://import-test/.default"])

        with emulate(AuthorityEmulator()) as emulator:
            token = anyio.run(main)
        print(json.dumps({
            "events": during_construction,
            "loaded": loaded,
            "token_type": token.get("token_type"),
            "has_token": bool(token.get("access_token")),
            "requests": emulator.counts.get("client_credentials", 0),
        }))
        """
    )
    assert result["events"] == []
    assert result["loaded"] == []  # httpx and the pool load with the first request
    assert result["token_type"] == "Bearer"
    assert result["has_token"] is True
    assert result["requests"] == 1
