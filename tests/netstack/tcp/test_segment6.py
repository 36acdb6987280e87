"""The segment codec over IPv6: the RFC 8200 §8.1 pseudo-header, and no checksum valid for one family passes
for the other."""

from __future__ import annotations

import contextlib
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.tcp.segment import (
    ACK,
    PSH,
    SYN,
    SegmentError,
    build_options,
    build_segment,
    checksum_ok,
    parse_segment,
    pseudo_header_sum,
)
from tests.netstack.builders import textbook_sum
from tests.netstack.tcp.raw import THEM, THEM6, US, US6, RawPeer

SRC6 = bytes.fromhex("20010db8000000000000000000000010")
DST6 = bytes.fromhex("fe80000000000000021122fffe334455")
SRC4 = bytes([192, 168, 1, 10])
DST4 = bytes([192, 168, 1, 20])


def pseudo6(src: bytes, dst: bytes, length: int) -> bytes:
    """RFC 8200 §8.1 written out: addresses, 32-bit upper-layer length, three zero bytes, next header."""
    return src + dst + struct.pack("!I", length) + bytes(3) + bytes((6,))


def pseudo4(src: bytes, dst: bytes, length: int) -> bytes:
    """RFC 9293 §3.1 written out: addresses, zero, protocol, 16-bit TCP length."""
    return src + dst + struct.pack("!BBH", 0, 6, length)


@given(st.binary(min_size=16, max_size=16), st.binary(min_size=16, max_size=16), st.integers(0, 2**20))
@settings(max_examples=300)
def test_the_shared_expression_is_the_ipv6_pseudo_header(src: bytes, dst: bytes, length: int) -> None:
    assert pseudo_header_sum(src, dst, length) % 0xFFFF == textbook_sum(pseudo6(src, dst, length)) % 0xFFFF


@given(st.binary(min_size=4, max_size=4), st.binary(min_size=4, max_size=4), st.integers(0, 65535))
@settings(max_examples=300)
def test_the_shared_expression_is_the_ipv4_pseudo_header(src: bytes, dst: bytes, length: int) -> None:
    assert pseudo_header_sum(src, dst, length) % 0xFFFF == textbook_sum(pseudo4(src, dst, length)) % 0xFFFF


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_built_segments_sum_to_all_ones_with_the_ipv6_pseudo_header(payload: bytes) -> None:
    segment = build_segment(SRC6, DST6, 1, 2, 3, 4, ACK, 5, payload=payload)
    assert textbook_sum(pseudo6(SRC6, DST6, len(segment)) + segment) == 0xFFFF
    assert checksum_ok(SRC6, DST6, segment)


def test_checksum_matches_scapy_over_ipv6() -> None:
    from scapy.layers.inet import TCP
    from scapy.layers.inet6 import IPv6

    packet = IPv6(src="2001:db8::10", dst="fe80::211:22ff:fe33:4455") / TCP(
        sport=1234, dport=80, seq=7, ack=9, flags="PA", window=512) / b"hello world"
    tcp_bytes = bytes(packet)[40:]
    assert build_segment(SRC6, DST6, 1234, 80, 7, 9, PSH | ACK, 512, payload=b"hello world") == tcp_bytes


def test_a_checksum_for_one_family_fails_for_the_other() -> None:
    as_v4 = build_segment(SRC4, DST4, 1234, 80, 7, 9, ACK, 512, payload=b"x")
    as_v6 = build_segment(SRC6, DST6, 1234, 80, 7, 9, ACK, 512, payload=b"x")
    assert as_v4 != as_v6
    assert not checksum_ok(SRC6, DST6, as_v4)
    assert not checksum_ok(SRC4, DST4, as_v6)


def test_the_layer_refuses_an_ipv4_checksum_over_ipv6_and_the_reverse() -> None:
    peer = RawPeer(peer_addr=THEM6, us=US6)
    peer.layer.listen(80)
    wire4 = build_segment(THEM, US, 40000, 80, 1, 0, SYN, 65535, build_options(mss=1460))
    peer.layer.segment_received(0.0, THEM6, US6, memoryview(wire4))
    wire6 = build_segment(THEM6, US6, 40000, 80, 1, 0, SYN, 65535, build_options(mss=1440))
    peer.layer.segment_received(0.0, THEM, US, memoryview(wire6))
    assert peer.layer.stats["bad-checksum"] == 2
    assert not peer.out()
    peer.layer.segment_received(0.0, THEM6, US6, memoryview(wire6))     # the same bytes in their own family
    assert peer.layer.stats["syn-received"] == 1


@given(
    st.integers(1, 65535), st.integers(1, 65535), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
    st.integers(0, 255), st.integers(0, 65535), st.binary(max_size=100),
    st.one_of(st.none(), st.integers(0, 65535)),
    st.one_of(st.none(), st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))),
)
@settings(max_examples=300)
def test_round_trip_over_ipv6(sport: int, dport: int, seq: int, ack: int, flags: int, window: int,  # noqa: PLR0917
                              payload: bytes, mss: int | None, ts: tuple[int, int] | None) -> None:
    options = build_options(mss=mss, ts=ts)
    wire = build_segment(SRC6, DST6, sport, dport, seq, ack, flags, window, options, payload)
    seg = parse_segment(SRC6, DST6, memoryview(wire))
    assert (seg.src_port, seg.dst_port, seg.seq, seg.ack, seg.flags, seg.window) == (sport, dport, seq, ack, flags,
                                                                                      window)
    assert bytes(seg.payload) == payload
    assert (seg.options.mss, seg.options.ts_val, seg.options.ts_ecr) == (mss, *(ts or (None, None)))
    assert build_segment(SRC6, DST6, seg.src_port, seg.dst_port, seg.seq, seg.ack, seg.flags, seg.window,
                         bytes(wire[20:len(wire) - len(payload)]), seg.payload) == wire


@given(st.binary(max_size=120))
@settings(max_examples=500)
def test_random_bytes_over_ipv6_only_raise_segment_error(data: bytes) -> None:
    with contextlib.suppress(SegmentError):
        parse_segment(SRC6, DST6, memoryview(data))
    with contextlib.suppress(SegmentError):
        parse_segment(SRC6, DST6, memoryview(data), verify_checksum=False)
