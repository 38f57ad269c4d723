"""Where the docs' code blocks run: an emulator set up for their placeholder ids, a browser."""

from __future__ import annotations

import webbrowser
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx

from msal_async.testing import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    AuthorityEmulator,
    ManagedIdentityEmulator,
    parse_form_post,
)

#: The placeholders the docs use, registered with the emulator.
CLIENT_ID, CLIENT_SECRET = "my-client-id", "my-secret"
PUBLIC_CLIENT_ID = "my-public-client-id"
TENANT = "my-tenant-id"
USERNAME, PASSWORD = "alice@contoso.onmicrosoft.com", "correct horse"


def docs_emulator() -> AuthorityEmulator:
    """An emulator that knows the docs' placeholder apps, tenant and user."""
    emulator = AuthorityEmulator(
        tenant_domain=TENANT, clients={CLIENT_ID: CLIENT_SECRET, DEMO_CLIENT_ID: DEMO_CLIENT_SECRET}
    )
    emulator.register_client(PUBLIC_CLIENT_ID)
    emulator.add_user(USERNAME, name="Alice", password=PASSWORD)
    emulator.device_flow.interval = 0
    # The person at the other device enters the code as soon as the app polls.
    emulator.device_flow.on_poll = lambda auth: emulator.approve_device_code(
        auth.user_code, USERNAME
    )
    return emulator


class ScriptedBrowser(webbrowser.BaseBrowser):
    """A ``webbrowser`` browser that plays the signed-in user's browser with plain HTTP.

    It follows the authorize URI on the emulator (the user is signed in, so the answer is the
    ``form_post`` page) and posts the page's form to the app's loopback listener, as a browser
    runs the page's script. Between tests ``emulator`` is None and it opens nothing.
    """

    def __init__(self) -> None:
        super().__init__("msal-async-docs-browser")
        self.emulator: AuthorityEmulator | None = None
        self.opened: list[str] = []

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        emulator = self.emulator
        if emulator is None:
            return False
        self.opened.append(url)
        # webbrowser is called from a worker thread: play the browser on a loop of its own
        anyio.run(self._play, emulator, url)
        return True

    @staticmethod
    async def _play(emulator: AuthorityEmulator, url: str) -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as idp:
            page = await idp.get(url)
        page.raise_for_status()
        redirect = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        port = urlsplit(redirect).port
        async with httpx.AsyncClient() as local:
            await local.post(f"http://127.0.0.1:{port}/", data=parse_form_post(page.text))


@dataclass
class DocEnvironment:
    """What a block's driver may use."""

    emulator: AuthorityEmulator
    managed_identity: ManagedIdentityEmulator
    folder: Path
    redis_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
