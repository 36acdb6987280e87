from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.errors import MalformedError
from netstack.reasons import Drop
from netstack.udp import parse_udp, serialize_udp
from tests.netstack.builders import PEER, US, textbook_sum, udp
from tests.netstack.test_ipv6 import GROUP6, PEER6, US6


def reason_of(data: bytes) -> Drop:
    with pytest.raises(MalformedError) as info:
        parse_udp(data, PEER, US)
    return info.value.reason


def test_parse_whole_datagram() -> None:
    datagram = parse_udp(udp(PEER, US, 5000, 53, b"query"), PEER, US)
    assert (datagram.src_port, datagram.dst_port, bytes(datagram.payload)) == (5000, 53, b"query")


def test_matches_scapy_checksum() -> None:
    from scapy.layers.inet import IP, UDP
    from scapy.packet import Raw

    packet = bytes(IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5000, dport=53) / Raw(b"query"))
    assert serialize_udp(PEER, US, 5000, 53, b"query") == packet[20:]


def test_zero_checksum_means_none() -> None:
    assert bytes(parse_udp(udp(PEER, US, 1, 2, b"x", zero_checksum=True), PEER, US).payload) == b"x"


def test_bad_checksum_refused() -> None:
    data = bytearray(udp(PEER, US, 1, 2, b"abc"))
    data[-1] ^= 1
    assert reason_of(bytes(data)) is Drop.UDP_BAD_CHECKSUM
    # the checksum covers the pseudo-header: a datagram moved to another address fails
    with pytest.raises(MalformedError):
        parse_udp(udp(PEER, US, 1, 2, b"abc"), PEER, bytes([10, 0, 0, 9]))


def test_length_field_must_match() -> None:
    assert reason_of(udp(PEER, US, 1, 2, b"abc") + b"!") is Drop.UDP_BAD_LENGTH
    assert reason_of(udp(PEER, US, 1, 2, b"abc")[:-1]) is Drop.UDP_BAD_LENGTH
    assert reason_of(udp(PEER, US, 1, 2, b"")[:7]) is Drop.UDP_TRUNCATED


def test_port_zero_refused() -> None:
    assert reason_of(udp(PEER, US, 1, 0, b"abc")) is Drop.UDP_BAD_PORT


def test_computed_zero_checksum_is_sent_as_all_ones() -> None:
    # find a payload whose checksum computes to zero: the wire value must then be 0xFFFF (RFC 768)
    for n in range(70000):
        payload = n.to_bytes(3, "big")
        data = serialize_udp(PEER, US, 1, 2, payload)
        if data[6:8] == b"\xff\xff":
            assert parse_udp(data, PEER, US).payload == payload
            return
    pytest.fail("no payload with a zero checksum found")


@settings(max_examples=300)
@given(st.integers(0, 0xFFFF), st.integers(1, 0xFFFF), st.binary(max_size=100))
def test_round_trip(sport: int, dport: int, payload: bytes) -> None:
    datagram = parse_udp(serialize_udp(PEER, US, sport, dport, payload), PEER, US)
    assert (datagram.src_port, datagram.dst_port, bytes(datagram.payload)) == (sport, dport, payload)


def pseudo(data: bytes) -> bytes:
    """The RFC 768 pseudo-header for a datagram from PEER to US."""
    return PEER + US + struct.pack("!BBH", 0, 17, len(data))


@settings(max_examples=500)
@given(st.binary(max_size=40), st.sampled_from(["raw", "length", "length+checksum"]))
def test_random_bytes_parse_exactly_or_raise_typed_error(data: bytes, fix: str) -> None:
    if fix != "raw" and len(data) >= 8:  # repair fields so the later checks see random input too
        data = data[:4] + struct.pack("!H", len(data)) + data[6:]
        if fix == "length+checksum":
            data = data[:6] + b"\x00\x00" + data[8:]
            data = data[:6] + struct.pack("!H", ~textbook_sum(pseudo(data) + data) & 0xFFFF or 0xFFFF) + data[8:]
    checksum_ok = data[6:8] == b"\x00\x00" or textbook_sum(pseudo(data) + data) == 0xFFFF
    expected = (Drop.UDP_TRUNCATED if len(data) < 8 else
                Drop.UDP_BAD_LENGTH if int.from_bytes(data[4:6], "big") != len(data) else
                Drop.UDP_BAD_CHECKSUM if not checksum_ok else
                Drop.UDP_BAD_PORT if data[2:4] == b"\x00\x00" else
                None)
    if expected is not None:
        with pytest.raises(MalformedError) as info:
            parse_udp(data, PEER, US)
        assert info.value.reason is expected
        return
    datagram = parse_udp(data, PEER, US)
    assert (datagram.src_port, datagram.dst_port) == struct.unpack("!HH", data[:4])
    assert bytes(datagram.payload) == data[8:]


def test_ipv6_round_trip_matches_scapy() -> None:
    from scapy.layers.inet import UDP
    from scapy.layers.inet6 import IPv6
    from scapy.packet import Raw

    packet = bytes(IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=5000, dport=53) / Raw(b"query"))
    assert serialize_udp(PEER6, US6, 5000, 53, b"query") == packet[40:]
    datagram = parse_udp(packet[40:], PEER6, US6)
    assert (datagram.src_port, datagram.dst_port, bytes(datagram.payload)) == (5000, 53, b"query")


def test_ipv6_checksum_covers_the_ipv6_pseudo_header() -> None:
    data = serialize_udp(PEER6, US6, 1, 2, b"abc")
    with pytest.raises(MalformedError) as info:
        parse_udp(data, PEER6, GROUP6)
    assert info.value.reason is Drop.UDP_BAD_CHECKSUM


def test_ipv6_zero_checksum_refused() -> None:
    # RFC 8200 §8.1: over IPv6 the checksum is mandatory (over IPv4 zero means "none", tested above)
    data = serialize_udp(PEER6, US6, 1, 2, b"abc")
    with pytest.raises(MalformedError) as info:
        parse_udp(data[:6] + b"\x00\x00" + data[8:], PEER6, US6)
    assert info.value.reason is Drop.UDP_BAD_CHECKSUM


@settings(max_examples=300)
@given(st.integers(0, 0xFFFF), st.integers(1, 0xFFFF), st.binary(max_size=100))
def test_ipv6_round_trip(sport: int, dport: int, payload: bytes) -> None:
    data = serialize_udp(PEER6, US6, sport, dport, payload)
    assert data[6:8] != b"\x00\x00"  # serialize always checksums
    datagram = parse_udp(data, PEER6, US6)
    assert (datagram.src_port, datagram.dst_port, bytes(datagram.payload)) == (sport, dport, payload)


@settings(max_examples=300)
@given(st.binary(max_size=40))
def test_ipv6_random_bytes_raise_only_typed_errors(data: bytes) -> None:
    if len(data) >= 8:
        data = data[:4] + struct.pack("!H", len(data)) + data[6:]
    try:
        datagram = parse_udp(data, PEER6, US6)
    except MalformedError as exc:
        assert exc.reason in {Drop.UDP_TRUNCATED, Drop.UDP_BAD_LENGTH, Drop.UDP_BAD_CHECKSUM, Drop.UDP_BAD_PORT}  # noqa: PT017
        return
    assert data[6:8] != b"\x00\x00"
    assert bytes(datagram.payload) == data[8:]
