"""A sans-I/O HTTP/1.1 request parser and response writer: bytes in, requests or an `HttpError` out.

Why our own: it is attack surface reachable without any TLS, so it must be small enough to read in one
sitting and bounded in every dimension (request line, header bytes, header count, body). We serve
GET and HEAD only, so any request body is refused (413) rather than buffered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from appliance.config import Limits

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TARGET = re.compile(rb"[\x21-\x7e]+")
_FIELD_VALUE = re.compile(rb"[\x20-\x7e\x80-\xff\t]*")
VERSIONS = (b"HTTP/1.1", b"HTTP/1.0")
REASONS = {
    200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
    413: "Content Too Large", 429: "Too Many Requests", 431: "Request Header Fields Too Large",
    505: "HTTP Version Not Supported",
}


class HttpError(Exception):
    """A request we refuse; the connection answers with `status` and closes."""

    def __init__(self, status: int, reason: str, *, limit: bool = False) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.limit = limit  # a size limit was exceeded (counted as resource-limit, not bad-request)


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]  # names lower-cased, in order
    keep_alive: bool

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


class RequestParser:
    """Feed bytes; take complete requests. Pipelined requests are returned in order."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._buffer = bytearray()
        self.failed = False

    def feed(self, data: bytes) -> None:
        if self.failed:
            return
        self._buffer += data
        # The buffer always starts at a request; its line and its head are bounded before they complete.
        line_limit = self._limits.http_max_request_line + 2
        if len(self._buffer) > line_limit and self._buffer.find(b"\r\n", 0, line_limit) < 0:
            self._fail_oversized()
        if len(self._buffer) > self._head_limit() and self._buffer.find(b"\r\n\r\n", 0, self._head_limit()) < 0:
            self._fail_oversized()

    def _head_limit(self) -> int:
        return self._limits.http_max_request_line + 2 + self._limits.http_max_header_bytes + 2

    def _fail_oversized(self) -> None:
        self.failed = True
        line_end = self._buffer.find(b"\r\n")
        if line_end < 0 or line_end > self._limits.http_max_request_line:
            raise HttpError(400, "request line too long", limit=True)
        raise HttpError(431, "request header fields too large", limit=True)

    def has_partial(self) -> bool:
        return bool(self._buffer)

    def next_request(self) -> Request | None:
        if self.failed:
            return None
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > self._head_limit():
                self._fail_oversized()
            return None
        head = bytes(self._buffer[:end])
        del self._buffer[: end + 4]
        try:
            return self._parse(head)
        except HttpError:
            self.failed = True
            raise

    def _parse(self, head: bytes) -> Request:
        lines = head.split(b"\r\n")
        request_line, header_lines = lines[0], lines[1:]
        if len(request_line) > self._limits.http_max_request_line:
            raise HttpError(400, "request line too long", limit=True)
        if len(head) - len(request_line) > self._limits.http_max_header_bytes + 2:
            raise HttpError(431, "request header fields too large", limit=True)
        if len(header_lines) > self._limits.http_max_headers:
            raise HttpError(431, "too many header fields", limit=True)
        parts = request_line.split(b" ")
        if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not _TARGET.fullmatch(parts[1]):
            raise HttpError(400, "malformed request line")
        method, target, version = parts
        if not version.startswith(b"HTTP/"):
            raise HttpError(400, "malformed request line")
        if version not in VERSIONS:
            raise HttpError(505, "unsupported HTTP version")
        headers = tuple(self._parse_header(line) for line in header_lines)
        request = Request(
            method=method.decode("ascii"),
            target=target.decode("ascii"),
            version=version.decode("ascii"),
            headers=headers,
            keep_alive=False,
        )
        self._check_semantics(request)
        connection = {t.strip().lower() for t in (request.header("connection") or "").split(",")}
        keep_alive = "close" not in connection if version == b"HTTP/1.1" else "keep-alive" in connection
        return Request(request.method, request.target, request.version, headers, keep_alive)

    @staticmethod
    def _parse_header(line: bytes) -> tuple[str, str]:
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            raise HttpError(400, "malformed header field")  # includes obs-fold (leading whitespace)
        value = value.strip(b" \t")
        if not _FIELD_VALUE.fullmatch(value):
            raise HttpError(400, "control character in header value")
        return name.decode("ascii").lower(), value.decode("latin-1")

    def _check_semantics(self, request: Request) -> None:
        hosts = [v for k, v in request.headers if k == "host"]
        if request.version == "HTTP/1.1" and len(hosts) != 1:
            raise HttpError(400, "HTTP/1.1 needs exactly one Host header")
        if request.header("transfer-encoding") is not None:
            raise HttpError(413, "request bodies are not accepted", limit=True)
        lengths = {v for k, v in request.headers if k == "content-length"}
        if len(lengths) > 1:
            raise HttpError(400, "conflicting Content-Length headers")
        if lengths:
            (length,) = lengths
            if not length.isdigit() or len(length) > 18:
                raise HttpError(400, "malformed Content-Length")
            if int(length) > self._limits.http_max_body:
                raise HttpError(413, "request bodies are not accepted", limit=True)


@dataclass(frozen=True)
class Response:
    status: int
    content_type: str
    body: bytes
    extra_headers: tuple[tuple[str, str], ...] = ()


def serialize_response(response: Response, *, head_only: bool, keep_alive: bool) -> bytes:
    lines = [
        f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'Unknown')}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
        "Connection: " + ("keep-alive" if keep_alive else "close"),
        "Cache-Control: no-store",
        "X-Content-Type-Options: nosniff",
        "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    ]
    lines += [f"{name}: {value}" for name, value in response.extra_headers]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + response.body


def error_response(error: HttpError) -> Response:
    body = f"{error.status} {REASONS.get(error.status, 'Error')}: {error.reason}\n".encode()
    return Response(error.status, "text/plain; charset=utf-8", body)
