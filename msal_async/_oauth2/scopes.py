"""Scope validation, reserved scopes, decoration and serialization (spec 1.11)."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["RESERVED_SCOPES", "decorate_scopes", "join_scopes", "validate_scopes"]

RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access"})


def validate_scopes(scopes: object, *, name: str = "scopes") -> list[str]:
    """Check that ``scopes`` is a list, tuple or set of non-empty strings.

    Returns:
        The scopes as a list, in the given order.

    Raises:
        ValueError: not a collection of strings (msal raises ValueError here too).
    """
    # msal raises ValueError for a non-collection; keep it so existing except clauses work.
    if isinstance(scopes, str) or not isinstance(scopes, list | tuple | set | frozenset):
        msg = (
            f"{name} must be a list, tuple or set of strings, got {type(scopes).__name__} "
            f"{scopes!r}; for one scope write [{scopes!r}]"
            if isinstance(scopes, str)
            else f"{name} must be a list, tuple or set of strings, got {type(scopes).__name__}"
        )
        raise ValueError(msg)  # noqa: TRY004 (msal raises ValueError)
    result = list(scopes)
    for scope in result:
        if not isinstance(scope, str) or not scope.strip():
            msg = f"{name} must contain non-empty strings, got {scope!r}"
            raise ValueError(msg)
    return result


def decorate_scopes(scopes: object, exclude_scopes: Iterable[str] = ()) -> list[str]:
    """Add ``openid profile offline_access`` to user-token scopes, as msal does.

    Returns:
        The decorated scope list (sorted).

    Raises:
        ValueError: scopes is not a collection, or names a reserved scope.
    """
    requested = set(validate_scopes(scopes))
    reserved = requested & RESERVED_SCOPES
    if reserved:
        msg = (
            f"You cannot use any scope value that is reserved: {sorted(RESERVED_SCOPES)}. "
            f"You passed in: {sorted(requested)}. "
            "msal_async adds them for you; remove them from the scopes list."
        )
        raise ValueError(msg)
    return sorted((requested | RESERVED_SCOPES) - set(exclude_scopes))


def join_scopes(scopes: Iterable[str]) -> str:
    """Serialize scopes for the wire: sorted ascending, space-joined (msal's order)."""
    return " ".join(sorted(set(scopes)))
