from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.tcp.segment import (
    ACK,
    FIN,
    NO_OPTIONS,
    PSH,
    SYN,
    Options,
    SegmentError,
    build_options,
    build_segment,
    checksum_ok,
    ones_sum,
    parse_options,
    parse_segment,
)
from tests.netstack.builders import textbook_sum

SRC = bytes([192, 168, 1, 10])
DST = bytes([192, 168, 1, 20])


def reference_checksum(src: bytes, dst: bytes, segment: bytes) -> int:
    """Word-by-word one's-complement sum, the textbook way, to check the modulo shortcut against."""
    return ~textbook_sum(src + dst + struct.pack("!BBH", 0, 6, len(segment)) + segment) & 0xFFFF


def test_checksum_matches_scapy() -> None:
    from scapy.layers.inet import IP, TCP

    packet = IP(src="192.168.1.10", dst="192.168.1.20") / TCP(sport=1234, dport=80, seq=7, ack=9, flags="PA",
                                                                window=512) / b"hello world"
    wire = bytes(packet)
    tcp_bytes = wire[20:]
    ours = build_segment(SRC, DST, 1234, 80, 7, 9, PSH | ACK, 512, payload=b"hello world")
    assert ours == tcp_bytes


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_ones_sum_matches_reference(payload: bytes) -> None:
    segment = build_segment(SRC, DST, 1, 2, 3, 4, ACK, 5, payload=payload)
    zeroed = segment[:16] + b"\x00\x00" + segment[18:]
    assert struct.unpack("!H", segment[16:18])[0] == reference_checksum(SRC, DST, zeroed)
    assert checksum_ok(SRC, DST, segment)
    assert ones_sum(b"\x00\x01\xff") == (1 + 0xFF00) % 0xFFFF


@given(
    st.integers(1, 65535), st.integers(1, 65535), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
    st.integers(0, 255), st.integers(0, 65535), st.binary(max_size=100),
    st.one_of(st.none(), st.integers(0, 65535)), st.one_of(st.none(), st.integers(0, 14)), st.booleans(),
    st.one_of(st.none(), st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))),
)
@settings(max_examples=300)
def test_round_trip(sport: int, dport: int, seq: int, ack: int, flags: int, window: int, payload: bytes,  # noqa: PLR0917
                    mss: int | None, wscale: int | None, sack: bool, ts: tuple[int, int] | None) -> None:
    options = build_options(mss=mss, wscale=wscale, sack_permitted=sack, ts=ts)
    wire = build_segment(SRC, DST, sport, dport, seq, ack, flags, window, options, payload)
    seg = parse_segment(SRC, DST, memoryview(wire))
    assert (seg.src_port, seg.dst_port, seg.seq, seg.ack, seg.flags, seg.window) == (sport, dport, seq, ack, flags,
                                                                                      window)
    assert bytes(seg.payload) == payload
    assert seg.options.mss == mss
    assert seg.options.wscale == wscale
    assert seg.options.sack_permitted == sack
    assert (seg.options.ts_val, seg.options.ts_ecr) == (ts if ts else (None, None))


@given(st.binary(max_size=120))
@settings(max_examples=500)
def test_random_bytes_only_raise_segment_error(data: bytes) -> None:
    for verify in (True, False):
        with contextlib.suppress(SegmentError):
            parse_segment(SRC, DST, memoryview(data), verify_checksum=verify)


@given(st.binary(max_size=40))
@settings(max_examples=500)
def test_random_options_only_raise_segment_error(data: bytes) -> None:
    with contextlib.suppress(SegmentError):
        parse_options(memoryview(data))


def test_bad_checksum_rejected() -> None:
    wire = bytearray(build_segment(SRC, DST, 1, 2, 3, 4, SYN, 5))
    wire[-1] ^= 1
    with pytest.raises(SegmentError) as info:
        parse_segment(SRC, DST, memoryview(bytes(wire)))
    assert info.value.reason == "bad-checksum"
    # the pseudo-header counts: the same bytes from another address fail
    good = build_segment(SRC, DST, 1, 2, 3, 4, SYN, 5)
    with pytest.raises(SegmentError):
        parse_segment(SRC, bytes([192, 168, 1, 21]), memoryview(good))


@pytest.mark.parametrize(("data", "reason"), [
    (b"\x00" * 19, "truncated"),
    (b"\x00" * 12 + b"\x40" + b"\x00" * 7, "bad-data-offset"),       # offset 4 words < 5
    (b"\x00" * 12 + b"\x60" + b"\x00" * 7, "bad-data-offset"),       # offset 6 words > 20 bytes present
])
def test_structural_errors(data: bytes, reason: str) -> None:
    with pytest.raises(SegmentError) as info:
        parse_segment(SRC, DST, memoryview(data), verify_checksum=False)
    assert info.value.reason == reason


@pytest.mark.parametrize(("raw", "reason"), [
    (b"\x02", "option-truncated"),            # kind without length
    (b"\x02\x01\x00\x00", "option-length"),   # length below 2
    (b"\x02\x08\x05\xb4", "option-length"),   # runs past the header
    (b"\x02\x03\x05\x00", "option-length"),   # MSS must be 4 bytes
    (b"\x03\x04\x07\x00", "option-length"),   # window scale must be 3 bytes
    (b"\x08\x06\x00\x00\x00\x00", "option-length"),  # timestamps must be 10 bytes
])
def test_malformed_options(raw: bytes, reason: str) -> None:
    with pytest.raises(SegmentError) as info:
        parse_options(memoryview(raw))
    assert info.value.reason == reason


def test_options_parse_and_clamp() -> None:
    raw = b"\x02\x04\x05\xb4\x01\x03\x03\x1e\x04\x02\x01\x01\x08\x0a\x00\x00\x00\x07\x00\x00\x00\x09\xfe\x02\x00\x00"
    opts = parse_options(memoryview(raw))
    assert opts.mss == 1460
    assert opts.wscale == 14  # RFC 7323 §2.3: shift counts above 14 are treated as 14
    assert opts.sack_permitted
    assert (opts.ts_val, opts.ts_ecr) == (7, 9)
    # unknown kind 254 skipped by its length; EOL ends parsing even if garbage follows
    assert parse_options(memoryview(b"\x00\x02\x01")).mss is None


def test_seg_len_counts_syn_and_fin() -> None:
    wire = build_segment(SRC, DST, 1, 2, 3, 4, SYN | FIN, 5, payload=b"abc")
    assert parse_segment(SRC, DST, memoryview(wire)).seg_len == 5


def test_build_rejects_unpadded_options() -> None:
    with pytest.raises(ValueError, match="padded"):
        build_segment(SRC, DST, 1, 2, 3, 4, SYN, 5, b"\x01")


def test_parsed_segments_and_their_options_are_immutable() -> None:
    raw = build_segment(SRC, DST, 1, 2, 3, 4, SYN, 5, build_options(mss=1400, ts=(7, 8)), b"xy")
    seg = parse_segment(SRC, DST, memoryview(raw))
    with pytest.raises(AttributeError):
        seg.flags = 0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        seg.options.mss = 1  # type: ignore[misc]
    changed = seg._replace(flags=ACK, seq=4)
    assert (seg.flags, seg.seq, changed.flags, changed.seq) == (SYN, 3, ACK, 4)
    assert seg.options == Options(mss=1400, ts_val=7, ts_ecr=8)
    assert (seg.seg_len, changed.seg_len) == (3, 2)
    assert parse_segment(SRC, DST, memoryview(build_segment(SRC, DST, 1, 2, 3, 4, ACK, 5))).options is NO_OPTIONS


@given(st.binary(min_size=8, max_size=8))
def test_the_timestamp_only_shortcut_agrees_with_the_general_parser(values: bytes) -> None:
    """NOP, NOP, TS(10) in twelve bytes takes a shortcut; the same option behind four more NOPs (sixteen
    bytes) goes through the byte-by-byte loop. Both must read the same."""
    shortcut = parse_options(memoryview(bytes((1, 1, 8, 10)) + values))
    general = parse_options(memoryview(bytes((1, 1, 1, 1, 1, 1, 8, 10)) + values))
    assert shortcut == general == Options(ts_val=int.from_bytes(values[:4], "big"),
                                          ts_ecr=int.from_bytes(values[4:], "big"))


def test_timestamp_only_options() -> None:
    canonical = build_options(ts=(0x01020304, 0xA0B0C0D0))
    assert canonical[:4] == bytes((1, 1, 8, 10))
    assert parse_options(memoryview(canonical)) == Options(ts_val=0x01020304, ts_ecr=0xA0B0C0D0)


@given(st.integers(0, 0xFFFF), st.integers(0, 14), st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF))
def test_syn_options_shortcut_is_the_usual_layout(mss: int, wscale: int, val: int, ecr: int) -> None:
    raw = build_options(mss=mss, wscale=wscale, ts=(val, ecr))
    assert raw == (struct.pack("!BBH", 2, 4, mss) + bytes((1, 3, 3, wscale, 1, 1))
                   + struct.pack("!BBII", 8, 10, val, ecr))
    assert parse_options(memoryview(raw)) == Options(mss=mss, wscale=wscale, ts_val=val, ts_ecr=ecr)
