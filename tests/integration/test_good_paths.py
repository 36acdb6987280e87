"""The three ways the secret is meant to leave, with the test PKI, from the namespace; and the intended
10000<->10002 short-circuit, through a proxy that must see only ciphertext."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from tests.integration import craft
from tests.integration.lab import KERNEL_IP, KNOWN_WIF, SECRET_FORMS, TARGET_IP, Lab, assert_no_secret, read_all

pytestmark = [pytest.mark.netns, pytest.mark.qemu]
SECRET_LINE = KNOWN_WIF.encode() + b"\n"


def test_mutual_10000_with_openssl_s_client(target: Lab) -> None:
    before = target.count("mutual", "success")
    result = subprocess_run(target, "openssl", "s_client", "-connect", f"{TARGET_IP}:10000", "-quiet",
                            "-cert", str(target.pki / "client.pem"), "-key", str(target.pki / "client.key"),
                            "-CAfile", str(target.pki / "ca.pem"), "-verify_return_error")
    assert SECRET_LINE in result, result[-500:]
    assert target.wait_count("mutual", "success", before + 1) == before + 1


def test_callback_10001_to_a_tls_server_on_40001(target: Lab, tmp_path: Path) -> None:
    context = craft.callback_server_context(target.pki, tmp_path)
    before = target.count("callback", "success")
    listener = _listener(target, 40001)
    received: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        conn.settimeout(30)
        with context.wrap_socket(conn, server_side=True) as tls:
            received.append(read_all(tls))

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with target.connect(10001, KERNEL_IP) as poke:
            assert_no_secret(read_all(poke), "the 10001 connection itself")
        thread.join(timeout=60)
    finally:
        listener.close()
    assert received == [SECRET_LINE]
    assert target.wait_count("callback", "success", before + 1) == before + 1


def _listener(target: Lab, port: int) -> socket.socket:
    listener = target.open_socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((KERNEL_IP, port))
    listener.listen(4)
    listener.settimeout(60)
    return listener


def test_reverse_10002_we_are_the_tls_server(target: Lab, tmp_path: Path) -> None:
    context = craft.callback_server_context(target.pki, tmp_path)
    before = target.count("reverse", "success")
    with target.connect(10002, KERNEL_IP, timeout=60) as raw, context.wrap_socket(raw, server_side=True) as tls:
        data = read_all(tls)
    assert data == SECRET_LINE
    assert target.wait_count("reverse", "success", before + 1) == before + 1


def _relay(source: socket.socket, sink: socket.socket, seen: bytearray) -> None:
    try:
        while chunk := source.recv(65536):
            seen += chunk
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def test_short_circuit_10002_to_10000_shows_the_proxy_only_ciphertext(target: Lab) -> None:
    mutual, reverse = target.count("mutual", "success"), target.count("reverse", "success")
    to_reverse = target.connect(10002, KERNEL_IP, timeout=60)
    to_mutual = target.connect(10000, KERNEL_IP, timeout=60)
    forward, backward = bytearray(), bytearray()
    threads = [threading.Thread(target=_relay, args=(to_reverse, to_mutual, forward)),
               threading.Thread(target=_relay, args=(to_mutual, to_reverse, backward))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    to_reverse.close()
    to_mutual.close()
    assert target.wait_count("mutual", "success", mutual + 1) == mutual + 1
    assert target.wait_count("reverse", "success", reverse + 1) == reverse + 1
    assert forward[:1] == b"\x16"
    assert backward[:1] == b"\x16"
    assert len(backward) > 200  # the secret did pass, in application-data records
    assert b"\x17\x03\x03" in backward
    for form in SECRET_FORMS:
        assert form not in forward
        assert form not in backward


def subprocess_run(target: Lab, *args: str) -> bytes:
    """A good-path client: its output is allowed to hold the secret, so it is not passed to `received`."""
    result = subprocess.run(["ip", "netns", "exec", target.ns, *args], input=b"", capture_output=True, timeout=90,
                            check=False)
    return result.stdout + result.stderr
