"""Interop with `openssl s_server` / `s_client` when the certificates carry id-RSASSA-PSS keys: both roles, both
versions, client certificates included. `-sigalgs rsa_pss_pss_*` leaves OpenSSL no other scheme, so a
finished handshake shows that each side made and accepted rsa_pss_pss signatures."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.tls.procs import free_port, openssl_server, our_client, our_server_with, running, s_client
from tests.tls.psspki import HAVE_OPENSSL, PemPair, PssPki

pytestmark = pytest.mark.skipif(not HAVE_OPENSSL, reason="openssl command not installed")


@dataclass(frozen=True)
class Files:
    ca: str
    server_chain: str
    server_key: str
    server384_chain: str
    server384_key: str
    client_cert: str
    client_key: str


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    directory = Path(tmp_path_factory.mktemp("pss-interop"))
    pki = PssPki(directory)
    server = pki.leaf("server", server=True, hash_name="sha256")
    server384 = pki.leaf("server384", server=True, hash_name="sha384")
    client = pki.leaf("client", server=False)

    def chain(pair: PemPair) -> str:
        path = pair.cert_path.with_suffix(".chain.pem")
        path.write_bytes(pair.cert_path.read_bytes() + pki.ca.cert_path.read_bytes())
        return str(path)

    return Files(str(pki.ca.cert_path), chain(server), str(server.key_path), chain(server384),
                 str(server384.key_path), str(client.cert_path), str(client.key_path))


@pytest.mark.parametrize(("flag", "version"), [("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")])
def test_s_client_with_pss_keys_against_our_server(files: Files, flag: str, version: str) -> None:
    """Our server signs rsa_pss_pss_sha256 and accepts s_client's rsa_pss_pss client certificate."""
    port = free_port()
    with running(our_server_with(files.server_chain, files.server_key, port, "--client-ca", files.ca), port):
        result = s_client(port, flag, "-sigalgs", "rsa_pss_pss_sha256", "-CAfile", files.ca, "-servername",
                          "localhost", "-verify_return_error", "-cert", files.client_cert, "-key", files.client_key)
    out = result.stdout.decode(errors="replace")
    assert "Verify return code: 0 (ok)" in out
    assert "Peer signature type: RSA-PSS" in out
    assert "Peer signing digest: SHA256" in out
    assert f"Protocol: {version}" in out
    assert "HTTP/1.0 200 ok" in out


def test_s_client_gets_the_hash_our_restricted_key_allows(files: Files) -> None:
    port = free_port()
    with running(our_server_with(files.server384_chain, files.server384_key, port), port):
        result = s_client(port, "-sigalgs", "rsa_pss_pss_sha256:rsa_pss_pss_sha384:rsa_pss_pss_sha512",
                          "-CAfile", files.ca, "-verify_return_error")
    out = result.stdout.decode(errors="replace")
    assert "Peer signing digest: SHA384" in out
    assert "HTTP/1.0 200 ok" in out


@pytest.mark.parametrize("flag", ["-tls1_3", "-tls1_2"])
def test_our_pss_server_refuses_a_client_without_rsa_pss_pss(files: Files, flag: str) -> None:
    port = free_port()
    with running(our_server_with(files.server_chain, files.server_key, port), port) as server:
        result = s_client(port, flag, "-sigalgs", "rsa_pss_rsae_sha256:ECDSA+SHA256", "-CAfile", files.ca)
        server.terminate()
        _, err = server.communicate(timeout=5)
    assert "HTTP/1.0 200" not in result.stdout.decode(errors="replace")
    assert b"category no-shared-signature-algorithm" in err, err


@pytest.mark.parametrize(("flag", "version"), [("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")])
def test_our_client_with_pss_keys_against_s_server(files: Files, flag: str, version: str) -> None:
    """s_server signs rsa_pss_pss_sha256, demands a client certificate and gets our rsa_pss_pss signature."""
    port = free_port()
    with running(openssl_server(files.server_chain, files.server_key, port, "-www", flag, "-sigalgs",
                                "rsa_pss_pss_sha256", "-Verify", "1", "-CAfile", files.ca, "-verify_return_error"),
                 port):
        result = subprocess.run(our_client(port, "--ca", files.ca, "--servername", "localhost", "--cert",
                                           files.client_cert, "--key", files.client_key),
                                input=b"GET / HTTP/1.0\r\n\r\n", capture_output=True, timeout=20, check=False)
    assert result.returncode == 0, result.stderr
    assert f"connected: {version}".encode() in result.stderr
    assert b"validated=True" in result.stderr
    page = result.stdout.decode(errors="replace")
    assert "HTTP/1.0 200 ok" in page
    assert "Shared Signature Algorithms: rsa_pss_pss_sha256" in page
    assert "Peer signature type: RSA-PSS" in page  # our CertificateVerify, as s_server saw it
