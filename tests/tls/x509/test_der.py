"""The strict DER integrity pass: every rule refused on a minimal example, and accepted when correct."""

from __future__ import annotations

import pytest

from outcomes.category import Category
from tests.tls.x509.factory import tlv
from tls.x509 import oids
from tls.x509.der import (
    check_der,
    check_set_order,
    children,
    decode_oid,
    encode_oid,
    only_child,
    read_header,
    read_natural,
    read_oid,
    read_single,
)
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
    "end-of-contents tag": seq(tlv(0x00, b"")),
    "end-of-contents tag with content": seq(tlv(0x00, b"\x01")),
    "constructed end-of-contents tag": seq(tlv(0x20, b"")),
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


# --- the schema-directed reader: each header rule, as `check_der` applies it -----------------------------

HEADERS = {
    "indefinite length": b"\x30\x80\x05\x00\x00\x00",
    "non-minimal long form": b"\x04\x81\x05hello",
    "long length with leading zero": b"\x04\x82\x00\x80" + b"x" * 0x80,
    "multi-byte tag": b"\x1f\x81\x01\x00",
    "length of 4 octets": b"\x04\x84\x00\x00\x00\x01x",
    "truncated header": b"\x05",
    "truncated long length": b"\x04\x82\x01",
    "value past the container": b"\x04\x05abc",
}


@pytest.mark.parametrize("data", HEADERS.values(), ids=HEADERS.keys())
def test_children_refuses_every_non_der_header(data: bytes) -> None:
    """`children` inlines the header rules of `read_header`: a value after a good one is read the same way."""
    good = tlv(0x05, b"")
    for where in (data, good + data):
        with pytest.raises(X509Error) as info:
            children(where, 0, len(where))
        assert info.value.category is Category.DECODE_ERROR


def test_children_reads_each_value_with_its_offsets() -> None:
    data = tlv(0x02, b"\x01") + tlv(0x04, b"x" * 200) + tlv(0x30, b"")
    assert children(data, 0, len(data)) == [(0x02, 0, 2, 3), (0x04, 3, 6, 206), (0x30, 206, 208, 208)]
    assert children(data, 3, 3) == []


@pytest.mark.parametrize("data", HEADERS.values(), ids=HEADERS.keys())
def test_read_single_refuses_every_non_der_header(data: bytes) -> None:
    """`read_single` inlines the header rules of `read_header` too."""
    with pytest.raises(X509Error) as info:
        read_single(data)
    assert info.value.category is Category.DECODE_ERROR


@pytest.mark.parametrize("size", [0, 0x7F, 0x80, 0xFF, 0x100, 0x1234, 0xFFFF, 0x10000, 0x12345])
def test_every_length_form_is_read_exactly(size: int) -> None:
    """Short form, one, two (read directly) and three length octets: the same offsets from each reader."""
    value = tlv(0x04, b"x" * size)
    header = len(value) - size
    assert read_single(value) == (0x04, header, len(value))
    assert children(value + value, 0, 2 * len(value)) == [
        (0x04, 0, header, len(value)), (0x04, len(value), len(value) + header, 2 * len(value))]
    assert read_header(value, 0, len(value)) == (0x04, header, len(value))
    for cut in (header - 1, len(value) - 1) if size else ():
        with pytest.raises(X509Error):
            read_single(value[:cut])


def test_set_order_is_checked_on_whole_encodings() -> None:
    ordered = tlv(0x02, b"\x01") + tlv(0x02, b"\x02") + tlv(0x02, b"\x01\x00")  # the length octet counts
    check_set_order(ordered, children(ordered, 0, len(ordered)))
    reversed_pair = tlv(0x02, b"\x02") + tlv(0x02, b"\x01")
    with pytest.raises(X509Error, match="SET OF elements not in DER order"):
        check_set_order(reversed_pair, children(reversed_pair, 0, len(reversed_pair)))


def test_only_child_wants_exactly_one_value_of_its_tag() -> None:
    assert only_child(tlv(0x02, b"\x01"), 0, 3, 0x02, "x") == (0x02, 0, 2, 3)
    for data in (b"", tlv(0x02, b"\x01") * 2, tlv(0x04, b"")):
        with pytest.raises(X509Error, match="must wrap exactly one value"):
            only_child(data, 0, len(data), 0x02, "x")


@pytest.mark.parametrize(("content", "value"), [(b"\x00", 0), (b"\x7f", 127), (b"\x00\x80", 128),
                                              (b"\x00" + b"\xff" * 8, 2**64 - 1)])
def test_read_natural(content: bytes, value: int) -> None:
    assert read_natural(content, 0, len(content), "x") == value


@pytest.mark.parametrize(("content", "reason"), [(b"\xff", "negative"), (b"\x00\x01", "minimally"), (b"", "empty"),
                                               (b"\x01" * 9, "longer than 8 octets")])
def test_read_natural_refusals(content: bytes, reason: str) -> None:
    with pytest.raises(X509Error, match=reason):
        read_natural(content, 0, len(content), "x")


def test_the_oid_table_holds_canonical_encodings_of_every_named_oid() -> None:
    named = [value for name, value in vars(oids).items() if name.isupper() and isinstance(value, str)]
    for dotted in named:
        content = encode_oid(dotted)
        check_der(tlv(0x06, content))
        assert decode_oid(content, 0, len(content)) == dotted == read_oid(content, 0, len(content))


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "empty"), (b"\x2a\x86", "truncated"), (b"\x2a\x80\x01", "minimally"),
     (b"\x55\x1d\x80\x13", "minimally")],
)
def test_read_oid_refuses_what_is_not_in_the_table_and_not_canonical(content: bytes, reason: str) -> None:
    with pytest.raises(X509Error, match=reason):
        read_oid(content, 0, len(content))


def _arc(value: int) -> bytes:
    """One OID arc in base 128, high bit set on all but the last octet."""
    groups = []
    while True:
        groups.append(value & 0x7F)
        value >>= 7
        if not value:
            break
    return bytes(g | 0x80 for g in reversed(groups[1:])) + bytes([groups[0]])


def test_a_uuid_arc_is_read_and_a_longer_one_refused_before_it_is_decoded() -> None:
    """A 128-bit arc (2.25.UUID, 19 octets) is the longest anyone issues; a 2 KB one used to reach int-to-str's
    limit as a ValueError (found by review) and costs time quadratic in its length to decode."""
    uuid = (1 << 128) - 1
    content = b"\x69" + _arc(uuid)  # 2.25
    assert read_oid(content, 0, len(content)) == f"2.25.{uuid}"
    for data in (b"\x69" + _arc(1 << 140), b"\x2a" + b"\xff" * 2100 + b"\x01"):
        with pytest.raises(X509Error, match="arc longer than 20 octets"):
            read_oid(data, 0, len(data))
        with pytest.raises(X509Error, match="arc longer than 20 octets"):
            check_der(tlv(0x06, data))


def test_read_oid_decodes_oids_outside_the_table() -> None:
    content = bytes.fromhex("2b0601040182371402")
    assert read_oid(content, 0, len(content)) == "1.3.6.1.4.1.311.20.2"
