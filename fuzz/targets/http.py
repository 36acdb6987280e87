"""The HTTP request parser (appliance/http.py), fed the way a connection feeds it: a byte stream in pieces.

The first byte sets the piece size; the rest is the stream. What must hold: only HttpError escapes, with a
status the response writer knows; the parser buffers no more than a request head may be; every request it
returns, written back in canonical form (CRLF, one space after each colon), parses to the same request; the
routing helpers (path, query fields) are total on it.
"""

from __future__ import annotations

from appliance.config import Limits
from appliance.http import REASONS, HttpError, Request, RequestParser, error_response, serialize_response
from fuzz.errors import require

LIMITS = Limits()
HEAD_LIMIT = LIMITS.http_max_request_line + 2 + LIMITS.http_max_header_bytes + 2


def canonical(request: Request) -> bytes:
    lines = [f"{request.method} {request.target} {request.version}".encode("latin-1")]
    lines += [f"{name}: {value}".encode("latin-1") for name, value in request.headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _check(request: Request) -> None:
    again = RequestParser(LIMITS)
    again.feed(canonical(request))
    require(again.next_request() == request, "a request does not survive being written back and parsed again")
    require(request.path.startswith("/") or not request.target.startswith("/"), "path lost its slash")
    for name, value in request.query_fields:
        require(isinstance(name, str) and isinstance(value, str), "query fields are not text")


def fuzz_one(data: bytes) -> None:
    if not data:
        return
    piece = data[0] + 1
    stream = data[1:]
    parser = RequestParser(LIMITS)
    try:
        for start in range(0, len(stream), piece):
            parser.feed(stream[start : start + piece])
            require(len(parser._buffer) <= HEAD_LIMIT + piece, "the parser holds more than a request head")
            while (request := parser.next_request()) is not None:
                _check(request)
    except HttpError as refused:
        require(refused.status in REASONS, f"status {refused.status} has no reason phrase")
        response = serialize_response(error_response(refused), head_only=False, keep_alive=False)
        require(response.startswith(f"HTTP/1.1 {refused.status} ".encode()), "error response malformed")


def seeds() -> dict[str, bytes]:
    def stream(piece: int, text: bytes) -> bytes:
        return bytes((piece - 1,)) + text

    return {
        "get": stream(255, b"GET / HTTP/1.1\r\nHost: pinata.local\r\n\r\n"),
        "proof": stream(7, b"GET /proof?challenge=abc%20def&x HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
                           b"Connection: keep-alive\r\nUser-Agent: fuzz\r\n\r\n"),
        "pipelined": stream(64, b"GET /stats.json HTTP/1.0\r\n\r\nHEAD /ca.pem HTTP/1.1\nHost: x\n\n"),
        "absolute": stream(255, b"GET http://pinata.local/manifest.txt HTTP/1.1\r\nHost: pinata.local\r\n\r\n"),
        "connect": stream(255, b"CONNECT pinata.local:443 HTTP/1.1\r\nHost: pinata.local:443\r\n\r\n"),
        "options": stream(255, b"OPTIONS * HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"),
        "body": stream(255, b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        "leading-lines": stream(1, b"\r\n\r\nGET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"),
    }
