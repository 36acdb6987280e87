"""`python -m tls.client` against `python -m tls.server` over loopback: success in both versions, and
refusals reported with the alert and the category and a non-zero exit status."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.tls.pki import make_ca, make_leaf
from tests.tls.procs import Pki, free_port, our_client, our_server, running


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
