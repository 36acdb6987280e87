from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.errors import MalformedError
from netstack.icmp import (
    DEST_UNREACHABLE,
    ECHO_REQUEST,
    IcmpMessage,
    next_hop_mtu,
    parse_icmp,
    serialize_icmp,
)
from netstack.reasons import Drop
from tests.netstack.builders import icmp, textbook_sum


def test_parse_echo_request() -> None:
    message = parse_icmp(icmp(8, 0, b"\x12\x34\x00\x01", b"ping"))
    assert (message.type, message.code, message.rest, bytes(message.body)) == (8, 0, b"\x12\x34\x00\x01", b"ping")


def test_serialize_matches_hand_built_bytes() -> None:
    assert serialize_icmp(ECHO_REQUEST, 0, b"\x12\x34\x00\x01", b"ping") == icmp(8, 0, b"\x12\x34\x00\x01", b"ping")


def test_truncated_refused() -> None:
    with pytest.raises(MalformedError) as info:
        parse_icmp(icmp(8, 0, b"\x00\x01\x00\x01", b"")[:7])
    assert info.value.reason is Drop.ICMP_TRUNCATED


def test_bad_checksum_and_trailing_byte_refused() -> None:
    message = icmp(8, 0, b"\x00\x01\x00\x01", b"ping")
    for bad in (message[:-1] + b"X", message + b"\x01"):
        with pytest.raises(MalformedError) as info:
            parse_icmp(bad)
        assert info.value.reason is Drop.ICMP_BAD_CHECKSUM


def test_next_hop_mtu_only_for_fragmentation_needed() -> None:
    assert next_hop_mtu(IcmpMessage(DEST_UNREACHABLE, 4, b"\x00\x00\x05\x78", memoryview(b""))) == 1400
    assert next_hop_mtu(IcmpMessage(DEST_UNREACHABLE, 4, b"\x00\x00\x00\x00", memoryview(b""))) is None
    assert next_hop_mtu(IcmpMessage(DEST_UNREACHABLE, 3, b"\x00\x00\x05\x78", memoryview(b""))) is None


@settings(max_examples=300)
@given(st.integers(0, 255), st.integers(0, 255), st.binary(min_size=4, max_size=4), st.binary(max_size=64))
def test_round_trip(type_: int, code: int, rest: bytes, body: bytes) -> None:
    message = parse_icmp(serialize_icmp(type_, code, rest, body))
    assert (message.type, message.code, message.rest, bytes(message.body)) == (type_, code, rest, body)


def with_valid_checksum(data: bytes) -> bytes:
    """The same bytes with a correct checksum field, computed by the RFC 1071 reference sum."""
    zeroed = data[:2] + b"\x00\x00" + data[4:]
    return zeroed[:2] + struct.pack("!H", ~textbook_sum(zeroed) & 0xFFFF) + zeroed[4:]


@settings(max_examples=500)
@given(st.binary(max_size=80), st.booleans())
def test_random_bytes_parse_exactly_or_raise_typed_error(data: bytes, fix_checksum: bool) -> None:
    if fix_checksum and len(data) >= 4:
        data = with_valid_checksum(data)  # so that the parser's later steps see random input too
    if len(data) < 8 or textbook_sum(data) != 0xFFFF:
        with pytest.raises(MalformedError) as info:
            parse_icmp(data)
        assert info.value.reason is (Drop.ICMP_TRUNCATED if len(data) < 8 else Drop.ICMP_BAD_CHECKSUM)
        return
    message = parse_icmp(data)
    assert (message.type, message.code, message.rest, bytes(message.body)) == (data[0], data[1], data[4:8], data[8:])
    assert serialize_icmp(message.type, message.code, message.rest, message.body) == with_valid_checksum(data)
