"""The IPv4 side of the stack against the findings of the IPv4 audit: what an attacker could learn or make us do
with frames it builds itself (identification, oversize reassembly, time exceeded, link-broadcast delivery)."""

from __future__ import annotations

import itertools
import random
import struct

import pytest

from netstack import icmp as icmp_codec
from netstack.addresses import LIMITED_BROADCAST
from netstack.config import parse_static
from netstack.ethernet import parse_frame
from netstack.ipv4 import Ipv4Header, parse_ipv4
from netstack.limits import DEFAULT_STACK_LIMITS, IPV4_IDENT_BUCKETS
from netstack.reasons import Drop
from netstack.stack import Stack, StackConfig
from tests.netstack.builders import (
    BROADCAST_MAC,
    FAR,
    OTHER_MAC,
    PEER,
    PEER_MAC,
    US,
    US_MAC,
    arp,
    eth,
    icmp,
    ip_frame,
    ipv4,
    make_stack,
    teach_peer,
    udp,
)
from tests.netstack.test_stack import FakeTcp


def ip_sent(stack: Stack, now: float | None = None) -> list[tuple[bytes, Ipv4Header, bytes]]:
    """(destination MAC, header, payload) of every IPv4 frame the stack sends now."""
    out = []
    for frame in stack.take_frames(now):
        parsed = parse_frame(frame)
        if parsed.ethertype == 0x0800:
            header, payload = parse_ipv4(bytes(parsed.payload))
            out.append((parsed.dst, header, bytes(payload)))
    return out


def started(secret: bytes | None = None, seed: int = 7) -> Stack:
    stack = Stack(StackConfig(US_MAC, parse_static("10.0.0.2/24,gw=10.0.0.1"), ipv6_secret=secret), None,
                  rng=random.Random(seed))  # fmt: skip
    stack.start(0.0)
    stack.take_frames()
    teach_peer(stack)
    return stack


# --- identification (RFC 6274 §3.5, RFC 7739 spirit) ------------------------------------------------------------


def udp_idents(stack: Stack, dst: bytes, count: int, now: float = 1.0) -> list[int]:
    """The IDs of `count` UDP datagrams (no DF: each may be fragmented on its way) we send to `dst`."""
    idents = []
    for _ in range(count):
        stack.udp_send(now, dst, 5000, 9, b"x")
        ((_, header, _),) = ip_sent(stack, now)
        idents.append(header.ident)
    return idents


def test_identifications_to_one_destination_do_not_repeat_within_two_to_the_sixteen() -> None:
    """RFC 6864 §4.2: no repeated ID to one destination while an earlier datagram may still be in its reassembly
    queue (review-s26b R6). A keyed hash per datagram repeats by the birthday bound: in 2^16 datagrams, almost
    surely (and in the first 2000, with probability 1 - exp(-2000 * 1999 / 2 / 2^16) > 1 - 10^-13)."""
    idents = udp_idents(started(), PEER, 0x10000)
    assert len(set(idents)) == 0x10000
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(idents))  # RFC 7739 §5.3: a counter


def test_our_traffic_to_someone_else_leaves_no_trace_in_the_identifications_a_prober_sees() -> None:
    """The idle scan (RFC 6274 §3.5): a prober reads how many datagrams we sent between two of its probes from
    the gap between their IDs. Two stacks with one key, one of which sends to others in between, show the prober
    the same IDs. (Someone else sharing the prober's bucket would move them; with this key none of these does.)"""
    quiet, busy = started(secret=bytes(range(32))), started(secret=bytes(range(32)))
    assert udp_idents(quiet, PEER, 3) == udp_idents(busy, PEER, 3)
    for host in range(1, 40):
        udp_idents(busy, bytes([198, 51, 100, host]), 5)
    udp_idents(busy, FAR, 50)
    assert udp_idents(quiet, PEER, 3) == udp_idents(busy, PEER, 3)


def test_the_identifications_depend_on_the_key_and_the_destination() -> None:
    """Whoever knows the IDs we send it cannot tell those we send to another, nor those another key gives."""
    stack = started(secret=bytes(range(32)))
    assert udp_idents(stack, PEER, 4) != udp_idents(stack, FAR, 4)
    assert udp_idents(started(secret=bytes(32)), PEER, 4) != udp_idents(started(secret=bytes(range(32))), PEER, 4)


def test_the_identification_state_is_bounded_whatever_the_destinations() -> None:
    stack = started()
    for i in range(3000):
        stack.udp_send(1.0, bytes([198, 18, i >> 8, i & 0xFF]), 5000, 9, b"x")
        stack.take_frames(1.0)
    assert len(stack._ident_counters) == IPV4_IDENT_BUCKETS


def test_atomic_datagrams_do_not_advance_the_identification() -> None:
    """RFC 6864 §4.1: a DF datagram's ID means nothing, so a TCP burst must not wrap the counter under a
    fragmented datagram the peer may still be reassembling."""
    stack = started()
    (before,) = udp_idents(stack, PEER, 1)
    stack._send_ip(1.0, PEER, 17, bytes(8), dont_fragment=True)
    ((_, header, _),) = ip_sent(stack, 1.0)
    assert header.dont_fragment
    assert header.ident == before
    assert udp_idents(stack, PEER, 1) == [(before + 1) & 0xFFFF]


def test_fragments_of_one_datagram_share_one_identification() -> None:
    stack = started()
    stack.frame_received(1.0, ip_frame(PEER, 17, udp(PEER, US, 1000, 999, b"hi")))  # port unreachable: one ident
    message = icmp(8, 0, b"\x00\x01\x00\x01", bytes(4000))
    for start in range(0, len(message), 1480):
        more = 0x2000 if start + 1480 < len(message) else 0
        stack.frame_received(1.0, ip_frame(PEER, 1, message[start : start + 1480], ident=5, flags=more, offset=start))
    sent = ip_sent(stack)
    assert len(sent) == 4
    assert len({header.ident for _, header, _ in sent[1:]}) == 1


# --- reassembled size (RFC 791) -------------------------------------------------------------------------------


def test_a_reassembled_echo_over_65535_bytes_is_not_answered() -> None:
    stack = started()
    body = icmp(8, 0, struct.pack("!HH", 1, 1), bytes(65515 - 8))
    for start in range(0, len(body), 1480):
        chunk = body[start : start + 1480]
        more = 0x2000 if start + 1480 < len(body) else 0
        options = b"\x01" * 40 if start == 0 else b""
        packet = ipv4(PEER, US, 1, chunk, ident=77, flags=more, offset=start, options=options)
        stack.frame_received(1.0, eth(US_MAC, PEER_MAC, 0x0800, packet))
    assert ip_sent(stack) == []
    assert stack.counters[Drop.IPV4_OVERSIZE] == 1


# --- gateways and ARP senders that are no host ----------------------------------------------------------------


def test_a_forged_arp_with_our_own_mac_does_not_point_the_gateway_at_ourselves() -> None:
    stack = started()
    stack.frame_received(3.0, eth(BROADCAST_MAC, US_MAC, 0x0806, arp(1, US_MAC, PEER, bytes(6), PEER)))
    assert stack.neighbours.lookup(PEER, 3.0) == PEER_MAC
    assert stack.counters[Drop.ARP_OWN_SENDER] == 1
    stack.udp_send(3.1, FAR, 5000, 53, b"q")
    ((mac, _, _),) = ip_sent(stack)
    assert mac == PEER_MAC


def test_an_arp_reply_for_the_subnet_broadcast_address_is_not_cached() -> None:
    stack = started()
    broadcast = bytes([10, 0, 0, 255])
    stack.frame_received(1.0, eth(US_MAC, OTHER_MAC, 0x0806, arp(2, OTHER_MAC, broadcast, US_MAC, US)))
    assert stack.neighbours.lookup(broadcast, 1.0) is None
    assert stack.counters[Drop.ARP_BAD_SENDER] == 1


# --- time exceeded after a reassembly timeout (RFC 1122 §3.3.2) -------------------------------------------------

TIMEOUT = DEFAULT_STACK_LIMITS.reassembly.timeout


def first_fragment(*, ident: int = 9, dst: bytes = US, dst_mac: bytes = US_MAC) -> bytes:
    datagram = udp(PEER, dst, 1000, 999, bytes(100))
    return eth(dst_mac, PEER_MAC, 0x0800, ipv4(PEER, dst, 17, datagram[:64], ident=ident, flags=0x2000))


def expire(stack: Stack) -> list[tuple[bytes, Ipv4Header, bytes]]:
    for t in (10.0, 1.0 + TIMEOUT, 40.0):
        stack.timers_expired(t)
    return ip_sent(stack)


def test_a_reassembly_timeout_after_fragment_zero_sends_time_exceeded_quoting_it() -> None:
    stack = started()
    frame = first_fragment()
    stack.frame_received(1.0, frame)
    ((mac, header, payload),) = expire(stack)
    assert (mac, header.src, header.dst, header.protocol) == (PEER_MAC, US, PEER, 1)
    message = icmp_codec.parse_icmp(payload)
    assert (message.type, message.code) == (icmp_codec.TIME_EXCEEDED, 1)
    assert bytes(message.body) == frame[14:]  # the whole first fragment: header and all 64 bytes
    assert stack.counters[Drop.FRAG_TIMEOUT] == 1


def test_no_time_exceeded_without_fragment_zero() -> None:
    stack = started()
    datagram = udp(PEER, US, 1000, 999, bytes(100))
    stack.frame_received(1.0, ip_frame(PEER, 17, datagram[64:], ident=9, offset=64))
    assert expire(stack) == []
    assert stack.counters[Drop.FRAG_TIMEOUT] == 1


def test_no_time_exceeded_for_a_first_fragment_in_a_link_broadcast_or_to_a_broadcast_address() -> None:
    stack = started()
    stack.frame_received(1.0, first_fragment(ident=1, dst_mac=BROADCAST_MAC))
    stack.frame_received(1.0, first_fragment(ident=2, dst=bytes([10, 0, 0, 255]), dst_mac=BROADCAST_MAC))
    stack.frame_received(1.0, first_fragment(ident=3, dst=LIMITED_BROADCAST, dst_mac=BROADCAST_MAC))
    assert expire(stack) == []
    assert stack.counters[Drop.FRAG_TIMEOUT] == 3


def first_icmp_fragment(icmp_type: int, *, ident: int = 9) -> bytes:
    """Fragment zero (MF set, 64 bytes) of an ICMP message of `icmp_type` to us, whose rest never comes."""
    message = icmp(icmp_type, 0, bytes(4), bytes(100))
    return eth(US_MAC, PEER_MAC, 0x0800, ipv4(PEER, US, 1, message[:64], ident=ident, flags=0x2000))


@pytest.mark.parametrize("icmp_type", sorted(icmp_codec.SUPPRESSES_ERRORS))
def test_no_time_exceeded_about_a_fragmented_icmp_error(icmp_type: int) -> None:
    """RFC 1122 §3.2.2: no ICMP error about an ICMP error message (review-s26b R4), fragmented or not."""
    stack = started()
    stack.frame_received(1.0, first_icmp_fragment(icmp_type))
    assert expire(stack) == []
    assert stack.counters[Drop.FRAG_TIMEOUT] == 1


def test_a_fragmented_echo_request_still_gets_its_time_exceeded() -> None:
    stack = started()
    frame = first_icmp_fragment(icmp_codec.ECHO_REQUEST)
    stack.frame_received(1.0, frame)
    ((_, header, payload),) = expire(stack)
    message = icmp_codec.parse_icmp(payload)
    assert (header.dst, message.type, message.code) == (PEER, icmp_codec.TIME_EXCEEDED, 1)
    assert bytes(message.body) == frame[14:]


def test_time_exceeded_is_rate_limited_like_every_error() -> None:
    stack = started()
    count = int(DEFAULT_STACK_LIMITS.icmp.error_burst) + 5
    for ident in range(count):
        stack.frame_received(1.0, first_fragment(ident=ident))
    assert len(expire(stack)) == DEFAULT_STACK_LIMITS.icmp.error_burst
    assert stack.counters[Drop.ICMP_ERROR_RATE_LIMITED] == 5


# --- unicast datagrams in link-layer broadcast frames (RFC 1122 §3.3.6) ----------------------------------------


def test_an_echo_to_our_address_in_a_link_broadcast_frame_is_not_answered() -> None:
    stack = started()
    stack.frame_received(1.0, eth(BROADCAST_MAC, PEER_MAC, 0x0800, ipv4(PEER, US, 1, icmp(8, 0, b"\0\1\0\1", b"abc"))))
    assert ip_sent(stack) == []
    assert stack.counters[Drop.IPV4_UNICAST_LINK_BROADCAST] == 1
    stack.frame_received(1.0, ip_frame(PEER, 1, icmp(8, 0, b"\0\1\0\1", b"abc")))  # the same to our MAC is answered
    assert len(ip_sent(stack)) == 1


def test_a_tcp_segment_cannot_reach_tcp_through_a_fragment_in_a_link_broadcast_frame() -> None:
    tcp = FakeTcp()
    stack = make_stack(tcp=tcp)
    teach_peer(stack)
    segment = bytes(40)
    first = ipv4(PEER, US, 6, segment[:24], ident=5, flags=0x2000)
    stack.frame_received(1.0, eth(BROADCAST_MAC, PEER_MAC, 0x0800, first))
    stack.frame_received(1.1, ip_frame(PEER, 6, segment[24:], ident=5, offset=24))
    assert tcp.segments == []
    assert stack.counters[Drop.IPV4_UNICAST_LINK_BROADCAST] == 1
    stack.frame_received(1.2, ip_frame(PEER, 6, segment[:24], ident=6, flags=0x2000))  # both to our MAC: delivered
    stack.frame_received(1.3, ip_frame(PEER, 6, segment[24:], ident=6, offset=24))
    assert [s for _, _, _, s in tcp.segments] == [segment]


def test_a_unicast_udp_datagram_in_a_link_broadcast_frame_is_discarded_but_dhcp_to_the_client_port_is_not() -> None:
    stack = started()
    seen: list[bytes] = []
    stack.udp_bind(5000, lambda now, src, sport, dst, payload: seen.append(bytes(payload)))
    stack.udp_bind(68, lambda now, src, sport, dst, payload: seen.append(bytes(payload)))
    for port in (5000, 68):
        datagram = udp(PEER, US, 67, port, b"hi")
        stack.frame_received(1.0, eth(BROADCAST_MAC, PEER_MAC, 0x0800, ipv4(PEER, US, 17, datagram)))
    assert seen == [b"hi"]
    assert stack.counters[Drop.IPV4_UNICAST_LINK_BROADCAST] == 1
