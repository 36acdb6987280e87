from __future__ import annotations

import contextlib
import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.errors import MalformedError
from netstack.ipv4 import (
    FLAG_DF,
    FLAG_MF,
    Ipv4Header,
    build_header,
    parse_ipv4,
    serialize_ipv4,
    strip_link_padding,
)
from netstack.reasons import Drop
from tests.netstack.builders import PEER, US, ipv4


def reason_of(packet: bytes) -> Drop:
    with pytest.raises(MalformedError) as info:
        parse_ipv4(packet)
    return info.value.reason


def test_parse_whole_datagram() -> None:
    header, payload = parse_ipv4(ipv4(PEER, US, 17, b"abcd", ident=77, flags=FLAG_DF, ttl=9))
    assert header == Ipv4Header(20, 0, 24, 77, True, False, 0, 9, 17, PEER, US)
    assert bytes(payload) == b"abcd"
    assert not header.is_fragment


def test_fragment_fields() -> None:
    header, _ = parse_ipv4(ipv4(PEER, US, 17, bytes(8), flags=FLAG_MF, offset=1480))
    assert header.more_fragments
    assert header.fragment_offset == 1480
    assert header.is_fragment


def test_matches_scapy_encoding() -> None:
    from scapy.layers.inet import IP
    from scapy.packet import Raw

    packet = bytes(IP(src="10.0.0.1", dst="10.0.0.2", id=5, ttl=3, flags="DF", proto=6) / Raw(b"xyz"))
    header, payload = parse_ipv4(packet)
    assert (header.ident, header.ttl, header.protocol, header.dont_fragment) == (5, 3, 6, True)
    assert bytes(build_header(PEER, US, 6, 3, 5, ttl=3, dont_fragment=True)) + b"xyz" == packet
    assert bytes(payload) == b"xyz"


def test_trailing_bytes_refused() -> None:
    assert reason_of(ipv4(PEER, US, 17, b"abcd") + b"!") is Drop.IPV4_BAD_TOTAL_LENGTH


def test_truncated_refused() -> None:
    packet = ipv4(PEER, US, 17, b"abcd")
    assert reason_of(packet[:19]) is Drop.IPV4_TRUNCATED
    assert reason_of(packet[:22]) is Drop.IPV4_BAD_TOTAL_LENGTH


def test_total_length_shorter_than_header_refused() -> None:
    assert reason_of(ipv4(PEER, US, 17, b"", total=19)[:19] + b"\x00") is Drop.IPV4_BAD_TOTAL_LENGTH


def test_bad_version_and_header_length() -> None:
    packet = bytearray(ipv4(PEER, US, 17, b"abcd"))
    packet[0] = 0x65
    assert reason_of(bytes(packet)) is Drop.IPV4_BAD_VERSION
    packet[0] = 0x44
    assert reason_of(bytes(packet)) is Drop.IPV4_BAD_HEADER_LENGTH
    packet[0] = 0x4F  # 60-byte header in a 24-byte packet
    assert reason_of(bytes(packet)) is Drop.IPV4_BAD_HEADER_LENGTH


def test_bad_checksum_refused() -> None:
    assert reason_of(ipv4(PEER, US, 17, b"abcd", csum=0x1234)) is Drop.IPV4_BAD_CHECKSUM


def test_reserved_flag_refused() -> None:
    assert reason_of(ipv4(PEER, US, 17, b"abcd", flags=0x8000)) is Drop.IPV4_RESERVED_FLAG


def test_ping_of_death_fragment_refused() -> None:
    # the last fragment of a classic ping of death: offset 65528 + 1480 bytes runs past 65535
    assert reason_of(ipv4(PEER, US, 1, bytes(1480), offset=65528)) is Drop.IPV4_OVERSIZE
    # a fragment ending just inside the limit is accepted (65496 + 16 <= 65535 - 20)
    header, _ = parse_ipv4(ipv4(PEER, US, 1, bytes(16), offset=65496))
    assert header.fragment_offset == 65496
    assert reason_of(ipv4(PEER, US, 1, bytes(24), offset=65496)) is Drop.IPV4_OVERSIZE


def test_options_are_skipped() -> None:
    options = bytes([1, 1, 0x94, 4, 0, 0])  + bytes([7, 3, 4]) + bytes([0, 0, 0])  # NOP NOP RouterAlert RR EOL
    header, payload = parse_ipv4(ipv4(PEER, US, 17, b"data", options=options))
    assert header.header_len == 32
    assert bytes(payload) == b"data"


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        (bytes([0x83, 7, 4]) + bytes(5), Drop.IPV4_SOURCE_ROUTE),  # LSRR
        (bytes([0x89, 7, 4]) + bytes(5), Drop.IPV4_SOURCE_ROUTE),  # SSRR
        (bytes([7, 1, 0, 0]), Drop.IPV4_BAD_OPTIONS),  # length below 2
        (bytes([7, 9, 0, 0]), Drop.IPV4_BAD_OPTIONS),  # length past the header
        (bytes([1, 1, 1, 7]), Drop.IPV4_BAD_OPTIONS),  # option without its length byte
    ],
)
def test_malformed_or_source_route_options_refused(options: bytes, reason: Drop) -> None:
    assert reason_of(ipv4(PEER, US, 17, b"data", options=options)) is reason


def test_strip_link_padding() -> None:
    packet = ipv4(PEER, US, 17, b"ab")
    assert bytes(strip_link_padding(memoryview(packet + bytes(18)))) == packet
    assert bytes(strip_link_padding(memoryview(packet))) == packet
    with pytest.raises(MalformedError):
        strip_link_padding(memoryview(b"\x45\x00"))


def test_build_header_refuses_out_of_range() -> None:
    with pytest.raises(ValueError, match="range"):
        build_header(PEER, US, 17, 65516, 1, ttl=64)
    with pytest.raises(ValueError, match="range"):
        build_header(PEER, US, 17, 8, 1, ttl=64, fragment_offset=3)


headers = st.builds(
    Ipv4Header,
    st.just(20), st.integers(0, 255), st.just(0), st.integers(0, 0xFFFF), st.booleans(), st.booleans(),
    st.integers(0, 100).map(lambda n: n * 8), st.integers(0, 255), st.integers(0, 255),
    st.binary(min_size=4, max_size=4), st.binary(min_size=4, max_size=4),
)  # fmt: skip


@settings(max_examples=300)
@given(headers, st.binary(max_size=64))
def test_round_trip(header: Ipv4Header, payload: bytes) -> None:
    parsed, body = parse_ipv4(serialize_ipv4(header, payload))
    assert parsed == dataclasses.replace(header, total_length=20 + len(payload))
    assert bytes(body) == payload


@settings(max_examples=500)
@given(st.binary(max_size=80))
def test_random_bytes_parse_or_raise_typed_error(data: bytes) -> None:
    with contextlib.suppress(MalformedError):
        parse_ipv4(data)
