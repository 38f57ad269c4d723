"""What the transport reads of an answer: its status, its headers and its body, capped.

A :class:`Reply` is read from an ``httpx.Response`` (a caller's client, or the app's own when
a proxy may apply: :func:`read_reply`) or straight from the pool's connection (the app's own
client without a proxy: ``OwnClient``), which skips building an ``httpx.Response`` at all.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Mapping
from typing import NamedTuple, cast

import httpx

from .. import _json

__all__ = ["MAX_RESPONSE_BYTES", "Reply", "decode_capped", "headers_of", "read_reply"]

#: Token and discovery documents are a few KiB; anything past this is not one (the one cap on
#: what is read from the network, shared with the JSON and XML parsers).
MAX_RESPONSE_BYTES = _json.MAX_NETWORK_BYTES


class Reply(NamedTuple):
    """An answer, read whole.

    Attributes:
        status_code: the HTTP status.
        headers: names lowercased, repeated ones joined with ``", "`` (as httpx joins them).
        body: the decoded body, or None when it passed ``MAX_RESPONSE_BYTES``.
    """

    status_code: int
    headers: dict[str, str]
    body: bytes | None


def headers_of(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The headers of a raw list, names lowercased, repeated ones joined as httpx joins them."""
    headers: dict[str, str] = {}
    try:
        for raw_name, raw_value in raw:
            name, value = raw_name.decode("ascii").lower(), raw_value.decode("ascii")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
    except UnicodeDecodeError:  # httpx's own guess of the encoding
        return {k.lower(): v for k, v in httpx.Headers(raw).items()}
    return headers


async def read_reply(response: httpx.Response) -> Reply:
    """Read ``response`` (a streamed one) whole, capped, and close it."""
    try:
        headers = headers_of(response.headers.raw)
        body = await _read_capped(response, headers)
    finally:
        await response.aclose()
    return Reply(response.status_code, headers, body)


async def decode_capped(
    status_code: int, raw_headers: list[tuple[bytes, bytes]], body: bytes
) -> bytes | None:
    """``body`` as received, decoded as its ``Content-Encoding`` says (None past the cap)."""
    response = httpx.Response(status_code, headers=raw_headers, stream=httpx.ByteStream(body))
    return await _read_decoded(response)


async def _read_capped(response: httpx.Response, headers: Mapping[str, str]) -> bytes | None:
    """The (decoded) body, or None past ``MAX_RESPONSE_BYTES``."""
    length = headers.get("content-length", "")
    if "content-encoding" not in headers and length.isdigit():
        # Framed by its length (HTTP/1.1 reads exactly that much): read at once if small.
        return await response.aread() if int(length) <= MAX_RESPONSE_BYTES else None
    return await _read_decoded(response)


async def _read_decoded(response: httpx.Response) -> bytes | None:
    """The body, decoded chunk by chunk (a small gzip may inflate), or None past the cap."""
    chunks: list[bytes] = []
    size = 0
    body = cast("AsyncGenerator[bytes, None]", response.aiter_bytes())
    async with contextlib.aclosing(body) as body_chunks:
        async for chunk in body_chunks:
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                return None
            chunks.append(chunk)
    return b"".join(chunks)
