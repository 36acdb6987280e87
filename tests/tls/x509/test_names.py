"""Distinguished-name decoding: every string type, and the refusals not reached via whole certificates."""

from __future__ import annotations

import pytest

from outcomes.category import Category
from tests.tls.x509.factory import tlv
from tls.x509 import X509Error
from tls.x509.names import decode_string, parse_name

CN = tlv(0x06, b"\x55\x04\x03")
EMAIL = tlv(0x06, bytes.fromhex("2a864886f70d010901"))


def name(*rdns: bytes) -> bytes:
    return tlv(0x30, b"".join(tlv(0x31, rdn) for rdn in rdns))


def atv(oid: bytes, value: bytes) -> bytes:
    return tlv(0x30, oid + value)


@pytest.mark.parametrize(
    ("tag", "raw", "text"),
    [
        (0x0C, "Grüße".encode(), "Grüße"),
        (0x13, b"Example Org (1)", "Example Org (1)"),
        (0x16, b"me@example.com", "me@example.com"),
        (0x12, b"0123 45", "0123 45"),
        (0x14, b"caf\xe9", "café"),
        (0x1E, "Ω".encode("utf-16-be"), "Ω"),
        (0x1C, "Ω".encode("utf-32-be"), "Ω"),
    ],
)
def test_string_types(tag: int, raw: bytes, text: str) -> None:
    assert decode_string(tag, raw) == text


@pytest.mark.parametrize(
    ("tag", "raw"),
    [(0x12, b"12a"), (0x16, b"\xff"), (0x1C, b"\x00\x00\x00"), (0x1C, b"\x00\x11\x00\x00"), (0x0C, b"a\x00b"),
     (0x04, b"octets")],
)
def test_bad_strings(tag: int, raw: bytes) -> None:
    with pytest.raises(X509Error) as info:
        decode_string(tag, raw)
    assert info.value.category is Category.DECODE_ERROR


def test_multi_valued_rdn_and_values() -> None:
    parsed = parse_name(name(atv(CN, tlv(0x0C, b"a")) + atv(CN, tlv(0x0C, b"b")), atv(CN, tlv(0x0C, b"c"))))
    assert parsed.values("2.5.4.3") == ("a", "b", "c")
    assert len(parsed.rdns) == 2
    assert "CN='c'" in str(parsed)


@pytest.mark.parametrize(
    ("der", "reason"),
    [
        (name(atv(EMAIL, tlv(0x0C, b"me@example.com"))), "emailAddress"),
        (tlv(0x30, tlv(0x30, b"")), "not a SET"),
        (name(tlv(0x31, b"")), "not a SEQUENCE"),
        (name(tlv(0x30, CN)), "malformed"),
        (name(*[atv(CN, tlv(0x0C, b"a")) * 3] * 30), "too many attributes"),
    ],
)
def test_name_refusals(der: bytes, reason: str) -> None:
    with pytest.raises(X509Error, match=reason):
        parse_name(der)


def test_long_names_are_truncated_in_logs() -> None:
    parsed = parse_name(name(atv(CN, tlv(0x0C, b"x" * 300))))
    assert len(str(parsed)) <= 120
