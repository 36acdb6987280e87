from __future__ import annotations

import contextlib
from dataclasses import replace

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from appliance.config import Limits, Ports
from appliance.http import REASONS, HttpError, Request, RequestParser, Response, serialize_response
from appliance.web import Site

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


# -- issue 15: parsing is total ---------------------------------------------------------------------------

SEEDS = [
    b"GET / HTTP/1.1\r\nHost: pinata\r\n\r\n",
    b"GET /proof?challenge=hello%20world HTTP/1.1\r\nHost: pinata:80\r\nConnection: keep-alive\r\n\r\n",
    b"HEAD /stats.json HTTP/1.0\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n",
    b"GET http://pinata/ca.pem?x=1 HTTP/1.1\r\nHost: [::1]:8080\r\nAccept: */*\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    b"CONNECT pinata:443 HTTP/1.1\r\nHost: pinata:443\r\n\r\n",
]
PIECES = [
    b"\r", b"\n", b"\r\n", b"\r\n\r\n", b"\xb2", b"\xb9", b"\xff", b"\x00", b"\t", b" ", b":", b"[", b"]", b"%",
    b"?", b"&", b"#", b"@", b"/", b"//", b"http://", b"Content-Length: ", b"Host: y\r\n", b"9" * 30, b"1" * 5000,
]
_piece = st.sampled_from(PIECES) | st.binary(min_size=1, max_size=8)
# Structure-aware pieces: a header line with a hostile value, and a request target built from URL delimiters.
FIELD_NAMES = [b"Content-Length", b"Host", b"Transfer-Encoding", b"Connection", b"X"]
VALUE_PIECES = [b"0", b"12", b"00", b"\xb2", b"\xb9", b"\xef\xbc\x91", b"9" * 30, b"1" * 5000, b"close", b"keep-alive",
                b"[::1]", b"[", b":80", b"a b", b",", b" ", b"-1", b"+1", b"0x1", b"\xff"]
TARGET_PIECES = [b"/", b"//", b"[", b"]", b"http://", b"https:", b"?", b"&", b"=", b"%", b"%zz", b"%41", b"a", b"proof",
                 b"challenge=x", b"*", b":80", b"@", b"#", b"\xff", b"\\", b"~"]
_header = st.tuples(st.sampled_from(FIELD_NAMES), st.lists(st.sampled_from(VALUE_PIECES), min_size=1, max_size=2))
_target = st.lists(st.sampled_from(TARGET_PIECES), min_size=1, max_size=5).map(b"".join)


def _boundaries(data: bytearray) -> list[int]:
    """Where mutations bite: after each delimiter of the request line and the fields, before each line end."""
    marks = [i + 1 for i, byte in enumerate(data) if byte in b" :?=&/"]
    return marks + [i for i, byte in enumerate(data) if byte == ord("\r")] or [0]


MUTATIONS = ["insert", "delete", "replace", "duplicate-line", "header", "header", "target", "target"]


@st.composite
def mutated_requests(draw: st.DrawFn) -> bytes:
    """A valid request (or two, pipelined) after a few mutations: insertions, deletions and replacements
    (bare CR and LF, non-ASCII bytes, huge numbers, URL delimiters), duplicated lines, an added header with
    a hostile value, a new request target."""
    data = bytearray(b"".join(draw(st.lists(st.sampled_from(SEEDS), min_size=1, max_size=2))))
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        kind = draw(st.sampled_from(MUTATIONS))
        at = draw(st.integers(min_value=0, max_value=len(data)) | st.sampled_from(_boundaries(data)))
        if kind == "insert":
            data[at:at] = draw(_piece)
        elif kind == "delete":
            del data[at : at + draw(st.integers(min_value=1, max_value=8))]
        elif kind == "replace":
            data[at : at + 1] = draw(_piece)
        elif kind == "header":
            name, value = draw(_header)
            start = data.find(b"\n") + 1 or len(data)
            data[start:start] = name + b": " + b"".join(value) + b"\r\n"
        elif kind == "target":
            first, second = data.find(b" "), data.find(b" ", data.find(b" ") + 1)
            if 0 <= first < second:
                data[first + 1 : second] = draw(_target)
        else:
            start = data.rfind(b"\n", 0, at) + 1
            end = data.find(b"\n", at)
            line = data[start : end + 1] if end >= 0 else data[start:] + b"\r\n"
            data[start:start] = line
    return bytes(data)


SMALL = replace(LIMITS, http_max_request_line=40, http_max_header_bytes=64, http_max_headers=2)


def _site() -> Site:
    from appliance.stats import Stats
    from appliance.vault import Vault

    return Site(Vault(bytes(range(1, 33)), lambda *a: None).prover(), b"", Stats(LIMITS), None, Ports(), LIMITS, "t")


SITE = _site()


def _within_limits(request: Request, limits: Limits) -> None:
    assert len(request.method) + len(request.target) + len(request.version) + 2 <= limits.http_max_request_line
    assert len(request.headers) <= limits.http_max_headers
    assert sum(len(name) + 1 + len(value) + 2 for name, value in request.headers) <= limits.http_max_header_bytes + 2
    assert request.header("transfer-encoding") is None
    assert int(request.header("content-length") or "0") <= limits.http_max_body
    assert request.target.isascii()
    assert request.method.isascii()


def _assert_total(data: bytes, cuts: list[int], limits: Limits) -> None:
    """However `data` arrives, only requests (within every limit, each getting a page) or one HttpError come
    out, and the parser never buffers more than one request head may be."""
    parser = RequestParser(limits)
    head_limit = limits.http_max_request_line + 2 + limits.http_max_header_bytes + 2
    refusal: HttpError | None = None
    for piece in _split(data, cuts):
        try:
            parser.feed(piece)
            while (request := parser.next_request()) is not None:
                _within_limits(request, limits)
                assert SITE.handle(request, 1_800_000_000.0).status in REASONS
        except HttpError as error:
            refusal = error
            break
        assert len(parser._buffer) <= head_limit
    if refusal is not None:
        assert refusal.status in REASONS
        assert refusal.status >= 400
        assert isinstance(refusal.limit, bool)
        assert parser.next_request() is None  # and it stays refused


@settings(max_examples=1000, deadline=None)
@given(mutated_requests(), st.lists(st.integers(min_value=0, max_value=6000), max_size=6),
       st.sampled_from([LIMITS, SMALL]))
@example(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: \xb2\r\n\r\n", [], LIMITS)
@example(b"GET /proof?a&b&c&d&challenge=x HTTP/1.1\r\nHost: x\r\n\r\n", [], LIMITS)
@example(b"GET http://[/ HTTP/1.1\r\nHost: x\r\n\r\n", [], LIMITS)
@example(b"GET //[x HTTP/1.1\r\nHost: x\r\n\r\n", [], LIMITS)
@example(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n", [], LIMITS)
def test_request_parsing_is_total_for_mutated_requests_however_they_arrive(
    data: bytes, cuts: list[int], limits: Limits
) -> None:
    _assert_total(data, cuts, limits)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=800), st.lists(st.integers(min_value=0, max_value=800), max_size=6),
       st.sampled_from([LIMITS, SMALL]))
def test_request_parsing_is_total_for_arbitrary_bytes(data: bytes, cuts: list[int], limits: Limits) -> None:
    _assert_total(data, cuts, limits)


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: \xb2\r\n\r\n", 400),  # not an ASCII digit
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: \xef\xbc\x91\r\n\r\n", 400),  # fullwidth 1, UTF-8
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n", 413),  # past int()'s 4300
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 000\r\n\r\n", None),
        (b"GET http://[/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET //[x HTTP/1.1\r\nHost: x\r\n\r\n", None),  # an odd path (a 404), split by us: no netloc in it
        (b"GET /proof?challenge={[a|b^c]}` HTTP/1.1\r\nHost: x\r\n\r\n", None),  # as browsers send them
        (b"GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n", 400),  # a fragment is never sent
        (b"GET /a\xff HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET http://user@pinata/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),  # RFC 9110 4.2.4: userinfo is an error
        (b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400),  # asterisk-form is OPTIONS's
        (b"CONNECT / HTTP/1.1\r\nHost: x\r\n\r\n", 400),  # CONNECT takes authority-form only
        (b"GET pinata:80 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),  # RFC 9112 3.2: an invalid Host value
        (b"GET / HTTP/1.1\rHost: x\r\n\r\n", 400),  # a bare CR is invalid, not a terminator
    ],
)
def test_inputs_that_used_to_raise_or_slip_through(data: bytes, status: int | None) -> None:
    if status is None:
        assert len(parse_all(data)) == 1
        return
    with pytest.raises(HttpError) as info:
        parse_all(data)
    assert info.value.status == status


def test_targets_split_without_urllib() -> None:
    requests = parse_all(
        b"GET /proof?challenge=a+b%21&x&&y=%zz HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET http://pinata:80?challenge=c HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET https://[::1]/stats.json HTTP/1.1\r\nHost: x\r\n\r\n"
        b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    assert [(r.path, r.query_fields) for r in requests] == [
        ("/proof", [("challenge", "a b!"), ("x", ""), ("y", "%zz")]),
        ("/", [("challenge", "c")]),
        ("/stats.json", []),
        ("*", []),
    ]


# -- issue 15: RFC 9112 §2.2 ------------------------------------------------------------------------------


def test_rfc9112_empty_lines_before_a_request_are_ignored_and_a_bare_lf_ends_a_line() -> None:
    first, second, third = parse_all(
        b"\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n"  # empty lines before the first request
        b"\r\nGET /b HTTP/1.1\nHost: x\nX-Y: z\n\n"  # after a request (a client's stray CRLF), then bare LFs
        b"\nGET /c HTTP/1.0\r\nX: 1\n\r\n"  # mixed
    )
    assert [r.target for r in (first, second, third)] == ["/a", "/b", "/c"]
    assert second.header("x-y") == "z"
    assert third.header("x") == "1"


def test_rfc9112_bare_lf_requests_parse_the_same_however_the_bytes_are_split() -> None:
    data = b"\nGET /a HTTP/1.1\nHost: x\n\n\r\nGET /b HTTP/1.1\r\nHost: x\n\r\n"
    whole = parse_all(data)
    assert [r.target for r in whole] == ["/a", "/b"]
    for cut in range(len(data) + 1):
        assert parse_all(data, chunks=[cut]) == whole


def test_empty_lines_count_against_the_request_line_limit() -> None:
    small = replace(LIMITS, http_max_request_line=64)
    parse_all(b"\r\n" * 10 + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", small)
    with pytest.raises(HttpError) as info:
        parse_all(b"\r\n" * 40, small)  # an endless stream of them is refused, not read forever
    assert (info.value.status, info.value.limit) == (400, True)


@pytest.mark.parametrize(
    ("data", "keep_alive"),
    [
        (b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", False),  # close wins in 1.0 too
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\nConnection: foo\r\nConnection: keep-alive\r\n\r\n", True),  # a later line counts
        (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo\r\nConnection: CLOSE \r\n\r\n", False),
        # negative: neither token, or only keep-alive, keeps each version's default
        (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo\r\nConnection: keep-alive\r\n\r\n", True),
        (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, bar\r\n\r\n", True),
        (b"GET / HTTP/1.0\r\nConnection: foo\r\nConnection: bar\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-Connection: close\r\n\r\n", True),  # another field's value
    ],
)
def test_every_connection_field_line_counts_and_close_wins(data: bytes, keep_alive: bool) -> None:
    (request,) = parse_all(data)
    assert request.keep_alive is keep_alive


BODIES = replace(LIMITS, http_max_body=100)  # `--limit http_max_body=100`: bodies up to 100 bytes accepted
SMUGGLED = b"GET /stats HTTP/1.1\r\nHost: smuggled\r\n\r\n"


def test_an_accepted_body_is_discarded_not_parsed_as_a_request() -> None:
    """Audit F3: with the limit raised, the body's bytes were parsed as the next request (a Content-Length
    desync). They are now read and discarded; the request after the body is parsed as usual."""
    data = (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED
            + b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
    for chunks in (None, list(range(1, len(data)))):  # whole, and one byte at a time
        assert [(r.target, r.header("host")) for r in parse_all(data, BODIES, chunks)] == [("/", "a"), ("/next", "a")]


def test_a_body_of_empty_lines_is_discarded_too() -> None:
    data = b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n"
    assert [r.target for r in parse_all(data, BODIES)] == ["/", "/next"]


def test_a_body_still_to_come_is_a_partial_request() -> None:
    parser = RequestParser(BODIES)
    parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n12345")
    assert parser.next_request() is not None
    assert parser.has_partial()  # the request timeout covers the body
    assert parser.next_request() is None
    parser.feed(b"67890")
    assert not parser.has_partial()
    assert parser.next_request() is None


def test_a_body_over_the_raised_limit_is_still_refused() -> None:
    with pytest.raises(HttpError) as info:
        parse_all(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n" + b"x" * 101, BODIES)
    assert (info.value.status, info.value.limit) == (413, True)


@settings(max_examples=200)
@given(st.binary(max_size=100), st.lists(st.integers(min_value=0, max_value=400), max_size=8))
def test_no_body_byte_is_ever_parsed_as_a_request(body: bytes, cuts: list[int]) -> None:
    """Whatever the body holds (requests included) and however the bytes arrive: the requests are the two
    heads around it, nothing from inside it."""
    data = (b"GET /a HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body) + body
            + b"GET /b HTTP/1.1\r\nHost: b\r\n\r\n")
    assert [r.target for r in parse_all(data, BODIES, cuts)] == ["/a", "/b"]
