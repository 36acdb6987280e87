"""Signature AlgorithmIdentifiers (strict parameters, PSS profile) and verification outcomes."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from outcomes.category import Category
from tests.tls.x509.factory import shared_key, tlv
from tls.x509 import X509Error
from tls.x509 import signature as signature_module
from tls.x509.der import check_der
from tls.x509.keys import RsaPssPublicKey
from tls.x509.signature import parse_signature_algorithm, verify_signature

NULL = b"\x05\x00"
OIDS = {
    "sha256rsa": bytes.fromhex("2a864886f70d01010b"),
    "sha1rsa": bytes.fromhex("2a864886f70d010105"),
    "md5rsa": bytes.fromhex("2a864886f70d010104"),
    "ecdsa256": bytes.fromhex("2a8648ce3d040302"),
    "ecdsa384": bytes.fromhex("2a8648ce3d040303"),
    "ecdsa-sha1": bytes.fromhex("2a8648ce3d0401"),
    "ed25519": bytes.fromhex("2b6570"),
    "pss": bytes.fromhex("2a864886f70d01010a"),
    "dsa-sha256": bytes.fromhex("608648016503040302"),
}
SHA256 = tlv(0x30, tlv(0x06, bytes.fromhex("608648016503040201")))
SHA384 = tlv(0x30, tlv(0x06, bytes.fromhex("608648016503040202")))
SHA1 = tlv(0x30, tlv(0x06, bytes.fromhex("2b0e03021a")))
MGF1 = bytes.fromhex("2a864886f70d010108")


def algorithm(name: str, params: bytes = b"") -> bytes:
    return tlv(0x30, tlv(0x06, OIDS[name]) + params)


def pss(hash_alg: bytes = SHA256, mgf_hash: bytes = SHA256, salt: int = 32, trailer: int | None = None) -> bytes:
    params = tlv(0xA0, hash_alg) + tlv(0xA1, tlv(0x30, tlv(0x06, MGF1) + mgf_hash))
    params += tlv(0xA2, tlv(0x02, bytes([salt])))
    if trailer is not None:
        params += tlv(0xA3, tlv(0x02, bytes([trailer])))
    return algorithm("pss", tlv(0x30, params))


@pytest.mark.parametrize(
    ("der", "scheme", "hash_name"),
    [
        (algorithm("sha256rsa", NULL), "rsa-pkcs1", "sha256"),
        (algorithm("ecdsa256"), "ecdsa", "sha256"),
        (algorithm("ecdsa384"), "ecdsa", "sha384"),
        (algorithm("ed25519"), "ed25519", None),
        (pss(), "rsa-pss", "sha256"),
        (pss(SHA384, SHA384, 48), "rsa-pss", "sha384"),
    ],
)
def test_accepted_algorithms(der: bytes, scheme: str, hash_name: str | None) -> None:
    parsed = parse_signature_algorithm(der)
    assert (parsed.scheme, parsed.hash_name, parsed.problem) == (scheme, hash_name, None)


@pytest.mark.parametrize(
    ("der", "problem"),
    [
        (algorithm("sha1rsa", NULL), "SHA-1"),
        (algorithm("md5rsa", NULL), "MD5"),
        (algorithm("ecdsa-sha1"), "SHA-1"),
        (algorithm("sha256rsa"), "must be NULL"),
        (algorithm("ecdsa256", NULL), "must not have parameters"),
        (algorithm("ed25519", NULL), "must not have parameters"),
        (algorithm("dsa-sha256"), "not supported"),
        (algorithm("pss"), "without parameters"),
        (algorithm("pss", tlv(0x30, b"")), "default (SHA-1)"),
        (pss(SHA1, SHA1, 32), "not allowed"),
        (pss(SHA256, SHA384), "MGF1 hash differs"),
        (pss(salt=24), "salt length"),
        (pss(trailer=2), "trailer"),
    ],
)
def test_refused_algorithms(der: bytes, problem: str) -> None:
    parsed = parse_signature_algorithm(der)
    assert parsed.problem is not None
    assert problem in parsed.problem
    with pytest.raises(X509Error) as info:
        verify_signature(shared_key("p256", 96).public_key(), parsed, b"sig", b"message")
    assert info.value.category is Category.WEAK_ALGORITHM


@pytest.mark.parametrize(
    "der",
    [
        pss(SHA1, SHA1, 20),  # saltLength 20 is the DEFAULT: DER omits it (X.690 11.5)
        pss(trailer=1),  # trailerField 1 is the DEFAULT
        algorithm("pss", tlv(0x30, tlv(0xA0, SHA256) + tlv(0xA2, tlv(0x02, b"\x20")) + b"\x05\x00")),
        pss(tlv(0x30, tlv(0x06, bytes.fromhex("608648016503040201")) + tlv(0x02, b"\x01"))),  # hash params
        pss(mgf_hash=tlv(0x30, tlv(0x06, bytes.fromhex("608648016503040201")) + tlv(0x04, b""))),
    ],
    ids=["explicit-default-salt", "explicit-default-trailer", "trailing-field", "hash-params", "mgf1-hash-params"],
)
def test_pss_parameters_not_in_strict_der_are_decode_errors(der: bytes) -> None:
    with pytest.raises(X509Error) as info:
        parse_signature_algorithm(der)
    assert info.value.category is Category.DECODE_ERROR


def test_pss_hash_parameters_may_be_null_or_absent() -> None:
    """RFC 4055 2.1: implementations must accept both forms (OpenSSL writes NULL)."""
    with_null = tlv(0x30, tlv(0x06, bytes.fromhex("608648016503040201")) + NULL)
    parsed = parse_signature_algorithm(pss(with_null, with_null))
    assert (parsed.scheme, parsed.hash_name, parsed.salt_length, parsed.problem) == ("rsa-pss", "sha256", 32, None)


def test_malformed_algorithm_identifier() -> None:
    with pytest.raises(X509Error):
        parse_signature_algorithm(tlv(0x30, tlv(0x02, b"\x01")))
    with pytest.raises(X509Error):
        parse_signature_algorithm(algorithm("pss", tlv(0x30, tlv(0xA0, tlv(0x02, b"\x01")))))


def test_verification_outcomes() -> None:
    ec_key = shared_key("p256", 97)
    assert isinstance(ec_key, ec.EllipticCurvePrivateKey)
    message = b"to be signed"
    good = ec_key.sign(message, ec.ECDSA(hashes.SHA256()))
    ecdsa = parse_signature_algorithm(algorithm("ecdsa256"))
    verify_signature(ec_key.public_key(), ecdsa, good, message)
    for signature, text in ((good, message + b"!"), (b"\x30\x00", message)):
        with pytest.raises(X509Error) as info:
            verify_signature(ec_key.public_key(), ecdsa, signature, text)
        assert info.value.category is Category.CHAIN_SIGNATURE_INVALID
    rsa_key = shared_key("rsa2048", 98)
    assert isinstance(rsa_key, rsa.RSAPrivateKey)
    with pytest.raises(X509Error, match="does not match the issuer key"):
        verify_signature(rsa_key.public_key(), ecdsa, good, message)
    pss_signature = rsa_key.sign(message, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    verify_signature(rsa_key.public_key(), parse_signature_algorithm(pss()), pss_signature, message)
    with pytest.raises(X509Error):
        verify_signature(rsa_key.public_key(), parse_signature_algorithm(algorithm("sha256rsa", NULL)),
                         pss_signature, message)


def _pss_sign(key: rsa.RSAPrivateKey, message: bytes, hash_alg: hashes.HashAlgorithm, salt: int) -> bytes:
    return key.sign(message, padding.PSS(padding.MGF1(hash_alg), salt), hash_alg)


def test_rsa_pss_issuer_key_verifies_only_pss_within_its_restrictions() -> None:
    """An id-RSASSA-PSS issuer key: PSS with its hash verifies; another hash, a PKCS#1 v1.5 signature, or
    (for a key demanding a longer salt) a hash-length salt is refused even though the RSA maths holds."""
    rsa_key = shared_key("rsa2048", 98)
    assert isinstance(rsa_key, rsa.RSAPrivateKey)
    message = b"tbsCertificate"
    unrestricted = RsaPssPublicKey(rsa_key.public_key())
    sha256_only = RsaPssPublicKey(rsa_key.public_key(), "sha256", 32)
    long_salt = RsaPssPublicKey(rsa_key.public_key(), "sha256", 64)
    pss256 = parse_signature_algorithm(pss())
    pss384 = parse_signature_algorithm(pss(SHA384, SHA384, 48))
    sig256 = _pss_sign(rsa_key, message, hashes.SHA256(), 32)
    sig384 = _pss_sign(rsa_key, message, hashes.SHA384(), 48)
    verify_signature(unrestricted, pss256, sig256, message)
    verify_signature(unrestricted, pss384, sig384, message)
    verify_signature(sha256_only, pss256, sig256, message)
    refusals = [
        (sha256_only, pss384, sig384, "restrictions"),
        (long_salt, pss256, sig256, "restrictions"),
        (unrestricted, parse_signature_algorithm(algorithm("sha256rsa", NULL)),
         rsa_key.sign(message, padding.PKCS1v15(), hashes.SHA256()), "does not match"),
        (unrestricted, pss256, sig384, "does not verify"),
    ]
    for key, alg, signature, reason in refusals:
        with pytest.raises(X509Error) as info:
            verify_signature(key, alg, signature, message)
        assert info.value.category is Category.CHAIN_SIGNATURE_INVALID
        assert reason in info.value.reason


def test_the_table_of_common_algorithms_holds_what_the_parse_gives() -> None:
    """parse_signature_algorithm answers the fixed-parameter algorithms from a table of their exact DER; each
    entry is canonical DER and is what the parse itself decodes from those bytes."""
    assert len(signature_module._KNOWN) == 7  # ECDSA and PKCS#1 v1.5 with three hashes each, Ed25519
    for der, known in signature_module._KNOWN.items():
        check_der(der)
        assert known == signature_module._parse_signature_algorithm(der)
        assert known.problem is None
        assert parse_signature_algorithm(der) is known
    assert parse_signature_algorithm(algorithm("sha256rsa", NULL)).hash_name == "sha256"
    assert parse_signature_algorithm(algorithm("sha256rsa")).problem is not None  # not in the table: parsed
