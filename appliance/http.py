"""A sans-I/O HTTP/1.1 request parser and response writer: bytes in, requests or an `HttpError` out.

Why our own: it is attack surface reachable without any TLS, so it must be small enough to read in one
sitting and bounded in every dimension (request line, header bytes, header count, body). We serve
GET and HEAD only, so a request body is never buffered: one longer than `http_max_body` (by default any)
is refused (413), and one within it is read and discarded, never parsed as a request of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_plus

from appliance.config import Limits

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(rb"[\x20-\x7e\x80-\xff\t]*")
_DIGITS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() also takes "²", which int() refuses
_EMPTY_LINES = re.compile(rb"(?:\r?\n)+")
_HEAD_END = re.compile(rb"\n\r?\n")  # a line's LF, then an empty line (RFC 9112 §2.2: CR optional)
# The request target's forms (RFC 9112 §3.2). The path and query take any visible ASCII but "#": RFC 3986
# would refuse "[", "]", "{", "}", "|", "^" and "`" too, but browsers send them unencoded (the WHATWG URL
# standard's percent-encode sets), a /proof challenge typed with them must still work, and nothing here
# splits on them. A fragment ("#") is never sent by a correct client. A stray "%" is taken literally.
_PATH = r'/[!-"$-~]*'
# No userinfo ("@"): RFC 9110 §4.2.4 tells a recipient to treat it as an error.
_HOSTNAME = r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)"  # IP-literal or reg-name
_AUTHORITY = rf"{_HOSTNAME}(?::[0-9]*)?"
_ORIGIN_FORM = re.compile(_PATH)  # the query ("?...") included
_ABSOLUTE_FORM = re.compile(rf'[A-Za-z][A-Za-z0-9+\-.]*://{_AUTHORITY}(?:[/?][!-"$-~]*)?')
_AUTHORITY_FORM = re.compile(rf"{_HOSTNAME}:[0-9]+")  # CONNECT's: the port is required
_HOST = re.compile(_AUTHORITY)
VERSIONS = (b"HTTP/1.1", b"HTTP/1.0")
REASONS = {
    200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
    413: "Content Too Large", 429: "Too Many Requests", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 505: "HTTP Version Not Supported",
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
    """One request that passed every bound and grammar check: method, target (still percent-encoded) and version
    as sent, the header fields in order with lower-cased names, and whether the connection stays open after the
    response (RFC 9112 §9.3)."""

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

    @property
    def path(self) -> str:
        """The target's path, still percent-encoded (what the routes are matched against)."""
        return split_target(self.target)[0]

    @property
    def query_fields(self) -> list[tuple[str, str]]:
        """The query's `name=value` fields, decoded; blank values kept, empty fields skipped."""
        query = split_target(self.target)[1]
        return [] if query is None else query_fields(query)


def split_target(target: str) -> tuple[str, str | None]:
    """(path, query or None) of a request target in any of its forms.

    Why our own: `urllib.parse.urlsplit` raises ValueError on targets such as `http://[/`, and a raise in a
    page ends a connection without a response. This is string slicing only, so it is total: for a target the
    parser has not checked (a test's), the answer is merely unhelpful, never an exception."""
    if not target.startswith("/"):
        _, scheme, rest = target.partition("://")
        if not scheme:
            return target, None  # asterisk-form or authority-form: no path, so no page matches it
        # absolute-form (RFC 9112 §3.2.2): the authority ends at the first "/" or "?"; an empty path is "/"
        cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
        target = rest[cut:] if rest[cut:].startswith("/") else "/" + rest[cut:]
    path, question, query = target.partition("?")
    return path, query if question else None


def query_fields(query: str) -> list[tuple[str, str]]:
    """`a=1&b&c=%20` -> [("a", "1"), ("b", ""), ("c", " ")]. Total: a malformed escape stays as it is.

    No count limit of its own: the request line's limit bounds the number of fields (and the work)."""
    fields = []
    for field in query.split("&"):
        if field:
            name, _, value = field.partition("=")
            fields.append((unquote_plus(name), unquote_plus(value)))
    return fields


class RequestParser:
    """Feed bytes; take complete requests. Pipelined requests are returned in order.

    Total by construction: every check is an explicit byte-level match before anything is decoded or
    converted, so the only exception that leaves it is `HttpError`. Lines end in CRLF or a bare LF, and
    empty lines before a request are ignored (RFC 9112 §2.2); they count against the request line's limit,
    so a stream of them is refused rather than read forever."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._buffer = bytearray()  # starts at a request (after its leading empty lines), once the body is gone
        self._skipped = 0  # bytes of empty lines taken before the request now in the buffer
        self._body_left = 0  # bytes of the last request's body still to come: discarded as they arrive
        self.failed = False

    def feed(self, data: bytes) -> None:
        if self.failed:
            return
        self._buffer += data
        self._discard_body()
        self._skip_empty_lines()
        self._check_bounds()

    def _discard_body(self) -> None:
        """The body of the request last returned (its Content-Length, within `http_max_body`) is dropped as it
        arrives: its bytes are never parsed as the next request (a Content-Length desync, request smuggling)."""
        if self._body_left:
            taken = min(self._body_left, len(self._buffer))
            del self._buffer[:taken]
            self._body_left -= taken

    def _skip_empty_lines(self) -> None:
        empty = _EMPTY_LINES.match(self._buffer)
        if empty is not None:
            self._skipped += empty.end()
            del self._buffer[: empty.end()]

    def _check_bounds(self) -> None:
        """The request line and the head are bounded before they complete: an unterminated one fails once
        the buffer holds more than it may be."""
        line_room = self._limits.http_max_request_line + 2 - self._skipped  # CRLF included
        if len(self._buffer) > line_room and self._buffer.find(b"\n", 0, max(0, line_room)) < 0:
            self._fail_oversized()
        head_room = self._head_limit() - self._skipped
        if len(self._buffer) > head_room and _HEAD_END.search(self._buffer, 0, max(0, head_room)) is None:
            self._fail_oversized()

    def _head_limit(self) -> int:
        return self._limits.http_max_request_line + 2 + self._limits.http_max_header_bytes + 2

    def _fail_oversized(self) -> None:
        self.failed = True
        line_end = self._buffer.find(b"\n")
        if line_end < 0 or self._skipped + line_end > self._limits.http_max_request_line + 1:
            raise HttpError(400, "request line too long", limit=True)
        raise HttpError(431, "request header fields too large", limit=True)

    def has_partial(self) -> bool:
        """Part of a request, or of the last request's body, is still to come (the request timeout runs)."""
        return bool(self._buffer) or self._body_left > 0

    def next_request(self) -> Request | None:
        if self.failed:
            return None
        try:
            self._discard_body()
            if self._body_left:
                return None
            self._skip_empty_lines()
            end = _HEAD_END.search(self._buffer)
            if end is None:
                self._check_bounds()
                return None
            head = bytes(self._buffer[: end.start()])
            del self._buffer[: end.end()]
            skipped, self._skipped = self._skipped, 0
            return self._parse(head, skipped)
        except HttpError:
            self.failed = True
            raise

    def _parse(self, head: bytes, skipped: int) -> Request:
        lines = [line[:-1] if line.endswith(b"\r") else line for line in head.split(b"\n")]
        if any(b"\r" in line for line in lines):
            raise HttpError(400, "bare CR in the request head")  # RFC 9112 §2.2: invalid, not a terminator
        request_line, header_lines = lines[0], lines[1:]
        if skipped + len(request_line) > self._limits.http_max_request_line:
            raise HttpError(400, "request line too long", limit=True)
        if sum(2 + len(line) for line in header_lines) > self._limits.http_max_header_bytes + 2:
            raise HttpError(431, "request header fields too large", limit=True)
        if len(header_lines) > self._limits.http_max_headers:
            raise HttpError(431, "too many header fields", limit=True)
        method, target, version = self._parse_request_line(request_line)
        headers = tuple(self._parse_header(line) for line in header_lines)
        request = Request(method, target, version, headers, keep_alive=False)
        self._body_left = self._check_semantics(request)
        return Request(method, target, version, headers, _keeps_alive(version, headers))

    @staticmethod
    def _parse_request_line(line: bytes) -> tuple[str, str, str]:
        parts = line.split(b" ")
        if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]):
            raise HttpError(400, "malformed request line")
        method, target, version = parts
        if not version.startswith(b"HTTP/"):
            raise HttpError(400, "malformed request line")
        if version not in VERSIONS:
            raise HttpError(505, "unsupported HTTP version")
        if not _target_fits(method, target):
            raise HttpError(400, "malformed request target")
        return method.decode("ascii"), target.decode("ascii"), version.decode("ascii")  # all checked ASCII

    @staticmethod
    def _parse_header(line: bytes) -> tuple[str, str]:
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            raise HttpError(400, "malformed header field")  # includes obs-fold (leading whitespace)
        value = value.strip(b" \t")
        if not _FIELD_VALUE.fullmatch(value):
            raise HttpError(400, "control character in header value")
        return name.decode("ascii").lower(), value.decode("latin-1")

    def _check_semantics(self, request: Request) -> int:
        """Refuse what the request may not be; else its body's length (Content-Length, within the limit)."""
        hosts = [v for k, v in request.headers if k == "host"]
        if request.version == "HTTP/1.1" and len(hosts) != 1:
            raise HttpError(400, "HTTP/1.1 needs exactly one Host header")
        if len(hosts) > 1 or not all(_HOST.fullmatch(host) for host in hosts):
            raise HttpError(400, "malformed Host header")  # RFC 9112 §3.2: one, with a valid value
        if request.header("transfer-encoding") is not None:
            raise HttpError(413, "request bodies are not accepted", limit=True)
        lengths = {v for k, v in request.headers if k == "content-length"}
        if len(lengths) > 1:
            raise HttpError(400, "conflicting Content-Length headers")
        for length in lengths:
            if not _DIGITS.fullmatch(length):
                raise HttpError(400, "malformed Content-Length")
            digits = length.lstrip("0")
            # A length past 18 digits is too large for any limit; checking its size first keeps int() away
            # from numbers it refuses (over 4300 digits) and from needless work.
            if len(digits) > 18 or int(digits or "0") > self._limits.http_max_body:
                raise HttpError(413, "request bodies are not accepted", limit=True)
            return int(digits or "0")
        return 0


def _keeps_alive(version: str, headers: tuple[tuple[str, str], ...]) -> bool:
    """Whether the connection persists after this request (RFC 9112 §9.3). Every Connection field line counts:
    repeated lines are one comma-separated list (RFC 9110 §5.3), so a `close` on the second line is not lost
    behind a `keep-alive` on the first. `close` ends persistence in any version; HTTP/1.0 persists only when
    asked to."""
    tokens = {token.strip().lower() for name, value in headers if name == "connection" for token in value.split(",")}
    return "close" not in tokens and (version == "HTTP/1.1" or "keep-alive" in tokens)


def _target_fits(method: bytes, target: bytes) -> bool:
    """RFC 9112 §3.2: origin-form or absolute-form for any method, authority-form only for CONNECT (and
    CONNECT only with it), asterisk-form only for OPTIONS."""
    if method == b"CONNECT":
        return _AUTHORITY_FORM.fullmatch(target.decode("latin-1")) is not None
    if target == b"*":
        return method == b"OPTIONS"
    text = target.decode("latin-1")  # any non-ASCII byte then fails the ASCII-only grammar
    return _ORIGIN_FORM.fullmatch(text) is not None or _ABSOLUTE_FORM.fullmatch(text) is not None


@dataclass(frozen=True)
class Response:
    """What a page returns: status, type and body, and any headers of its own. `serialize_response` adds the
    framing and the security headers every response carries, so a page cannot leave them out."""

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
