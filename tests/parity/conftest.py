"""Fixtures of the parity tests: the module's HTTPS emulator with a user, device approval."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ..conftest import HttpsAuthority
from .harness import PASSWORD, PUBLIC_CLIENT, USER


@pytest.fixture(scope="module")
def https(https_authority: HttpsAuthority) -> HttpsAuthority:
    """The module's HTTPS emulator with a public client and a user who signs in at once."""
    https_authority.emulator.register_client(PUBLIC_CLIENT)
    https_authority.emulator.add_user(USER, password=PASSWORD)
    return https_authority


@pytest.fixture
def device_approval(https: HttpsAuthority) -> Iterator[None]:
    """Approve a device code on its second poll, without waiting between polls."""
    settings = https.emulator.device_flow
    interval, on_poll = settings.interval, settings.on_poll

    def approve(auth: Any) -> None:
        if auth.polls >= 2:
            https.emulator.approve_device_code(auth.user_code, USER)

    settings.interval, settings.on_poll = 0, approve
    yield
    settings.interval, settings.on_poll = interval, on_poll
