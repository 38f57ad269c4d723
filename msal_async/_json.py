"""The one JSON reader for what comes from the network or from disk: bounded and validated.

``json.loads`` alone accepts input that must not reach the rest of the library: nesting deep
enough to exhaust the interpreter stack (``RecursionError``), ``NaN`` and ``Infinity``, ``1e400``
(a float infinity that ``int()`` cannot convert), integers of a million digits (quadratic to
parse on Python 3.10), and bodies of any size. Every parser of msal_async reads JSON through
:func:`loads` (or one of the helpers built on it) and turns :class:`JSONInputError` into an
``invalid_response`` error dict (network) or a damaged document (disk).

Layer 0: standard library only.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from typing import Any

from msal_async._errors import JSONInputError

__all__ = [
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "MAX_NETWORK_BYTES",
    "MAX_SECONDS",
    "JSONInputError",
    "b64url_object",
    "int_value",
    "loads",
    "loads_object",
    "nesting_within",
    "raw_decode",
]

#: Deepest nesting accepted. msal's documents nest 3 or 4 levels; CPython's recursive decoder
#: fails near 1,000 (less when called deep in a stack), so the bound is far from both.
MAX_DEPTH = 64
#: The largest body read from the network (``_http.reply.MAX_RESPONSE_BYTES``: no more is read).
MAX_NETWORK_BYTES = 4 * 1024 * 1024
#: The largest cache document read from disk or Redis (a document this large takes seconds to
#: rewrite on every change; a larger one is treated as damaged, not loaded into memory).
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024
#: The largest number of seconds (a lifetime or an epoch time) taken from input: 2**33 s is the
#: year 2242, and keeps every sum with the current time a plain 64-bit integer.
MAX_SECONDS = 2**33
#: Integers written with more digits than this are refused (Python 3.10 parses them in
#: quadratic time; 3.11 refuses more than 4,300 digits with an unhelpful message).
_MAX_INT_DIGITS = 100

_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_INT_TEXT = re.compile(r"\s*[+-]?[0-9]{1,19}\s*")


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        msg = f"an integer of more than {_MAX_INT_DIGITS} digits"
        raise JSONInputError(msg, reason="number")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        msg = "a number too large to represent (it overflows to infinity)"
        raise JSONInputError(msg, reason="number")
    return value


def _parse_constant(name: str) -> Any:
    msg = f"{name} is not a JSON number"
    raise JSONInputError(msg, reason="number")


_DECODER = json.JSONDecoder(
    parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant
)


def nesting_within(text: str, max_depth: int) -> bool:
    """Tell whether the arrays and objects of a JSON text nest at most ``max_depth`` deep.

    Linear-time string operations only (no Python loop per character): escaped characters
    and strings are cut out, everything but brackets dropped, and innermost ``[]``/``{}``
    pairs removed one level at a time. Text that is not balanced JSON returns True when the
    answer cannot be told (the decoder then reports the syntax error).

    Args:
        text: A JSON text.
        max_depth: The deepest nesting accepted.

    Returns:
        False when the nesting is certainly deeper than ``max_depth``.
    """
    if text.count("[") + text.count("{") <= max_depth:
        return True
    if "\\" in text:
        text = text.replace("\\\\", "").replace('\\"', "")
    brackets = _NOT_BRACKET.sub("", "".join(text.split('"')[::2]))
    for _ in range(max_depth):
        inner = brackets.replace("[]", "").replace("{}", "")
        if not inner:
            return True
        if len(inner) == len(brackets):
            return True  # unbalanced: not JSON, which the decoder reports
        brackets = inner
    return False


def _decode(text: str, start: int, *, whole: bool) -> tuple[Any, int]:
    try:
        if whole:
            return _DECODER.decode(text), len(text)
        return _DECODER.raw_decode(text, start)
    except JSONInputError:
        raise
    except RecursionError:  # unbalanced input the nesting pre-check could not measure
        msg = "the JSON text nests arrays or objects too deeply"
        raise JSONInputError(msg, reason="depth") from None
    except ValueError as exc:  # json.JSONDecodeError, or a digit-count limit of int()
        msg = f"not JSON ({type(exc).__name__} at {getattr(exc, 'pos', '?')})"
        raise JSONInputError(msg, reason="syntax") from None


def loads(data: str | bytes, *, limit: int = MAX_NETWORK_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON from the network or from disk, within bounds.

    Args:
        data: The text, or UTF-8 bytes.
        limit: The largest input accepted, in bytes (characters for text).
        max_depth: The deepest nesting of arrays and objects accepted.

    Returns:
        The decoded value (every number finite, no integer longer than 100 digits).

    Raises:
        JSONInputError: Too large, not UTF-8, not JSON, nested too deeply, or a number that is
            not finite or too long.
    """
    if len(data) > limit:
        msg = f"the JSON text is larger than {limit} bytes"
        raise JSONInputError(msg, reason="size")
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            msg = "the JSON text is not UTF-8"
            raise JSONInputError(msg, reason="encoding") from None
    else:
        text = data
    if not nesting_within(text, max_depth):
        msg = f"the JSON text nests arrays or objects deeper than {max_depth} levels"
        raise JSONInputError(msg, reason="depth")
    value, _ = _decode(text, 0, whole=True)
    return value


def raw_decode(text: str, start: int, *, max_depth: int = MAX_DEPTH) -> tuple[Any, int]:
    """Parse the one JSON value that begins at ``text[start]`` (for salvaging damaged text).

    Args:
        text: The text.
        start: Where the value begins.
        max_depth: The deepest nesting accepted.

    Returns:
        ``(value, end)``: the value and the index just past it.

    Raises:
        JSONInputError: No acceptable JSON value begins there.
    """
    value, end = _decode(text, start, whole=False)
    if not nesting_within(text[start:end], max_depth):
        msg = f"the JSON value nests arrays or objects deeper than {max_depth} levels"
        raise JSONInputError(msg, reason="depth")
    return value, end


def loads_object(
    data: str | bytes,
    *,
    what: str,
    limit: int = MAX_NETWORK_BYTES,
    max_depth: int = MAX_DEPTH,
) -> dict[str, Any]:
    """Parse a JSON object (see :func:`loads`).

    Args:
        data: The text or bytes.
        what: What it is, for the message (``"the OpenID configuration"``).
        limit: The largest input accepted.
        max_depth: The deepest nesting accepted.

    Returns:
        The object.

    Raises:
        JSONInputError: As :func:`loads`, or the value is not an object (reason ``"type"``).
    """
    try:
        value = loads(data, limit=limit, max_depth=max_depth)
    except JSONInputError as exc:
        msg = f"{what} is not acceptable JSON: {exc}"
        raise JSONInputError(msg, reason=exc.reason) from None
    if not isinstance(value, dict):
        msg = f"{what} is JSON {type(value).__name__}, not an object"
        raise JSONInputError(msg, reason="type")
    return value


def b64url_object(value: object, *, what: str) -> dict[str, Any]:
    """Decode a base64url-encoded JSON object (``client_info``, a JWT payload), as msal does.

    Padding may be left out, and characters outside the base64url alphabet are skipped, as by
    msal's ``decode_part`` (``base64.urlsafe_b64decode``), so what msal reads is read here too.

    Args:
        value: The encoded text.
        what: What it is, for the message.

    Returns:
        The object.

    Raises:
        JSONInputError: Not a string, not base64url, not UTF-8 JSON within bounds, or not an
            object.
    """
    if not isinstance(value, str):
        msg = f"{what} is {type(value).__name__}, not a base64url string"
        raise JSONInputError(msg, reason="type")
    if len(value) > MAX_NETWORK_BYTES:
        msg = f"{what} is larger than {MAX_NETWORK_BYTES} bytes"
        raise JSONInputError(msg, reason="size")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        msg = f"{what} is not base64url-encoded"
        raise JSONInputError(msg, reason="encoding") from None
    return loads_object(raw, what=what)


def int_value(value: object, *, what: str, minimum: int = 0, maximum: int = MAX_SECONDS) -> int:
    """Read an integer the way msal's ``int(...)`` does, refusing what would break it.

    Accepted: an integer, a finite float (truncated, as ``int()``), or a string of up to 19
    decimal digits with an optional sign (the AAD v1 endpoint sends ``"3599"``). Refused: None,
    booleans, ``"abc"``, ``"1.5"``, infinities, and anything outside ``[minimum, maximum]``.

    Args:
        value: The JSON value.
        what: The field's name, for the message (never the value: it may be anything).
        minimum: The smallest value accepted.
        maximum: The largest value accepted.

    Returns:
        The integer.

    Raises:
        JSONInputError: It is not an integer in range (reason ``"number"``).
    """
    number = _as_int(value)
    if number is None:
        msg = f"{what} must be an integer, got {type(value).__name__}"
        raise JSONInputError(msg, reason="number")
    if not minimum <= number <= maximum:
        msg = f"{what} is out of range ({minimum}..{maximum})"
        raise JSONInputError(msg, reason="number")
    return number


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, str) and _INT_TEXT.fullmatch(value):
        return int(value)
    return None
