"""Run a scenario through real msal and through msal_async; list every difference.

Both run against the same HTTPS emulator. Every request both send (method, path, query, form,
headers), every result and flow dict (keys, value types, and the values that are not random),
every exception (its type) and every warning is compared; :func:`differences` returns one line
per difference.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import anyio
import msal
import requests

import msal_async
from msal_async.testing import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_TENANT_ID,
    RecordedRequest,
    parse_auth_response,
)

from ..conftest import HttpsAuthority, requests_session_trusting
from ..test_wire_parity import GENERIC_HEADERS

PUBLIC_CLIENT = "4e3d2c1b-0a9f-4e8d-8c7b-6a5f4e3d2c1b"
USER = "grace@contoso.onmicrosoft.com"
PASSWORD = "s3cret pass"
SCOPES = ["User.Read"]
APP_SCOPES = ["api://parity/.default"]
DOWNSTREAM = ["api://downstream/read"]
REDIRECT_URI = "http://localhost:8765/"

#: Values drawn at random per request or per flow: compared by presence only.
RANDOM = {
    "header": {"client-request-id"},
    "query": {"state", "nonce", "code_challenge"},
    "form": {"code", "code_verifier", "refresh_token", "device_code", "client_assertion"},
}


#: Result and flow dict members that differ per call (tokens, times, ids, random codes).
RANDOM_VALUES = {
    "access_token",
    "refresh_token",
    "id_token",
    "id_token_claims",
    "expires_in",
    "ext_expires_in",
    "refresh_in",
    "refresh_on",
    "expires_at",
    "correlation_id",
    "_correlation_id",
    "trace_id",
    "timestamp",
    "error_description",
    "auth_uri",
    "state",
    "nonce",
    "code_verifier",
    "user_code",
    "device_code",
    "message",
}


@dataclass
class Outcome:
    """What one library did in a scenario: its requests, result dicts and flow dicts."""

    requests: list[RecordedRequest] = field(default_factory=list)
    dicts: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    warnings: set[str] = field(default_factory=set)


def _kind(request: RecordedRequest) -> str:
    path = request.path.replace(DEMO_TENANT_ID, "{tenant}")
    path = re.sub(r"/userrealm/[^/]+", "/userrealm/{username}", path)
    grant = request.form.get("grant_type")
    return f"{request.method} {path}" + (f" ({grant})" if grant else "")


_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _diff_fields(
    kind: str, part: str, theirs: Mapping[str, str], ours: Mapping[str, str]
) -> set[str]:
    found = set()
    for name in theirs.keys() - ours.keys():
        found.add(f"{kind}: {part} {name}: msal only")
    for name in ours.keys() - theirs.keys():
        found.add(f"{kind}: {part} {name}: ours only")
    for name in theirs.keys() & ours.keys():
        # Correlation ids (telemetry of failed requests) are random: compare the shape.
        their_value, our_value = (_GUID.sub("{id}", v[name]) for v in (theirs, ours))
        if name not in RANDOM.get(part, set()) and their_value != our_value:
            found.add(f"{kind}: {part} {name}: value")
    return found


def _comparable(value: Any) -> Any:
    # msal's flow "scope" is list(a set): its order changes from one process to the next.
    return (
        sorted(value)
        if isinstance(value, list) and all(isinstance(v, str) for v in value)
        else value
    )


def differences(theirs: Outcome, ours: Outcome) -> set[str]:
    """Every difference between two outcomes, one line each."""
    found = _request_differences(theirs.requests, ours.requests)
    found |= {f"warning {w}: msal only" for w in theirs.warnings - ours.warnings}
    found |= {f"warning {w}: ours only" for w in ours.warnings - theirs.warnings}
    for name in theirs.dicts.keys() | ours.dicts.keys():
        found |= _dict_differences(name, theirs.dicts.get(name, {}), ours.dicts.get(name, {}))
    return found


def _request_differences(theirs: list[RecordedRequest], ours: list[RecordedRequest]) -> set[str]:
    # Requests are paired per kind, in order: our discovery runs on the first await, not in
    # the constructor, so it may come later than msal's (the README says so).
    found: set[str] = set()
    by_kind: dict[str, tuple[list[RecordedRequest], list[RecordedRequest]]] = {}
    for index, requests_ in enumerate((theirs, ours)):
        for request in requests_:
            by_kind.setdefault(_kind(request), ([], []))[index].append(request)
    for kind, (their_requests, our_requests) in by_kind.items():
        if len(their_requests) != len(our_requests):
            found.add(f"{kind}: sent msal {len(their_requests)}, ours {len(our_requests)}")
        for their, mine in zip(their_requests, our_requests, strict=False):
            headers = [
                {k: v for k, v in r.headers.items() if k not in GENERIC_HEADERS}
                for r in (their, mine)
            ]
            found |= _diff_fields(kind, "header", headers[0], headers[1])
            found |= _diff_fields(kind, "query", their.query, mine.query)
            found |= _diff_fields(kind, "form", their.form, mine.form)
    return found


def _dict_differences(name: str, theirs: Mapping[str, Any], ours: Mapping[str, Any]) -> set[str]:
    found = {f"{name}: key {k}: msal only" for k in theirs.keys() - ours.keys()}
    found |= {f"{name}: key {k}: ours only" for k in ours.keys() - theirs.keys()}
    for key in theirs.keys() & ours.keys():
        their_type, our_type = type(theirs[key]).__name__, type(ours[key]).__name__
        if their_type != our_type:
            found.add(f"{name}: key {key}: type msal {their_type}, ours {our_type}")
        elif (
            key not in RANDOM_VALUES
            and not key.startswith("raised ")  # messages: ours name the parameter
            and _comparable(theirs[key]) != _comparable(ours[key])
        ):
            found.add(f"{name}: key {key}: value")
    return found


# --- running a scenario through both libraries ----------------------------------------------

Dicts = dict[str, Mapping[str, Any]]
MsalSide = Callable[[HttpsAuthority, requests.Session], Dicts]
OurSide = Callable[[HttpsAuthority], Awaitable[Dicts]]


def _seen(caught: list[warnings.WarningMessage]) -> set[str]:
    return {f"{w.category.__name__}({str(w.message)[:60]!r})" for w in caught}


async def run(https: HttpsAuthority, theirs: MsalSide, ours: OurSide) -> tuple[Outcome, Outcome]:
    """Run one scenario through msal (in a worker thread), then through msal_async.

    Returns:
        ``(msal's outcome, ours)``.
    """
    emulator = https.emulator
    adapter = _PortAdapter(urlsplit(https.base_url).port or 443)

    def msal_side() -> tuple[Dicts, set[str]]:
        with requests_session_trusting(https.ca_file) as session:
            session.mount("https://", adapter)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                return theirs(https, session), _seen(caught)

    start = len(emulator.requests)
    their_dicts, their_warnings = await anyio.to_thread.run_sync(msal_side)
    if adapter.redirected:
        their_dicts["asked port 443"] = dict.fromkeys(adapter.redirected)
    middle = len(emulator.requests)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        our_dicts = await ours(https)
    return (
        Outcome(list(emulator.requests[start:middle]), their_dicts, their_warnings),
        Outcome(list(emulator.requests[middle:]), our_dicts, _seen(caught)),
    )


class _PortAdapter(requests.adapters.HTTPAdapter):
    """msal's session adapter (one retry); what msal sends to port 443 goes to the emulator.

    msal builds the user realm URL from the host name alone, so on the emulator's port it
    would ask port 443: the request is sent on, and its path noted as a difference.
    """

    def __init__(self, port: int) -> None:
        super().__init__(max_retries=1)
        self.port = port
        self.redirected: list[str] = []

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        if request.url.startswith("https://127.0.0.1/"):
            self.redirected.append(urlsplit(request.url).path.rsplit("/", 1)[0])
            request.url = request.url.replace(
                "https://127.0.0.1/", f"https://127.0.0.1:{self.port}/"
            )
        return super().send(request, *args, **kwargs)


def browse(https: HttpsAuthority, auth_uri: str) -> dict[str, str]:
    """The user's browser (the same for both libraries): follow the authorize URL."""
    with requests_session_trusting(https.ca_file) as browser:
        location = browser.get(auth_uri, allow_redirects=False).headers["location"]
    return parse_auth_response(location)


def msal_cca(https: HttpsAuthority, session: requests.Session, **kwargs: Any) -> Any:
    kwargs.setdefault("authority", https.authority)
    kwargs.setdefault("instance_discovery", False)
    return msal.ConfidentialClientApplication(
        DEMO_CLIENT_ID, client_credential=DEMO_CLIENT_SECRET, http_client=session, **kwargs
    )


def our_cca(https: HttpsAuthority, **kwargs: Any) -> msal_async.ConfidentialClientApplication:
    kwargs.setdefault("authority", https.authority)
    kwargs.setdefault("instance_discovery", False)
    return msal_async.ConfidentialClientApplication(
        DEMO_CLIENT_ID, client_credential=DEMO_CLIENT_SECRET, verify=https.ca_file, **kwargs
    )


def msal_pca(https: HttpsAuthority, session: requests.Session, **kwargs: Any) -> Any:
    return msal.PublicClientApplication(
        PUBLIC_CLIENT,
        authority=https.authority,
        instance_discovery=False,
        http_client=session,
        **kwargs,
    )


def our_pca(https: HttpsAuthority, **kwargs: Any) -> msal_async.PublicClientApplication:
    return msal_async.PublicClientApplication(
        PUBLIC_CLIENT,
        authority=https.authority,
        instance_discovery=False,
        verify=https.ca_file,
        **kwargs,
    )


def outcome(call: Callable[[], Any]) -> Mapping[str, Any]:
    """The result dict of ``call``, or ``{"raised <ExceptionType>": ...}``."""
    try:
        result = call()
    except Exception as exc:  # noqa: BLE001 - which exception is what is compared
        return {f"raised {type(exc).__name__}": str(exc)}
    return result if isinstance(result, Mapping) else {f"returned {result!r}": None}


async def our_outcome(call: Callable[[], Awaitable[Any]]) -> Mapping[str, Any]:
    try:
        result = await call()
    except Exception as exc:  # noqa: BLE001 - which exception is what is compared
        return {f"raised {type(exc).__name__}": str(exc)}
    return result if isinstance(result, Mapping) else {f"returned {result!r}": None}
