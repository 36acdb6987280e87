from __future__ import annotations

import dataclasses
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.addresses6 import ip6_from_text
from netstack.errors import MalformedError
from netstack.ipv6 import (
    PROTO_DEST_OPTS,
    PROTO_FRAGMENT,
    PROTO_HOP_BY_HOP,
    PROTO_ICMPV6,
    PROTO_NO_NEXT,
    PROTO_ROUTING,
    PROTO_TCP,
    PROTO_UDP,
    FragmentHeader,
    HeaderChain,
    Ipv6Header,
    ParameterProblemError,
    build_header,
    next_header_pointer,
    parse_ipv6,
    serialize_ipv6,
    skim_to_upper,
    strip_link_padding,
    walk,
)
from netstack.limits import Ipv6Limits
from netstack.reasons import Drop

PEER6 = ip6_from_text("2001:db8::1")
US6 = ip6_from_text("2001:db8::2")
GROUP6 = ip6_from_text("ff02::1")

SKIP = 0x1E  # unknown option, action 00: skip it
DISCARD = 0x5E  # action 01: discard silently
REPORT = 0x9E  # action 10: discard and report, even to a multicast destination
REPORT_UNICAST = 0xDE  # action 11: discard and report unless the destination is multicast


# --- hand-built packets (struct by hand, independent of netstack.ipv6) --------------------------------------
def packet6(next_header: int, payload: bytes, *, src: bytes = PEER6, dst: bytes = US6, hop_limit: int = 64,
            traffic_class: int = 0, flow_label: int = 0, length: int | None = None) -> bytes:  # fmt: skip
    word = (6 << 28) | (traffic_class << 20) | flow_label
    size = len(payload) if length is None else length
    return struct.pack("!IHBB16s16s", word, size, next_header, hop_limit, src, dst) + payload


def options_header(next_header: int, options: bytes = b"") -> bytes:
    """A hop-by-hop or destination options header holding `options`, padded to a multiple of 8 bytes."""
    body = options
    pad = (-(2 + len(body))) % 8
    if pad == 1:
        body += b"\x00"
    elif pad:
        body += bytes([1, pad - 2]) + bytes(pad - 2)
    return bytes([next_header, (2 + len(body)) // 8 - 1]) + body


def raw_options_header(next_header: int, options: bytes) -> bytes:
    """Options exactly as given (their length must make the header a multiple of 8)."""
    assert (2 + len(options)) % 8 == 0
    return bytes([next_header, (2 + len(options)) // 8 - 1]) + options


def option(kind: int, data: bytes = b"") -> bytes:
    return bytes([kind, len(data)]) + data


def routing_header(next_header: int, routing_type: int, segments_left: int, extra: bytes = bytes(4)) -> bytes:
    body = bytes([routing_type, segments_left]) + extra
    assert (2 + len(body)) % 8 == 0
    return bytes([next_header, (2 + len(body)) // 8 - 1]) + body


def fragment_header(next_header: int, offset: int, more: bool, ident: int) -> bytes:
    return struct.pack("!BBHI", next_header, 0, offset | int(more), ident)


def walk_packet(packet: bytes, limits: Ipv6Limits | None = None, *, reassembled: bool = False) -> HeaderChain:
    header, payload = parse_ipv6(packet)
    if limits is None:
        return walk(header, payload, reassembled=reassembled)
    return walk(header, payload, limits, reassembled=reassembled)


def reason_of(packet: bytes, limits: Ipv6Limits | None = None, *, reassembled: bool = False) -> Drop:
    with pytest.raises(MalformedError) as info:
        walk_packet(packet, limits, reassembled=reassembled)
    assert not isinstance(info.value, ParameterProblemError), "expected a silent drop"
    return info.value.reason


def problem_of(packet: bytes, limits: Ipv6Limits | None = None) -> ParameterProblemError:
    with pytest.raises(ParameterProblemError) as info:
        walk_packet(packet, limits)
    return info.value


def parse_reason(packet: bytes) -> Drop:
    with pytest.raises(MalformedError) as info:
        parse_ipv6(packet)
    return info.value.reason


# --- the fixed header ----------------------------------------------------------------------------------------
def test_parse_fixed_header() -> None:
    packet = packet6(PROTO_UDP, b"abcd", hop_limit=9, traffic_class=0xB8, flow_label=0x12345)
    header, payload = parse_ipv6(packet)
    assert header == Ipv6Header(0xB8, 0x12345, 4, PROTO_UDP, 9, PEER6, US6)
    assert bytes(payload) == b"abcd"
    assert serialize_ipv6(header, payload) == packet


def test_matches_scapy_encoding() -> None:
    from scapy.layers.inet6 import IPv6
    from scapy.packet import Raw

    packet = bytes(IPv6(src="2001:db8::1", dst="2001:db8::2", hlim=3, tc=5, fl=77, nh=59) / Raw(b"xyz"))
    assert build_header(PEER6, US6, PROTO_NO_NEXT, 3, hop_limit=3, traffic_class=5, flow_label=77) + b"xyz" == packet
    header, _ = parse_ipv6(packet)
    assert (header.hop_limit, header.traffic_class, header.flow_label, header.next_header) == (3, 5, 77, 59)


def test_truncated_and_bad_version() -> None:
    packet = packet6(PROTO_UDP, b"abcd")
    assert parse_reason(packet[:39]) is Drop.IPV6_TRUNCATED
    assert parse_reason(b"\x40" + packet[1:]) is Drop.IPV6_BAD_VERSION


def test_payload_length_must_match_exactly() -> None:
    packet = packet6(PROTO_UDP, b"abcd")
    assert parse_reason(packet + b"!") is Drop.IPV6_BAD_PAYLOAD_LENGTH  # trailing bytes
    assert parse_reason(packet[:-1]) is Drop.IPV6_BAD_PAYLOAD_LENGTH
    assert parse_ipv6(packet6(PROTO_NO_NEXT, b""))[0].payload_length == 0  # an empty packet is fine


def test_jumbogram_refused() -> None:
    hop_by_hop = options_header(PROTO_UDP, option(0xC2, struct.pack("!I", 70000)))
    packet = packet6(PROTO_HOP_BY_HOP, hop_by_hop + bytes(100), length=0)
    assert parse_reason(packet) is Drop.IPV6_JUMBOGRAM
    # strip_link_padding leaves it whole rather than mistaking its body for Ethernet padding
    assert bytes(strip_link_padding(memoryview(packet))) == packet


def test_strip_link_padding() -> None:
    packet = packet6(PROTO_NO_NEXT, b"")
    assert bytes(strip_link_padding(memoryview(packet + bytes(6)))) == packet  # padded to 46 bytes
    small = packet6(PROTO_UDP, b"ab")
    assert bytes(strip_link_padding(memoryview(small + bytes(4)))) == small
    assert bytes(strip_link_padding(memoryview(small))) == small
    with pytest.raises(MalformedError) as info:
        strip_link_padding(memoryview(small[:39]))
    assert info.value.reason is Drop.IPV6_TRUNCATED


def test_build_header_refuses_out_of_range_fields() -> None:
    for kwargs in ({"payload_len": 65536}, {"flow_label": 1 << 20}, {"traffic_class": 256}, {"hop_limit": 256},
                   {"next_header": 256}):  # fmt: skip
        args: dict[str, int] = {"next_header": 17, "payload_len": 0, "hop_limit": 64} | kwargs
        with pytest.raises(ValueError, match="out of range"):
            build_header(PEER6, US6, args.pop("next_header"), args.pop("payload_len"), **args)
    with pytest.raises(ValueError, match="16 bytes"):
        build_header(PEER6[:4], US6, 17, 0, hop_limit=64)


ADDRESSES = st.binary(min_size=16, max_size=16)


@settings(max_examples=300)
@given(st.builds(Ipv6Header, st.integers(0, 255), st.integers(0, 0xFFFFF), st.just(0), st.integers(0, 255),
                 st.integers(0, 255), ADDRESSES, ADDRESSES), st.binary(max_size=200))  # fmt: skip
def test_round_trip(header: Ipv6Header, payload: bytes) -> None:
    header = dataclasses.replace(header, payload_length=len(payload))
    parsed, body = parse_ipv6(serialize_ipv6(header, payload))
    assert (parsed, bytes(body)) == (header, payload)


@settings(max_examples=500)
@given(st.binary(max_size=120), st.booleans())
def test_random_bytes_parse_or_raise_typed_error(data: bytes, fix: bool) -> None:
    if fix and len(data) >= 40:  # repair version and length so the walk sees random extension headers
        data = bytes([0x60 | (data[0] & 0x0F)]) + data[1:4] + struct.pack("!H", len(data) - 40) + data[6:]
    try:
        header, payload = parse_ipv6(data)
        stripped = strip_link_padding(memoryview(data))
        chain = walk(header, payload, reassembled=fix)
    except MalformedError:
        return
    assert bytes(stripped) == data
    assert 0 <= chain.upper_offset <= len(payload)
    assert chain.extension_headers <= Ipv6Limits().extension_headers


@settings(max_examples=500)
@given(st.lists(st.sampled_from([PROTO_HOP_BY_HOP, PROTO_DEST_OPTS, PROTO_ROUTING, PROTO_FRAGMENT]), max_size=6),
       st.binary(max_size=64))  # fmt: skip
def test_random_chains_walk_or_raise_typed_error(kinds: list[int], tail: bytes) -> None:
    # well-formed headers in any order: the walk accepts some orders and refuses others, never crashes
    payload = tail
    next_header = PROTO_UDP
    for kind in reversed(kinds):
        if kind == PROTO_FRAGMENT:
            payload = fragment_header(next_header, 0, False, 7) + payload
        elif kind == PROTO_ROUTING:
            payload = routing_header(next_header, 4, 0) + payload
        else:
            payload = options_header(next_header, option(SKIP, b"x")) + payload
        next_header = kind
    try:
        chain = walk_packet(packet6(next_header, payload))
    except MalformedError:
        return
    assert chain.upper == PROTO_UDP
    assert chain.extension_headers == len(kinds)
    assert bytes(payload[chain.upper_offset :]) == tail


# --- the walk ------------------------------------------------------------------------------------------------
def test_no_extension_headers() -> None:
    chain = walk_packet(packet6(PROTO_TCP, bytes(20)))
    assert chain == HeaderChain(PROTO_TCP, 0, None, -1, 0, 6, -1)
    assert next_header_pointer(chain) == 6


def test_full_chain_in_rfc_order() -> None:
    payload = (options_header(PROTO_DEST_OPTS)  # hop-by-hop, payload offset 0
               + options_header(PROTO_ROUTING, option(SKIP, bytes(10)))  # destination options, offset 8
               + routing_header(PROTO_DEST_OPTS, 0, 0)  # RH0 with nothing left: ignored (RFC 5095), offset 24
               + options_header(PROTO_ICMPV6)  # destination options after routing, offset 32
               + bytes(8))  # fmt: skip
    chain = walk_packet(packet6(PROTO_HOP_BY_HOP, payload))
    assert chain == HeaderChain(PROTO_ICMPV6, 40, None, -1, 4, 40 + 32, -1)
    assert next_header_pointer(chain) == 72


def test_hop_by_hop_only_first() -> None:
    packet = packet6(PROTO_DEST_OPTS, options_header(PROTO_HOP_BY_HOP) + options_header(PROTO_UDP) + bytes(8))
    problem = problem_of(packet)
    assert (problem.reason, problem.code, problem.pointer) == (Drop.IPV6_HOP_BY_HOP_NOT_FIRST, 1, 40)
    assert not problem.multicast_exempt


def test_repeated_headers_refused() -> None:
    two_dest = options_header(PROTO_DEST_OPTS) + options_header(PROTO_UDP)
    assert reason_of(packet6(PROTO_DEST_OPTS, two_dest)) is Drop.IPV6_REPEATED_EXTENSION
    two_routing = routing_header(PROTO_ROUTING, 4, 0) + routing_header(PROTO_UDP, 4, 0)
    assert reason_of(packet6(PROTO_ROUTING, two_routing)) is Drop.IPV6_REPEATED_EXTENSION
    two_fragments = fragment_header(PROTO_FRAGMENT, 0, True, 1) + fragment_header(PROTO_UDP, 0, True, 2)
    assert reason_of(packet6(PROTO_FRAGMENT, two_fragments + bytes(8))) is Drop.IPV6_REPEATED_EXTENSION
    # a destination options header on each side of a routing header is fine; a third is not
    around = options_header(PROTO_ROUTING) + routing_header(PROTO_DEST_OPTS, 4, 0) + options_header(PROTO_UDP)
    assert walk_packet(packet6(PROTO_DEST_OPTS, around)).extension_headers == 3
    after_twice = routing_header(PROTO_DEST_OPTS, 4, 0) + options_header(PROTO_DEST_OPTS) + options_header(17)
    assert reason_of(packet6(PROTO_ROUTING, after_twice)) is Drop.IPV6_REPEATED_EXTENSION


@pytest.mark.parametrize("dst", [US6, GROUP6])
def test_option_actions(dst: bytes) -> None:
    def packet(kind: int, where: int = PROTO_DEST_OPTS) -> bytes:
        return packet6(where, options_header(PROTO_UDP, option(kind, b"ab")) + bytes(8), dst=dst)

    assert walk_packet(packet(SKIP)).upper == PROTO_UDP
    assert walk_packet(packet(SKIP, PROTO_HOP_BY_HOP)).upper == PROTO_UDP
    assert reason_of(packet(DISCARD)) is Drop.IPV6_UNKNOWN_OPTION
    problem = problem_of(packet(REPORT))
    assert (problem.reason, problem.code, problem.pointer, problem.multicast_exempt) == (
        Drop.IPV6_UNKNOWN_OPTION, 2, 42, True)  # fmt: skip
    if dst == GROUP6:
        assert reason_of(packet(REPORT_UNICAST)) is Drop.IPV6_UNKNOWN_OPTION
    else:
        problem = problem_of(packet(REPORT_UNICAST, PROTO_HOP_BY_HOP))
        assert (problem.code, problem.pointer, problem.multicast_exempt) == (2, 42, False)


def test_option_pointer_counts_from_the_ipv6_header() -> None:
    # the unknown option is the third option of the second header: 40 + 8 + 2 + 3 (Pad1, skip, ...)
    second = raw_options_header(PROTO_UDP, b"\x00" + option(SKIP) + option(REPORT_UNICAST, b"x"))
    packet = packet6(PROTO_HOP_BY_HOP, options_header(PROTO_DEST_OPTS) + second + bytes(8))
    assert problem_of(packet).pointer == 40 + 8 + 2 + 1 + 2


def test_first_unknown_option_decides() -> None:
    options = option(DISCARD) + option(REPORT)
    assert reason_of(packet6(PROTO_DEST_OPTS, options_header(PROTO_UDP, options))) is Drop.IPV6_UNKNOWN_OPTION


def test_jumbo_option_refused() -> None:
    hop_by_hop = options_header(PROTO_UDP, option(0xC2, struct.pack("!I", 70000)))
    problem = problem_of(packet6(PROTO_HOP_BY_HOP, hop_by_hop + bytes(8)))
    assert (problem.reason, problem.code, problem.pointer) == (Drop.IPV6_JUMBOGRAM, 0, 42)


def test_malformed_options() -> None:
    runs_past = raw_options_header(PROTO_UDP, option(SKIP, bytes(10))[:6])
    assert reason_of(packet6(PROTO_DEST_OPTS, runs_past)) is Drop.IPV6_BAD_OPTION
    no_length_byte = raw_options_header(PROTO_UDP, b"\x00" * 5 + bytes([SKIP]))
    assert reason_of(packet6(PROTO_DEST_OPTS, no_length_byte)) is Drop.IPV6_BAD_OPTION


def test_routing_header_segments_left() -> None:
    for routing_type in (0, 2, 4, 253):
        skipped = packet6(PROTO_ROUTING, routing_header(PROTO_UDP, routing_type, 0) + bytes(8))
        assert walk_packet(skipped).upper == PROTO_UDP
        pending = packet6(PROTO_DEST_OPTS, options_header(PROTO_ROUTING) + routing_header(17, routing_type, 1))
        problem = problem_of(pending)
        assert (problem.reason, problem.code, problem.pointer) == (Drop.IPV6_ROUTING_HEADER, 0, 40 + 8 + 2)


def test_non_first_fragment_stops_the_walk() -> None:
    payload = options_header(PROTO_FRAGMENT) + fragment_header(PROTO_TCP, 1232, True, 0xDEADBEEF) + b"junk" * 4
    chain = walk_packet(packet6(PROTO_DEST_OPTS, payload))
    assert chain == HeaderChain(PROTO_TCP, 16, FragmentHeader(PROTO_TCP, 1232, True, 0xDEADBEEF), 8, 2, 48, 40)


def test_first_fragment_walk_continues() -> None:
    payload = fragment_header(PROTO_DEST_OPTS, 0, True, 5) + options_header(PROTO_UDP) + bytes(8)
    chain = walk_packet(packet6(PROTO_FRAGMENT, payload))
    assert chain == HeaderChain(PROTO_UDP, 16, FragmentHeader(PROTO_DEST_OPTS, 0, True, 5), 0, 2, 48, 6)
    atomic = walk_packet(packet6(PROTO_FRAGMENT, fragment_header(PROTO_UDP, 0, False, 5) + bytes(8)))
    assert atomic.fragment == FragmentHeader(PROTO_UDP, 0, False, 5)
    assert (atomic.upper, atomic.upper_offset) == (PROTO_UDP, 8)


def test_truncated_headers() -> None:
    assert reason_of(packet6(PROTO_DEST_OPTS, options_header(PROTO_UDP)[:7])) is Drop.IPV6_EXTENSION_TRUNCATED
    assert reason_of(packet6(PROTO_DEST_OPTS, b"\x11")) is Drop.IPV6_EXTENSION_TRUNCATED
    assert reason_of(packet6(PROTO_DEST_OPTS, b"")) is Drop.IPV6_EXTENSION_TRUNCATED
    assert reason_of(packet6(PROTO_FRAGMENT, fragment_header(17, 8, False, 1)[:7])) is Drop.IPV6_EXTENSION_TRUNCATED
    # behind an atomic fragment's header the packet is whole: a plain truncation
    atomic = fragment_header(PROTO_DEST_OPTS, 0, False, 1) + options_header(PROTO_UDP)[:4]
    assert reason_of(packet6(PROTO_FRAGMENT, atomic)) is Drop.IPV6_EXTENSION_TRUNCATED


def test_first_fragment_cut_inside_the_chain_is_rfc7112() -> None:
    payload = fragment_header(PROTO_DEST_OPTS, 0, True, 1) + options_header(PROTO_UDP, option(SKIP, bytes(20)))[:8]
    problem = problem_of(packet6(PROTO_FRAGMENT, payload))
    assert (problem.reason, problem.code, problem.pointer) == (Drop.IPV6_INCOMPLETE_CHAIN, 3, 0)


def test_fragment_header_refused_after_reassembly() -> None:
    packet = packet6(PROTO_FRAGMENT, fragment_header(PROTO_UDP, 0, True, 1) + bytes(8))
    assert reason_of(packet, reassembled=True) is Drop.IPV6_NESTED_FRAGMENT
    assert walk_packet(packet6(PROTO_UDP, bytes(8)), reassembled=True).upper == PROTO_UDP


def test_extension_header_count_limit() -> None:
    payload = options_header(PROTO_DEST_OPTS) + options_header(PROTO_ROUTING) + routing_header(PROTO_UDP, 4, 0)
    packet = packet6(PROTO_HOP_BY_HOP, payload)
    assert walk_packet(packet, Ipv6Limits(extension_headers=3)).extension_headers == 3
    assert reason_of(packet, Ipv6Limits(extension_headers=2)) is Drop.IPV6_TOO_MANY_EXTENSIONS


def test_extension_bytes_limit() -> None:
    payload = options_header(PROTO_DEST_OPTS) + options_header(PROTO_UDP, option(SKIP, bytes(12)))  # 8 + 16
    packet = packet6(PROTO_HOP_BY_HOP, payload)
    assert walk_packet(packet, Ipv6Limits(extension_bytes=24)).upper_offset == 24
    assert reason_of(packet, Ipv6Limits(extension_bytes=23)) is Drop.IPV6_EXTENSIONS_TOO_LONG
    # the default bound: 512 bytes in all
    big = options_header(PROTO_UDP, option(SKIP, bytes(255)) + option(SKIP, bytes(245)))  # 2 + 257 + 247 = 506
    assert len(big) == 512
    assert walk_packet(packet6(PROTO_DEST_OPTS, big)).upper_offset == 512
    bigger = options_header(PROTO_UDP, option(SKIP, bytes(255)) + option(SKIP, bytes(253)))
    assert len(bigger) == 520
    assert reason_of(packet6(PROTO_DEST_OPTS, bigger)) is Drop.IPV6_EXTENSIONS_TOO_LONG


def test_options_per_header_limit() -> None:
    header = raw_options_header(PROTO_UDP, option(SKIP) * 15)  # 2 + 30 bytes
    assert walk_packet(packet6(PROTO_DEST_OPTS, header)).upper == PROTO_UDP  # the default is 16
    assert walk_packet(packet6(PROTO_DEST_OPTS, header), Ipv6Limits(options_per_header=15)).upper == PROTO_UDP
    assert reason_of(packet6(PROTO_DEST_OPTS, header), Ipv6Limits(options_per_header=14)) is Drop.IPV6_TOO_MANY_OPTIONS
    too_many = raw_options_header(PROTO_UDP, option(SKIP) * 19)  # 2 + 38 bytes
    assert reason_of(packet6(PROTO_DEST_OPTS, too_many)) is Drop.IPV6_TOO_MANY_OPTIONS


def test_padding_limit() -> None:
    seven = raw_options_header(PROTO_UDP, option(1, bytes(5)) + option(SKIP, bytes(5)))
    assert walk_packet(packet6(PROTO_DEST_OPTS, seven)).upper == PROTO_UDP
    eight = raw_options_header(PROTO_UDP, option(1, bytes(6)) + option(SKIP, bytes(4)))
    assert reason_of(packet6(PROTO_DEST_OPTS, eight)) is Drop.IPV6_EXCESS_PADDING
    pad1_eight = raw_options_header(PROTO_UDP, bytes(8) + option(SKIP, bytes(4)))
    assert reason_of(packet6(PROTO_DEST_OPTS, pad1_eight)) is Drop.IPV6_EXCESS_PADDING
    # padding is counted per run: an option in between starts a new one
    split = raw_options_header(PROTO_UDP, bytes(6) + option(SKIP) + option(1, bytes(4)))
    assert walk_packet(packet6(PROTO_DEST_OPTS, split)).upper == PROTO_UDP
    assert walk_packet(packet6(PROTO_DEST_OPTS, split), Ipv6Limits(padding_bytes=6)).upper == PROTO_UDP
    assert reason_of(packet6(PROTO_DEST_OPTS, split), Ipv6Limits(padding_bytes=5)) is Drop.IPV6_EXCESS_PADDING


def _skim(packet: bytes, max_headers: int = 9) -> tuple[int, int] | None:
    header, _ = parse_ipv6(packet)
    return skim_to_upper(header, memoryview(packet), max_headers)


def test_skimming_finds_the_upper_layer_by_length_bytes_alone() -> None:
    icmp = bytes((128, 0, 0, 0))
    assert _skim(packet6(PROTO_ICMPV6, icmp)) == (PROTO_ICMPV6, 40)
    behind = options_header(PROTO_ICMPV6, bytes((0x81, 0))) + icmp  # an option walk would refuse (action 10)
    assert _skim(packet6(PROTO_DEST_OPTS, behind)) == (PROTO_ICMPV6, 48)
    first = struct.pack("!BxHI", PROTO_ICMPV6, 0 | 1, 7) + icmp  # a first fragment: headers go on behind it
    assert _skim(packet6(PROTO_FRAGMENT, first)) == (PROTO_ICMPV6, 48)


def test_skimming_stops_at_fragment_data_the_packet_end_and_the_header_bound() -> None:
    later = struct.pack("!BxHI", PROTO_ICMPV6, 8, 7) + bytes(8)  # offset 8: behind it is data, not a header
    assert _skim(packet6(PROTO_FRAGMENT, later)) is None
    assert _skim(packet6(PROTO_DEST_OPTS, bytes((PROTO_ICMPV6, 4)))) is None  # runs past the end
    chain = options_header(PROTO_DEST_OPTS) + options_header(PROTO_DEST_OPTS) + options_header(PROTO_ICMPV6) + \
        bytes((128, 0, 0, 0))
    assert _skim(packet6(PROTO_DEST_OPTS, chain), max_headers=4) == (PROTO_ICMPV6, 64)
    assert _skim(packet6(PROTO_DEST_OPTS, chain), max_headers=3) == (PROTO_ICMPV6, 64)
    assert _skim(packet6(PROTO_DEST_OPTS, chain), max_headers=2) == (PROTO_DEST_OPTS, 56)  # undetermined
