"""Interop with the `openssl` command over loopback sockets: `s_client` against `python -m adapters.tls_cli server`, and
`python -m adapters.tls_cli client` against `s_server`, both versions, client certificates, HelloRetryRequest,
multi-megabyte transfers, and refusals reported with alert and category."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.tls.pki import ca, make_ca, make_leaf, server_leaf
from tests.tls.procs import (
    Pki,
    free_port,
    interactive,
    openssl_server,
    our_client,
    our_server,
    running,
    s_client,
    s_client_typing,
    s_server_typing,
    wait_listening,
)

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl command not installed")


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


@pytest.mark.parametrize(("flag", "version"), [("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")])
def test_s_client_against_our_server(pki: Pki, flag: str, version: str) -> None:
    port = free_port()
    with running(our_server(pki, port), port):
        result = s_client(port, flag, "-CAfile", pki.ca, "-servername", "localhost", "-verify_return_error")
    out = result.stdout.decode(errors="replace")
    assert "Verify return code: 0 (ok)" in out
    assert "HTTP/1.0 200 ok" in out
    assert f"Protocol: {version}" in out


@pytest.mark.parametrize("flag", ["-tls1_3", "-tls1_2"])
def test_s_client_with_client_certificate(pki: Pki, flag: str) -> None:
    port = free_port()
    with running(our_server(pki, port, "--client-ca", pki.ca), port):
        result = s_client(port, flag, "-CAfile", pki.ca, "-cert", pki.client_cert, "-key", pki.client_key)
    out = result.stdout.decode(errors="replace")
    assert "HTTP/1.0 200 ok" in out
    assert "Client certificates: 1" in out or "Client certificates: 2" in out


def test_s_client_without_required_certificate(pki: Pki) -> None:
    port = free_port()
    with running(our_server(pki, port, "--client-ca", pki.ca), port) as server:
        result = s_client(port, "-CAfile", pki.ca)
        server.terminate()
        _, err = server.communicate(timeout=5)
    assert "HTTP/1.0 200" not in result.stdout.decode(errors="replace")
    assert b"certificate required" in result.stderr + result.stdout
    assert b"category no-certificate" in err


def test_hello_retry_request_with_s_client(pki: Pki) -> None:
    port = free_port()
    with running(our_server(pki, port, "--groups", "secp384r1"), port):
        result = s_client(port, "-CAfile", pki.ca, "-msg")
    out = result.stdout.decode(errors="replace")
    assert out.count("ClientHello") == 2
    assert "Group: secp384r1" in out
    assert "HTTP/1.0 200 ok" in out


@pytest.mark.parametrize(("flag", "version"), [("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")])
def test_our_client_against_s_server_www(pki: Pki, flag: str, version: str) -> None:
    port = free_port()
    with running(openssl_server(pki.server_chain, pki.server_key, port, "-www", flag), port):
        result = subprocess.run(our_client(port, "--ca", pki.ca, "--servername", "localhost"),
                                input=b"GET / HTTP/1.0\r\n\r\n", capture_output=True, timeout=20, check=False)
    assert result.returncode == 0, result.stderr
    assert f"connected: {version}".encode() in result.stderr
    assert b"validated=True" in result.stderr
    assert b"HTTP/1.0 200 ok" in result.stdout


@pytest.mark.parametrize("flag", ["-tls1_3", "-tls1_2"])
def test_our_client_certificate_accepted_by_s_server(pki: Pki, flag: str) -> None:
    port = free_port()
    with running(openssl_server(pki.server_chain, pki.server_key, port, "-www", flag, "-Verify", "1",
                                "-CAfile", pki.ca, "-verify_return_error"), port):
        result = subprocess.run(our_client(port, "--ca", pki.ca, "--cert", pki.client_cert, "--key", pki.client_key),
                                input=b"GET / HTTP/1.0\r\n\r\n", capture_output=True, timeout=20, check=False)
    assert result.returncode == 0, result.stderr
    assert b"HTTP/1.0 200 ok" in result.stdout
    assert b"Client certificate" in result.stdout  # s_server -www lists the peer certificate


def test_hello_retry_request_from_s_server(pki: Pki) -> None:
    port = free_port()
    with running(openssl_server(pki.server_chain, pki.server_key, port, "-www", "-groups", "P-256"), port):
        result = subprocess.run(our_client(port, "--ca", pki.ca), input=b"GET / HTTP/1.0\r\n\r\n",
                                capture_output=True, timeout=20, check=False)
    assert result.returncode == 0, result.stderr
    assert b"TLSv1.3 TLS_AES" in result.stderr
    assert b"secp256r1" in result.stderr


def test_our_client_refuses_an_untrusted_server(pki: Pki) -> None:
    stranger = make_ca("Stranger CA")
    cert, key = pki.write_issued("stranger", make_leaf(stranger))
    port = free_port()
    with running(openssl_server(cert, key, port, "-www"), port):
        result = subprocess.run(our_client(port, "--ca", pki.ca), input=b"", capture_output=True, timeout=20,
                                check=False)
    assert result.returncode == 1
    assert b"unknown_ca" in result.stderr
    assert b"category untrusted-chain" in result.stderr


def test_our_client_reports_a_peer_alert(pki: Pki) -> None:
    port = free_port()
    with running(openssl_server(pki.server_chain, pki.server_key, port, "-www", "-Verify", "1",
                                "-CAfile", pki.ca, "-verify_return_error", "-tls1_2"), port):
        result = subprocess.run(our_client(port, "--ca", pki.ca), input=b"", capture_output=True, timeout=20,
                                check=False)
    assert result.returncode == 1
    assert b"peer alert handshake_failure (40), category peer-alert" in result.stderr


@pytest.mark.parametrize("flag", ["-tls1_3", "-tls1_2"])
def test_multi_megabyte_to_s_server(pki: Pki, tmp_path: Path, flag: str) -> None:
    payload = b"0123456789abcdef" * (4 * 65536)  # 4 MiB
    received = tmp_path / "received"
    port = free_port()
    # s_server prints what it receives; its stdin stays open (a pipe we hold) so it does not hang up first.
    with received.open("wb") as sink:
        proc = subprocess.Popen(openssl_server(pki.server_chain, pki.server_key, port, "-naccept", "1", "-quiet",
                                               flag),
                                stdin=subprocess.PIPE, stdout=sink, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, proc)
        result = subprocess.run(our_client(port, "--ca", pki.ca, "--timeout", "1"), input=payload,
                                capture_output=True, timeout=30, check=False)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        assert proc.stdin is not None
        proc.stdin.close()
    assert result.returncode == 0, result.stderr
    assert received.read_bytes() == payload


@pytest.mark.parametrize(("flag", "version"), [("-tls1_3", b"TLSv1.3"), ("-tls1_2", b"TLSv1.2")])
def test_multi_megabyte_from_s_server(pki: Pki, tmp_path: Path, flag: str, version: bytes) -> None:
    """`s_server -WWW` serves files from its working directory: a 4 MiB file comes back over our client."""
    payload = b"fedcba9876543210" * (4 * 65536)
    (tmp_path / "payload.bin").write_bytes(payload)
    port = free_port()
    proc = subprocess.Popen(openssl_server(pki.server_chain, pki.server_key, port, "-WWW", flag), cwd=tmp_path,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, proc)
        result = subprocess.run(our_client(port, "--ca", pki.ca, "--timeout", "20"),
                                input=b"GET /payload.bin HTTP/1.0\r\n\r\n", capture_output=True, timeout=40,
                                check=False)
    finally:
        proc.kill()
        proc.wait()
    assert result.returncode == 0, result.stderr
    assert b"connected: " + version in result.stderr
    assert result.stdout.startswith(b"HTTP/1.0 200 ok")
    assert result.stdout.endswith(b"\r\n\r\n" + payload)


def test_s_client_key_update_against_our_server(pki: Pki) -> None:
    """s_client's `K` command sends KeyUpdate(update_requested); ours must answer with its own and keep
    serving under the new keys."""
    port = free_port()
    with running(our_server(pki, port), port):
        out = s_client_typing(port, "-CAfile", pki.ca, lines=(b"K\n", b"GET / HTTP/1.0\r\n\r\n"))
    text = out.decode(errors="replace")
    assert ">>> TLS 1.3, Handshake [length 0005], KeyUpdate" in text
    assert "<<< TLS 1.3, Handshake [length 0005], KeyUpdate" in text
    assert text.index("KeyUpdate") < text.index("HTTP/1.0 200 ok")


@pytest.mark.parametrize(("command", "answered"), [(b"K\n", True), (b"k\n", False)])
def test_key_update_from_s_server_to_our_client(pki: Pki, command: bytes, answered: bool) -> None:
    """s_server's `K` sends KeyUpdate(update_requested), `k` KeyUpdate(update_not_requested). Our client reads
    on under the server's new key, answers `K` with a KeyUpdate of its own (and `k` with none), and what it
    sends afterwards reaches s_server under the key it expects."""
    port = free_port()
    with s_server_typing(pki.server_chain, pki.server_key, port, "-tls1_3") as server, \
            interactive(our_client(port, "--ca", pki.ca)) as client:
        client.wait_for(b"connected: TLSv1.3")
        client.type(b"before the update\n")
        mark = server.wait_for(b"before the update")
        server.type(command)
        mark = server.wait_for(b">>> TLS 1.3, Handshake [length 0005], KeyUpdate", start=mark)
        server.type(b"from s_server under its new key\n")
        client.wait_for(b"from s_server under its new key")
        client.type(b"from our client afterwards\n")
        end = server.wait_for(b"from our client afterwards", start=mark)
        replies = server.output[mark:end].count(b"<<< TLS 1.3, Handshake [length 0005], KeyUpdate")
        assert replies == (1 if answered else 0), server.output[mark:end]
        client.close_stdin()
        assert client.wait(timeout=15) == 0, client.output


@pytest.mark.parametrize(("args", "expect"), [
    (("-ciphersuites", "TLS_AES_128_GCM_SHA256"), "Cipher: TLS_AES_128_GCM_SHA256"),
    (("-ciphersuites", "TLS_AES_256_GCM_SHA384"), "Cipher: TLS_AES_256_GCM_SHA384"),
    (("-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"), "Cipher: TLS_CHACHA20_POLY1305_SHA256"),
    (("-groups", "P-256"), "Group: secp256r1"),
    (("-groups", "P-384"), "Group: secp384r1"),
    (("-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"), "Cipher: TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
    (("-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"), "Cipher: TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
    (("-tls1_2", "-groups", "P-384:P-256"), "Group: secp256r1"),  # our preference among the client's
])
def test_s_client_suites_and_groups(pki: Pki, args: tuple[str, ...], expect: str) -> None:
    port = free_port()
    with running(our_server(pki, port), port):
        result = s_client(port, "-CAfile", pki.ca, *args)
    out = result.stdout.decode(errors="replace")
    assert "HTTP/1.0 200 ok" in out
    assert expect in out


@pytest.mark.parametrize(("args", "category"), [
    (("-tls1_1",), "old-tls-version"),
    (("-tls1_2", "-cipher", "AES128-SHA"), "no-shared-cipher"),
    (("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"), "no-shared-cipher"),
    (("-tls1_2", "-groups", "P-384"), "no-shared-group"),  # our P-256 certificate is outside the client's groups
])
def test_s_client_refused(pki: Pki, args: tuple[str, ...], category: str) -> None:
    port = free_port()
    with running(our_server(pki, port), port) as server:
        result = s_client(port, "-CAfile", pki.ca, "-cipher", "ALL:@SECLEVEL=0", *args)
        server.terminate()
        _, err = server.communicate(timeout=5)
    assert "HTTP/1.0 200" not in result.stdout.decode(errors="replace")
    assert f"category {category}".encode() in err, err


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
@pytest.mark.parametrize(("flags", "version"), [((), "TLSv1.3"), (("--tlsv1.2", "--tls-max", "1.2"), "TLSv1.2")])
def test_curl_against_our_server(pki: Pki, flags: tuple[str, ...], version: str) -> None:
    port = free_port()
    with running(our_server(pki, port), port):
        result = subprocess.run(["curl", "-sS", "--cacert", pki.ca, *flags, f"https://localhost:{port}/"],
                                capture_output=True, timeout=20, check=False)
    assert result.returncode == 0, result.stderr
    assert f"Protocol: {version}".encode() in result.stdout


@pytest.mark.parametrize("version", ["TLSv1.3", "TLSv1.2"])
@pytest.mark.parametrize(("sigalgs", "signature"), [("RSA-PSS+SHA256:RSA+SHA256", "RSA"),
                                                    ("ECDSA+SHA256:RSA-PSS+SHA256", "ECDSA")])
def test_s_client_gets_the_certificate_it_can_verify(pki: Pki, tmp_path: Path, version: str, sigalgs: str,
                                                     signature: str) -> None:
    """Issue 15: our server given an ECDSA and an RSA credential serves an RSA-only s_client with RSA and
    prefers ECDSA when the client takes both (one ECDSA credential used to refuse the RSA-only client)."""
    rsa_chain, rsa_key = tmp_path / "rsa.pem", tmp_path / "rsa.key"
    rsa_chain.write_bytes(server_leaf("rsa").pem + ca().pem)
    rsa_key.write_bytes(server_leaf("rsa").key_pem)
    port = free_port()
    with running(our_server(pki, port, "--cert", str(rsa_chain), "--key", str(rsa_key)), port):
        flag = "-tls1_3" if version == "TLSv1.3" else "-tls1_2"
        result = s_client(port, flag, "-sigalgs", sigalgs, "-CAfile", pki.ca, "-verify_return_error")
    out = result.stdout.decode(errors="replace")
    assert "Verify return code: 0 (ok)" in out, out
    assert f"Protocol: {version}" in out
    assert f"Peer signature type: {signature}" in out, out


def test_s_client_renegotiation_is_refused(pki: Pki) -> None:
    """s_client's `R` command renegotiates a TLS 1.2 session: refused with a warning no_renegotiation (RFC 5246
    §7.2.2: always a warning; it used to be sent fatal), recorded as renegotiation-attempt."""
    port = free_port()
    with running(our_server(pki, port), port) as server:
        out = s_client_typing(port, "-tls1_2", "-CAfile", pki.ca, lines=(b"R\n",))
        server.terminate()
        _, err = server.communicate(timeout=5)
    assert b"warning no_renegotiation" in out, out
    assert b"fatal no_renegotiation" not in out
    assert b"refused with warning alert no_renegotiation (100), category renegotiation-attempt" in err, err
