"""Scope validation, decoration and wire order."""

from __future__ import annotations

import pytest

from msal_async._oauth2.scopes import decorate_scopes, join_scopes, validate_scopes


def test_string_scope_is_rejected_with_a_fix() -> None:
    with pytest.raises(ValueError, match=r"\['api://x/.default'\]"):
        validate_scopes("api://x/.default")


@pytest.mark.parametrize("bad", [None, 3, {"a": 1}, [""], [None], ["ok", 5]])
def test_bad_scopes(bad: object) -> None:
    with pytest.raises(ValueError, match="scopes"):
        validate_scopes(bad)


def test_decoration_adds_reserved_scopes_minus_excluded() -> None:
    assert decorate_scopes(["User.Read"]) == ["User.Read", "offline_access", "openid", "profile"]
    assert decorate_scopes(["User.Read"], ["offline_access"]) == ["User.Read", "openid", "profile"]


def test_reserved_scope_in_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="reserved"):
        decorate_scopes(["openid", "User.Read"])


def test_wire_order_is_python_sort_order() -> None:
    assert join_scopes(["profile", "User.Read", "openid", "offline_access"]) == (
        "User.Read offline_access openid profile"
    )
