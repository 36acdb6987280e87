"""What the IPv6 half refuses beyond the codecs: fragmented neighbour discovery (RFC 6980), ICMPv6 from the
unspecified address other than DAD probes, anything but ND to a tentative address (RFC 4862 §5.4: silently,
no error), DHCPv4 over IPv6, echo in a link-layer multicast frame; and what it keeps to itself: fragment
identifications no one can predict (RFC 7739), a DAD failure logged, a secret required."""

from __future__ import annotations

import itertools
import logging
import random
import struct

import pytest

from netstack.config import StaticIp, UseDhcp
from netstack.reasons import Drop
from netstack.stack import Stack, StackConfig
from tests.netstack.builders import PEER_MAC, US_MAC
from tests.netstack.builders6 import (
    ALL_NODES,
    ECHO_REPLY,
    FAR6,
    NA,
    PEER6,
    PREFIX,
    PROTO_FRAGMENT,
    PROTO_ICMPV6,
    PROTO_ROUTING,
    PROTO_UDP,
    RA,
    ROUTER_LL,
    SECRET,
    STATIC,
    UNSPECIFIED,
    US_STATIC,
    echo_frame,
    eth6,
    fragment_header,
    fragments,
    icmp6,
    icmp_frame,
    ipv6,
    mmac,
    na_frame,
    new_stack,
    ns_frame,
    prefix_option,
    ra_body,
    ra_frame,
    ready_with_peer,
    routing_header,
    run_until,
    sent6,
    teach_peer6,
    udp6,
)


def _routers(stack: Stack) -> tuple[bytes, ...]:
    assert stack.ipv6 is not None
    return stack.ipv6.addresses.routers()


# --- RFC 6980: no neighbour discovery in fragments ------------------------------------------------------------


def test_a_router_advertisement_in_fragments_is_refused() -> None:
    stack = ready_with_peer()
    ra = icmp6(RA, 0, ra_body(prefix_option(PREFIX)), ROUTER_LL, ALL_NODES)
    for packet in fragments(ROUTER_LL, ALL_NODES, PROTO_ICMPV6, ra, size=16, ident=7):
        packet = packet[:7] + b"\xff" + packet[8:]  # hop limit 255, as ND needs  # noqa: PLW2901
        stack.frame_received(3.0, eth6(mmac(ALL_NODES), PEER_MAC, packet))
    assert stack.counters[Drop.ND_FRAGMENTED] == 1
    assert _routers(stack) == ()


def test_a_router_advertisement_in_an_atomic_fragment_is_refused() -> None:
    stack = ready_with_peer()
    ra = icmp6(RA, 0, ra_body(prefix_option(PREFIX)), ROUTER_LL, ALL_NODES)
    packet = ipv6(ROUTER_LL, ALL_NODES, PROTO_FRAGMENT, fragment_header(PROTO_ICMPV6, 0, False, 9) + ra,
                  hop_limit=255)
    stack.frame_received(3.0, eth6(mmac(ALL_NODES), PEER_MAC, packet))
    assert stack.counters[Drop.ND_FRAGMENTED] == 1
    assert _routers(stack) == ()
    stack.frame_received(3.0, ra_frame(prefix_option(PREFIX)))  # the same advertisement whole is taken
    assert _routers(stack) == (ROUTER_LL,)


# --- the unspecified source ---------------------------------------------------------------------------------


def test_only_solicitations_may_come_from_the_unspecified_address() -> None:
    stack = ready_with_peer()
    stack.frame_received(3.0, echo_frame(UNSPECIFIED, US_STATIC))
    stack.frame_received(3.0, na_frame(UNSPECIFIED, ALL_NODES, PEER6))
    assert stack.counters[Drop.IPV6_MARTIAN_SOURCE] == 2
    assert sent6(stack.take_frames(3.0)) == []
    stack.frame_received(3.0, ns_frame(UNSPECIFIED, US_STATIC, None))  # someone's DAD probe: defended
    assert [s.icmp_type for s in sent6(stack.take_frames(3.0))] == [NA]


def test_fragments_from_the_unspecified_address_are_refused_before_reassembly() -> None:
    """Hardening (audit N3): :: passes admission for DAD probes alone, which are never fragmented (RFC 6980)."""
    stack = ready_with_peer()
    upper = icmp6(128, 0, bytes(64), UNSPECIFIED, US_STATIC)
    for packet in fragments(UNSPECIFIED, US_STATIC, PROTO_ICMPV6, upper, size=32, ident=5):
        stack.frame_received(3.0, eth6(US_MAC, PEER_MAC, packet))
    assert stack.counters[Drop.IPV6_MARTIAN_SOURCE] == 3
    assert stack.stats()["reassembly-datagrams"] == 0
    atomic = ipv6(UNSPECIFIED, US_STATIC, PROTO_FRAGMENT, fragment_header(PROTO_ICMPV6, 0, False, 6) + upper)
    stack.frame_received(3.0, eth6(US_MAC, PEER_MAC, atomic))
    assert stack.counters[Drop.IPV6_MARTIAN_SOURCE] == 4
    # the same fragments from a real address are reassembled (and the echo answered)
    for packet in fragments(PEER6, US_STATIC, PROTO_ICMPV6, icmp6(128, 0, bytes(64), PEER6, US_STATIC),
                            size=32, ident=5):
        stack.frame_received(3.0, eth6(US_MAC, PEER_MAC, packet))
    assert [s.payload[0] for s in sent6(stack.take_frames(3.0))] == [ECHO_REPLY]


def test_a_tentative_address_takes_no_advertisement_from_the_unspecified_address() -> None:
    """RFC 4861 §4.4: an NA's source is its sender's address; one from :: does not make ours a duplicate."""
    stack = new_stack(STATIC)
    stack.start(0.0)
    stack.take_frames(0.0)
    assert stack.ipv6 is not None
    stack.frame_received(0.1, na_frame(UNSPECIFIED, US_STATIC, US_STATIC, solicited=False))
    assert stack.counters[Drop.IPV6_MARTIAN_SOURCE] == 1
    assert stack.counters[Drop.ND_DAD_DUPLICATE] == 0
    assert stack.ipv6.addresses.is_tentative(US_STATIC)
    stack.frame_received(0.1, na_frame(PEER6, US_STATIC, US_STATIC, solicited=False))  # a real defender: taken
    assert stack.counters[Drop.ND_DAD_DUPLICATE] == 1
    assert not stack.ipv6.addresses.is_tentative(US_STATIC)


# --- RFC 4862 §5.4: a tentative address takes neighbour discovery only, silently --------------------------


def test_a_tentative_address_draws_no_error_and_reassembles_nothing() -> None:
    stack = new_stack(STATIC)
    stack.start(0.0)
    stack.take_frames(0.0)
    assert stack.ipv6 is not None
    assert stack.ipv6.addresses.is_tentative(US_STATIC)
    rh0 = routing_header(PROTO_ICMPV6, 0, 1) + icmp6(128, 0, bytes(4), PEER6, US_STATIC)
    stack.frame_received(0.0, eth6(US_MAC, PEER_MAC, ipv6(PEER6, US_STATIC, PROTO_ROUTING, rh0)))
    for packet in fragments(PEER6, US_STATIC, PROTO_ICMPV6, icmp6(128, 0, bytes(64), PEER6, US_STATIC),
                            size=32, ident=3)[:1]:
        stack.frame_received(0.0, eth6(US_MAC, PEER_MAC, packet))
    assert stack.counters[Drop.IPV6_ROUTING_HEADER] == 1  # counted for what it is, and answered by nothing
    assert stack.counters[Drop.IPV6_TENTATIVE_DESTINATION] == 1  # the fragment: never reassembled
    assert stack.stats()["reassembly-datagrams"] == 0
    _, out = run_until(stack, 40.0)  # DAD ends, and a reassembly timeout would have passed
    assert all(s.payload[0] != 4 and s.payload[0] != 3 for s in sent6(out) if s.next_header == PROTO_ICMPV6)


# --- DHCPv4 never over IPv6 ---------------------------------------------------------------------------------


def test_a_dhcp_reply_over_ipv6_is_not_ours() -> None:
    config = StackConfig(US_MAC, UseDhcp(), ipv6=STATIC, ipv6_secret=SECRET)
    stack = Stack(config, None, rng=random.Random(4))
    stack.start(0.0)
    run_until(stack, 3.0)
    stack.frame_received(3.0, eth6(US_MAC, PEER_MAC, ipv6(PEER6, US_STATIC, PROTO_UDP,
                                                          udp6(PEER6, US_STATIC, 67, 68, bytes(300)))))
    assert stack.counters[Drop.DHCP_NOT_OURS] == 1
    assert stack.counters[Drop.DHCP_MALFORMED] == 0


# --- echo only from a frame to our own MAC ----------------------------------------------------------------


def test_an_echo_to_our_address_in_a_multicast_frame_is_not_answered() -> None:
    stack = ready_with_peer()
    stack.frame_received(3.0, echo_frame(PEER6, US_STATIC, dst_mac=mmac(ALL_NODES)))
    assert stack.counters[Drop.ICMPV6_ECHO_MULTICAST] == 1
    stack.frame_received(3.0, echo_frame(PEER6, US_STATIC))
    assert [s.icmp_type for s in sent6(stack.take_frames(3.0))] == [ECHO_REPLY]


# --- RFC 7739: fragment identifications -------------------------------------------------------------------


def _reply_idents(stack: Stack, dst: bytes, count: int) -> list[int]:
    """Ask for `count` echo replies too big for one packet from `dst`; the identification of each."""
    idents = []
    for seq in range(count):
        request = icmp6(128, 0, struct.pack("!HH", 1, seq) + bytes(2000), dst, US_STATIC)
        for packet in fragments(dst, US_STATIC, PROTO_ICMPV6, request, size=1024, ident=100 + seq):
            stack.frame_received(3.0 + seq, eth6(US_MAC, PEER_MAC, packet))
        sent = [s for s in sent6(stack.take_frames(3.0 + seq)) if s.next_header == PROTO_FRAGMENT]
        idents.append(struct.unpack_from("!I", sent[0].payload, 4)[0])
        assert {struct.unpack_from("!I", s.payload, 4)[0] for s in sent} == {idents[-1]}
    return idents


def test_fragment_identifications_cannot_be_predicted_from_earlier_ones() -> None:
    stack = ready_with_peer()
    stack.frame_received(3.0, ns_frame(FAR6[:8] + PEER6[8:], US_STATIC))  # an on-link neighbour with another id
    idents = _reply_idents(stack, PEER6, 6)
    assert len(set(idents)) == 6
    steps = {(b - a) & 0xFFFFFFFF for a, b in itertools.pairwise(idents)}
    assert len(steps) == 5  # no constant step: not a counter, global or per destination
    assert 1 not in steps


def test_two_stacks_with_other_secrets_choose_other_identifications() -> None:
    first = _reply_idents(ready_with_peer(), PEER6, 2)
    config = StackConfig(US_MAC, StaticIp(bytes((10, 0, 0, 2)), 24), ipv6=STATIC, ipv6_secret=bytes(range(32)))
    other = Stack(config, None, rng=random.Random(1))
    other.start(0.0)
    run_until(other, 3.0)
    teach_peer6(other)
    assert _reply_idents(other, PEER6, 2) != first


# --- DAD failure is logged; a secret is required ------------------------------------------------------------


def test_an_address_given_up_after_dad_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    stack = new_stack(STATIC)
    stack.start(0.0)
    stack.take_frames(0.0)
    with caplog.at_level(logging.WARNING, logger="netstack.stack6"):
        stack.frame_received(0.5, na_frame(US_STATIC, ALL_NODES, US_STATIC, solicited=False))  # the defender
        run_until(stack, 3.0, 0.5)
    assert any("2001:db8:1::64" in record.getMessage() and "duplicate" in record.getMessage()
               for record in caplog.records)


def test_ipv6_without_a_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="secret"):
        StackConfig(US_MAC, StaticIp(bytes((10, 0, 0, 2)), 24), ipv6=STATIC)
    with pytest.raises(ValueError, match="secret"):
        StackConfig(US_MAC, StaticIp(bytes((10, 0, 0, 2)), 24), ipv6=STATIC, ipv6_secret=bytes(8))


def test_an_na_from_the_defender_of_a_router_address_is_not_taken_for_ours() -> None:
    """A neighbour advertisement for another address from ROUTER_LL reaches neighbour discovery (not ours)."""
    stack = ready_with_peer()
    stack.frame_received(3.0, icmp_frame(ROUTER_LL, ALL_NODES, NA, 0, bytes(4) + FAR6, dst_mac=mmac(ALL_NODES),
                                         hop_limit=255))
    assert stack.counters[Drop.IPV6_MARTIAN_SOURCE] == 0
