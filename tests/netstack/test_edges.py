"""The edges of the netstack's codecs, reassembly and stack that the main tests pass by: bounds reached,
inputs refused, entries forgotten. Each test states what a broken implementation would get wrong."""

from __future__ import annotations

import dataclasses
import random

import pytest

from netstack import addresses, icmp, udp
from netstack.config import UseDhcp, parse_static
from netstack.ethernet import parse_frame
from netstack.ipv4 import FLAG_MF, check_options, parse_ipv4
from netstack.limits import DEFAULT_STACK_LIMITS, ReassemblyLimits
from netstack.reasons import Counters, Drop
from netstack.reassembly import Reassembler
from netstack.stack import Stack, StackConfig
from tests.netstack.builders import (
    BROADCAST_MAC,
    PEER,
    PEER_MAC,
    US,
    US_MAC,
    eth,
    ip_frame,
    ipv4,
    make_stack,
    textbook_sum,
)
from tests.netstack.builders import (
    icmp as icmp_message,
)
from tests.netstack.builders import (
    udp as udp_datagram,
)
from tests.netstack.test_reassembly import DATA, feed, fragment, pieces

# -- addresses and codecs -------------------------------------------------------------------------------------


def test_mac_text_round_trip_and_refusals() -> None:
    mac = bytes.fromhex("02ab000000ff")
    assert addresses.mac_to_text(mac) == "02:ab:00:00:00:ff"
    assert addresses.mac_from_text("02:AB:00:00:00:ff") == mac
    for bad in ("02:ab:00:00:00", "02:ab:00:00:00:ff:01", "2:ab:00:00:00:ff", "02-ab-00-00-00-ff"):
        with pytest.raises(ValueError, match="MAC"):
            addresses.mac_from_text(bad)


def test_ip_to_text() -> None:
    assert addresses.ip_to_text(bytes([192, 0, 2, 255])) == "192.0.2.255"
    assert addresses.ip_to_text(bytes(4)) == "0.0.0.0"
    for wrong in (b"", bytes(3), bytes(16)):
        with pytest.raises(ValueError, match="4 bytes"):
            addresses.ip_to_text(wrong)


def test_icmp_rest_of_header_is_four_bytes() -> None:
    with pytest.raises(ValueError, match="4 bytes"):
        icmp.serialize_icmp(icmp.ECHO_REPLY, 0, b"\x00" * 3, b"")
    message = icmp.serialize_icmp(icmp.ECHO_REPLY, 0, b"\x12\x34\x00\x01", b"ping")
    parsed = icmp.parse_icmp(memoryview(message))  # its own checksum verifies
    assert (parsed.type, parsed.rest, bytes(parsed.body)) == (icmp.ECHO_REPLY, b"\x12\x34\x00\x01", b"ping")


@pytest.mark.parametrize(("src_port", "dst_port", "size"), [(-1, 7, 0), (65536, 7, 0), (1, 0, 0), (1, 7, 65528)])
def test_udp_serialize_refuses_out_of_range(src_port: int, dst_port: int, size: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        udp.serialize_udp(US, PEER, src_port, dst_port, bytes(size))


def test_udp_checksum_zero_is_sent_as_all_ones() -> None:
    """RFC 768: a computed checksum of 0 goes on the wire as 0xFFFF (0 would mean "no checksum")."""
    length = 8 + 2
    pseudo = US + PEER + bytes([0, 17]) + length.to_bytes(2, "big")
    rest = textbook_sum(pseudo + (1000).to_bytes(2, "big") + (2000).to_bytes(2, "big") + length.to_bytes(2, "big"))
    payload = (0xFFFF - rest).to_bytes(2, "big")  # makes the one's-complement sum 0xFFFF: its complement is 0
    datagram = udp.serialize_udp(US, PEER, 1000, 2000, payload)
    assert datagram[6:8] == b"\xff\xff"
    assert datagram == udp_datagram(US, PEER, 1000, 2000, payload)  # built by hand, independently
    assert bytes(udp.parse_udp(memoryview(datagram), US, PEER).payload) == payload


def test_ip_options_without_an_end_of_list_are_accepted() -> None:
    check_options(memoryview(b"\x01\x01\x01\x01"))  # four NOPs, then the header simply ends
    header, _ = parse_ipv4(ipv4(PEER, US, 17, b"x" * 8, options=b"\x01\x01\x01\x01"))
    assert header.header_len == 24


# -- reassembly -----------------------------------------------------------------------------------------------


def test_a_fragment_reaching_past_the_largest_datagram_is_refused_with_its_datagram() -> None:
    """parse_ipv4 refuses these on the wire; the reassembler refuses them again for direct callers."""
    counters = Counters()
    r = Reassembler(counters)
    header, body = fragment(DATA, 0, 1024)
    far = dataclasses.replace(header, fragment_offset=65535 - 20 - 512)
    assert r.add(0.0, far, body) is None
    assert counters[Drop.IPV4_OVERSIZE] == 1
    assert feed(r, pieces(DATA)) == []  # the rest of that datagram is refused too
    assert counters[Drop.FRAG_REFUSED_DATAGRAM] == 3


def test_a_last_fragment_ending_before_the_known_end_is_refused() -> None:
    counters = Counters()
    r = Reassembler(counters)
    assert feed(r, [fragment(DATA, 2048, 3072, last=True), fragment(DATA, 0, 1024, last=True)]) == []
    assert counters[Drop.FRAG_OVERLAP] == 1
    assert len(r) == 0
    assert r.stored_bytes == 0


def test_eviction_keeps_the_datagram_being_completed() -> None:
    counters = Counters()
    r = Reassembler(counters, ReassemblyLimits(stored_bytes=2048))
    small = DATA[:2048]
    a = pieces(small, ident=1)
    b = pieces(DATA, ident=2)
    assert feed(r, [a[0], b[0]]) == []  # a is older than b
    assert feed(r, [a[1]]) == [small]  # needs room: b goes, not a
    assert counters[Drop.FRAG_EVICTED] == 1
    assert len(r) == 0


def test_a_datagram_bigger_than_the_whole_budget_is_refused_not_held() -> None:
    counters = Counters()
    r = Reassembler(counters, ReassemblyLimits(stored_bytes=2048))
    assert feed(r, pieces(DATA)) == []
    assert counters[Drop.FRAG_EVICTED] == 1  # nothing else to evict: this one is dropped and refused
    assert r.stored_bytes == 0
    assert len(r) == 0


def test_a_refused_datagram_stays_refused_until_its_timeout() -> None:
    counters = Counters()
    r = Reassembler(counters, ReassemblyLimits(timeout=30.0))
    feed(r, [pieces(DATA)[0]] * 2)  # a duplicate: the datagram is refused
    assert r.next_deadline() == 30.0  # the refusal itself expires
    r.expire(10.0)
    assert feed(r, pieces(DATA), now=10.0) == []
    assert counters[Drop.FRAG_REFUSED_DATAGRAM] == 3
    r.expire(30.0)
    assert r.next_deadline() is None
    assert feed(r, pieces(DATA), now=30.0) == [DATA]


def test_the_refused_list_is_bounded_and_forgets_the_oldest() -> None:
    counters = Counters()
    r = Reassembler(counters)
    misaligned = DATA[:1001]
    for ident in range(DEFAULT_STACK_LIMITS.reassembly.refused_keys + 1):
        feed(r, [fragment(misaligned, 0, 1001, ident=ident, last=False)])  # MF with 1001 bytes: refused
    assert counters[Drop.FRAG_MISALIGNED] == DEFAULT_STACK_LIMITS.reassembly.refused_keys + 1
    assert feed(r, pieces(DATA, ident=0)) == [DATA]  # the oldest refusal was forgotten
    assert feed(r, pieces(DATA, ident=1)) == []  # the next one is still remembered
    assert counters[Drop.FRAG_REFUSED_DATAGRAM] == 3


# -- the stack ------------------------------------------------------------------------------------------------


def test_stack_config_refusals() -> None:
    with pytest.raises(ValueError, match="unicast"):
        StackConfig(bytes.fromhex("010000000001"), parse_static("10.0.0.2/24"))
    with pytest.raises(ValueError, match="unicast"):
        StackConfig(US_MAC[:5], parse_static("10.0.0.2/24"))
    with pytest.raises(ValueError, match="MTU"):
        StackConfig(US_MAC, parse_static("10.0.0.2/24"), mtu=575)
    assert Stack(StackConfig(US_MAC, parse_static("10.0.0.2/24"), mtu=9000), None).mtu == 9000


def test_udp_bindings_are_bounded_and_unbinding_closes_the_port() -> None:
    stack = make_stack()
    received: list[bytes] = []
    for port in range(1, DEFAULT_STACK_LIMITS.udp_bindings + 1):
        stack.udp_bind(port, lambda now, src, sport, dst, data: received.append(bytes(data)))
    with pytest.raises(ValueError, match="too many"):
        stack.udp_bind(DEFAULT_STACK_LIMITS.udp_bindings + 1, lambda now, src, sport, dst, data: None)
    with pytest.raises(ValueError, match="taken"):
        stack.udp_bind(1, lambda now, src, sport, dst, data: None)
    stack.frame_received(0.0, ip_frame(PEER, 17, udp_datagram(PEER, US, 5000, 3, b"bound")))
    assert received == [b"bound"]
    stack.udp_unbind(3)
    stack.udp_unbind(3)  # twice is harmless
    stack.frame_received(0.0, ip_frame(PEER, 17, udp_datagram(PEER, US, 5000, 3, b"unbound")))
    assert received == [b"bound"]
    assert stack.counters[Drop.UDP_PORT_CLOSED] == 1


def test_unknown_protocol_in_a_broadcast_gets_no_icmp_error() -> None:
    stack = make_stack("10.0.0.2/24")
    frame = eth(BROADCAST_MAC, PEER_MAC, 0x0800, ipv4(PEER, bytes([10, 0, 0, 255]), 99, b"x" * 8))
    stack.frame_received(0.0, frame)
    assert stack.counters[Drop.IPV4_UNKNOWN_PROTOCOL] == 1
    assert stack.take_frames() == []  # no protocol-unreachable storm towards a broadcast


def test_an_icmp_error_sent_to_a_broadcast_address_is_not_ours() -> None:
    stack = make_stack("10.0.0.2/24")
    quote = ipv4(US, PEER, 6, bytes(20))
    frame = eth(BROADCAST_MAC, PEER_MAC, 0x0800,
                ipv4(PEER, bytes([10, 0, 0, 255]), 1, icmp_message(3, 3, bytes(4), quote)))
    stack.frame_received(0.0, frame)
    assert stack.counters[Drop.ICMP_ERROR_NOT_OURS] == 1


def test_an_icmp_error_whose_quoted_header_claims_more_than_it_holds_is_refused() -> None:
    stack = make_stack("10.0.0.2/24")
    quote = bytearray(ipv4(US, PEER, 6, bytes(8)))
    quote[0] = 0x4F  # IHL 15: a 60-byte header, but only 20 bytes of header and 8 of data are quoted
    stack.frame_received(0.0, ip_frame(PEER, 1, icmp_message(3, 3, bytes(4), bytes(quote))))
    assert stack.counters[Drop.ICMP_BAD_QUOTE] == 1


def test_a_dhcp_client_ignores_datagrams_not_from_the_server_port() -> None:
    stack = Stack(StackConfig(US_MAC, UseDhcp()), None, rng=random.Random(1))
    stack.start(0.0)
    stack.take_frames()
    datagram = udp_datagram(PEER, bytes([255] * 4), 6767, 68, bytes(300))
    stack.frame_received(0.0, eth(BROADCAST_MAC, PEER_MAC, 0x0800, ipv4(PEER, bytes([255] * 4), 17, datagram)))
    assert stack.counters[Drop.DHCP_NOT_OURS] == 1


def test_the_transmit_queue_is_bounded() -> None:
    stack = make_stack("10.0.0.2/24")
    for _ in range(DEFAULT_STACK_LIMITS.tx_queue_frames + 5):
        stack.udp_send(0.0, bytes([255] * 4), 1000, 2000, b"x")
    frames = stack.take_frames()
    assert len(frames) == DEFAULT_STACK_LIMITS.tx_queue_frames
    assert stack.counters[Drop.TX_QUEUE_FULL] == 5
    assert all(parse_frame(f).dst == BROADCAST_MAC for f in frames)
    stack.udp_send(0.0, bytes([255] * 4), 1000, 2000, b"x")  # taking the frames made room again
    assert len(stack.take_frames()) == 1


def test_broadcast_fragments_reach_a_udp_handler() -> None:
    """A broadcast datagram that needs reassembly is still delivered (and never answered with an error)."""
    stack = make_stack("10.0.0.2/24")
    got: list[bytes] = []
    stack.udp_bind(9, lambda now, src, sport, dst, data: got.append(bytes(data)))
    payload = udp_datagram(PEER, bytes([10, 0, 0, 255]), 1, 9, DATA[:2000])
    for start, end in ((0, 1024), (1024, len(payload))):
        packet = ipv4(PEER, bytes([10, 0, 0, 255]), 17, payload[start:end], ident=5,
                      flags=FLAG_MF if end < len(payload) else 0, offset=start)
        stack.frame_received(0.0, eth(BROADCAST_MAC, PEER_MAC, 0x0800, packet))
    assert got == [DATA[:2000]]
    assert stack.take_frames() == []
