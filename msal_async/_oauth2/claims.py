"""The ``claims`` request parameter: capabilities, claims challenges, forwarded claims."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .. import _json

__all__ = ["merge_capabilities", "merge_claims", "parse_claims"]


def parse_claims(value: str, *, name: str = "claims_challenge") -> dict[str, Any]:
    """Parse a claims JSON string.

    Raises:
        ValueError: not a JSON object.
    """
    try:
        parsed = _json.loads(value)
    except _json.JSONInputError as exc:
        msg = f"{name} must be a JSON object string; got text that is not acceptable JSON ({exc})"
        raise ValueError(msg) from None
    if not isinstance(parsed, dict):
        msg = f"{name} must be a JSON object string; got JSON {type(parsed).__name__}"
        raise ValueError(msg)  # noqa: TRY004 (a bad value in a string)
    return parsed


def merge_capabilities(
    capabilities: Sequence[str] | None, claims_challenge: str | None
) -> str | None:
    """Put ``client_capabilities`` into ``access_token.xms_cc`` of the claims challenge.

    Returns:
        The merged claims JSON, or the challenge as given when there are no capabilities.
    """
    if not capabilities:
        return claims_challenge
    claims = parse_claims(claims_challenge) if claims_challenge else {}
    claims.setdefault("access_token", {})["xms_cc"] = {"values": list(capabilities)}
    return json.dumps(claims)


def _deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in overlay.items():
        if isinstance(result.get(key), dict) and isinstance(value, dict):
            result[key] = _deep_merge(result[key], value)
        else:
            result[key] = value
    return result


def merge_claims(first: str | None, second: str | None) -> str | None:
    """Deep-merge two claims JSON strings (``second`` wins on conflicts).

    Returns:
        The merged JSON, or whichever side is non-empty.
    """
    if not first:
        return second
    if not second:
        return first
    return json.dumps(_deep_merge(parse_claims(first), parse_claims(second)))
