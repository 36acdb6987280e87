"""TLS 1.3 key schedule against RFC 8448 §3, and the TLS 1.2 PRF's basic properties."""

from __future__ import annotations

import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from outcomes.category import Category
from tests.tls import rfc8448 as vectors
from tls.errors import ProtocolError
from tls.handshake_common import SERVER_CV_CONTEXT, certificate_verify_content
from tls.keyschedule import (
    KeySchedule13,
    Transcript,
    extended_master_secret,
    finished12,
    hkdf_expand,
    hkdf_expand_label,
    hkdf_extract,
    prf12,
    traffic_key_iv,
)
from tls.messages import parse_certificate13, parse_certificate_verify
from tls.signatures import HANDSHAKE_SCHEMES_13, verify


def test_hkdf_rfc5869_case_1() -> None:
    """RFC 5869 A.1: SHA-256, an output of 42 octets (two blocks)."""
    prk = hkdf_extract("sha256", bytes(range(13)), b"\x0b" * 22)
    assert prk.hex() == "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"
    okm = hkdf_expand("sha256", prk, bytes(range(0xF0, 0xFA)), 42)
    assert okm.hex() == "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"


@pytest.mark.parametrize("hash_name", ["sha256", "sha384"])
@pytest.mark.parametrize("length", [1, 12, 31, 32, 33, 48, 49, 64, 65, 97, 255])
def test_hkdf_expand_agrees_with_cryptography_across_block_boundaries(hash_name: str, length: int) -> None:
    """One block (every TLS 1.3 label) and several, each length cut from the same stream as the reference's."""
    prk, info = hashlib.sha512(b"prk").digest()[: hashlib.new(hash_name).digest_size], b"context info"
    algorithm = hashes.SHA256() if hash_name == "sha256" else hashes.SHA384()
    assert hkdf_expand(hash_name, prk, info, length) == HKDFExpand(algorithm, length, info).derive(prk)


def test_schedules_for_each_hash_start_from_their_own_constants() -> None:
    """The no-PSK secrets are computed once per hash: a SHA-384 schedule after a SHA-256 one (and back) gets
    its own, as RFC 8446 §7.1 derives them: HKDF-Extract(0, 0), then Derive-Secret(., "derived", "")."""
    for hash_name in ("sha256", "sha384", "sha256"):
        size = hashlib.new(hash_name).digest_size
        early = hkdf_extract(hash_name, bytes(size), bytes(size))
        derived = hkdf_expand_label(hash_name, early, b"derived", hashlib.new(hash_name).digest(), size)
        schedule = KeySchedule13(hash_name)
        assert (schedule.hash_length, schedule.early_secret) == (size, early)
        schedule.set_shared_secret(b"shared")
        assert schedule.handshake_secret == hkdf_extract(hash_name, derived, b"shared")
        derived_again = hkdf_expand_label(hash_name, schedule.handshake_secret, b"derived",
                                          hashlib.new(hash_name).digest(), size)
        assert schedule.master_secret == hkdf_extract(hash_name, derived_again, bytes(size))


@pytest.mark.parametrize("length", [-1, 255 * 32 + 1])
def test_hkdf_expand_refuses_a_length_outside_its_range(length: int) -> None:
    with pytest.raises(ValueError, match="outside"):
        hkdf_expand("sha256", bytes(32), b"info", length)


@pytest.mark.parametrize("hash_name", ["sha256", "sha384"])
@pytest.mark.parametrize("key_length", [16, 32, 33, 49])
def test_traffic_key_iv_is_two_expand_labels_whatever_the_key_length(hash_name: str, key_length: int) -> None:
    """Key and IV are derived under one keyed HMAC state; a key longer than one hash block (no suite's)
    still gets the whole HKDF-Expand-Label output, not one block cut short."""
    secret = hashlib.sha512(b"traffic").digest()[: hashlib.new(hash_name).digest_size]
    assert traffic_key_iv(hash_name, secret, key_length) == (
        hkdf_expand_label(hash_name, secret, b"key", b"", key_length),
        hkdf_expand_label(hash_name, secret, b"iv", b"", 12))


@pytest.mark.parametrize("hash_name", ["sha256", "sha384"])
@pytest.mark.parametrize("length", [0, 12, 32, 48, 49, 100])
@pytest.mark.parametrize("context", [b"", b"\x5a" * 48])
def test_hkdf_expand_label_one_block_and_longer_agree_with_cryptography(hash_name: str, length: int,
                                                                        context: bytes) -> None:
    """The one-block path (one MAC, every TLS 1.3 derivation) and the block loop (longer outputs) both give
    HKDF-Expand over RFC 8446 §7.1's HkdfLabel, built here by hand."""
    secret = hashlib.sha512(b"secret").digest()[: hashlib.new(hash_name).digest_size]
    label = b"tls13 some label"
    info = length.to_bytes(2, "big") + bytes((len(label),)) + label + bytes((len(context),)) + context
    algorithm = hashes.SHA256() if hash_name == "sha256" else hashes.SHA384()
    expected = HKDFExpand(algorithm, length, info).derive(secret) if length else b""
    assert hkdf_expand_label(hash_name, secret, b"some label", context, length) == expected


def test_hkdf_expand_gives_up_to_255_blocks() -> None:
    assert len(hkdf_expand("sha256", bytes(32), b"info", 255 * 32)) == 255 * 32


def _schedule() -> tuple[KeySchedule13, Transcript]:
    ks = KeySchedule13("sha256")
    transcript = Transcript()
    transcript.add(vectors.CLIENT_HELLO)
    transcript.set_hash("sha256")
    transcript.add(vectors.SERVER_HELLO)
    ks.set_shared_secret(vectors.SHARED_SECRET)
    return ks, transcript


def test_early_handshake_and_master_secrets() -> None:
    ks, transcript = _schedule()
    assert ks.early_secret == vectors.EARLY_SECRET
    assert ks.handshake_secret == vectors.HANDSHAKE_SECRET
    assert ks.master_secret == vectors.MASTER_SECRET
    assert transcript.digest() == vectors.HELLO_HASH


def test_handshake_traffic_secrets_keys_and_ivs() -> None:
    ks, transcript = _schedule()
    client, server = ks.handshake_traffic(transcript.digest())
    assert client == vectors.CLIENT_HS_TRAFFIC
    assert server == vectors.SERVER_HS_TRAFFIC
    assert traffic_key_iv("sha256", server, 16) == (vectors.SERVER_HS_KEY, vectors.SERVER_HS_IV)
    assert traffic_key_iv("sha256", client, 16) == (vectors.CLIENT_HS_KEY, vectors.CLIENT_HS_IV)


def test_finished_and_application_secrets() -> None:
    ks, transcript = _schedule()
    client, server = ks.handshake_traffic(transcript.digest())
    for message in (vectors.ENCRYPTED_EXTENSIONS, vectors.CERTIFICATE, vectors.CERTIFICATE_VERIFY):
        transcript.add(message)
    assert ks.finished(server, transcript.digest()) == vectors.SERVER_FINISHED[4:]
    transcript.add(vectors.SERVER_FINISHED)
    assert transcript.digest() == vectors.TRANSCRIPT_THROUGH_SERVER_FINISHED
    assert ks.finished(client, transcript.digest()).hex() == (
        "a8ec436d677634ae525ac1fcebe11a039ec17694fac6e98527b642f2edd5ce61")
    client_app, server_app = ks.application_traffic(transcript.digest())
    assert (client_app, server_app) == (vectors.CLIENT_AP_TRAFFIC, vectors.SERVER_AP_TRAFFIC)
    assert traffic_key_iv("sha256", server_app, 16) == (bytes.fromhex("9f02283b6c9c07efc26bb9f2ac92e356"),
                                                         bytes.fromhex("cf782b88dd83549aadf1e984"))
    assert traffic_key_iv("sha256", client_app, 16) == (bytes.fromhex("17422dda596ed5d9acd890e3c63f5051"),
                                                         bytes.fromhex("5b78923dee08579033e523d9"))


def test_rfc8448_server_certificate_verify_checks_out() -> None:
    """The RFC's RSA-PSS CertificateVerify verifies with our verifier over our transcript, and a flipped
    transcript bit makes it fail."""
    transcript = Transcript()
    for message in (vectors.CLIENT_HELLO, vectors.SERVER_HELLO):
        transcript.add(message)
    transcript.set_hash("sha256")
    transcript.add(vectors.ENCRYPTED_EXTENSIONS)
    transcript.add(vectors.CERTIFICATE)
    chain = parse_certificate13(memoryview(vectors.CERTIFICATE)[4:], 8).chain
    key = x509.load_der_x509_certificate(chain[0]).public_key()
    cv = parse_certificate_verify(memoryview(vectors.CERTIFICATE_VERIFY)[4:])
    content = certificate_verify_content(SERVER_CV_CONTEXT, transcript.digest())
    verify(key, cv.scheme, cv.signature, content, HANDSHAKE_SCHEMES_13)
    tampered = bytearray(content)
    tampered[-1] ^= 1
    with pytest.raises(ProtocolError) as info:
        verify(key, cv.scheme, cv.signature, bytes(tampered), HANDSHAKE_SCHEMES_13)
    assert info.value.category is Category.BAD_SIGNATURE


def test_key_update_secret_chain() -> None:
    ks, _ = _schedule()
    first = ks.next_traffic_secret(vectors.SERVER_AP_TRAFFIC)
    assert first == hkdf_expand_label("sha256", vectors.SERVER_AP_TRAFFIC, b"traffic upd", b"", 32)
    assert ks.next_traffic_secret(first) != first


def test_hello_retry_transcript_uses_message_hash() -> None:
    transcript = Transcript()
    transcript.add(vectors.CLIENT_HELLO)
    transcript.restart_after_hrr("sha256")
    inner = hashlib.sha256(vectors.CLIENT_HELLO).digest()
    expected = hashlib.sha256(b"\xfe\x00\x00\x20" + inner).digest()
    assert transcript.digest() == expected


def test_prf12_lengths_and_labels() -> None:
    out = prf12("sha256", b"secret", b"label", b"seed", 100)
    assert len(out) == 100
    assert prf12("sha256", b"secret", b"label", b"seed", 32) == out[:32]
    assert prf12("sha256", b"secret", b"other", b"seed", 32) != out[:32]
    master = extended_master_secret("sha256", b"\x01" * 32, b"\x02" * 32)
    assert len(master) == 48
    assert finished12("sha256", master, b"client finished", b"h" * 32) != finished12(
        "sha256", master, b"server finished", b"h" * 32)


def test_prf12_known_answer() -> None:
    """TLS 1.2 PRF-SHA256 known answer (the widely published test vector by the IETF TLS WG mailing list)."""
    secret = bytes.fromhex("9bbe436ba940f017b17652849a71db35")
    seed = bytes.fromhex("a0ba9f936cda311827a6f796ffd5198c")
    out = prf12("sha256", secret, b"test label", seed, 100)
    assert out[:16].hex() == "e3f229ba727be17b8d122620557cd453"
