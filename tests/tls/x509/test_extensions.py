"""Extension decoders called directly: values and the bounds that whole certificates rarely reach."""

from __future__ import annotations

import pytest

from outcomes.category import Category
from tests.tls.x509.factory import tlv
from tls.x509 import X509Error
from tls.x509 import extensions as ext
from tls.x509.limits import MAX_EKU_PURPOSES, MAX_NAME_CONSTRAINT_SUBTREES, MAX_POLICIES

SERVER_AUTH = tlv(0x06, bytes.fromhex("2b06010505070301"))
CN_NAME = tlv(0x30, tlv(0x31, tlv(0x30, tlv(0x06, b"\x55\x04\x03") + tlv(0x0C, b"x"))))


def seq(*parts: bytes) -> bytes:
    return tlv(0x30, b"".join(parts))


def test_key_usage_bits() -> None:
    assert ext.key_usage(tlv(0x03, b"\x05\xa0")) == frozenset({"digitalSignature", "keyEncipherment"})
    assert ext.key_usage(tlv(0x03, b"\x07\x80\x80")) == frozenset({"digitalSignature", "decipherOnly"})


def test_every_key_usage_is_read_bit_by_bit() -> None:
    """Every DER KeyUsage there is (nine bits: 511 non-empty sets, each in its one minimal encoding) decodes to
    the names of exactly its bits, as a walk over the bits reads them."""
    for bits in range(1, 1 << 9):  # bit 0 (digitalSignature) is the integer's most significant of nine
        count = 10 - (bits & -bits).bit_length()  # bits up to the last one set: DER drops trailing zeros
        octets = (count + 7) // 8
        unused = 8 * octets - count
        content = ((bits >> (9 - count)) << unused).to_bytes(octets, "big")
        expected = {name for index, name in enumerate(ext.KEY_USAGE_BITS) if bits & (1 << (8 - index))}
        assert ext.key_usage(tlv(0x03, bytes((unused,)) + content)) == expected, bin(bits)


def test_general_names_forms() -> None:
    value = seq(tlv(0x82, b"a.example"), tlv(0xA4, CN_NAME), tlv(0x86, b"https://x.example/"),
                tlv(0xA0, tlv(0x06, b"\x2b\x06\x01") + tlv(0xA0, tlv(0x0C, b"v"))))
    names = ext.subject_alt_name(value)
    assert names.dns == ("a.example",)
    assert names.directory_names[0].values("2.5.4.3") == ("x",)
    assert names.other_forms == frozenset({"uniformResourceIdentifier", "otherName"})
    assert names.count == 2


def test_name_constraint_directory_and_other_forms() -> None:
    value = seq(tlv(0xA1, seq(tlv(0xA4, CN_NAME)) + seq(tlv(0x86, b"x.example"))))
    constraints = ext.name_constraints(value)
    assert constraints.permitted is None
    assert constraints.excluded is not None
    assert constraints.excluded.directory_names[0].values("2.5.4.3") == ("x",)
    assert constraints.excluded.other_forms == frozenset({"uniformResourceIdentifier"})


@pytest.mark.parametrize(
    ("decode", "value", "reason"),
    [
        (ext.key_usage, tlv(0x03, b"\x06\x80\x40"), "undefined bits"),
        (ext.extended_key_usage, seq(*[SERVER_AUTH] * (MAX_EKU_PURPOSES + 1)), "too many"),
        (ext.name_constraints, seq(tlv(0xA0, seq(tlv(0x82, b"a.example")) * (MAX_NAME_CONSTRAINT_SUBTREES + 1))),
         "too many"),
        (ext.name_constraints, seq(tlv(0xA0, seq(tlv(0x82, b"a.example")) * 100), tlv(0xA1, seq(tlv(0x82, b"b.ex"))
                                                                                      * 100)), "too many"),
        (ext.name_constraints, seq(tlv(0xA0, seq(tlv(0x81, b".bad_domain.example")))), "valid domain"),
        (ext.authority_key_identifier, seq(tlv(0x80, b"")), "empty authority key"),
        (ext.certificate_policies, seq(), "certificatePolicies"),
        (ext.certificate_policies,
         seq(*[seq(tlv(0x06, bytes([0x2B, 6, 1, 4, 1, i]))) for i in range(MAX_POLICIES + 1)]), "too many"),
        (ext.subject_key_identifier, tlv(0x04, b"\x01") + b"\x00", "trailing"),
    ],
    ids=["ku-bits", "eku-count", "nc-count", "nc-total", "email-domain", "aki-empty", "cp-empty", "cp-count",
         "trailing"],
)
def test_refusals(decode: object, value: bytes, reason: str) -> None:
    assert callable(decode)
    with pytest.raises(X509Error) as info:
        decode(value)
    assert info.value.category is Category.DECODE_ERROR
    assert reason in info.value.reason
