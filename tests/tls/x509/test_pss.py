"""RSASSA-PSS-params: the one strict decoder shared by signature algorithms and id-RSASSA-PSS keys."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outcomes.category import Category
from tests.tls.x509.factory import tlv
from tls.x509 import X509Error
from tls.x509.pss import PssParams, parse_pss_params

SHA1 = bytes.fromhex("2b0e03021a")
SHA256 = bytes.fromhex("608648016503040201")
SHA384 = bytes.fromhex("608648016503040202")
SHA512 = bytes.fromhex("608648016503040203")
MGF1 = bytes.fromhex("2a864886f70d010108")
NULL = b"\x05\x00"


def hash_id(oid: bytes, params: bytes = b"") -> bytes:
    return tlv(0x30, tlv(0x06, oid) + params)


def params(hash_alg: bytes | None = None, mgf_hash: bytes | None = None, salt: int | None = None,
           trailer: int | None = None, *, mgf: bytes = MGF1, extra: bytes = b"") -> bytes:
    """RSASSA-PSS-params with only the given fields (absent ones take their DEFAULT)."""
    body = b""
    if hash_alg is not None:
        body += tlv(0xA0, hash_alg)
    if mgf_hash is not None:
        body += tlv(0xA1, tlv(0x30, tlv(0x06, mgf) + mgf_hash))
    if salt is not None:
        body += tlv(0xA2, tlv(0x02, salt.to_bytes((salt.bit_length() + 8) // 8, "big", signed=True)))
    if trailer is not None:
        body += tlv(0xA3, tlv(0x02, bytes([trailer])))
    return tlv(0x30, body + extra)


@pytest.mark.parametrize(
    ("der", "expected"),
    [
        (params(hash_id(SHA256), hash_id(SHA256), 32), PssParams("sha256", 32)),
        (params(hash_id(SHA384, NULL), hash_id(SHA384, NULL), 48), PssParams("sha384", 48)),
        (params(hash_id(SHA512), hash_id(SHA512), 64), PssParams("sha512", 64)),
        (params(hash_id(SHA256), hash_id(SHA256), 200), PssParams("sha256", 200)),  # callers judge the salt
        (params(hash_id(SHA256), hash_id(SHA256)), PssParams("sha256", 20)),  # saltLength DEFAULT 20
    ],
    ids=["sha256", "sha384-null-params", "sha512", "long-salt", "default-salt"],
)
def test_profile_parameters(der: bytes, expected: PssParams) -> None:
    assert parse_pss_params(der) == expected


@pytest.mark.parametrize(
    ("der", "problem"),
    [
        (params(), "default (SHA-1)"),
        (params(hash_id(SHA256)), "default (SHA-1)"),  # MGF1 defaults to SHA-1
        (params(hash_id(SHA1), hash_id(SHA1), 32), "not allowed"),
        (params(hash_id(SHA256), hash_id(SHA384), 32), "MGF1 hash differs"),
        (params(hash_id(SHA256), hash_id(SHA256), 32, mgf=SHA256), "not MGF1"),
        (params(hash_id(SHA256), hash_id(SHA256), 32, 2), "trailer"),
    ],
    ids=["all-defaults", "mgf-default", "sha1", "mgf1-hash-mismatch", "not-mgf1", "trailer-2"],
)
def test_parameters_outside_the_profile_decode_with_a_problem(der: bytes, problem: str) -> None:
    decoded = parse_pss_params(der)
    assert decoded.hash_name is None
    assert problem in (decoded.problem or "")


@pytest.mark.parametrize(
    "der",
    [
        params(hash_id(SHA256), hash_id(SHA256), 32) + b"\x00",  # trailing bytes after the SEQUENCE
        params(hash_id(SHA256), hash_id(SHA256), 32, extra=tlv(0x02, b"\x01")),  # trailing field inside
        params(hash_id(SHA256), hash_id(SHA256), 32, 1),  # explicit DEFAULT trailerField
        params(hash_id(SHA256), hash_id(SHA256), 20),  # explicit DEFAULT saltLength
        params(hash_id(SHA256), hash_id(SHA256), -56),  # negative saltLength
        params(hash_id(SHA256, tlv(0x02, b"\x01")), hash_id(SHA256), 32),  # hash parameters not NULL
        params(hash_id(SHA256), hash_id(SHA256, tlv(0x04, b"")), 32),  # MGF1 hash parameters not NULL
        params(hash_id(SHA256), tlv(0x02, b"\x01"), 32),  # MGF1 parameter is not an AlgorithmIdentifier
        NULL,
        tlv(0x30, tlv(0xA2, tlv(0x02, b"\x00\x20"))),  # non-minimal INTEGER
    ],
    ids=["trailing-bytes", "trailing-field", "explicit-trailer", "explicit-salt", "negative-salt", "hash-params",
         "mgf1-params", "mgf1-not-algorithm", "null", "non-minimal-integer"],
)
def test_malformed_parameters_are_decode_errors(der: bytes) -> None:
    with pytest.raises(X509Error) as info:
        parse_pss_params(der)
    assert info.value.category is Category.DECODE_ERROR


GOOD = params(hash_id(SHA256), hash_id(SHA256), 32)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_garbled_parameters_only_ever_raise_x509_error(data: st.DataObject) -> None:
    """Flip, cut or extend a valid encoding anywhere: a PssParams or an X509Error, never anything else."""
    raw = bytearray(GOOD)
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    garbled = bytes(raw[:cut]) + data.draw(st.binary(max_size=8))
    try:
        decoded = parse_pss_params(garbled)
    except X509Error:
        return
    assert (decoded.hash_name is None) == (decoded.problem is not None)
    assert decoded.salt_length >= 0
