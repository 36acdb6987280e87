"""The strict DER integrity pass: every rule refused on a minimal example, and accepted when correct."""

from __future__ import annotations

import pytest

from outcomes.category import Category
from tests.tls.x509.factory import tlv
from tls.x509.der import check_der, decode_oid, read_single
from tls.x509.errors import X509Error
from tls.x509.limits import MAX_DER_DEPTH, MAX_DER_NODES


def seq(*parts: bytes) -> bytes:
    return tlv(0x30, b"".join(parts))


GOOD = [
    seq(tlv(0x02, b"\x00\x80"), tlv(0x02, b"\xff\x7f"), tlv(0x02, b"\x00")),
    seq(tlv(0x01, b"\xff"), tlv(0x01, b"\x00"), tlv(0x05, b"")),
    seq(tlv(0x03, b"\x00"), tlv(0x03, b"\x07\x80"), tlv(0x03, b"\x00\xff")),
    seq(tlv(0x06, bytes.fromhex("2a864886f70d010101"))),
    tlv(0x31, tlv(0x02, b"\x01") + tlv(0x02, b"\x02")),
    seq(tlv(0x04, b"x" * 200)),
    tlv(0xA0, tlv(0x02, b"\x02")),
]


@pytest.mark.parametrize("data", GOOD)
def test_accepts_der(data: bytes) -> None:
    check_der(data)


BAD = {
    "indefinite length": b"\x30\x80\x05\x00\x00\x00",
    "non-minimal short length in long form": b"\x04\x81\x05hello",
    "long length with leading zero": b"\x04\x82\x00\x80" + b"x" * 0x80,
    "multi-byte tag": b"\x1f\x81\x01\x00",
    "BOOLEAN 0x01": seq(tlv(0x01, b"\x01")),
    "BOOLEAN two octets": seq(tlv(0x01, b"\xff\xff")),
    "INTEGER leading zero": seq(tlv(0x02, b"\x00\x01")),
    "INTEGER leading ff": seq(tlv(0x02, b"\xff\x80")),
    "empty INTEGER": seq(tlv(0x02, b"")),
    "BIT STRING unused > 7": seq(tlv(0x03, b"\x08\x00")),
    "BIT STRING unused without bits": seq(tlv(0x03, b"\x01")),
    "BIT STRING padding not zero": seq(tlv(0x03, b"\x01\x01")),
    "empty BIT STRING": seq(tlv(0x03, b"")),
    "NULL with content": seq(tlv(0x05, b"\x00")),
    "OID arc with 0x80": seq(tlv(0x06, b"\x2a\x80\x01")),
    "truncated OID": seq(tlv(0x06, b"\x2a\x86")),
    "empty OID": seq(tlv(0x06, b"")),
    "constructed OCTET STRING": seq(tlv(0x24, tlv(0x04, b"ab"))),
    "primitive SEQUENCE": tlv(0x10, b""),
    "unsorted SET OF": tlv(0x31, tlv(0x02, b"\x02") + tlv(0x02, b"\x01")),
    "trailing bytes": seq(tlv(0x05, b"")) + b"\x00",
    "truncated value": b"\x30\x05\x05\x00",
    "child runs past parent": b"\x30\x02\x04\x05abcde",
    "truncated header": b"\x30",
    "length of 4 octets": b"\x04\x84\x00\x00\x00\x01x",
}


@pytest.mark.parametrize("data", BAD.values(), ids=BAD.keys())
def test_refuses_non_der(data: bytes) -> None:
    with pytest.raises(X509Error) as info:
        check_der(data)
    assert info.value.category is Category.DECODE_ERROR


def test_depth_is_bounded() -> None:
    data = tlv(0x05, b"")
    for _ in range(MAX_DER_DEPTH - 1):
        data = seq(data)
    check_der(data)
    with pytest.raises(X509Error, match="too deep"):
        check_der(seq(data))


def test_node_count_is_bounded() -> None:
    with pytest.raises(X509Error, match="too many DER values"):
        check_der(seq(tlv(0x05, b"") * MAX_DER_NODES))


def test_read_single_checks_tag() -> None:
    with pytest.raises(X509Error, match="expected DER tag"):
        read_single(tlv(0x31, b""), 0x30)


@pytest.mark.parametrize(
    ("content", "dotted"),
    [("2a864886f70d010101", "1.2.840.113549.1.1.1"), ("550403", "2.5.4.3"), ("8837", "2.999")],
)
def test_decode_oid(content: str, dotted: str) -> None:
    raw = bytes.fromhex(content)
    assert decode_oid(raw, 0, len(raw)) == dotted
