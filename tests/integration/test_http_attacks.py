"""HTTP abuse against the booted target (issue 15's HTTP findings): inputs that used to raise inside the HTTP
layer, RFC 9112's empty lines and bare LF, a keep-alive connection held open for ever, and one client
pipelining /proof. Each case asserts what the attacker receives and the outcome recorded in /stats.json."""

from __future__ import annotations

import time

import pytest

from appliance.config import DEFAULT_LIMITS
from tests.integration.lab import ATTACKER_IPS, LAB_CONNECTION_LIFETIME, LAB_TIMEOUT, Lab, read_all

pytestmark = [pytest.mark.netns, pytest.mark.qemu]

RAISED_BEFORE = (
    b"GET /proof?a&b&c&d&challenge=x HTTP/1.1\r\nHost: t\r\n\r\n",  # too many query fields
    b"GET http://[/ HTTP/1.1\r\nHost: t\r\n\r\n",  # URL splitting of an absolute-form target
    b"GET //[x HTTP/1.1\r\nHost: t\r\n\r\n",  # URL splitting of an origin-form path
    b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: \xb2\r\n\r\n",  # a Latin-1 superscript digit
)


def _status_lines(data: bytes) -> list[bytes]:
    """The status line of each response in `data`, read one after the other by Content-Length."""
    lines: list[bytes] = []
    while data:
        head, found, rest = data.partition(b"\r\n\r\n")
        if not found:
            break
        header_lines = head.split(b"\r\n")
        lines.append(header_lines[0])
        length = next((int(line.split(b":", 1)[1]) for line in header_lines[1:]
                       if line.lower().startswith(b"content-length:")), 0)
        data = rest[length:]
    return lines


def _exchange(target: Lab, payload: bytes, source: str | None = None) -> bytes:
    with target.connect(80, source, timeout=4 * LAB_TIMEOUT) as sock:
        sock.sendall(payload)
        return target.received(read_all(sock))


def test_inputs_that_raised_inside_the_http_layer_get_a_response_after_a_served_request(target: Lab) -> None:
    """A keep-alive request first, then the input: both are answered, and nothing is an internal error."""
    internal_before = target.count("http", "internal-error")
    for bad in RAISED_BEFORE:
        data = _exchange(target, b"GET /missing HTTP/1.1\r\nHost: t\r\n\r\n" + bad)
        statuses = _status_lines(data)
        assert len(statuses) == 2, (bad, data[:300])
        assert statuses[0].startswith(b"HTTP/1.1 404")
    assert target.count("http", "internal-error") == internal_before


def test_a_bare_lf_request_after_empty_lines_is_answered_at_once(target: Lab) -> None:
    """RFC 9112 §2.2: empty lines before a request line are ignored and a bare LF ends a line. Answered,
    not left to the request timeout (which would answer 408 after LAB_TIMEOUT seconds)."""
    started = time.monotonic()
    data = _exchange(target, b"\r\n\n" + b"GET / HTTP/1.1\nHost: t\nConnection: close\n\n")
    assert data.startswith(b"HTTP/1.1 200"), data[:200]
    assert b"bc1q" in data
    assert time.monotonic() - started < LAB_TIMEOUT  # not the 408 path


def test_a_keep_alive_connection_cannot_hold_its_slot_beyond_its_lifetime(target: Lab) -> None:
    """One request every idle_timeout - 2 s stays under the idle timeout; the lifetime still ends the
    connection: the target closes it (with `Connection: close` on a response under way, or quietly between
    requests) once it has lived LAB_CONNECTION_LIFETIME seconds, not when the client tires."""
    source = ATTACKER_IPS[3]
    responses: list[bytes] = []
    started = time.monotonic()
    with target.connect(80, source, timeout=4 * LAB_TIMEOUT) as sock:
        closed = False
        while not closed and time.monotonic() - started < 3 * LAB_CONNECTION_LIFETIME:
            try:
                sock.sendall(b"GET /missing HTTP/1.1\r\nHost: t\r\n\r\n")
            except OSError:
                break
            head = b""
            while b"\r\n\r\n" not in head:
                try:
                    chunk = sock.recv(4096)
                except OSError:  # a reset: the target closed before our request reached it
                    chunk = b""
                if not chunk:
                    closed = True
                    break
                head += chunk
            if head:
                responses.append(target.received(head))
            if b"connection: close" in head.lower():
                closed = True
            time.sleep(max(1.0, LAB_TIMEOUT - 2))
    lived = time.monotonic() - started
    assert len(responses) >= 2, responses  # the idle timeout did not end it early
    assert LAB_CONNECTION_LIFETIME - 1 <= lived < LAB_CONNECTION_LIFETIME + 2 * LAB_TIMEOUT, lived


def test_one_client_pipelining_proof_leaves_the_others_their_answers(target: Lab) -> None:
    greedy, other = ATTACKER_IPS[4], ATTACKER_IPS[5]
    pipeline = b"".join(b"GET /proof?challenge=c%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(40))
    data = _exchange(target, pipeline + b"GET /proof?challenge=last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                     greedy)
    statuses = _status_lines(data)
    answered = sum(line.startswith(b"HTTP/1.1 200") for line in statuses)
    assert 1 <= answered < DEFAULT_LIMITS.proof_rate_per_second, statuses  # its own bucket ran dry, not the shared one
    assert any(line.startswith(b"HTTP/1.1 429") for line in statuses)
    status = _exchange(target, b"GET /proof?challenge=mine HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", other)
    assert status.startswith(b"HTTP/1.1 200"), status[:200]
