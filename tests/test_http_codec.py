"""The HTTP/1.1 codec against h11 as the oracle, and against hostile responses and requests."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msal_async._http.codec import (
    END,
    MAX_HEAD_BYTES,
    NEED_DATA,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
    Response,
    ResponseReader,
    encode_request,
    requests_close,
)

TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Visible ASCII and obs-text, what a header value holds between its inner spaces and tabs.
VISIBLE = bytes(range(0x21, 0x7F)) + bytes(range(0x80, 0x100))

tokens = st.text(TOKEN_CHARS, min_size=1, max_size=12).map(str.encode)
words = st.binary(min_size=1, max_size=8).map(lambda b: bytes(VISIBLE[x % len(VISIBLE)] for x in b))
values = st.lists(st.tuples(words, st.sampled_from([b" ", b"\t", b"  ", b" \t"])), max_size=3).map(
    lambda parts: b"".join(w + s for w, s in parts).rstrip(b" \t")
)
ows = st.sampled_from([b"", b" ", b"\t", b"  "])
newline = st.sampled_from([b"\r\n", b"\r\n", b"\n"])
ORDINARY_NAMES = [b"Content-Type", b"Cache-Control", b"X-Ms-Request-Id", b"Date", b"Set-Cookie"]


@st.composite
def random_case(draw: st.DrawFn, name: bytes) -> bytes:
    flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    return bytes(
        (c ^ 0x20) if flip and chr(c).isalpha() else c for c, flip in zip(name, flips, strict=True)
    )


@dataclass
class Case:
    """A generated response, the method it answers and whether the request said close."""

    data: bytes
    method: bytes
    request_close: bool
    to_eof: bool


@st.composite
def header_lines(draw: st.DrawFn, fields: list[tuple[bytes, bytes]]) -> bytes:
    lines = b""
    for name, value in fields:
        line = draw(random_case(name)) + b":" + draw(ows) + value + draw(ows)
        special = name.lower() in (b"content-length", b"transfer-encoding", b"connection")
        if value and not special and draw(st.integers(0, 9)) == 0:  # obs-fold continuation
            line += draw(newline) + draw(st.sampled_from([b" ", b"\t "])) + draw(words)
        lines += line + draw(newline)
    return lines


@st.composite
def ordinary_fields(draw: st.DrawFn) -> list[tuple[bytes, bytes]]:
    names = st.one_of(st.sampled_from(ORDINARY_NAMES), tokens).filter(
        lambda n: n.lower() not in (b"content-length", b"transfer-encoding", b"connection")
    )
    return draw(st.lists(st.tuples(names, values), max_size=6))


@st.composite
def responses(draw: st.DrawFn) -> Case:
    version = draw(st.sampled_from([b"1.1", b"1.1", b"1.0"]))
    method = draw(st.sampled_from([b"POST", b"GET", b"HEAD"]))
    data = b""
    for status in draw(st.lists(st.sampled_from([100, 102, 103]), max_size=2)):
        data += b"HTTP/%s %d Continue" % (version, status) + draw(newline)
        data += draw(header_lines(draw(ordinary_fields()))) + draw(newline)
    status = draw(st.one_of(st.sampled_from([200, 204, 304, 400, 500]), st.integers(200, 599)))
    reason = draw(st.one_of(st.none(), st.text("abcXYZ \t-!~", max_size=12).map(str.encode)))
    data += b"HTTP/%s %d" % (version, status) + (b"" if reason is None else b" " + reason)
    data += draw(newline)
    fields = draw(ordinary_fields())
    body = draw(st.binary(max_size=300))
    no_body = method == b"HEAD" or status in (204, 304)
    framing = draw(st.sampled_from(["length", "chunked", "eof"]))
    if framing == "length":
        length = b"%d" % len(body)
        shape = draw(st.sampled_from(["one", "repeated", "comma"]))
        if shape == "comma":
            fields.append((b"Content-Length", length + b", " + length))
        else:
            fields.extend([(b"Content-Length", length)] * (2 if shape == "repeated" else 1))
    elif framing == "chunked":
        fields.append((b"Transfer-Encoding", draw(st.sampled_from([b"chunked", b"Chunked"]))))
    close = draw(st.sampled_from([None, b"close", b"Close", b"keep-alive", b"foo, close"]))
    if close is not None:
        fields.append((b"Connection", close))
    order = draw(st.permutations(range(len(fields))))
    data += draw(header_lines([fields[i] for i in order])) + draw(newline)
    if not no_body:
        if framing == "chunked":
            data += draw(chunked(body))
        else:
            data += body
    return Case(data, method, draw(st.booleans()), framing == "eof" and not no_body)


@st.composite
def chunked(draw: st.DrawFn, body: bytes) -> bytes:
    out = b""
    while body:
        size = draw(st.integers(1, len(body)))
        piece, body = body[:size], body[size:]
        digits = draw(st.sampled_from([b"%x", b"%X", b"%04x"])) % size
        extension = draw(st.sampled_from([b"", b";a=b", b";name", b' ;q="x y"'.strip()]))
        out += digits + extension + b"\r\n" + piece + b"\r\n"
    out += b"0" + draw(st.sampled_from([b"", b";last"])) + b"\r\n"
    out += draw(header_lines(draw(ordinary_fields()))) + draw(newline)
    return out


@st.composite
def pieces(draw: st.DrawFn, data: bytes) -> list[bytes]:
    if draw(st.integers(0, 4)) == 0:
        return [data[i : i + 1] for i in range(len(data))]
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=8)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def run_ours(case: Case, parts: list[bytes]) -> tuple[Response, bytes, bool]:
    reader = ResponseReader(case.method, request_close=case.request_close)
    feed = [*parts, b""] if case.to_eof else list(parts)
    head: Response | None = None
    body = b""
    while True:
        event = reader.next_event()
        if event is NEED_DATA:
            reader.receive_data(feed.pop(0))
        elif event is END:
            assert head is not None
            return head, body, reader.keep_alive
        elif isinstance(event, Response):
            assert head is None
            head = event
        else:
            assert type(event) is bytes
            assert event
            body += event


def run_h11(case: Case, parts: list[bytes]) -> tuple[tuple[object, ...], bytes, bool]:
    connection = h11.Connection(h11.CLIENT)
    headers = [(b"Host", b"example.com")]
    if case.request_close:
        headers.append((b"Connection", b"close"))
    connection.send(h11.Request(method=case.method, target=b"/", headers=headers))
    connection.send(h11.EndOfMessage())
    feed = [*parts, b""] if case.to_eof else list(parts)
    head: tuple[object, ...] = ()
    body = b""
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(feed.pop(0))
        elif isinstance(event, h11.Response):
            head = (
                event.status_code,
                event.reason,
                event.headers.raw_items(),
                b"HTTP/" + event.http_version,
            )
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            reusable = connection.our_state is h11.DONE and connection.their_state is h11.DONE
            return head, body, reusable


def h11_view(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Headers as h11 reports them: one Content-Length (collapsed), Transfer-Encoding lowered."""
    out: list[tuple[bytes, bytes]] = []
    seen_length = False
    for name, value in headers:
        if name.lower() == b"content-length":
            if not seen_length:
                out.append((name, value.split(b",")[0].strip()))
            seen_length = True
        elif name.lower() == b"transfer-encoding":
            out.append((name, value.lower()))
        else:
            out.append((name, value))
    return out


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_responses_parse_as_h11_parses_them(data: st.DataObject) -> None:
    case = data.draw(responses())
    parts = data.draw(pieces(case.data))
    head, body, keep_alive = run_ours(case, parts)
    their_head, their_body, their_reusable = run_h11(case, parts)
    assert (head.status_code, head.reason, h11_view(head.headers), head.http_version) == (
        their_head
    )
    assert body == their_body
    # h11 leaves a read-to-EOF connection "DONE"; it cannot carry another request.
    assert keep_alive == (their_reusable and not case.to_eof)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_requests_encode_as_h11_sends_them(data: st.DataObject) -> None:
    method = data.draw(st.sampled_from([b"GET", b"POST", b"PATCH", b"M-SEARCH"]))
    target = data.draw(st.sampled_from([b"/", b"/common/oauth2/v2.0/token?x=1%20", b"*"]))
    fields = data.draw(ordinary_fields())
    fields.insert(data.draw(st.integers(0, len(fields))), (b"Host", b"login.example:8443"))
    body = data.draw(st.binary(max_size=200)) if method != b"GET" else b""
    if body or data.draw(st.booleans()):
        fields.append(
            (data.draw(st.sampled_from([b"Content-Length", b"content-length"])), b"%d" % len(body))
        )
    fields = [(data.draw(random_case(name)), value) for name, value in fields]
    connection = h11.Connection(h11.CLIENT)
    expected = connection.send(h11.Request(method=method, target=target, headers=fields)) or b""
    if body:
        expected += connection.send(h11.Data(data=body)) or b""
    expected += connection.send(h11.EndOfMessage()) or b""
    assert encode_request(method, target, fields, body) == expected


def parse_all(data: bytes, method: bytes = b"POST", *, eof: bool = True) -> list[object]:
    reader = ResponseReader(method)
    reader.receive_data(data)
    if eof:
        reader.receive_data(b"")
    events: list[object] = []
    while (event := reader.next_event()) not in (END, NEED_DATA):
        events.append(event)
    return events


OK = b"HTTP/1.1 200 OK\r\n"

HOSTILE_RESPONSES = {
    "cl-and-te-bad-chunk": OK + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
    "te-then-obfuscated-te": OK + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n",
    "te-gzip-chunked": OK + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "te-chunked-identity": OK + b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    "te-xchunked": OK + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "te-vertical-tab": OK + b"Transfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n",
    "te-space-before-colon": OK + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    "space-before-colon": OK + b"Content-Length : 0\r\n\r\n",
    "differing-lengths": OK + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    "differing-comma-lengths": OK + b"Content-Length: 3, 4\r\n\r\nabcd",
    "empty-length": OK + b"Content-Length:\r\n\r\n",
    "negative-length": OK + b"Content-Length: -1\r\n\r\n",
    "plus-length": OK + b"Content-Length: +3\r\n\r\nabc",
    "hex-length": OK + b"Content-Length: 0x3\r\n\r\nabc",
    "huge-length": OK + b"Content-Length: 123456789012345678901\r\n\r\n",
    "bad-chunk-size": OK + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
    "negative-chunk-size": OK + b"Transfer-Encoding: chunked\r\n\r\n-1\r\nabc\r\n",
    "huge-chunk-size": OK + b"Transfer-Encoding: chunked\r\n\r\n" + b"1" * 21 + b"\r\n",
    "bare-lf-chunk-size": OK + b"Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n",
    "no-crlf-after-chunk": OK + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n",
    "lf-only-after-chunk": OK + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n",
    "eof-mid-length-body": OK + b"Content-Length: 10\r\n\r\nabc",
    "eof-mid-chunk": OK + b"Transfer-Encoding: chunked\r\n\r\n5\r\nab",
    "eof-before-last-chunk": OK + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
    "eof-in-head": OK + b"Content-Length: 1",
    "eof-before-anything": b"",
    "switching-protocols": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
    "status-099": b"HTTP/1.1 099 Odd\r\n\r\n",
    "http-2": b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
    "no-status-line": b"\r\nHTTP/1.1 200 OK\r\n\r\n",
    "garbage-status": b"HTTP/1.1 2000 OK\r\n\r\n",
    "nul-in-value": OK + b"X-A: a\x00b\r\nContent-Length: 0\r\n\r\n",
    "cr-in-value": OK + b"X-A: a\rb\r\nContent-Length: 0\r\n\r\n",
    "fold-at-start": OK + b" X-A: a\r\nContent-Length: 0\r\n\r\n",
    "no-colon": OK + b"X-A a\r\nContent-Length: 0\r\n\r\n",
    "bad-trailer": OK + b"Transfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n",
    "head-too-long": OK + b"X-A: " + b"a" * MAX_HEAD_BYTES + b"\r\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_RESPONSES))
def test_hostile_responses_are_remote_protocol_errors(name: str) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_all(HOSTILE_RESPONSES[name])


def test_a_too_long_head_fails_before_eof() -> None:
    with pytest.raises(RemoteProtocolError, match="too long"):
        parse_all(OK + b"X-A: " + b"a" * MAX_HEAD_BYTES, eof=False)


def test_content_length_and_chunked_frame_by_chunks_and_close_the_connection() -> None:
    """RFC 9112 section 6.1: Transfer-Encoding overrides; the connection is not reused."""
    data = OK + b"Content-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    reader = ResponseReader(b"POST")
    reader.receive_data(data)
    events = [reader.next_event() for _ in range(3)]
    assert events[1:] == [b"abc", END]
    assert not reader.keep_alive


def test_data_after_the_response_makes_the_connection_unusable() -> None:
    reader = ResponseReader(b"GET")
    reader.receive_data(OK + b"Content-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n")
    assert [type(reader.next_event()), reader.next_event(), reader.next_event()] == [
        Response,
        b"ok",
        END,
    ]
    assert not reader.keep_alive


def test_keep_alive_after_a_clean_response_only() -> None:
    reader = ResponseReader(b"GET")
    reader.receive_data(OK + b"Content-Length: 2\r\n\r\no")
    assert isinstance(reader.next_event(), Response)
    assert reader.next_event() == b"o"
    assert not reader.keep_alive  # not at the end yet
    assert reader.next_event() is NEED_DATA
    reader.receive_data(b"k")
    assert reader.next_event() == b"k"
    assert reader.next_event() is END
    assert reader.keep_alive


def test_head_and_no_body_statuses_ignore_their_length() -> None:
    for method, status in ((b"HEAD", 200), (b"GET", 204), (b"GET", 304)):
        events = parse_all(b"HTTP/1.1 %d X\r\nContent-Length: 9\r\n\r\n" % status, method)
        assert [type(e) for e in events] == [Response]


def test_body_pieces_are_plain_bytes() -> None:
    data = OK + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    reader = ResponseReader(b"GET")
    reader.receive_data(bytearray(data))  # type: ignore[arg-type]
    events = [reader.next_event() for _ in range(3)]
    assert type(events[1]) is bytes
    head = events[0]
    assert isinstance(head, Response)
    assert all(type(n) is bytes and type(v) is bytes for n, v in head.headers)


HOST = (b"Host", b"login.example")
SECRET = b"Basic S3CR3T"

HOSTILE_REQUESTS = {
    "lf-in-value": [HOST, (b"Authorization", SECRET + b"\n")],
    "crlf-injection": [HOST, (b"Authorization", SECRET + b"\r\nX-Evil: 1")],
    "nul-in-value": [HOST, (b"Authorization", SECRET + b"\x00")],
    "cr-in-value": [HOST, (b"Authorization", b"\r" + SECRET)],
    "control-in-value": [HOST, (b"Authorization", SECRET + b"\x01")],
    "del-in-value": [HOST, (b"Authorization", SECRET + b"\x7f")],
    "leading-space": [HOST, (b"Authorization", b" " + SECRET)],
    "trailing-tab": [HOST, (b"Authorization", SECRET + b"\t")],
    "lf-in-name": [HOST, (b"X-A\nAuthorization", SECRET)],
    "nul-in-name": [HOST, (b"X-A\x00", SECRET)],
    "space-in-name": [HOST, (b"X-A ", SECRET)],
    "colon-in-name": [HOST, (b"Authorization: " + SECRET, b"x")],
    "empty-name": [HOST, (b"", SECRET)],
    "no-host": [(b"Authorization", SECRET)],
    "two-hosts": [HOST, HOST, (b"Authorization", SECRET)],
    "chunked": [HOST, (b"Transfer-Encoding", b"chunked"), (b"Authorization", SECRET)],
}


@pytest.mark.parametrize("name", sorted(HOSTILE_REQUESTS))
def test_hostile_requests_are_local_protocol_errors_without_the_value(name: str) -> None:
    with pytest.raises(LocalProtocolError) as caught:
        encode_request(b"GET", b"/", HOSTILE_REQUESTS[name], b"")
    assert "S3CR3T" not in str(caught.value)
    assert "S3CR3T" not in repr(caught.value.args)


def test_a_bad_value_is_reported_by_its_header_name() -> None:
    with pytest.raises(LocalProtocolError, match="'Authorization'"):
        encode_request(b"GET", b"/", [HOST, (b"Authorization", SECRET + b"\n")], b"")


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ([HOST, (b"Content-Length", b"3")], b"abcd"),
        ([HOST, (b"Content-Length", b"5")], b"abcd"),
        ([HOST, (b"Content-Length", b"-4")], b"abcd"),
        ([HOST, (b"Content-Length", b"4"), (b"Content-Length", b"4")], b"abcd"),
        ([HOST], b"abcd"),
    ],
)
def test_a_body_must_agree_with_its_length(headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        encode_request(b"POST", b"/", headers, body)


@pytest.mark.parametrize(
    ("method", "target"),
    [(b"GE T", b"/"), (b"", b"/"), (b"GET", b"/a b"), (b"GET", b""), (b"GET", b"/\x7f")],
)
def test_bad_request_lines(method: bytes, target: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        encode_request(method, target, [HOST], b"")


def test_host_goes_first_and_close_is_seen() -> None:
    headers = [(b"Accept", b"*/*"), (b"Connection", b"Keep-Alive, CLOSE"), HOST]
    assert encode_request(b"GET", b"/x", headers, b"").startswith(
        b"GET /x HTTP/1.1\r\nHost: login.example\r\nAccept: */*\r\n"
    )
    assert requests_close(headers)
    assert not requests_close([HOST, (b"Connection", b"keep-alive")])


def test_the_error_classes_share_one_base() -> None:
    assert issubclass(LocalProtocolError, ProtocolError)
    assert issubclass(RemoteProtocolError, ProtocolError)
    assert not issubclass(ProtocolError, (h11.ProtocolError,))
