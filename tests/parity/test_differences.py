"""Every difference from msal 1.39 is a deliberate one, listed with its reason in the README.

Each scenario runs through real msal and msal_async against the same HTTPS emulator; every
difference found (on the wire, in result and flow dicts, in exceptions and warnings) must match
one entry of ``DELIBERATE`` (or of ``FOR_THE_LEAD``: differences that are bugs in modules this
test does not own, reported and awaiting a fix), and every entry must match something.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..conftest import HttpsAuthority
from .harness import Outcome, differences, run
from .scenarios import SCENARIOS

pytestmark = pytest.mark.anyio

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
#: What our GETs send and msal's do not (msal's user realm GET has a client-request-id).
GET_HEADERS = (
    "client-request-id|x-app-name|x-app-ver|x-client-os|x-client-sku|x-client-ver"
    "|x-ms-lib-capability"
)


@dataclass(frozen=True)
class Difference:
    """A known difference: the lines of the comparison it explains, and where it is written."""

    pattern: str  # matches "<scenario> | <difference line>"
    readme: str  # the README sentence that lists it ("" for the lead's pending fixes)


DELIBERATE = {
    # x-client-sku and x-client-ver name msal_async and its version, so that Entra's operators
    # can tell its traffic from msal's.
    "client SKU and version": Difference(
        r".* \| POST .*: header x-client-(sku|ver): value",
        "`x-client-sku: MSAL.Python.Async` and `x-client-ver` with msal_async's version",
    ),
    # One transport sends every request with the client headers, a client-request-id (so the
    # server's logs correlate) and Accept: application/json; msal sends discovery GETs bare.
    "client headers on GETs": Difference(
        rf".* \| GET .*: header (accept: value|({GET_HEADERS}): ours only)",
        "Discovery and user realm GETs carry the client headers",
    ),
    # The scopes asked for stay in the flow, so the token is cached under them when the
    # server's answer leaves `scope` out (RFC 6749 section 5.1 allows it).
    "device flow _scope": Difference(
        r"device flow \| device flow: key _scope: ours only",
        "The device flow dict has one more private key, `_scope`",
    ),
    # A 5xx is an error dict, not MsalServiceError; the failed request is then reported in
    # the next request's x-client-last-telemetry, as msal reports a 4xx.
    "5xx as an error dict": Difference(
        r"failures \| (token endpoint 500: key .*"
        r"|POST .* \(client_credentials\): header x-client-last-telemetry: value)",
        "the failed request is reported in the next request's `x-client-last-telemetry`",
    ),
    # Bad arguments raise at the call, before any request (msal sends a claims_challenge that
    # is not JSON and returns the server's error).
    "claims_challenge checked": Difference(
        r"bad calls \| (call acquire_token_for_client\(claims not JSON\): key .*"
        r"|POST .* \(client_credentials\): sent msal 1, ours 0)",
        "A `claims_challenge` that is not JSON raises ValueError",
    ),
    # msal asserts (AssertionError, gone under python -O); we raise ValueError.
    "scopes not a list": Difference(
        r"bad calls \| call acquire_token_for_client\(str scopes\): key raised "
        r"(AssertionError: msal only|ValueError: ours only)",
        "`scopes` that are a string raise ValueError",
    ),
    # On an authority with a port, user realm discovery asks that port (msal asks 443).
    "user realm keeps the port": Difference(
        r".* \| asked port 443: key /common/userrealm: msal only",
        "User realm discovery keeps the authority's port",
    ),
    # A flow dict without device_code is a wrong value: ValueError naming it (msal: KeyError).
    "device flow without device_code": Difference(
        r"bad calls \| call acquire_token_by_device_flow\(empty flow\): key raised "
        r"(KeyError: msal only|ValueError: ours only)",
        "a device flow without `device_code` raises ValueError",
    ),
    # msal 1.39 passes its own headers= to the same call, so a caller's raises TypeError
    # ("multiple values"); we merge them under the library's own.
    "per-call headers= merged": Difference(
        r"per-call options \| (call acquire_token_for_client\(headers\): key .*"
        r"|POST .* \(client_credentials\): header x-ms-custom: ours only)",
        "`headers={...}` (msal 1.39 raises TypeError for it, as it passes its own `headers=`) are"
        " merged",
    ),
    # requests takes verify= per request, httpx per client: we refuse it at the call, saying
    # where it goes, rather than ignore it.
    "per-call verify= refused": Difference(
        r"per-call options \| call acquire_token_for_client\(verify\): key .*",
        "`verify=`, `proxies=` and `cert=` raise TypeError at the call",
    ),
}

FOR_THE_LEAD: dict[str, Difference] = {}


def unexplained(scenario: str, theirs: Outcome, ours: Outcome) -> set[str]:
    """The differences of one scenario that are not among the README's deliberate ones."""
    return {
        line
        for line in differences(theirs, ours)
        if not any(re.fullmatch(d.pattern, f"{scenario} | {line}") for d in DELIBERATE.values())
    }


async def test_every_difference_from_msal_is_a_known_one(
    https: HttpsAuthority, device_approval: None
) -> None:
    found: set[str] = set()
    for name, sides in SCENARIOS.items():
        theirs, ours = await run(https, *sides)
        found |= {f"{name} | {line}" for line in differences(theirs, ours)}
    known = {**DELIBERATE, **FOR_THE_LEAD}
    unexplained = {
        line for line in found if not any(re.fullmatch(d.pattern, line) for d in known.values())
    }
    assert unexplained == set()
    unused = {
        name
        for name, d in known.items()
        if not any(re.fullmatch(d.pattern, line) for line in found)
    }
    assert unused == set()  # each one is real (a fixed one must leave the list)


@pytest.mark.parametrize("name", list(DELIBERATE))
def test_the_readme_lists_each_deliberate_difference(name: str) -> None:
    assert " ".join(DELIBERATE[name].readme.split()) in " ".join(README.split())
