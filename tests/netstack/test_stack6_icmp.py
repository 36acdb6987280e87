"""stack6 through the whole Stack: ICMPv6 echo and errors, extension-header attacks, fragments, errors to TCP."""

from __future__ import annotations

import random
import struct

import pytest

from netstack.config import StaticIp
from netstack.limits import Ipv6Limits, StackLimits
from netstack.reasons import Drop
from netstack.stack import Stack, StackConfig
from tests.netstack.builders import PEER, PEER_MAC, US, US_MAC, ip_frame
from tests.netstack.builders6 import (
    ALL_NODES,
    FAR6,
    PEER6,
    PREFIX,
    PROTO_DEST,
    PROTO_FRAGMENT,
    PROTO_HOP,
    PROTO_ICMPV6,
    PROTO_ROUTING,
    PROTO_TCP,
    PROTO_UDP,
    STATIC,
    US_STATIC,
    Sent,
    eth6,
    fragment_header,
    fragments,
    icmp6,
    icmp_frame,
    ipv6,
    mmac,
    options_header,
    ready_with_peer,
    routing_header,
    run_until,
    sent6,
    udp6,
)
from tests.netstack.test_stack import FakeTcp

ECHO = icmp6(128, 0, b"\x00\x01\x00\x01ping", PEER6, US_STATIC)


def _send(stack: Stack, packet: bytes, *, dst_mac: bytes = US_MAC, now: float = 3.0) -> list[Sent]:
    stack.frame_received(now, eth6(dst_mac, PEER_MAC, packet))
    return sent6(stack.take_frames(now))


def _error(out: list[Sent], type_: int, code: int) -> Sent:
    (error,) = out
    assert error.icmp_type == type_
    assert error.icmp_code == code
    assert error.checksum_ok()
    assert error.dst == PEER6
    assert error.dst_mac == PEER_MAC
    assert len(error.payload) + 40 <= 1280
    return error


def test_echo_is_rate_limited() -> None:
    stack = ready_with_peer()
    replies = sum(len(_send(stack, ipv6(PEER6, US_STATIC, PROTO_ICMPV6, ECHO))) for _ in range(200))
    assert replies == 50  # the burst
    assert stack.counters[Drop.ICMPV6_ECHO_RATE_LIMITED] == 150


def test_large_echo_from_fragments_answered_with_fragments_that_reassemble() -> None:
    stack = ready_with_peer()
    data = bytes(range(256)) * 12
    request = icmp6(128, 0, struct.pack("!HH", 7, 9) + data, PEER6, US_STATIC)
    out: list[Sent] = []
    for piece in fragments(PEER6, US_STATIC, PROTO_ICMPV6, request, size=1232, ident=0x1234):
        out += _send(stack, piece)
    assert len(out) == 3
    assert all(s.next_header == PROTO_FRAGMENT and len(s.payload) + 40 <= 1500 for s in out)
    idents = {s.payload[4:8] for s in out}
    assert len(idents) == 1
    joined = b""
    for s in sorted(out, key=lambda s: struct.unpack("!H", s.payload[2:4])[0] & 0xFFF8):
        offset = struct.unpack("!H", s.payload[2:4])[0] & 0xFFF8
        assert offset == len(joined)
        assert s.payload[0] == PROTO_ICMPV6
        joined += s.payload[8:]
    assert joined[0] == 129
    assert joined[4:] == struct.pack("!HH", 7, 9) + data
    whole = Sent(out[0].dst_mac, out[0].src_mac, 64, PROTO_ICMPV6, US_STATIC, PEER6, joined)
    assert whole.checksum_ok()


def test_echo_to_a_multicast_group_is_not_answered() -> None:
    stack = ready_with_peer()
    assert _send(stack, ipv6(PEER6, ALL_NODES, PROTO_ICMPV6, icmp6(128, 0, b"\0\1\0\1", PEER6, ALL_NODES)),
                 dst_mac=mmac(ALL_NODES)) == []
    assert stack.counters[Drop.ICMPV6_ECHO_MULTICAST] == 1


def test_parameter_problem_for_an_unknown_next_header() -> None:
    stack = ready_with_peer()
    packet = ipv6(PEER6, US_STATIC, PROTO_DEST, options_header(253, b"") + b"payload!")
    error = _error(_send(stack, packet), 4, 1)
    assert struct.unpack("!I", error.payload[4:8])[0] == 40  # the dest-options header's next-header field
    assert error.payload[8:] == packet
    assert stack.counters[Drop.IPV6_UNKNOWN_NEXT_HEADER] == 1
    # directly behind the fixed header: pointer 6
    error = _error(_send(stack, ipv6(PEER6, US_STATIC, 253, b"x" * 8)), 4, 1)
    assert struct.unpack("!I", error.payload[4:8])[0] == 6


UNKNOWN_10 = bytes((0x9E, 2, 0, 0))  # action 10: discard, error even to multicast
UNKNOWN_11 = bytes((0xDE, 2, 0, 0))  # action 11: discard, error only to unicast
UNKNOWN_01 = bytes((0x5E, 2, 0, 0))  # action 01: discard silently
UNKNOWN_00 = bytes((0x1E, 2, 0, 0))  # action 00: skip


def _with_option(option: bytes, dst: bytes, header: int = PROTO_DEST) -> bytes:
    src = PEER6
    body = icmp6(128, 0, b"\0\1\0\1", src, dst)
    return ipv6(src, dst, header, options_header(PROTO_ICMPV6, option) + body)


def test_unknown_option_actions() -> None:
    stack = ready_with_peer()
    error = _error(_send(stack, _with_option(UNKNOWN_10, US_STATIC)), 4, 2)
    assert struct.unpack("!I", error.payload[4:8])[0] == 42
    error = _error(_send(stack, _with_option(UNKNOWN_11, US_STATIC, PROTO_HOP)), 4, 2)
    assert struct.unpack("!I", error.payload[4:8])[0] == 42
    assert _send(stack, _with_option(UNKNOWN_01, US_STATIC)) == []
    (reply,) = _send(stack, _with_option(UNKNOWN_00, US_STATIC))
    assert reply.icmp_type == 129
    # to a multicast group: action 10 is answered anyway (RFC 4443 §2.4(e.3)), 11 is not
    error = _error(_send(stack, _with_option(UNKNOWN_10, ALL_NODES), dst_mac=mmac(ALL_NODES)), 4, 2)
    assert error.src == US_STATIC
    assert _send(stack, _with_option(UNKNOWN_11, ALL_NODES), dst_mac=mmac(ALL_NODES)) == []
    assert stack.counters[Drop.IPV6_UNKNOWN_OPTION] == 5
    assert stack.counters[Drop.INTERNAL_ERROR] == 0


def test_routing_header_with_segments_left() -> None:
    stack = ready_with_peer()
    packet = ipv6(PEER6, US_STATIC, PROTO_ROUTING, routing_header(PROTO_ICMPV6, 0, 1) + ECHO)
    error = _error(_send(stack, packet), 4, 0)
    assert struct.unpack("!I", error.payload[4:8])[0] == 42
    assert stack.counters[Drop.IPV6_ROUTING_HEADER] == 1
    # segments left 0: ignored, the echo is answered
    (reply,) = _send(stack, ipv6(PEER6, US_STATIC, PROTO_ROUTING, routing_header(PROTO_ICMPV6, 0, 0) + ECHO))
    assert reply.icmp_type == 129


def test_port_unreachable_for_a_closed_udp_port() -> None:
    stack = ready_with_peer()
    packet = ipv6(PEER6, US_STATIC, PROTO_UDP, udp6(PEER6, US_STATIC, 5000, 9, b"hello"))
    error = _error(_send(stack, packet), 1, 4)
    assert error.payload[8:] == packet
    assert stack.counters[Drop.UDP_PORT_CLOSED] == 1
    # to a group, or to our address in a link-layer multicast frame: silence
    to_group = ipv6(PEER6, ALL_NODES, PROTO_UDP, udp6(PEER6, ALL_NODES, 5000, 9, b"hello"))
    assert _send(stack, to_group, dst_mac=mmac(ALL_NODES)) == []
    assert _send(stack, packet, dst_mac=mmac(ALL_NODES)) == []
    assert stack.counters[Drop.UDP_PORT_CLOSED] == 3


def test_no_error_to_the_subnet_router_anycast_address_of_our_prefixes() -> None:
    """RFC 4443 §2.4(e.6), RFC 4291 §2.6.1: 2001:db8:1:: (our static /64) and fe80:: name no single node."""
    stack = ready_with_peer()
    for anycast in (PREFIX, bytes.fromhex("fe80" + "00" * 14)):
        packet = ipv6(anycast, US_STATIC, PROTO_UDP, udp6(anycast, US_STATIC, 5000, 9, b"hello"))
        assert _send(stack, packet) == []
    assert stack.counters[Drop.ICMPV6_ERROR_TO_ANYCAST] == 2
    assert stack.counters[Drop.UDP_PORT_CLOSED] == 2
    # an all-zero identifier in a prefix that is not ours is someone's host address
    other = bytes.fromhex("20010db8000200000000000000000000")
    assert stack.ipv6 is not None
    assert not stack.ipv6.addresses.is_subnet_anycast(other)
    assert not stack.ipv6.addresses.is_subnet_anycast(PEER6)
    assert stack.ipv6.addresses.is_subnet_anycast(PREFIX)


def test_udp_to_a_bound_port_reaches_the_handler() -> None:
    stack = ready_with_peer()
    got: list[tuple[bytes, int, bytes, bytes]] = []
    stack.udp_bind(9, lambda now, src, sport, dst, payload: got.append((src, sport, dst, bytes(payload))))
    assert _send(stack, ipv6(PEER6, US_STATIC, PROTO_UDP, udp6(PEER6, US_STATIC, 5000, 9, b"hello"))) == []
    assert got == [(PEER6, 5000, US_STATIC, b"hello")]
    stack.udp_send(3.0, PEER6, 9, 5000, b"back")
    (out,) = sent6(stack.take_frames(3.0))
    assert out.next_header == PROTO_UDP
    assert out.src == US_STATIC
    assert out.checksum_ok()


def test_no_error_about_an_error() -> None:
    stack = ready_with_peer()
    inner = ipv6(US_STATIC, PEER6, PROTO_UDP, udp6(US_STATIC, PEER6, 1, 2, b""))
    error_msg = icmp6(1, 4, bytes(4) + inner, PEER6, US_STATIC)
    # an error behind an unknown option (action 11): the Parameter Problem is suppressed
    packet = ipv6(PEER6, US_STATIC, PROTO_DEST, options_header(PROTO_ICMPV6, UNKNOWN_11) + error_msg)
    assert _send(stack, packet) == []
    assert stack.counters[Drop.IPV6_UNKNOWN_OPTION] == 1


def test_no_error_when_the_chain_is_too_long_to_tell_whether_it_carries_an_error() -> None:
    """RFC 4443 §2.4(e.1), fail closed: an unknown option (action 10) in the first of ten headers is refused
    before the header bound, and the skim cannot see the ICMPv6 error behind them: no Parameter Problem."""
    stack = ready_with_peer()
    inner = ipv6(US_STATIC, PEER6, PROTO_UDP, udp6(US_STATIC, PEER6, 1, 2, b""))
    chain, nh = icmp6(1, 4, bytes(4) + inner, PEER6, US_STATIC), PROTO_ICMPV6
    for _ in range(9):
        chain, nh = options_header(nh, b"") + chain, PROTO_DEST
    packet = ipv6(PEER6, US_STATIC, PROTO_DEST, options_header(nh, UNKNOWN_10) + chain)
    assert _send(stack, packet) == []
    assert stack.counters[Drop.IPV6_UNKNOWN_OPTION] == 1
    # the same refusal with a short chain to an echo is answered
    short = ipv6(PEER6, US_STATIC, PROTO_DEST, options_header(PROTO_ICMPV6, UNKNOWN_10) + ECHO)
    _error(_send(stack, short), 4, 2)


def test_error_bucket_counts_what_it_refuses() -> None:
    stack = ready_with_peer()
    packet = ipv6(PEER6, US_STATIC, PROTO_UDP, udp6(PEER6, US_STATIC, 5000, 9, b"hello"))
    errors = sum(len(_send(stack, packet)) for _ in range(100))
    assert errors == 20
    assert stack.counters[Drop.ICMPV6_ERROR_RATE_LIMITED] == 80


def test_errors_are_at_most_1280_bytes() -> None:
    stack = ready_with_peer()
    packet = ipv6(PEER6, US_STATIC, PROTO_UDP, udp6(PEER6, US_STATIC, 5000, 9, bytes(1400)))
    error = _error(_send(stack, packet), 1, 4)
    assert len(error.payload) + 40 == 1280
    assert error.payload[8:] == packet[: 1280 - 48]


def test_time_exceeded_after_a_reassembly_timeout() -> None:
    stack = ready_with_peer()
    request = icmp6(128, 0, b"\0\1\0\1" + bytes(3000), PEER6, US_STATIC)
    first = fragments(PEER6, US_STATIC, PROTO_ICMPV6, request, size=1232, ident=77)[0]
    assert _send(stack, first) == []
    _, out = run_until(stack, 40.0, 3.0)
    (error,) = [s for s in sent6(out) if s.next_header == PROTO_ICMPV6 and s.icmp_type == 3]
    assert error.icmp_code == 1
    assert error.dst == PEER6
    assert error.checksum_ok()
    assert error.payload[8:48] == first[:40]  # quotes the first fragment
    assert stack.counters[Drop.INTERNAL_ERROR] == 0


def test_no_time_exceeded_for_a_first_fragment_sent_as_a_link_layer_multicast() -> None:
    """Audit F4, RFC 4443 §2.4(e.4): our unicast address in a frame to 33:33:00:00:00:01; the datagram still
    times out (counted), unanswered. A later fragment alone to a group does not silence it (the first decides)."""
    stack = ready_with_peer()
    request = icmp6(128, 0, b"\0\1\0\1" + bytes(3000), PEER6, US_STATIC)
    first = fragments(PEER6, US_STATIC, PROTO_ICMPV6, request, size=1232, ident=78)[0]
    assert _send(stack, first, dst_mac=mmac(ALL_NODES)) == []
    _, out = run_until(stack, 40.0, 3.0)
    assert [s for s in sent6(out) if s.next_header == PROTO_ICMPV6 and s.icmp_type == 3] == []
    assert stack.counters[Drop.FRAG_TIMEOUT] == 1
    first, second, _ = fragments(PEER6, US_STATIC, PROTO_ICMPV6, request, size=1232, ident=79)
    assert _send(stack, first, now=40.0) == []
    assert _send(stack, second, dst_mac=mmac(ALL_NODES), now=40.0) == []
    _, out = run_until(stack, 80.0, 40.0)
    [error] = [s for s in sent6(out) if s.next_header == PROTO_ICMPV6 and s.icmp_type == 3]
    assert error.payload[8:48] == first[:40]
    assert stack.counters[Drop.FRAG_TIMEOUT] == 2


@pytest.mark.parametrize("multicast_piece", [0, 1])
def test_reassembled_echo_with_a_fragment_sent_as_a_link_layer_multicast_is_not_answered(
        multicast_piece: int) -> None:  # fmt: skip
    """Audit F4's note: the last fragment's frame alone made a reassembled packet unicast; any fragment in a
    link-layer multicast frame now makes it a multicast (no echo reply, as for a whole packet)."""
    stack = ready_with_peer()
    request = icmp6(128, 0, b"\0\1\0\1" + bytes(1300), PEER6, US_STATIC)  # two fragments, one reply
    pieces = fragments(PEER6, US_STATIC, PROTO_ICMPV6, request, size=1232, ident=80)
    out: list[Sent] = []
    for i, piece in enumerate(pieces):
        out += _send(stack, piece, dst_mac=mmac(ALL_NODES) if i == multicast_piece else US_MAC)
    assert out == []
    assert stack.counters[Drop.ICMPV6_ECHO_MULTICAST] == 1
    for piece in fragments(PEER6, US_STATIC, PROTO_ICMPV6, request, size=1232, ident=81):
        out += _send(stack, piece)
    assert [s.icmp_type for s in out if s.next_header == PROTO_ICMPV6] == [129]  # all to our MAC: answered


# --- extension-header attacks -------------------------------------------------------------------------------


def _chain(count: int) -> bytes:
    headers = b""
    for i in range(count):
        nxt = PROTO_DEST if i + 1 < count else PROTO_ICMPV6
        headers += options_header(nxt, b"")
    return headers


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (ipv6(PEER6, US_STATIC, PROTO_ROUTING, routing_header(PROTO_ROUTING, 0, 0)
              + routing_header(PROTO_ICMPV6, 0, 0) + ECHO), Drop.IPV6_REPEATED_EXTENSION),
        (ipv6(PEER6, US_STATIC, PROTO_DEST, _chain(3) + ECHO), Drop.IPV6_REPEATED_EXTENSION),
        (ipv6(PEER6, US_STATIC, PROTO_DEST, options_header(PROTO_ICMPV6, bytes((0x1E, 0)) * 17) + ECHO),
         Drop.IPV6_TOO_MANY_OPTIONS),
        (ipv6(PEER6, US_STATIC, PROTO_DEST, options_header(PROTO_ICMPV6, bytes(8)) + ECHO),
         Drop.IPV6_EXCESS_PADDING),
        (ipv6(PEER6, US_STATIC, PROTO_DEST, bytes((PROTO_ICMPV6, 200)) + bytes(1700)),
         Drop.IPV6_EXTENSIONS_TOO_LONG),
        (ipv6(PEER6, US_STATIC, PROTO_DEST, bytes((PROTO_ICMPV6, 1, 1, 12)) + bytes(12) + ECHO),
         Drop.IPV6_EXCESS_PADDING),
        (ipv6(PEER6, US_STATIC, PROTO_DEST, bytes((PROTO_ICMPV6, 4)) + bytes(30)), Drop.IPV6_EXTENSION_TRUNCATED),
        (ipv6(PEER6, US_STATIC, PROTO_DEST, bytes((PROTO_ICMPV6,))), Drop.IPV6_EXTENSION_TRUNCATED),
        (ipv6(PEER6, US_STATIC, PROTO_DEST, bytes((PROTO_ICMPV6, 0, 1, 9, 0, 0, 0, 0))),
         Drop.IPV6_BAD_OPTION),
        (ipv6(PEER6, US_STATIC, PROTO_DEST, options_header(PROTO_HOP, b"") + options_header(PROTO_ICMPV6, b"")
              + ECHO), Drop.IPV6_HOP_BY_HOP_NOT_FIRST),
        (ipv6(PEER6, US_STATIC, PROTO_ICMPV6, ECHO, length=len(ECHO) + 8), Drop.IPV6_BAD_PAYLOAD_LENGTH),
        (ipv6(PEER6, US_STATIC, PROTO_DEST, options_header(PROTO_ICMPV6, b"") + ECHO[:-1] + b"\xff"),
         Drop.ICMPV6_BAD_CHECKSUM),
    ],
)
def test_extension_header_attacks_are_counted_drops(packet: bytes, reason: Drop) -> None:
    stack = ready_with_peer()
    out = _send(stack, packet)
    assert stack.counters[reason] == 1
    assert all(s.icmp_type == 4 for s in out)  # at most a Parameter Problem
    assert stack.counters[Drop.INTERNAL_ERROR] == 0


def test_too_many_extension_headers_with_a_lower_limit() -> None:
    tight = StackLimits(ipv6=Ipv6Limits(extension_headers=2))
    stack = Stack(StackConfig(US_MAC, StaticIp(US, 24), limits=tight, ipv6=STATIC, ipv6_secret=bytes(32)), None,
                  rng=random.Random(1))
    stack.start(0.0)
    run_until(stack, 3.0)
    chain = options_header(PROTO_ROUTING, b"") + routing_header(PROTO_DEST, 0, 0) + options_header(PROTO_ICMPV6, b"")
    stack.frame_received(3.0, eth6(US_MAC, PEER_MAC, ipv6(PEER6, US_STATIC, PROTO_HOP, chain + ECHO)))
    assert stack.counters[Drop.IPV6_TOO_MANY_EXTENSIONS] == 1
    assert stack.counters[Drop.INTERNAL_ERROR] == 0


def test_long_padding_and_many_headers() -> None:
    stack = ready_with_peer()
    long_options = options_header(PROTO_ICMPV6, bytes((1, 253)) + bytes(253))  # PadN 255 bytes
    _send(stack, ipv6(PEER6, US_STATIC, PROTO_DEST, long_options + ECHO))
    assert stack.counters[Drop.IPV6_EXCESS_PADDING] == 1
    many = b"".join(options_header(PROTO_DEST if i < 99 else PROTO_ICMPV6, bytes((0x1E, 0))) for i in range(100))
    _send(stack, ipv6(PEER6, US_STATIC, PROTO_DEST, many + ECHO))
    assert stack.counters[Drop.IPV6_REPEATED_EXTENSION] == 1
    assert stack.counters[Drop.INTERNAL_ERROR] == 0


# --- fragments -------------------------------------------------------------------------------------------------


def test_overlapping_fragments_are_dropped() -> None:
    stack = ready_with_peer()
    request = icmp6(128, 0, b"\0\1\0\1" + bytes(100), PEER6, US_STATIC)
    a = ipv6(PEER6, US_STATIC, PROTO_FRAGMENT, fragment_header(PROTO_ICMPV6, 0, True, 5) + request[:64])
    b = ipv6(PEER6, US_STATIC, PROTO_FRAGMENT, fragment_header(PROTO_ICMPV6, 56, False, 5) + request[56:])
    assert _send(stack, a) == []
    assert _send(stack, b) == []
    assert stack.counters[Drop.FRAG_OVERLAP] >= 1


def test_atomic_fragment_processed_at_once_without_disturbing_a_reassembly() -> None:
    stack = ready_with_peer()
    request = icmp6(128, 0, b"\0\1\0\2" + bytes(1600), PEER6, US_STATIC)
    first, second = fragments(PEER6, US_STATIC, PROTO_ICMPV6, request, size=1232, ident=9)
    assert _send(stack, first) == []
    atomic = ipv6(PEER6, US_STATIC, PROTO_FRAGMENT, fragment_header(PROTO_ICMPV6, 0, False, 9) + ECHO)
    (reply,) = _send(stack, atomic)
    assert reply.icmp_type == 129
    assert reply.payload[4:] == b"\x00\x01\x00\x01ping"
    out = _send(stack, second)
    assert len(out) == 2  # the big reply, in two fragments
    assert stack.counters[Drop.INTERNAL_ERROR] == 0


def test_tiny_first_fragment_without_the_whole_chain() -> None:
    stack = ready_with_peer()
    dest = options_header(PROTO_ICMPV6, bytes((0x1E, 20)) + bytes(20))  # 24 bytes
    upper = dest + ECHO + bytes(64)
    first = ipv6(PEER6, US_STATIC, PROTO_FRAGMENT, fragment_header(PROTO_DEST, 0, True, 11) + upper[:16])
    out = _send(stack, first)
    assert stack.counters[Drop.IPV6_INCOMPLETE_CHAIN] == 1
    error = _error(out, 4, 3)
    assert struct.unpack("!I", error.payload[4:8])[0] == 0


def test_fragment_flood_bounded_by_the_budget_shared_with_ipv4() -> None:
    stack = ready_with_peer()
    for i in range(300):
        piece = ipv6(PEER6, US_STATIC, PROTO_FRAGMENT, fragment_header(PROTO_UDP, 0, True, 1000 + i) + bytes(1024))
        _send(stack, piece)
        stack.frame_received(3.0, ip_frame(PEER, 17, bytes(1024), dst=US, ident=i, flags=0x2000))
    stats = stack.stats()
    assert stats["reassembly-datagrams"] <= 64
    assert stats["reassembly-bytes"] <= 256 * 1024
    assert stack.counters[Drop.INTERNAL_ERROR] == 0
    assert sum(v for k, v in stack.counters.as_dict().items() if k.startswith("frag")) > 0


# --- ICMPv6 errors to TCP ------------------------------------------------------------------------------------


def test_packet_too_big_about_our_tcp_reaches_the_segment_layer() -> None:
    tcp = FakeTcp()
    stack = ready_with_peer(tcp)
    quoted = ipv6(US_STATIC, FAR6, PROTO_TCP, struct.pack("!HHII", 443, 5555, 1, 0) + bytes(12))
    stack.frame_received(3.0, icmp_frame(PEER6, US_STATIC, 2, 0, struct.pack("!I", 1400) + quoted))
    assert tcp.errors == [(2, 0, quoted, 1400)]
    # below the IPv6 minimum: reaches TCP as it is, which refuses it and counts it (RFC 8201 §4; tested in
    # tests/netstack/tcp/test_icmp6.py)
    stack.frame_received(3.0, icmp_frame(PEER6, US_STATIC, 2, 0, struct.pack("!I", 600) + quoted))
    assert tcp.errors[-1][3] == 600
    # quoting an address not ours
    other = ipv6(PEER6, FAR6, PROTO_TCP, struct.pack("!HHII", 443, 5555, 1, 0) + bytes(12))
    stack.frame_received(3.0, icmp_frame(PEER6, US_STATIC, 2, 0, struct.pack("!I", 1400) + other))
    assert stack.counters[Drop.ICMPV6_ERROR_NOT_OURS] == 1
    stack.frame_received(3.0, icmp_frame(PEER6, US_STATIC, 2, 0, struct.pack("!I", 1400) + quoted[:20]))
    assert stack.counters[Drop.ICMPV6_BAD_QUOTE] == 1
    assert len(tcp.errors) == 2


def test_tcp_segments_only_from_unicast_frames_to_a_usable_address() -> None:
    tcp = FakeTcp()
    stack = ready_with_peer(tcp)
    segment = struct.pack("!HHIIBBHHH", 5555, 443, 1, 0, 0x50, 0x02, 65535, 0, 0)
    stack.frame_received(3.0, eth6(US_MAC, PEER_MAC, ipv6(PEER6, US_STATIC, PROTO_TCP, segment)))
    assert [(s, d) for _, s, d, _ in tcp.segments] == [(PEER6, US_STATIC)]
    stack.frame_received(3.0, eth6(mmac(ALL_NODES), PEER_MAC, ipv6(PEER6, US_STATIC, PROTO_TCP, segment)))
    assert stack.counters[Drop.TCP_NOT_UNICAST] == 1
    stack.frame_received(3.0, eth6(US_MAC, PEER_MAC, ipv6(FAR6, US_STATIC, PROTO_TCP, segment)))
    assert stack.counters[Drop.TCP_NO_ROUTE_BACK] == 1  # no default router
    assert len(tcp.segments) == 1
    tcp.outgoing.append((PEER6, US_STATIC, segment))  # a source not ours
    stack.take_frames(3.0)
    assert stack.counters[Drop.IPV6_TX_BAD_SOURCE] == 1
