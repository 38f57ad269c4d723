"""A closed app is closed: after aclose() or `async with`, every public call raises one error.

The list of calls is checked against the classes' public coroutines, so a new method that is
not listed here fails ``test_every_public_coroutine_is_listed``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from msal_async import ClientApplication, ConfidentialClientApplication, PublicClientApplication
from msal_async.testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, AuthorityEmulator

pytestmark = pytest.mark.anyio

AUTHORITY = f"https://login.microsoftonline.com/{DEMO_TENANT_ID}"
PUBLIC_CLIENT_ID = "0c1f4a7e-5b3d-4e2a-9f80-7d6c5b4a3e21"
SCOPE = ["api://resource/.default"]
USER = "alice@contoso.onmicrosoft.com"
ACCOUNT = {"home_account_id": "uid.utid", "environment": "login.microsoftonline.com"}
FLOW = {"device_code": "code", "user_code": "ABC", "interval": 0, "expires_in": 60}

Call = Callable[[Any], Awaitable[object]]

#: One valid call of every public coroutine (``aclose`` and ``__aexit__`` close; they may
#: run again).
COMMON: dict[str, Call] = {
    "prefetch": lambda app: app.prefetch(["User.Read"]),
    "acquire_token_silent": lambda app: app.acquire_token_silent(["User.Read"], ACCOUNT),
    "acquire_token_silent_with_error": lambda app: app.acquire_token_silent_with_error(
        ["User.Read"], ACCOUNT
    ),
    "acquire_token_by_refresh_token": lambda app: app.acquire_token_by_refresh_token(
        "rt", ["User.Read"]
    ),
    "acquire_token_by_username_password": lambda app: app.acquire_token_by_username_password(
        USER, "password", ["User.Read"]
    ),
    "initiate_auth_code_flow": lambda app: app.initiate_auth_code_flow(
        ["User.Read"], redirect_uri="http://localhost", response_mode="form_post"
    ),
    "get_authorization_request_url": lambda app: app.get_authorization_request_url(["User.Read"]),
    "acquire_token_by_auth_code_flow": lambda app: app.acquire_token_by_auth_code_flow(
        {"state": "s", "scope": ["User.Read"]}, {"state": "s", "code": "c"}
    ),
    "acquire_token_by_authorization_code": lambda app: app.acquire_token_by_authorization_code(
        "code", ["User.Read"]
    ),
    "get_accounts": lambda app: app.get_accounts(),
    "remove_account": lambda app: app.remove_account(ACCOUNT),
    "__aenter__": lambda app: app.__aenter__(),
}
CONFIDENTIAL: dict[str, Call] = {
    **COMMON,
    "acquire_token_for_client": lambda app: app.acquire_token_for_client(SCOPE),
    "acquire_token_on_behalf_of": lambda app: app.acquire_token_on_behalf_of("assertion", SCOPE),
    "acquire_token_by_user_federated_identity_credential": (
        lambda app: app.acquire_token_by_user_federated_identity_credential(
            SCOPE, "assertion", username=USER
        )
    ),
    "remove_tokens_for_client": lambda app: app.remove_tokens_for_client(),
}
PUBLIC: dict[str, Call] = {
    **COMMON,
    "initiate_device_flow": lambda app: app.initiate_device_flow(["User.Read"]),
    "acquire_token_by_device_flow": lambda app: app.acquire_token_by_device_flow(dict(FLOW)),
    "acquire_token_interactive": lambda app: app.acquire_token_interactive(
        ["User.Read"], timeout=1
    ),
}
CLOSING = {"aclose", "__aexit__"}


def public_coroutines(cls: type) -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(cls)
        if (not name.startswith("_") or name == "__aenter__")
        and inspect.iscoroutinefunction(member)
    } - CLOSING


@pytest.mark.parametrize(
    ("cls", "calls"),
    [(ConfidentialClientApplication, CONFIDENTIAL), (PublicClientApplication, PUBLIC)],
    ids=["confidential", "public"],
)
def test_every_public_coroutine_is_listed(cls: type, calls: dict[str, Call]) -> None:
    assert public_coroutines(cls) == set(calls)


def make(kind: str, http: httpx.AsyncClient) -> ClientApplication:
    if kind == "confidential":
        return ConfidentialClientApplication(
            DEMO_CLIENT_ID,
            client_credential=DEMO_CLIENT_SECRET,
            authority=AUTHORITY,
            http_client=http,
        )
    return PublicClientApplication(PUBLIC_CLIENT_ID, authority=AUTHORITY, http_client=http)


CASES = [("confidential", name) for name in sorted(CONFIDENTIAL)] + [
    ("public", name) for name in sorted(PUBLIC)
]


@pytest.mark.parametrize("how", ["aclose", "async with"])
@pytest.mark.parametrize(("kind", "method"), CASES, ids=[f"{k}-{m}" for k, m in CASES])
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
async def test_every_call_on_a_closed_app_raises_the_same_error(
    emulator: AuthorityEmulator, http: httpx.AsyncClient, kind: str, method: str, how: str
) -> None:
    emulator.register_client(PUBLIC_CLIENT_ID)
    app = make(kind, http)
    if kind == "confidential":  # a cached token must not slip through the hot path
        assert "access_token" in await app.acquire_token_for_client(SCOPE)  # type: ignore[attr-defined]
        assert "access_token" in await app.acquire_token_for_client(SCOPE)  # type: ignore[attr-defined]
    if how == "aclose":
        await app.aclose()
    else:
        async with app:
            pass
    requests = len(emulator.requests)
    calls = CONFIDENTIAL if kind == "confidential" else PUBLIC
    with pytest.raises(RuntimeError) as raised:
        await calls[method](app)
    name = type(app).__name__
    assert str(raised.value) == (
        f"This {name} was closed (aclose() or the end of `async with`); create a new one"
    )
    assert len(emulator.requests) == requests  # nothing was sent
    await app.aclose()  # closing again is harmless
