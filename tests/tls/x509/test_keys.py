"""SubjectPublicKeyInfo decoding and the key policy (curves, RSA size and shape)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization

from outcomes.category import Category
from tests.tls.x509.factory import KeyType, shared_key, tlv
from tls.x509 import X509Error
from tls.x509.keys import KeyKind, PublicKeyInfo, RsaPssPublicKey, key_problem, load_public_key, parse_spki

EC_OID = bytes.fromhex("2a8648ce3d0201")
P256_OID = bytes.fromhex("2a8648ce3d030107")
P192_OID = bytes.fromhex("2a8648ce3d030101")
RSA_OID = bytes.fromhex("2a864886f70d010101")
ED25519_OID = bytes.fromhex("2b6570")
ED448_OID = bytes.fromhex("2b6571")
DSA_OID = bytes.fromhex("2a8648ce380401")


def spki(algorithm: bytes, key: bytes, params: bytes | None = None) -> bytes:
    alg = tlv(0x06, algorithm) + (params if params is not None else b"")
    return tlv(0x30, tlv(0x30, alg) + tlv(0x03, b"\x00" + key))


def real_spki(kind: KeyType) -> bytes:
    return shared_key(kind, 95).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize(
    ("kind", "key_kind", "bits"),
    [("p256", KeyKind.EC, 256), ("p384", KeyKind.EC, 384), ("p521", KeyKind.EC, 521),
     ("rsa2048", KeyKind.RSA, 2048), ("ed25519", KeyKind.ED25519, 256)],
)
def test_supported_keys(kind: KeyType, key_kind: KeyKind, bits: int) -> None:
    der = real_spki(kind)
    info = parse_spki(der)
    assert (info.kind, info.key_bits, info.problem) == (key_kind, bits, None)
    loaded = load_public_key(info)
    assert not isinstance(loaded, RsaPssPublicKey)
    assert loaded.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == der


POINT = b"\x04" + bytes(64)


@pytest.mark.parametrize(
    ("der", "problem"),
    [
        (spki(EC_OID, POINT, tlv(0x30, tlv(0x02, b"\x01"))), "explicit EC curve"),
        (spki(EC_OID, b"\x04" + bytes(48), tlv(0x06, P192_OID)), "not allowed"),
        (spki(DSA_OID, tlv(0x02, b"\x01")), "not allowed"),
        (spki(ED448_OID, bytes(57)), "not allowed"),
    ],
    ids=["explicit-curve", "p192", "dsa", "ed448"],
)
def test_unsupported_keys_parse_but_are_refused_when_used(der: bytes, problem: str) -> None:
    info = parse_spki(der)
    assert info.kind is KeyKind.UNSUPPORTED
    assert problem in (key_problem(info) or "")
    with pytest.raises(X509Error) as error:
        load_public_key(info)
    assert error.value.category is Category.WEAK_ALGORITHM


@pytest.mark.parametrize(
    "der",
    [
        spki(RSA_OID, tlv(0x30, tlv(0x02, b"\x01") + tlv(0x02, b"\x03"))),  # parameters missing
        spki(RSA_OID, tlv(0x30, tlv(0x02, b"\x81") + tlv(0x02, b"\x03")), b"\x05\x00"),  # negative modulus
        spki(RSA_OID, tlv(0x30, tlv(0x02, b"\x01")), b"\x05\x00"),  # exponent missing
        spki(EC_OID, b"\x02" + bytes(32), tlv(0x06, P256_OID)),  # compressed point
        spki(EC_OID, POINT),  # no curve
        spki(ED25519_OID, bytes(31)),
        spki(ED25519_OID, bytes(32), b"\x05\x00"),
        tlv(0x30, tlv(0x30, tlv(0x06, ED25519_OID)) + tlv(0x03, b"\x01" + bytes(32))),  # unused bits
        tlv(0x30, tlv(0x30, tlv(0x06, ED25519_OID))),
    ],
    ids=["rsa-no-null", "rsa-negative", "rsa-no-exponent", "ec-compressed", "ec-no-curve", "ed25519-short",
         "ed25519-params", "unused-bits", "no-key"],
)
def test_malformed_keys(der: bytes) -> None:
    with pytest.raises(X509Error) as error:
        parse_spki(der)
    assert error.value.category is Category.DECODE_ERROR


def test_point_not_on_the_curve() -> None:
    info = parse_spki(spki(EC_OID, b"\x04" + b"\x01" * 64, tlv(0x06, P256_OID)))
    with pytest.raises(X509Error) as error:
        load_public_key(info)
    assert error.value.category is Category.DECODE_ERROR


def _rsa(bits: int, exponent: int = 65537) -> PublicKeyInfo:
    modulus = (1 << (bits - 1)) | 1
    return PublicKeyInfo(b"", KeyKind.RSA, bits, rsa_modulus=modulus, rsa_exponent=exponent)


@pytest.mark.parametrize(
    ("info", "problem"),
    [
        (_rsa(1024), "minimum 2048"),
        (_rsa(2047), "minimum 2048"),
        (_rsa(2052), "whole number of octets"),
        (_rsa(8200), "maximum 8192"),
        (_rsa(2048, 1), "exponent"),
        (_rsa(2048, 65536), "exponent"),
        (_rsa(2048, (1 << 33) + 1), "exponent"),
    ],
)
def test_rsa_policy(info: PublicKeyInfo, problem: str) -> None:
    assert problem in (key_problem(info) or "")


def test_rsa_policy_accepts_ordinary_keys() -> None:
    assert key_problem(_rsa(2048)) is None
    assert key_problem(_rsa(4096, 3)) is None


PSS_OID = bytes.fromhex("2a864886f70d01010a")


def _pss_params(hash_oid: bytes, mgf_hash_oid: bytes | None = None, salt: int | None = 32,
                trailer: int | None = None) -> bytes:
    hash_id = tlv(0x30, tlv(0x06, hash_oid))
    mgf_id = tlv(0x30, tlv(0x06, mgf_hash_oid or hash_oid))
    body = tlv(0xA0, hash_id) + tlv(0xA1, tlv(0x30, tlv(0x06, bytes.fromhex("2a864886f70d010108")) + mgf_id))
    if salt is not None:
        body += tlv(0xA2, tlv(0x02, bytes([salt])))
    if trailer is not None:
        body += tlv(0xA3, tlv(0x02, bytes([trailer])))
    return tlv(0x30, body)


SHA256_OID = bytes.fromhex("608648016503040201")
SHA384_OID = bytes.fromhex("608648016503040202")
SHA1_OID = bytes.fromhex("2b0e03021a")


def _rsa_public_key(kind: KeyType = "rsa2048") -> bytes:
    """The RSAPublicKey (PKCS#1) that both rsaEncryption and id-RSASSA-PSS SPKIs carry."""
    return shared_key(kind, 96).public_key().public_bytes(serialization.Encoding.DER,
                                                          serialization.PublicFormat.PKCS1)


def test_rsa_pss_key_without_parameters_is_unrestricted() -> None:
    rsa_key = _rsa_public_key()
    info = parse_spki(spki(PSS_OID, rsa_key))
    assert (info.kind, info.key_bits, info.pss_hash, info.problem) == (KeyKind.RSA_PSS, 2048, None, None)
    loaded = load_public_key(info)
    assert isinstance(loaded, RsaPssPublicKey)
    assert (loaded.hash_name, loaded.min_salt_length) == (None, 0)
    assert loaded.key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1) == rsa_key
    assert loaded.permits("sha256", 32)
    assert loaded.permits("sha512", 64)


@pytest.mark.parametrize(
    ("params", "hash_name", "min_salt"),
    [(_pss_params(SHA256_OID), "sha256", 32), (_pss_params(SHA384_OID, salt=48), "sha384", 48),
     (_pss_params(SHA256_OID, salt=64), "sha256", 64)],
    ids=["sha256", "sha384", "sha256-long-salt"],
)
def test_rsa_pss_key_with_parameters_is_restricted(params: bytes, hash_name: str, min_salt: int) -> None:
    info = parse_spki(spki(PSS_OID, _rsa_public_key(), params))
    assert (info.kind, info.pss_hash, info.pss_min_salt) == (KeyKind.RSA_PSS, hash_name, min_salt)
    loaded = load_public_key(info)
    assert isinstance(loaded, RsaPssPublicKey)
    assert loaded.permits(hash_name, 64)
    assert not loaded.permits("sha512" if hash_name != "sha512" else "sha256", 64)
    assert loaded.permits(hash_name, min_salt)
    assert not loaded.permits(hash_name, min_salt - 1)


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        (_pss_params(SHA256_OID, salt=None), "salt length shorter"),  # DEFAULT 20 < 32
        (_pss_params(SHA256_OID, salt=24), "salt length shorter"),
        (_pss_params(SHA384_OID, salt=32), "salt length shorter"),
        (_pss_params(SHA256_OID, SHA384_OID), "MGF1 hash differs"),
        (_pss_params(SHA1_OID, salt=32), "not allowed"),
        (_pss_params(SHA256_OID, trailer=2), "trailer"),
        (tlv(0x30, b""), "default (SHA-1)"),
    ],
    ids=["default-salt", "short-salt", "salt-shorter-than-sha384", "mgf1-mismatch", "sha1", "trailer", "defaults"],
)
def test_rsa_pss_key_parameters_outside_the_profile_are_refused_when_used(params: bytes, problem: str) -> None:
    info = parse_spki(spki(PSS_OID, _rsa_public_key(), params))
    assert info.kind is KeyKind.UNSUPPORTED
    assert problem in (key_problem(info) or "")
    with pytest.raises(X509Error) as error:
        load_public_key(info)
    assert error.value.category is Category.WEAK_ALGORITHM


def test_small_rsa_pss_key_is_refused() -> None:
    info = parse_spki(spki(PSS_OID, _rsa_public_key("rsa1024")))
    assert info.kind is KeyKind.RSA_PSS
    assert "minimum 2048" in (key_problem(info) or "")
    with pytest.raises(X509Error) as error:
        load_public_key(info)
    assert error.value.category is Category.WEAK_ALGORITHM


@pytest.mark.parametrize(
    "der",
    [
        spki(PSS_OID, _rsa_public_key(), b"\x05\x00"),  # NULL is not RSASSA-PSS-params
        spki(PSS_OID, _rsa_public_key(), _pss_params(SHA256_OID) + tlv(0x02, b"\x01")),  # a third element
        spki(PSS_OID, _rsa_public_key(), tlv(0x30, _pss_params(SHA256_OID)[2:] + tlv(0x02, b"\x01"))),
        spki(PSS_OID, _rsa_public_key(), _pss_params(SHA256_OID, trailer=1)),  # explicit DEFAULT
        spki(PSS_OID, tlv(0x30, tlv(0x02, b"\x81") + tlv(0x02, b"\x03"))),  # negative modulus
    ],
    ids=["null-params", "trailing-element", "trailing-field-in-params", "explicit-default", "negative-modulus"],
)
def test_malformed_rsa_pss_keys(der: bytes) -> None:
    with pytest.raises(X509Error) as error:
        parse_spki(der)
    assert error.value.category is Category.DECODE_ERROR
