"""Public names, parameter names and defaults mirror the real msal 1.39 signatures."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import anyio
import httpx
import msal
import pytest

import msal_async
from msal_async.testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

from .conftest import HttpsAuthority, requests_session_trusting


def params(func: Any) -> list[tuple[str, object, inspect._ParameterKind]]:
    return [
        (p.name, p.default, p.kind)
        for p in inspect.signature(func).parameters.values()
        if p.name != "self"
    ]


PAIRS = [
    ("ClientApplication", "__init__"),
    ("PublicClientApplication", "__init__"),
    ("ConfidentialClientApplication", "acquire_token_for_client"),
    ("ConfidentialClientApplication", "remove_tokens_for_client"),
    ("ConfidentialClientApplication", "acquire_token_on_behalf_of"),
    ("ConfidentialClientApplication", "acquire_token_by_user_federated_identity_credential"),
    ("ManagedIdentityClient", "__init__"),
    ("ManagedIdentityClient", "acquire_token_for_client"),
    ("SystemAssignedManagedIdentity", "__init__"),
    ("UserAssignedManagedIdentity", "__init__"),
    ("PopAuthScheme", "__init__"),
    ("AutoRefresher", "__init__"),
    ("ClientApplication", "is_pop_supported"),
    ("ClientApplication", "initiate_auth_code_flow"),
    ("ClientApplication", "get_authorization_request_url"),
    ("ClientApplication", "acquire_token_by_auth_code_flow"),
    ("ClientApplication", "acquire_token_by_authorization_code"),
    ("ClientApplication", "get_accounts"),
    ("ClientApplication", "remove_account"),
    ("ClientApplication", "acquire_token_silent"),
    ("ClientApplication", "acquire_token_silent_with_error"),
    ("ClientApplication", "acquire_token_by_refresh_token"),
    ("ClientApplication", "acquire_token_by_username_password"),
    ("PublicClientApplication", "initiate_device_flow"),
    ("PublicClientApplication", "acquire_token_by_device_flow"),
    ("PublicClientApplication", "acquire_token_interactive"),
    ("TokenCache", "add"),
    ("TokenCache", "search"),
    ("TokenCache", "modify"),
    ("TokenCache", "find"),
    ("TokenCache", "remove_rt"),
    ("TokenCache", "update_rt"),
    ("TokenCache", "remove_at"),
    ("TokenCache", "remove_idt"),
    ("TokenCache", "remove_account"),
    ("SerializableTokenCache", "serialize"),
    ("SerializableTokenCache", "deserialize"),
]


@pytest.mark.parametrize(("cls", "method"), PAIRS, ids=[f"{c}.{m}" for c, m in PAIRS])
def test_signature_matches_msal(cls: str, method: str) -> None:
    ours = getattr(getattr(msal_async, cls), method)
    theirs = getattr(getattr(msal, cls), method)
    assert params(ours) == params(theirs)


def test_acquire_methods_are_coroutines() -> None:
    app = msal_async.ConfidentialClientApplication
    assert asyncio.iscoroutinefunction(app.acquire_token_for_client)
    assert asyncio.iscoroutinefunction(app.remove_tokens_for_client)


def test_exported_names_exist_in_msal_or_are_ours() -> None:
    ours_only = {"MsalError", "MsalServiceError", "MsalTransportError", "AuthorityBuilder"}
    # persistent caches (msal-extensions has them for msal, as PersistedTokenCache...)
    ours_only |= {"AsyncPersistence", "FilePersistence", "PersistedTokenCache", "RedisPersistence"}
    ours_only |= {"UnsupportedBackendError"}  # a store used under the wrong async library
    ours_only |= {"BearerAuth"}  # httpx integration
    ours_only |= {"TokenResult", "DeviceFlow", "AuthCodeFlow", "Scopes"}  # typing of results
    ours_only |= {"instrument", "uninstrument"}  # OpenTelemetry (the otel extra)
    for name in msal_async.__all__:
        if name.startswith("__"):
            continue
        assert hasattr(msal, name) or name in ours_only, name
    assert issubclass(msal_async.ManagedIdentityError, ValueError)
    assert issubclass(msal_async.BrowserInteractionTimeoutError, RuntimeError)


def test_every_public_name_has_a_docstring() -> None:
    for name in msal_async.__all__:
        obj = getattr(msal_async, name)
        if inspect.isclass(obj):
            assert obj.__doc__, name
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and inspect.isfunction(member):
                    assert member.__doc__, f"{name}.{attr}"


# --- class constants and instance attributes -----------------------------------------------

#: Public class constants we have and msal has not, each with its reason.
OURS_ONLY_CONSTANTS = {
    # Where Azure Arc's agent keeps its key files, per platform: a class attribute so that a
    # subclass (or a test) can point elsewhere; msal hard-codes the same paths in a function.
    ("ManagedIdentityClient", "ARC_KEY_DIRECTORIES"),
}
#: msal's sentinels: ``object()`` instances, equal to nothing but themselves.
SENTINELS = {("PublicClientApplication", "CONSOLE_WINDOW_HANDLE")}


def class_constants(cls: type, prefix: str = "") -> dict[str, object]:
    """Public, non-callable class attributes (inherited too; nested classes flattened)."""
    found: dict[str, object] = {}
    for klass in reversed(cls.__mro__[:-1]):  # object last: it has none of its own
        for name, value in vars(klass).items():
            if name.startswith("_"):
                continue
            if inspect.isclass(value):
                found.update(class_constants(value, f"{prefix}{name}."))
            elif not (
                callable(value)
                or inspect.isdatadescriptor(value)
                or isinstance(value, (staticmethod, classmethod))
            ):
                found[prefix + name] = value
    return found


SHARED_CLASSES = sorted(
    name
    for name in msal_async.__all__
    if inspect.isclass(getattr(msal_async, name)) and inspect.isclass(getattr(msal, name, None))
)


@pytest.mark.parametrize("name", SHARED_CLASSES)
def test_class_constants_match_msal(name: str) -> None:
    theirs = class_constants(getattr(msal, name))
    ours = class_constants(getattr(msal_async, name))
    extra = {key for key in ours.keys() - theirs.keys() if (name, key) not in OURS_ONLY_CONSTANTS}
    assert extra == set()
    assert ours.keys() >= theirs.keys(), sorted(theirs.keys() - ours.keys())
    for key, value in theirs.items():
        if (name, key) in SENTINELS:
            assert type(ours[key]) is type(value), key
        else:
            assert (ours[key], type(ours[key])) == (value, type(value)), key


#: msal app attributes we do not have, each with its reason (the README lists them too).
ABSENT_APP_ATTRIBUTES = {
    "client",  # msal's internal oauth2cli.Client, whose methods block on the network
    "authority_groups",  # msal's memo of alias lookups; ours lives in the discovery service
}


@pytest.mark.anyio
async def test_instance_attributes_match_msal(https_authority: HttpsAuthority) -> None:
    """The app and app.authority attributes msal sets (its constructor discovers; we do later)."""

    def theirs() -> Any:
        return msal.ConfidentialClientApplication(
            DEMO_CLIENT_ID,
            client_credential=DEMO_CLIENT_SECRET,
            authority=https_authority.authority,
            instance_discovery=False,
            http_client=requests_session_trusting(https_authority.ca_file),
            app_name="parity",
            app_version="1.0",
            client_claims={"client_ip": "10.0.0.1"},
        )

    msal_app = await anyio.to_thread.run_sync(theirs)
    async with msal_async.ConfidentialClientApplication(
        DEMO_CLIENT_ID,
        client_credential=DEMO_CLIENT_SECRET,
        authority=https_authority.authority,
        instance_discovery=False,
        verify=https_authority.ca_file,
        app_name="parity",
        app_version="1.0",
        client_claims={"client_ip": "10.0.0.1"},
    ) as app:
        with pytest.raises(AttributeError, match=r"await app\.prefetch\(\)"):
            _ = app.authority.token_endpoint  # before discovery: says how to get it
        assert "access_token" in await app.acquire_token_for_client(["api://p/.default"])
        public = {name for name in vars(msal_app) if not name.startswith("_")}
        assert public - ABSENT_APP_ATTRIBUTES == {n for n in public if hasattr(app, n)}
        for name in ("client_id", "client_credential", "client_claims", "app_name", "app_version"):
            assert getattr(app, name) == getattr(msal_app, name), name
        assert isinstance(app.http_client, httpx.AsyncClient)
        assert type(app.token_cache).__name__ == type(msal_app.token_cache).__name__
        for name in (n for n in vars(msal_app.authority) if not n.startswith("_")):
            assert getattr(app.authority, name) == getattr(msal_app.authority, name), name
    assert app.http_client is None  # closed


def test_token_cache_instance_attributes_match_msal() -> None:
    for name in ("TokenCache", "SerializableTokenCache"):
        theirs, ours = getattr(msal, name)(), getattr(msal_async, name)()
        public = {attr for attr in dir(theirs) if not attr.startswith("_")}
        assert {attr for attr in public if not hasattr(ours, attr)} == set(), name
