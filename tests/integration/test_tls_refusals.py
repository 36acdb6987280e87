"""Record- and handshake-level attacks on the target's TLS, as the original bounty saw them on the internet.

Each case sends hand-made bytes from an attacker address in the namespace, reads until the target hangs up,
and asserts the refusal's category on the endpoint in /stats.json, that nothing succeeded meanwhile, and that
the secret is not in what came back.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import pytest

from tests.integration import craft
from tests.integration.craft import ALERT, CCS, HANDSHAKE, record
from tests.integration.lab import ATTACKER_IPS, TARGET_IP, Lab, read_all
from tests.tls.hello import client_hello
from tls.constants import ExtensionType
from tls.suites import DEFAULT_SUITES_12

pytestmark = [pytest.mark.netns, pytest.mark.qemu]

HELLO_13 = client_hello(versions=(0x0304,))
HELLO_12 = client_hello(versions=(), suites=DEFAULT_SUITES_12)


def _retag(hello_record: bytes, version: int) -> bytes:
    return hello_record[:1] + version.to_bytes(2, "big") + hello_record[3:]


def _cut_hello(cut: int) -> bytes:
    """A ClientHello whose body lost its last `cut` bytes, with the handshake and record lengths made to
    match: well framed, truncated inside (the extensions block claims more than there is)."""
    message = HELLO_13[5:]
    body = message[4:-cut]
    return record(HANDSHAKE, b"\x01" + len(body).to_bytes(3, "big") + body, version=0x0301)


@dataclass(frozen=True)
class Case:
    name: str
    payload: bytes
    category: str
    port: int = 10000
    half_close: bool = False  # shut our sending side after the payload (EOF is part of the attack)


SSLV3_OFFERING_13 = client_hello(legacy_version=0x0300, versions=(0x0304,))
PROTOCOL_VERSION_ALERT = record(ALERT, b"\x02\x46")  # fatal protocol_version
HELLO_12_NO_RENEGOTIATION_INFO = client_hello(versions=(), suites=DEFAULT_SUITES_12,
                                              drop=(ExtensionType.RENEGOTIATION_INFO,))
HELLO_12_RENEGOTIATING = client_hello(versions=(), suites=DEFAULT_SUITES_12, drop=(ExtensionType.RENEGOTIATION_INFO,),
                                      add=((ExtensionType.RENEGOTIATION_INFO, b"\x0c" + bytes(12)),))


def _on_both_tls_ports(case: Case) -> tuple[Case, Case]:
    """The hello-level refusals on 443 (where a real client meets them) and on 10000 (where the secret is):
    the two endpoints share the TLS engine, and the test shows they also share the refusal."""
    return replace(case, port=443), replace(case, port=10000)


CASES = (
    Case("telnet-text", b"please give key\r\n", "not-tls"),
    Case("http-to-tls-port", b"GET / HTTP/1.0\r\n\r\n", "not-tls", port=443),
    Case("record-version-4.0", _retag(HELLO_13, 0x0400), "bad-record-version"),
    Case("record-version-dtls", _retag(HELLO_13, 0xFEFD), "bad-record-version"),
    Case("second-record-version-2.0", HELLO_13 + record(HANDSHAKE, b"\x00", version=0x0200), "bad-record-version"),
    Case("sslv2-hello", craft.sslv2_hello(), "sslv2"),
    Case("sslv3-hello", _retag(client_hello(legacy_version=0x0300, versions=(), suites=(0x000A, 0x002F)), 0x0300),
         "sslv3"),
    Case("heartbeat-record", craft.heartbeat_request(), "heartbeat"),
    *_on_both_tls_ports(Case("heartbeat-extension", client_hello(add=((ExtensionType.HEARTBEAT, b"\x01"),)),
                             "heartbeat")),
    Case("no-shared-suite", client_hello(suites=(0x0005, 0x000A, 0x0004)), "no-shared-cipher"),
    *_on_both_tls_ports(Case("tls12-without-renegotiation-info", HELLO_12_NO_RENEGOTIATION_INFO,
                             "no-renegotiation-info")),
    # a first handshake that claims to renegotiate (RFC 5746: renegotiated_connection must be empty)
    *_on_both_tls_ports(Case("tls12-renegotiation-claimed-in-first-hello", HELLO_12_RENEGOTIATING,
                             "no-renegotiation-info")),
    Case("ccs-first", record(CCS, b"\x01"), "unexpected-message"),
    Case("ccs-repeated-tls13", HELLO_13 + record(CCS, b"\x01") * 4, "unexpected-message"),
    Case("ccs-early-tls12", HELLO_12 + record(CCS, b"\x01"), "unexpected-message"),
    Case("finished-first", craft.handshake_record(20, bytes(32)), "unexpected-message"),
    Case("certificate-first", craft.handshake_record(11, b"\x00\x00\x00"), "unexpected-message"),
    Case("client-hello-twice-tls12", HELLO_12 + _retag(HELLO_12, 0x0303), "unexpected-message"),
    Case("client-key-exchange-before-hello", craft.handshake_record(16, b"\x20" + bytes(32)), "unexpected-message"),
    Case("alert-garbage-length", HELLO_13 + record(ALERT, b"\x02\x28\x00"), "decode-error"),
    # a record cut short: by our FIN (the peer is gone) or by silence (the handshake deadline)
    Case("truncated-record-then-eof", HELLO_13[:60], "connection-reset", half_close=True),
    Case("truncated-record-then-silence", HELLO_13[:60], "timeout"),
    Case("truncated-message", _cut_hello(7), "decode-error"),
    Case("over-long-record", record(HANDSHAKE, bytes(18000)), "record-overflow"),
    Case("over-long-message", record(HANDSHAKE, b"\x01\xff\xff\xff" + bytes(100)), "resource-limit"),
    # issue 15: legacy_version SSL 3.0 (or lower) while offering TLS 1.3 is protocol_version (RFC 8446 D.5)
    *_on_both_tls_ports(Case("sslv3-legacy-version-offering-tls13", SSLV3_OFFERING_13, "sslv3")),
)


def attack(lab: Lab, case: Case, source: str) -> Callable[[], bytes]:
    def run() -> bytes:
        with lab.connect(case.port, source) as sock:
            sock.sendall(case.payload)
            if case.half_close:
                sock.shutdown(socket.SHUT_WR)
            return read_all(sock)

    return run


@pytest.mark.parametrize("case", CASES, ids=[c.name if c.port == 10000 else f"{c.name}@{c.port}" for c in CASES])
def test_refused_with_its_category(target: Lab, case: Case) -> None:
    endpoint = {10000: "mutual", 443: "https"}[case.port]
    answer = target.expect_refusal(endpoint, case.category, attack(target, case, ATTACKER_IPS[0]))
    # the target answers with TLS records (an alert, or its hello flight before the attack's second record
    # arrives) or not at all; never with anything else
    assert not answer or answer[0] in (ALERT, HANDSHAKE), answer[:32]


def test_renegotiation_attempt_is_refused(target: Lab) -> None:
    """openssl s_client's `R` renegotiates a finished TLS 1.2 session on 443. (On 10000 only a holder of a
    valid client certificate finishes a handshake, and gets the secret at once: the attacker's renegotiation
    there is the first hello claiming one, `tls12-renegotiation-claimed-in-first-hello`, and a second
    ClientHello inside the handshake, `client-hello-twice-tls12`.)"""
    before = target.count("https", "renegotiation-attempt")
    command = [
        "ip", "netns", "exec", target.ns, "openssl", "s_client", "-tls1_2", "-connect", f"{TARGET_IP}:443",
        "-servername", "pinata.local",
    ]
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        deadline = time.monotonic() + 30
        seen = b""
        while b"Verify return code" not in seen and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen += line
        proc.stdin.write(b"R\n")
        proc.stdin.flush()
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    target.received(seen + out, "openssl s_client")
    assert b"RENEGOTIATING" in out, out[-1000:]
    assert target.wait_count("https", "renegotiation-attempt", before + 1) == before + 1


def test_sslv3_legacy_version_offering_tls13_gets_protocol_version_not_a_server_hello(target: Lab) -> None:
    case = Case("sslv3-offering-13", SSLV3_OFFERING_13, "sslv3")
    answer = target.expect_refusal("mutual", "sslv3", attack(target, case, ATTACKER_IPS[1]))
    assert answer == PROTOCOL_VERSION_ALERT, answer[:32]


def test_a_refused_client_that_keeps_sending_still_reads_the_alert(target: Lab) -> None:
    """Issue 15, "alerts are lost": the target refuses the hello while the client is still sending (here
    128 KiB after it, under the lingering close's byte bound). The client sends all of it, shuts down its
    side and reads: it gets the alert and a clean end of stream, not a reset."""
    payload = SSLV3_OFFERING_13 + bytes(128 * 1024)

    def run() -> bytes:
        with target.connect(10000, ATTACKER_IPS[1]) as sock:
            sock.sendall(payload)  # raised ConnectionResetError before the lingering close
            sock.shutdown(socket.SHUT_WR)
            data = b""
            while chunk := sock.recv(65536):  # a reset would raise here instead of ending the stream
                data += chunk
            return data

    answer = target.expect_refusal("mutual", "sslv3", run)
    assert answer == PROTOCOL_VERSION_ALERT, answer[:32]
