"""Throttling policy: which responses hold, for how long, and under which keys."""

from __future__ import annotations

from msal_async import _throttle as t


def test_hold_for_429_uses_retry_after_capped_at_an_hour() -> None:
    assert t.hold_seconds(429, {"retry-after": "12"}, 5) == 12
    assert t.hold_seconds(429, {"retry-after": "999999"}, 5) == 3600
    assert t.hold_seconds(429, {}, 5) == 5
    assert t.hold_seconds(429, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 60) == 60


def test_hold_for_5xx_and_any_retry_after() -> None:
    assert t.hold_seconds(500, {}, 60) == 60
    assert t.hold_seconds(200, {"retry-after": "3"}, 5) == 3
    assert t.hold_seconds(200, {}, 5) == 0
    assert t.hold_seconds(400, {}, 5) == 0


def test_replay_only_exact_400_without_retry_after_and_not_device_code() -> None:
    assert t.replay_seconds(400, {}, {"grant_type": "refresh_token"}) == 60
    assert t.replay_seconds(401, {}, {}) == 0
    assert t.replay_seconds(400, {"retry-after": "1"}, {}) == 0
    assert t.replay_seconds(400, {}, {"grant_type": t.DEVICE_CODE_GRANT}) == 0


def test_post_keys_scope_the_hold_by_client_scope_and_account() -> None:
    base = {"client_id": "c", "scope": "s", "refresh_token": "rt1"}
    replay1, hold1 = t.post_keys("u", base)
    replay2, hold2 = t.post_keys("u", {**base, "client_assertion": "new"})
    assert hold1 == hold2
    assert replay1 != replay2
    _, hold3 = t.post_keys("u", {**base, "refresh_token": "rt2"})
    assert hold3 != hold1
    assert "rt1" not in hold1
    assert "rt1" not in replay1


def test_get_key_depends_on_params() -> None:
    assert t.get_key("u", {"a": "1"}) != t.get_key("u", {"a": "2"})
    assert t.get_key("u", {"a": "1", "b": "2"}) == t.get_key("u", {"b": "2", "a": "1"})
