"""Public names, parameter names and defaults mirror the real msal 1.39 signatures."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import msal
import pytest

import msal_async


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
    ours_only |= {"BearerAuth"}  # httpx integration
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
