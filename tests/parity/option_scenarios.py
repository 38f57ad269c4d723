"""The per-call options scenario: what msal relays to requests and we cannot take, or take more.

msal 1.39 hands unknown keyword arguments to ``requests``: ``verify=`` works per call there, and
its own ``headers=`` collides with a caller's (TypeError). We refuse ``verify=`` at the call
(httpx sets it per client) and merge ``headers=``: both in the README's list of differences.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

from ..conftest import HttpsAuthority
from .harness import APP_SCOPES, Dicts, msal_cca, our_cca, our_outcome, outcome

#: One scope for both calls: each library sends one request for it (a different call each).
OPTIONS_SCOPES = ["api://options/.default"]


def option_calls(app: Any, ca_file: str) -> dict[str, Callable[[], Any]]:
    return {
        "acquire_token_for_client(headers)": lambda: app.acquire_token_for_client(
            OPTIONS_SCOPES, headers={"x-ms-custom": "1"}
        ),
        "acquire_token_for_client(verify)": lambda: app.acquire_token_for_client(
            OPTIONS_SCOPES, verify=ca_file
        ),
        "acquire_token_for_client(unknown)": lambda: app.acquire_token_for_client(
            APP_SCOPES, unknown=1
        ),
    }


def msal_call_options(https: HttpsAuthority, session: requests.Session) -> Dicts:
    calls = option_calls(msal_cca(https, session), https.ca_file)
    return {f"call {name}": outcome(call) for name, call in calls.items()}


async def our_call_options(https: HttpsAuthority) -> Dicts:
    async with our_cca(https) as app:
        calls = option_calls(app, https.ca_file)
        return {f"call {name}": await our_outcome(call) for name, call in calls.items()}
