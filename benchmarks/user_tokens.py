"""Issue 3 benchmark: silent cache hits and get_accounts(username=...) with 1 to 10,000 users.

Both libraries get the same signed-in accounts (one AT, RT, IdToken and Account each), built
from identical cache events, and no network: msal's constructor-time discovery is answered
by a canned session. Run through ``benchmarks/run.py`` or alone:
``python benchmarks/user_tokens.py [--quick]``.
"""

from __future__ import annotations

import base64
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import msal

import msal_async

TENANT = "8eaef023-2b34-4da1-9baa-8bc8c9d6a490"
HOST = "login.microsoftonline.com"
AUTHORITY = f"https://{HOST}/{TENANT}"
TOKEN_ENDPOINT = f"{AUTHORITY}/oauth2/v2.0/token"
CLIENT_ID = "5c7a1e4e-1b5c-4a8e-9d11-2f3c4b5a6d7e"
SCOPES = ["User.Read"]
SIZES = (1, 1_000, 10_000)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def events(count: int, now: int) -> list[dict[str, Any]]:
    """One auth-code sign-in event per user, as both caches receive them."""
    out = []
    for i in range(count):
        uid = f"00000000-0000-0000-0000-{i:012d}"
        claims = {"sub": uid, "oid": uid, "tid": TENANT, "preferred_username": f"u{i}@c.test"}
        response = {
            "access_token": f"at-{i}",
            "token_type": "Bearer",
            "expires_in": 3600,
            "refresh_token": f"rt-{i}",
            "scope": "User.Read openid profile",
            "client_info": _b64({"uid": uid, "utid": TENANT}),
            "id_token": f"{_b64({'alg': 'none'})}.{_b64(claims)}.",
        }
        out.append(
            {
                "client_id": CLIENT_ID,
                "scope": ["User.Read", "openid", "profile"],
                "token_endpoint": TOKEN_ENDPOINT,
                "grant_type": "authorization_code",
                "response": response,
                "params": {},
                "data": {},
                "environment": HOST,
            }
        )
    return out


class _CannedResponse:
    status_code = 200
    headers: dict[str, str] = {}  # noqa: RUF012 (read-only)

    def __init__(self, payload: dict[str, Any]) -> None:
        self.text = json.dumps(payload)

    def raise_for_status(self) -> None:
        """Nothing to raise."""


class _CannedSession:
    """Answers msal's constructor-time OpenID configuration GET; nothing else is sent."""

    def get(self, url: str, **_: Any) -> _CannedResponse:
        return _CannedResponse(
            {
                "authorization_endpoint": f"{AUTHORITY}/oauth2/v2.0/authorize",
                "token_endpoint": TOKEN_ENDPOINT,
                "issuer": f"https://{HOST}/{TENANT}/v2.0",
            }
        )

    def post(self, url: str, **_: Any) -> _CannedResponse:
        raise AssertionError("the benchmark must not hit the token endpoint")

    def close(self) -> None:
        """Nothing to close."""


def _median(call: Callable[[], object], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


async def _amedian(call: Callable[[], Any], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def measure_msal(count: int, rounds: int) -> tuple[float, float]:
    """(silent hit, get_accounts(username)) seconds for msal with ``count`` users."""
    cache = msal.TokenCache()
    now = int(time.time())
    for event in events(count, now):
        cache.add(event, now=now)
    app = msal.PublicClientApplication(
        CLIENT_ID,
        authority=AUTHORITY,
        token_cache=cache,
        http_client=_CannedSession(),
        instance_discovery=False,
    )
    username = f"u{count - 1}@c.test"
    [account] = app.get_accounts(username=username)
    assert app.acquire_token_silent(SCOPES, account)["token_source"] == "cache"
    hit = _median(lambda: app.acquire_token_silent(SCOPES, account), rounds)
    accounts = _median(lambda: app.get_accounts(username=username), rounds)
    return hit, accounts


async def measure_ours(count: int, rounds: int) -> tuple[float, float]:
    """(silent hit, get_accounts(username)) seconds for msal_async with ``count`` users."""
    cache = msal_async.TokenCache()
    now = int(time.time())
    for event in events(count, now):
        cache.add(event, now=now)
    async with msal_async.PublicClientApplication(
        CLIENT_ID, authority=AUTHORITY, token_cache=cache, instance_discovery=False
    ) as app:
        username = f"u{count - 1}@c.test"
        [account] = await app.get_accounts(username=username)
        first = await app.acquire_token_silent(SCOPES, account)
        assert first is not None
        assert first["token_source"] == "cache"
        hit = await _amedian(lambda: app.acquire_token_silent(SCOPES, account), rounds)
        accounts = await _amedian(lambda: app.get_accounts(username=username), rounds)
    return hit, accounts


def report(*, quick: bool = False, backend: str = "asyncio") -> str:
    """Run the issue-3 benchmark and render its table.

    Args:
        quick: fewer rounds and only the small sizes (a smoke test).
        backend: our event loop.

    Returns:
        The report text.
    """
    sizes = SIZES[:2] if quick else SIZES
    rounds = 20 if quick else 200
    rows = []
    for count in sizes:
        theirs = measure_msal(count, max(5, rounds // (1 + count // 1000)))
        ours = anyio.run(measure_ours, count, rounds, backend=backend)
        rows.append((count, theirs, ours))
    lines = [
        "User tokens (issue 3): median per call, in-memory cache, no network",
        (
            f"{'accounts':>9} | {'silent msal':>12} | {'silent ours':>12} | {'x':>6} | "
            f"{'get_accounts msal':>17} | {'ours':>10} | {'x':>6}"
        ),
    ]
    for count, (m_hit, m_acc), (o_hit, o_acc) in rows:
        lines.append(
            f"{count:>9} | {m_hit * 1e6:>9.1f} us | {o_hit * 1e6:>9.1f} us | "
            f"{m_hit / o_hit:>6.1f} | {m_acc * 1e6:>14.1f} us | {o_acc * 1e6:>7.1f} us | "
            f"{m_acc / o_acc:>6.1f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the report."""
    args = list(sys.argv[1:] if argv is None else argv)
    print(report(quick="--quick" in args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
