from __future__ import annotations

import contextlib
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.config import Limits
from appliance.http import HttpError, Request, RequestParser, Response, serialize_response

LIMITS = Limits()


def parse_all(data: bytes, limits: Limits = LIMITS, chunks: list[int] | None = None) -> list[Request]:
    parser = RequestParser(limits)
    out: list[Request] = []
    pieces = [data] if chunks is None else _split(data, chunks)
    for piece in pieces:
        parser.feed(piece)
        while (request := parser.next_request()) is not None:
            out.append(request)
    return out


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def test_simple_request() -> None:
    (request,) = parse_all(b"GET /stats?x=1 HTTP/1.1\r\nHost: a\r\nX-Y:  v  \r\n\r\n")
    assert (request.method, request.target, request.version) == ("GET", "/stats?x=1", "HTTP/1.1")
    assert request.header("x-y") == "v"
    assert request.keep_alive


def test_keep_alive_rules() -> None:
    close, old, old_keep = parse_all(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        b"GET / HTTP/1.0\r\n\r\n"
        b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"
    )
    assert not close.keep_alive
    assert not old.keep_alive
    assert old_keep.keep_alive


@pytest.mark.parametrize(
    ("data", "status", "limit"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", 400, False),  # no Host
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, False),
        (b"GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400, False),
        (b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400, False),
        (b"GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n", 400, False),
        (b"GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n", 400, False),
        (b"GET / HTTP/3\r\nHost: a\r\n\r\n", 505, False),
        (b"GET / FTP/1.0\r\nHost: a\r\n\r\n", 400, False),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\n", 413, True),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n", 400, False),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 1\r\n\r\n", 400, False),
        (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 413, True),
        (b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 400, True),
        (b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X: y\r\n" * 70 + b"\r\n", 431, True),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"y" * 9000 + b"\r\n\r\n", 431, True),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"y" * 20000, 431, True),  # never terminated: still bounded
        (b"G" * 5000, 400, True),
    ],
)
def test_refusals(data: bytes, status: int, limit: bool) -> None:
    with pytest.raises(HttpError) as info:
        parse_all(data)
    assert (info.value.status, info.value.limit) == (status, limit)


def test_parser_stops_after_an_error() -> None:
    parser = RequestParser(LIMITS)
    parser.feed(b"BROKEN\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
    with pytest.raises(HttpError):
        parser.next_request()
    assert parser.next_request() is None


def test_a_zero_content_length_is_fine() -> None:
    assert len(parse_all(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")) == 1


tokens = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12)
requests = st.lists(
    st.tuples(
        st.sampled_from(["GET", "HEAD", "POST", "OPTIONS"]),
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz/?=&%.0123456789", min_size=0, max_size=40),
        st.lists(st.tuples(tokens, st.text(alphabet="abc xyz;=,0123456789", max_size=30)), max_size=6),
    ),
    min_size=1,
    max_size=4,
)


def _encode(method: str, path: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"{method} /{path} HTTP/1.1", "Host: pinata"]
    lines += [f"x-{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@settings(max_examples=300)
@given(requests, st.lists(st.integers(min_value=0, max_value=10_000), max_size=8))
def test_pipelined_requests_parse_the_same_however_the_bytes_are_split(
    reqs: list[tuple[str, str, list[tuple[str, str]]]], cuts: list[int]
) -> None:
    data = b"".join(_encode(*r) for r in reqs)
    whole = parse_all(data)
    assert parse_all(data, chunks=cuts) == whole
    assert [(r.method, r.target) for r in whole] == [(m, "/" + p) for m, p, _ in reqs]
    for request, (_, _, headers) in zip(whole, reqs, strict=True):
        for name, value in headers:
            assert (f"x-{name}", value.strip(" ")) in request.headers


@settings(max_examples=500)
@given(st.binary(max_size=600), st.lists(st.integers(min_value=0, max_value=600), max_size=5))
def test_random_bytes_yield_requests_or_http_errors_only(data: bytes, cuts: list[int]) -> None:
    with contextlib.suppress(HttpError):
        parse_all(data, chunks=cuts)


@settings(max_examples=200)
@given(st.binary(min_size=1, max_size=64), st.integers(min_value=1, max_value=40))
def test_buffer_stays_bounded_under_a_header_flood(filler: bytes, rounds: int) -> None:
    small = replace(LIMITS, http_max_request_line=64, http_max_header_bytes=256)
    parser = RequestParser(small)
    flood = filler.replace(b"\r", b"").replace(b"\n", b"") or b"a"
    statuses = []
    try:
        parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\nX: ")
        for _ in range(rounds * 20):
            parser.feed(flood)
            parser.next_request()
            assert len(parser._buffer) <= 64 + 256 + 4 + len(flood)
    except HttpError as error:
        statuses.append(error.status)
    assert set(statuses) <= {400, 431}


def test_response_serialization() -> None:
    response = Response(200, "text/plain", b"hello", (("X-A", "b"),))
    full = serialize_response(response, head_only=False, keep_alive=True)
    head = serialize_response(response, head_only=True, keep_alive=False)
    assert full.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Length: 5\r\n" in full
    assert b"Connection: keep-alive" in full
    assert full.endswith(b"\r\n\r\nhello")
    assert head.endswith(b"\r\n\r\n")
    assert b"Connection: close" in head
    assert b"X-A: b\r\n" in full
