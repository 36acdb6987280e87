"""The five endpoints over kernel sockets with the test PKI, against both TLS engines.

Each success path gets the secret exactly as an attacker with the CA would; each failure class is recorded
under its category; at the end nothing the appliance said, logged or stored contains the secret.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import ExtendedKeyUsageOID

from appliance import bitcoin
from appliance.config import DISK_HEADER_BYTES
from appliance.pki import Identity
from bench import certs
from tests.appliance.certs import DAY, NOW, Spec, load_ca, mint, write_identity
from tests.appliance.running import (
    KNOWN_WIF,
    Running,
    client_context,
    raw_exchange,
    serve_tls_once,
    start,
    tls_exchange,
)
from tests.peers import send_all_then_read
from tests.tls.procs import s_client_typing

STILL_SENDING = 16 << 20  # what a client sends after its refused first bytes: far more than the appliance reads
SECRET_FORMS = (KNOWN_WIF.encode(), bitcoin.wif_decode(KNOWN_WIF), bitcoin.wif_decode(KNOWN_WIF).hex().encode())
LIMITS = (
    "handshake_timeout=1.5", "idle_timeout=1.5", "callback_connect_timeout=2", "max_connections_per_source=6",
    "http_request_timeout=1.5", "log_connection_lines_per_second=10000", "send_timeout=1.5",
    f"linger_bytes={2 * STILL_SENDING}",
)
RESPONSES: list[bytes] = []  # everything the appliance sent us, checked for the secret at the end


@pytest.fixture(scope="module", params=["ours", "stdlib"])
def appliance(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = start(tmp_path_factory.mktemp(f"appliance-{request.param}"), request.param, LIMITS)
    try:
        yield running
    finally:
        running.stop()


def _ca(running: Running) -> Identity:
    return load_ca(running.pki)


_write = write_identity


def _expect(running: Running, endpoint: str, category: str, action: object) -> None:
    before = running.count(endpoint, category)
    assert callable(action)
    RESPONSES.append(bytes(action() or b""))
    assert running.wait_count(endpoint, category, before + 1) == before + 1, running.stats()["recent_refused"]


# -- success paths ----------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_mutual_openssl_s_client_with_client_cert_gets_the_secret(appliance: Running) -> None:
    before = appliance.count("mutual", "success")
    result = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{appliance.ports.mutual}", "-quiet",
         "-cert", str(appliance.pki / "client.pem"), "-key", str(appliance.pki / "client.key"),
         "-CAfile", str(appliance.pki / "ca.pem"), "-verify_return_error"],
        input=b"", capture_output=True, timeout=20, check=False,
    )
    assert KNOWN_WIF.encode() in result.stdout
    assert appliance.wait_count("mutual", "success", before + 1) == before + 1


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
@pytest.mark.parametrize("version", ["-tls1_3", "-tls1_2"])
@pytest.mark.parametrize("endpoint", ["mutual", "https"])
def test_a_client_that_verifies_rsa_only_is_served_the_rsa_certificate(appliance: Running, version: str,
                                                                        endpoint: str) -> None:
    """Issue 15: every certificate was ECDSA, so a client offering only RSA signature schemes was refused;
    each server role now has an RSA leaf from the boot CA beside its ECDSA one."""
    before = appliance.count("mutual", "success")
    port = appliance.ports.mutual if endpoint == "mutual" else appliance.ports.https
    # Our client certificate is ECDSA: -client_sigalgs lets s_client sign with it while -sigalgs, what it
    # accepts from the server, stays RSA only.
    client = ["-cert", str(appliance.pki / "client.pem"), "-key", str(appliance.pki / "client.key"),
              "-client_sigalgs", "ECDSA+SHA256"]
    request = b"" if endpoint == "mutual" else b"GET / HTTP/1.1\r\nHost: pinata.local\r\nConnection: close\r\n\r\n"
    result = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", version, "-sigalgs", "RSA-PSS+SHA256:RSA+SHA256",
         *(client if endpoint == "mutual" else []), "-CAfile", str(appliance.pki / "ca.pem"),
         "-verify_return_error", "-ign_eof"],
        input=request, capture_output=True, timeout=20, check=False,
    )
    out = result.stdout.decode(errors="replace")
    assert "Verify return code: 0 (ok)" in out, out + result.stderr.decode(errors="replace")
    assert "Peer signature type: RSA" in out or "Peer signature type: rsa" in out, out
    if endpoint == "mutual":  # the secret is the point here: not one of the RESPONSES that must never hold it
        assert KNOWN_WIF.encode() in result.stdout
        assert appliance.wait_count("mutual", "success", before + 1) == before + 1
    else:
        RESPONSES.append(result.stdout)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_https_renegotiation_is_refused_with_a_warning_and_recorded(appliance: Running) -> None:
    """Issue 15: no_renegotiation is a warning (RFC 5246 §7.2.2); the connection is recorded as
    renegotiation-attempt. (The stdlib engine follows OpenSSL's own renegotiation policy.)"""
    if appliance.engine != "ours":
        pytest.skip("OpenSSL's renegotiation policy, not ours")
    before = appliance.count("https", "renegotiation-attempt")
    out = s_client_typing(appliance.ports.https, "-tls1_2", "-CAfile", str(appliance.pki / "ca.pem"),
                          lines=(b"R\n",), pause=0.3)
    RESPONSES.append(out)
    assert b"warning no_renegotiation" in out, out
    assert b"fatal no_renegotiation" not in out
    assert appliance.wait_count("https", "renegotiation-attempt", before + 1) == before + 1


def test_mutual_with_a_fresh_leaf_from_the_ca(appliance: Running, tmp_path: Path) -> None:
    cert, key = _write(mint(_ca(appliance), Spec()), tmp_path, "fresh")
    assert tls_exchange(appliance.ports.mutual, client_context(cert, key)) == KNOWN_WIF.encode() + b"\n"


def test_callback_sends_the_secret_to_a_tls_server_on_40001(appliance: Running, tmp_path: Path) -> None:
    server_cert, server_key = _write(
        mint(_ca(appliance), Spec(eku=(ExtendedKeyUsageOID.SERVER_AUTH,))), tmp_path, "cb-server"
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(server_cert, server_key)
    context.load_verify_locations(appliance.pki / "ca.pem")
    context.verify_mode = ssl.CERT_REQUIRED  # the appliance must present its client certificate
    _callback_delivers_the_secret(appliance, context)


def _callback_delivers_the_secret(running: Running, context: ssl.SSLContext) -> None:
    """Ask 10001 to call back, serve one TLS connection on 40001 with `context`: the secret arrives, once."""
    before = running.count("callback", "success")
    with socket.create_server(("127.0.0.1", running.ports.callback_target)) as listener:
        listener.settimeout(10)
        thread, received = serve_tls_once(listener, context)
        raw_exchange(running.ports.callback, b"")
        thread.join(timeout=15)
    assert received == [KNOWN_WIF.encode() + b"\n"]
    assert running.wait_count("callback", "success", before + 1) == before + 1


def _rsa_server(running: Running, directory: Path) -> ssl.SSLContext:
    """A TLS server with an RSA-2048 certificate from the boot CA that asks for the appliance's client
    certificate: the appliance's client roles must take RSA peers as well as ECDSA ones (issue 15)."""
    ca = _ca(running)
    spec = certs.Spec("rsa peer", eku=(ExtendedKeyUsageOID.SERVER_AUTH,), ski=False, serial=None,
                      not_before=NOW - DAY, not_after=NOW + DAY)
    peer = certs.issue(spec, issuer=certs.as_issuer(ca.certificate, ca.key), key=certs.shared_key("rsa2048"))
    (directory / "rsa.pem").write_bytes(peer.pem)
    (directory / "rsa.key").write_bytes(peer.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "rsa.pem", directory / "rsa.key")
    context.load_verify_locations(running.pki / "ca.pem")
    context.verify_mode = ssl.CERT_REQUIRED
    return context


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2])
def test_callback_sends_the_secret_to_a_tls_server_with_an_rsa_certificate(
    appliance: Running, tmp_path: Path, version: ssl.TLSVersion
) -> None:
    context = _rsa_server(appliance, tmp_path)
    context.minimum_version = context.maximum_version = version
    _callback_delivers_the_secret(appliance, context)


def test_reverse_takes_a_server_with_an_rsa_certificate(appliance: Running, tmp_path: Path) -> None:
    context = _rsa_server(appliance, tmp_path)
    before = appliance.count("reverse", "success")
    with socket.create_connection(("127.0.0.1", appliance.ports.reverse), timeout=10) as raw, \
            context.wrap_socket(raw, server_side=True) as tls:
        assert tls.getpeercert() is not None  # the appliance presented its client certificate
        tls.sendall(b"hello")
    assert appliance.wait_count("reverse", "success", before + 1) == before + 1


def _relay(source: socket.socket, target: socket.socket, seen: bytearray) -> None:
    try:
        while chunk := source.recv(65536):
            seen += chunk
            target.sendall(chunk)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)


def test_reverse_short_circuited_to_mutual_through_a_proxy_sees_only_ciphertext(appliance: Running) -> None:
    mutual_before = appliance.count("mutual", "success")
    reverse_before = appliance.count("reverse", "success")
    to_reverse = socket.create_connection(("127.0.0.1", appliance.ports.reverse), timeout=10)
    to_mutual = socket.create_connection(("127.0.0.1", appliance.ports.mutual), timeout=10)
    forward, backward = bytearray(), bytearray()
    threads = [
        threading.Thread(target=_relay, args=(to_reverse, to_mutual, forward)),
        threading.Thread(target=_relay, args=(to_mutual, to_reverse, backward)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    to_reverse.close()
    to_mutual.close()
    assert appliance.wait_count("mutual", "success", mutual_before + 1) == mutual_before + 1
    assert appliance.wait_count("reverse", "success", reverse_before + 1) == reverse_before + 1
    assert forward[:1] == b"\x16"
    assert backward[:1] == b"\x16"
    for secret in SECRET_FORMS:
        assert secret not in forward
        assert secret not in backward


def test_https_serves_the_pages_with_the_web_certificate(appliance: Running) -> None:
    context = client_context(ca=appliance.pki / "ca.pem")
    raw = socket.create_connection(("127.0.0.1", appliance.ports.https), timeout=10)
    with context.wrap_socket(raw) as tls:
        tls.sendall(b"GET /ca.pem HTTP/1.1\r\nHost: pinata.local\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := tls.recv(4096):
            data += chunk
    RESPONSES.append(data)
    assert data.startswith(b"HTTP/1.1 200 ")
    assert data.endswith((appliance.pki / "ca.pem").read_bytes())


# -- failure classes -------------------------------------------------------------------------------------


def test_not_tls(appliance: Running) -> None:
    _expect(appliance, "mutual", "not-tls", lambda: raw_exchange(appliance.ports.mutual, b"please give key\n"))


def test_no_certificate(appliance: Running) -> None:
    _expect(appliance, "mutual", "no-certificate", lambda: tls_exchange(appliance.ports.mutual, client_context()))


def test_untrusted_self_signed_client(appliance: Running, tmp_path: Path) -> None:
    cert, key = _write(mint(_ca(appliance), Spec(self_signed=True)), tmp_path, "self")
    _expect(appliance, "mutual", "untrusted-chain",
            lambda: tls_exchange(appliance.ports.mutual, client_context(cert, key)))


def test_expired_client(appliance: Running, tmp_path: Path) -> None:
    spec = Spec(not_before=NOW - 10 * DAY, not_after=NOW - DAY)
    cert, key = _write(mint(_ca(appliance), spec), tmp_path, "expired")
    _expect(appliance, "mutual", "expired", lambda: tls_exchange(appliance.ports.mutual, client_context(cert, key)))


def test_server_certificate_used_as_client(appliance: Running) -> None:
    _expect(appliance, "mutual", "wrong-extended-key-usage", lambda: tls_exchange(
        appliance.ports.mutual, client_context(appliance.pki / "server.pem", appliance.pki / "server.key")))


def test_sslv2_hello(appliance: Running) -> None:
    hello = b"\x80\x2e\x01\x00\x02\x00\x15\x00\x00\x00\x10" + b"\x07\x00\xc0" * 7 + bytes(16)
    _expect(appliance, "mutual", "sslv2", lambda: raw_exchange(appliance.ports.mutual, hello))


def _tls_1_1_context() -> ssl.SSLContext:
    context = client_context()
    with warnings.catch_warnings():  # deprecated on purpose: this is the attacker's old client
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def test_tls_1_1_client(appliance: Running) -> None:
    context = _tls_1_1_context()
    _expect(appliance, "https", "old-tls-version", lambda: tls_exchange(appliance.ports.https, context))


def test_forged_client_certificate(appliance: Running, tmp_path: Path) -> None:
    cert, key = _write(mint(_ca(appliance), Spec(wrong_signing_key=True)), tmp_path, "forged")
    _expect(appliance, "mutual", "chain-signature-invalid",
            lambda: tls_exchange(appliance.ports.mutual, client_context(cert, key)))


def test_not_yet_valid_client(appliance: Running, tmp_path: Path) -> None:
    cert, key = _write(mint(_ca(appliance), Spec(not_before=NOW + DAY, not_after=NOW + 9 * DAY)), tmp_path, "early")
    _expect(appliance, "mutual", "not-yet-valid",
            lambda: tls_exchange(appliance.ports.mutual, client_context(cert, key)))


def test_the_ca_itself_as_client_certificate(appliance: Running) -> None:
    """The anchor presented as a leaf. Ours says ca-as-leaf; OpenSSL (stdlib engine) refuses it earlier for
    its key usage (keyCertSign only), which it reports as an unsuitable purpose. Either way: no secret."""
    context = client_context(appliance.pki / "ca.pem", appliance.pki / "ca.key")
    allowed = ("ca-as-leaf", "wrong-key-usage", "wrong-extended-key-usage")
    before = {c: appliance.count("mutual", c) for c in (*allowed, "success")}
    assert tls_exchange(appliance.ports.mutual, context) == b""
    deadline = time.monotonic() + 10
    while sum(appliance.count("mutual", c) - before[c] for c in allowed) < 1:  # polls the record it waits for
        assert time.monotonic() < deadline, appliance.stats()["recent_refused"]
        time.sleep(0.05)
    assert appliance.count("mutual", "success") == before["success"]
    if appliance.engine == "ours":
        assert appliance.count("mutual", "ca-as-leaf") == before["ca-as-leaf"] + 1


def test_client_that_rejects_our_server_sends_an_alert(appliance: Running, tmp_path: Path) -> None:
    other = mint(_ca(appliance), Spec(self_signed=True))
    ca_file, _ = _write(other, tmp_path, "other-anchor")
    _expect(appliance, "https", "peer-alert", lambda: tls_exchange(appliance.ports.https, client_context(ca=ca_file)))


def test_handshake_timeout(appliance: Running) -> None:
    _expect(appliance, "mutual", "timeout", lambda: raw_exchange(appliance.ports.mutual, b"\x16\x03\x01"))


def test_callback_with_nothing_listening(appliance: Running) -> None:
    _expect(appliance, "callback", "connect-back-failed", lambda: raw_exchange(appliance.ports.callback, b""))


def test_reverse_peer_with_an_untrusted_server_certificate(appliance: Running, tmp_path: Path) -> None:
    cert, key = _write(
        mint(_ca(appliance), Spec(self_signed=True, eku=(ExtendedKeyUsageOID.SERVER_AUTH,))), tmp_path, "rev"
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def attack() -> bytes:
        with socket.create_connection(("127.0.0.1", appliance.ports.reverse), timeout=10) as raw:
            try:
                with context.wrap_socket(raw, server_side=True) as tls:
                    return tls.recv(4096)
            except (ssl.SSLError, OSError):
                return b""

    _expect(appliance, "reverse", "untrusted-chain", attack)


def _keep_alive_get(sock: socket.socket, path: str) -> bytes | None:
    """One keep-alive GET on an open connection: the whole response, or None when the appliance closed the
    connection without answering (what a refused admission looks like)."""
    try:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        match = re.search(rb"\r\nContent-Length: (\d+)", head, re.IGNORECASE)
        assert match is not None, head
        while len(body) < int(match[1]):
            chunk = sock.recv(4096)
            assert chunk, "connection closed in the middle of a response"
            body += chunk
        return head + b"\r\n\r\n" + body
    except ConnectionError:
        return None


def _admitted_connection(port: int) -> socket.socket | None:
    """A connection the appliance has admitted, proven by its answer; None if it was refused."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if _keep_alive_get(sock, "/nope") is None:
        sock.close()
        return None
    return sock


def test_too_many_connections_from_one_source(appliance: Running) -> None:
    """With as many connections as the per-source limit admitted and held, the next one is refused.

    No sleeps: each held connection proves its admission by answering a request. A connection of an earlier
    test (or of a stats poll) may hold a slot for a moment after its client has the answer; while it does, an
    attempt here is refused and is simply made again, until all six slots are ours."""
    port = appliance.ports.http
    held: list[socket.socket] = []
    try:
        give_up = time.monotonic() + 10  # a bound on a stuck appliance, not a wait: every attempt is a round trip
        while len(held) < 6:
            assert time.monotonic() < give_up, "the appliance never freed the slots of earlier connections"
            sock = _admitted_connection(port)
            if sock is not None:
                held.append(sock)
        stats = _keep_alive_get(held[0], "/stats.json")  # over a held connection: a new one would be refused
        assert stats is not None
        before = json.loads(stats.partition(b"\r\n\r\n")[2])["by_endpoint"]["http"].get("resource-limit", 0)
        refused = raw_exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert refused == b""
        for sock in held:  # and they are all still there: it was the seventh that was turned away
            assert _keep_alive_get(sock, "/nope") is not None
    finally:
        for sock in held:
            sock.close()
    assert appliance.wait_count("http", "resource-limit", before + 1) >= before + 1  # our own polls may add more


@pytest.mark.parametrize(
    ("payload", "status", "category"),
    [
        (b"GARBAGE\r\n\r\n", b"400", "bad-request"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 9000 + b"\r\n\r\n", b"431", "resource-limit"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789", b"413", "resource-limit"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n", b"408", "timeout"),
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", b"505", "bad-request"),
    ],
)
def test_http_refusals(appliance: Running, payload: bytes, status: bytes, category: str) -> None:
    answers: list[bytes] = []

    def send() -> bytes:
        answers.append(raw_exchange(appliance.ports.http, payload))
        return answers[-1]

    _expect(appliance, "http", category, send)
    assert answers[0].startswith(b"HTTP/1.1 " + status)


def _tls_1_1_hello() -> bytes:
    """A TLS 1.1 ClientHello (as test_tls_1_1_client's client sends): both engines refuse it with an alert."""
    context = _tls_1_1_context()
    outgoing = ssl.MemoryBIO()
    client = context.wrap_bio(ssl.MemoryBIO(), outgoing)
    with contextlib.suppress(ssl.SSLWantReadError):
        client.do_handshake()
    return outgoing.read()


@pytest.mark.parametrize(
    ("endpoint", "first", "answer", "category"),
    [
        ("https", _tls_1_1_hello, b"\x15\x03", "old-tls-version"),  # a TLS alert record
        ("http", lambda: b"GET / HTTP/1.1\r\nHost: x\r\nX: ", b"HTTP/1.1 431 ", "resource-limit"),  # endless header
    ],
)
def test_a_client_still_sending_when_refused_reads_the_refusal(
        appliance: Running, endpoint: str, first: Callable[[], bytes], answer: bytes, category: str) -> None:
    """Issue 15, "alerts are lost": the appliance refuses after the first bytes while the client is still
    sending. Closing then, with megabytes unread, reset the connection: the client's send failed and a tool
    reported the reset, not the refusal. The lingering close takes what the client sends (within
    linger_bytes), then ends the stream: every send succeeds and the alert or error response arrives."""
    port = {"https": appliance.ports.https, "http": appliance.ports.http}[endpoint]
    seen: list[tuple[str | None, bytes, str | None]] = []

    def exchange() -> bytes:
        seen.append(send_all_then_read(port, first() + b"a" * STILL_SENDING))
        return seen[-1][1]

    _expect(appliance, endpoint, category, exchange)
    send_error, received, read_error = seen[0]
    assert (send_error, read_error) == (None, None)
    assert received.startswith(answer)


def test_a_client_that_never_closes_after_a_refusal_is_cut_off_and_the_record_says_so(appliance: Running) -> None:
    """After the 400 and the appliance's end of stream the client neither sends nor closes: the lingering
    close gives up after linger_seconds (the default: it delays only the record), and the record names the
    bound, since exceeding a limit is visible."""
    before = appliance.count("http", "bad-request")
    with socket.create_connection(("127.0.0.1", appliance.ports.http), timeout=10) as client:
        client.sendall(b"GARBAGE\r\n\r\n")
        answer = b""
        while chunk := client.recv(4096):  # ends at the appliance's half-close, while we keep our end open
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 400 ")
        assert appliance.wait_count("http", "bad-request", before + 1) == before + 1
    recent = appliance.stats()["recent_refused"]
    assert isinstance(recent, list)
    assert any(r["category"] == "bad-request" and r["reason"].endswith("lingering close cut off at linger_seconds")
               for r in recent), recent


def test_http_keep_alive_404_405_and_pages(appliance: Running) -> None:
    requests = (
        b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
        b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n"
        b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /manifest.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    data = raw_exchange(appliance.ports.http, requests)
    RESPONSES.append(data)
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", data) == [
        b"404", b"405", b"200", b"200", b"200",
    ]
    assert b"<svg" in data
    assert b"[python-packages" in data


def test_a_client_that_never_reads_is_timed_out(appliance: Running) -> None:
    """Pipelined requests from a client that never reads what comes back: a tiny receive buffer and a tiny
    MSS (so the appliance's send buffer is not autotuned up to MiBs) fill up, and the appliance must give
    up on the connection after its send timeout instead of waiting on drain() for as long as we like."""
    before = appliance.count("http", "timeout")
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    client.settimeout(10)
    try:
        client.connect(("127.0.0.1", appliance.ports.http))
        client.sendall(b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n" * 100)
        assert appliance.wait_count("http", "timeout", before + 1) == before + 1
    finally:
        client.close()
    recent = appliance.stats()["recent_refused"]
    assert isinstance(recent, list)
    assert any(r["category"] == "timeout" and "did not accept" in r["reason"] for r in recent)


def test_recent_refused_attempts_are_listed(appliance: Running) -> None:
    stats = appliance.stats()
    recent = stats["recent_refused"]
    assert isinstance(recent, list)
    assert {"not-tls", "no-certificate", "expired"} <= {r["category"] for r in recent}
    assert all(set(r) == {"time", "endpoint", "category", "reason", "peer_text"} for r in recent)
    page = appliance.get("/stats")
    RESPONSES.append(page)
    assert b"not-tls" in page


def _private_key_forms(pki: Path) -> list[bytes]:
    """Every spelling of the appliance's own private keys (the CA's above all: it would let anyone mint a
    client certificate) that a leak could take: PKCS#8 and SEC 1, PEM and DER, any full line of the PEM
    body, and the bare scalar raw, in hex and in base64."""
    forms: list[bytes] = []
    for path in sorted(pki.glob("*.key")):
        key = serialization.load_pem_private_key(path.read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        for encoding, layout in itertools.product((Encoding.PEM, Encoding.DER),
                                                  (PrivateFormat.PKCS8, PrivateFormat.TraditionalOpenSSL)):
            forms.append(key.private_bytes(encoding, layout, NoEncryption()))
            if encoding is Encoding.PEM:
                forms += [line for line in forms[-1].splitlines()[1:-1] if len(line) == 64]
        scalar = key.private_numbers().private_value.to_bytes((key.curve.key_size + 7) // 8, "big")
        forms += [scalar, scalar.hex().encode(), scalar.hex().upper().encode(), base64.b64encode(scalar)]
    assert len(forms) >= 4 * 8  # ca, server, client, web: all four were exported and read
    return forms


def test_the_secret_never_appears_in_responses_logs_or_ledger(appliance: Running) -> None:
    for path in ("/", "/stats", "/stats.json", "/ca.pem", "/manifest.txt", "/proof?challenge=x"):
        RESPONSES.append(appliance.get(path))
    log = appliance.log.read_bytes()
    ledger = appliance.disk.read_bytes()[DISK_HEADER_BYTES:]
    assert b'"category":"success"' in log  # the log does record the successes ...
    assert b"success" in ledger
    places = {"console log": log, "ledger": ledger} | {f"response {i}": r for i, r in enumerate(RESPONSES)}
    forms = (*SECRET_FORMS, *_private_key_forms(appliance.pki))  # ... but never what was sent
    # Reported by index and place, so that a failure does not print the secret it found.
    leaks = [(index, place) for index, secret in enumerate(forms) for place, data in places.items() if secret in data]
    assert leaks == []
