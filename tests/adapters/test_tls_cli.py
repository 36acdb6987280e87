"""`python -m adapters.tls_cli client` against `... server` over loopback: success in both versions, and
refusals reported with the alert and the category and a non-zero exit status."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.tls.pki import make_ca, make_leaf
from tests.tls.procs import Pki, free_port, interactive, our_client, our_server, running


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


def test_our_client_and_server_with_client_certificate(pki: Pki) -> None:
    port = free_port()
    with running(our_server(pki, port, "--client-ca", pki.ca), port):
        result = subprocess.run(our_client(port, "--ca", pki.ca, "--servername", "localhost", "--cert",
                                           pki.client_cert, "--key", pki.client_key),
                                input=b"GET / HTTP/1.0\r\n\r\n", capture_output=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert b"connected: TLSv1.3" in result.stderr
    assert b"Client certificates: 1" in result.stdout


def test_client_certificate_refused_after_a_tls13_handshake(pki: Pki) -> None:
    """In TLS 1.3 the client finishes before the server judges its certificate: the refusal arrives as an
    alert afterwards, and the client still exits non-zero naming it."""
    stranger = make_leaf(make_ca("Stranger CA"), server=False, names=())
    cert, key = pki.write_issued("stranger-client", stranger)
    port = free_port()
    with running(our_server(pki, port, "--client-ca", pki.ca), port) as server:
        result = subprocess.run(our_client(port, "--ca", pki.ca, "--cert", cert, "--key", key),
                                input=b"GET / HTTP/1.0\r\n\r\n", capture_output=True, timeout=30, check=False)
        server.terminate()
        _, server_err = server.communicate(timeout=5)
    assert result.returncode == 1
    assert b"peer alert unknown_ca (48), category peer-alert" in result.stderr
    assert b"category untrusted-chain" in server_err


def test_server_name_mismatch_is_refused_by_our_client(pki: Pki) -> None:
    port = free_port()
    with running(our_server(pki, port), port):
        result = subprocess.run(our_client(port, "--ca", pki.ca, "--servername", "other.example"), input=b"",
                                capture_output=True, timeout=30, check=False)
    assert result.returncode == 1
    assert b"sent alert bad_certificate (42), category name-mismatch" in result.stderr


def test_cert_without_key_is_a_usage_error(pki: Pki) -> None:
    result = subprocess.run(our_client(1, "--cert", pki.client_cert), input=b"", capture_output=True, timeout=30,
                            check=False)
    assert result.returncode == 2
    assert b"--cert and --key go together" in result.stderr


def test_our_client_sends_stdin_as_it_arrives(pki: Pki) -> None:
    """Interactive use: each line goes out when typed, and the reply is printed while stdin is still open (the
    server ends the session by closing, which ends the client too)."""
    port = free_port()
    with running(our_server(pki, port), port), interactive(our_client(port, "--ca", pki.ca)) as client:
        client.wait_for(b"connected: TLSv1.3")
        client.type(b"GET / HTTP/1.0\r\n")
        client.type(b"\r\n")
        client.wait_for(b"HTTP/1.0 200 ok")
        assert client.wait(timeout=15) == 0, client.output
        assert b"Protocol: TLSv1.3" in client.output


def test_our_server_keeps_serving_on_its_host(pki: Pki) -> None:
    """`--host` is where it listens (127.0.0.2 here, not 127.0.0.1), and one connection after another is served,
    also while an earlier one is still open."""
    port = free_port()
    with running(our_server(pki, port, "--host", "127.0.0.2"), port):
        with interactive(our_client(port, "--host", "127.0.0.2", "--ca", pki.ca)) as idle:
            idle.wait_for(b"connected: TLSv1.3")
            for _ in range(3):
                result = subprocess.run(our_client(port, "--host", "127.0.0.2", "--ca", pki.ca),
                                        input=b"GET / HTTP/1.0\r\n\r\n", capture_output=True, timeout=30,
                                        check=False)
                assert result.returncode == 0, result.stderr
                assert result.stdout.startswith(b"HTTP/1.0 200 ok")
            idle.type(b"GET / HTTP/1.0\r\n\r\n")
            idle.wait_for(b"HTTP/1.0 200 ok")
            assert idle.wait(timeout=15) == 0
        elsewhere = subprocess.run(our_client(port, "--host", "127.0.0.1", "--insecure"), input=b"",
                                   capture_output=True, timeout=30, check=False)
    assert elsewhere.returncode == 2
    assert b"connect failed" in elsewhere.stderr
