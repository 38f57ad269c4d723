"""``WWW-Authenticate`` challenges (RFC 7235 section 4.1) and the claims challenge in them.

A resource protected by Microsoft Entra answers a token it no longer accepts (Continuous Access
Evaluation: revoked session, changed location...) or one that lacks an authentication context
with 401 and ``WWW-Authenticate: Bearer ..., error="insufficient_claims", claims="<base64url>"``;
the decoded claims go to the authority as the ``claims`` parameter of the next token request.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable

__all__ = ["Challenge", "claims_challenge", "parse_challenges"]

Challenge = tuple[str, dict[str, str]]

_SEPARATORS = frozenset(' \t,="')


def _skip(text: str, i: int, chars: str) -> int:
    while i < len(text) and text[i] in chars:
        i += 1
    return i


def _token(text: str, i: int) -> tuple[str, int]:
    start = i
    while i < len(text) and text[i] not in _SEPARATORS:
        i += 1
    return text[start:i], i


def _quoted(text: str, i: int) -> tuple[str, int]:
    """A quoted-string starting at the opening quote; backslash escapes one character."""
    out: list[str] = []
    i += 1
    while i < len(text) and text[i] != '"':
        if text[i] == "\\" and i + 1 < len(text):
            i += 1
        out.append(text[i])
        i += 1
    return "".join(out), i + 1


def parse_challenges(values: Iterable[str]) -> list[Challenge]:
    """Parse ``WWW-Authenticate`` header values into ``(scheme, params)`` pairs.

    Parameter names are lower-cased. Malformed input never raises: what cannot be read is
    skipped (a ``token68`` such as ``Basic abc==`` is not kept, it is of no use here).

    Args:
        values: the header's values (a response may repeat the header).

    Returns:
        The challenges in order, such as ``[("Bearer", {"error": "insufficient_claims"})]``.
    """
    challenges: list[Challenge] = []
    for text in values:
        i = 0
        current: dict[str, str] | None = None
        while i < len(text):
            i = _skip(text, i, " \t,")
            word, i = _token(text, i)
            if not word:
                i += 1  # a stray separator
                continue
            after = _skip(text, i, " \t")
            if current is not None and after < len(text) and text[after] == "=":
                after = _skip(text, after + 1, " \t")
                if after < len(text) and text[after] == '"':
                    value, i = _quoted(text, after)
                else:
                    value, i = _token(text, after)
                    i = _skip(text, i, "=")
                current[word.lower()] = value
            else:  # a word not followed by "=" starts the next challenge
                current = {}
                challenges.append((word, current))
    return challenges


def claims_challenge(values: Iterable[str]) -> str | None:
    """The claims JSON of a Bearer ``insufficient_claims`` challenge, if there is one.

    Args:
        values: the ``WWW-Authenticate`` header values of a 401.

    Returns:
        The decoded claims (a JSON object as text), or None: no such challenge, or its
        ``claims`` is not base64url-encoded JSON object text.
    """
    for scheme, params in parse_challenges(values):
        if scheme.lower() != "bearer" or params.get("error") != "insufficient_claims":
            continue
        encoded = params.get("claims", "").strip()
        if not encoded:
            continue
        try:
            raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            claims = json.loads(raw.decode("utf-8"))
        except (binascii.Error, ValueError):
            continue
        if isinstance(claims, dict):
            return json.dumps(claims, separators=(",", ":"))
    return None
