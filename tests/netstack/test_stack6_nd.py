"""stack6 through the whole Stack: neighbour discovery and router advertisements."""

from __future__ import annotations

import struct

from netstack.config import StaticIp6
from netstack.reasons import Drop
from netstack.stack import Stack
from netstack.tcp.config import TcpConfig
from netstack.tcp.layer import TcpLayer
from tests.netstack.builders import PEER_MAC, US_MAC
from tests.netstack.builders6 import (
    ALL_NODES,
    FAR6,
    NA,
    NS,
    PEER6,
    PEER_LL,
    PREFIX,
    PROTO_ICMPV6,
    ROUTER_LL,
    ROUTER_MAC,
    STATIC,
    US_STATIC,
    echo_frame,
    link_local_of,
    mmac,
    mtu_option,
    na_frame,
    ns_frame,
    prefix_option,
    ra_frame,
    ready_stack,
    ready_with_peer,
    run_until,
    sent6,
    solicited,
    teach_peer6,
)
from tests.netstack.test_stack import FakeTcp


def test_ns_for_our_address_is_answered_with_a_solicited_override_na() -> None:
    stack = ready_stack(STATIC)
    stack.frame_received(3.0, ns_frame(PEER6, US_STATIC))
    (na,) = sent6(stack.take_frames(3.0))
    assert (na.dst_mac, na.src_mac, na.src, na.dst, na.hop_limit) == (PEER_MAC, US_MAC, US_STATIC, PEER6, 255)
    assert na.icmp_type == NA
    assert na.icmp_code == 0
    assert na.checksum_ok()
    assert na.payload[4] == 0x60  # solicited and override, not router
    assert na.payload[8:24] == US_STATIC
    assert na.payload[24:32] == bytes((2, 1)) + US_MAC  # target link-layer address
    # an NS for someone else's address is not answered
    stack.frame_received(3.0, ns_frame(PEER6, PEER6[:15] + b"\x77", dst=solicited(US_STATIC)))
    assert stack.counters[Drop.ND_NOT_FOR_US] == 1
    # nor one with a hop limit below 255 (it was routed here)
    stack.frame_received(3.0, ns_frame(PEER6, US_STATIC, hop_limit=254))
    assert stack.counters[Drop.ND_BAD_HOP_LIMIT] == 1
    assert sent6(stack.take_frames(3.0)) == []


def test_packet_to_unknown_neighbour_is_held_until_the_na() -> None:
    stack = ready_stack(STATIC)
    stack.frame_received(3.0, echo_frame(PEER6, US_STATIC))  # we must resolve PEER6 to answer
    (ns,) = sent6(stack.take_frames(3.0))
    assert ns.icmp_type == NS
    assert ns.src == US_STATIC
    assert ns.dst == solicited(PEER6)
    assert ns.dst_mac == mmac(solicited(PEER6))
    assert ns.hop_limit == 255
    assert ns.payload[8:24] == PEER6
    assert ns.payload[24:32] == bytes((1, 1)) + US_MAC
    stack.frame_received(3.1, na_frame(PEER6, US_STATIC, PEER6))
    (reply,) = sent6(stack.take_frames(3.1))
    assert reply.icmp_type == 129
    assert reply.dst_mac == PEER_MAC
    assert reply.dst == PEER6


def test_unsolicited_na_creates_nothing() -> None:
    stack = ready_stack(STATIC)
    assert stack.ipv6 is not None
    stack.frame_received(3.0, na_frame(PEER6, ALL_NODES, PEER6, solicited=False))
    assert stack.counters[Drop.ND_UNSOLICITED_NA] == 1
    assert len(stack.ipv6.neighbours) == 0


def test_ns_flood_from_ten_thousand_sources_is_bounded() -> None:
    stack = ready_stack(STATIC)
    assert stack.ipv6 is not None
    limit = 256
    for i in range(10_000):
        src = PREFIX[:8] + struct.pack("!Q", 0x1000 + i)
        mac = bytes((2, 0x55)) + struct.pack("!I", i)
        stack.frame_received(3.0, ns_frame(src, US_STATIC, mac, src_mac=mac))
        stack.take_frames(3.0)
    assert len(stack.ipv6.neighbours) == limit
    assert stack.counters[Drop.ND_CACHE_EVICTED] == 10_000 - limit
    assert stack.counters[Drop.INTERNAL_ERROR] == 0


def test_nud_probes_then_forgets_an_unreachable_neighbour() -> None:
    stack = ready_stack(STATIC)
    assert stack.ipv6 is not None
    stack.frame_received(3.0, echo_frame(PEER6, US_STATIC))
    stack.take_frames(3.0)
    stack.frame_received(3.0, na_frame(PEER6, US_STATIC, PEER6))
    stack.take_frames(3.0)
    # REACHABLE for ReachableTime (15..45 s), then STALE; sending then starts DELAY (5 s) and PROBE
    run_until(stack, 60.0, 3.0)
    stack.frame_received(60.0, echo_frame(PEER6, US_STATIC, seq=2))
    (reply,) = sent6(stack.take_frames(60.0))
    assert reply.dst_mac == PEER_MAC
    _, out = run_until(stack, 64.9, 60.0)
    assert [s for s in sent6(out) if s.icmp_type == NS] == []
    _, out = run_until(stack, 80.0, 64.9)
    probes = [s for s in sent6(out) if s.icmp_type == NS]
    assert len(probes) == 3
    assert all(p.dst == PEER6 and p.dst_mac == PEER_MAC and p.src == US_STATIC for p in probes)  # unicast
    assert stack.counters[Drop.ND_PROBE_FAILED] == 1
    assert PEER6 not in stack.ipv6.neighbours.entries


def test_failed_resolution_tells_tcp() -> None:
    tcp = FakeTcp()
    stack = ready_stack(STATIC, tcp)
    tcp.outgoing.append((US_STATIC, PEER6, b"\x00" * 20))
    first = sent6(stack.take_frames(3.0))
    assert [s.icmp_type for s in first] == [NS]
    _, out = run_until(stack, 10.0, 3.0)
    assert len([s for s in sent6(out) if s.icmp_type == NS and s.dst == solicited(PEER6)]) == 2
    assert tcp.unresolved == [PEER6]
    assert stack.counters[Drop.ND_UNRESOLVED] == 1


def test_router_advertisement_gives_a_global_address_after_dad_and_a_default_router() -> None:
    stack = ready_stack()
    assert stack.ipv6 is not None
    addresses = stack.ipv6.addresses
    stack.frame_received(3.0, ra_frame(prefix_option(PREFIX)))
    assert addresses.routers() == (ROUTER_LL,)
    assert addresses.default_router() == ROUTER_LL
    assert len(addresses.addresses()) == 1  # the global one is tentative
    _, out = run_until(stack, 6.0, 3.0)
    probes = [s for s in sent6(out) if s.next_header == PROTO_ICMPV6 and s.icmp_type == NS and s.src == bytes(16)]
    assert len(probes) == 1
    global_address = probes[0].payload[8:24]
    assert global_address[:8] == PREFIX[:8]
    assert [a for a, _ in addresses.addresses()] == [link_local_of(stack), global_address]
    assert stack.source_for(FAR6) == global_address
    assert stack.source_for(PEER_LL) == link_local_of(stack)
    # off-link traffic goes to the router's MAC (learned from the RA's source link-layer option)
    stack.frame_received(6.0, echo_frame(FAR6, global_address, src_mac=ROUTER_MAC))
    (reply,) = sent6(stack.take_frames(6.0))  # no NS: the RA's source link-layer option taught the MAC
    assert reply.dst == FAR6
    assert reply.icmp_type == 129
    assert reply.dst_mac == ROUTER_MAC
    assert stack.counters[Drop.INTERNAL_ERROR] == 0


def test_ra_flood_of_ten_thousand_routers_and_prefixes_is_bounded() -> None:
    stack = ready_stack()
    assert stack.ipv6 is not None
    for i in range(10_000):
        router = ROUTER_LL[:8] + struct.pack("!Q", 0x100 + i)
        mac = bytes((2, 0x66)) + struct.pack("!I", i)
        prefix = bytes.fromhex("20010db8") + struct.pack("!I", i) + bytes(8)
        stack.frame_received(3.0, ra_frame(prefix_option(prefix), src=router, src_mac=mac))
    addresses = stack.ipv6.addresses
    assert len(addresses.routers()) == 8
    assert len(addresses.prefixes()) == 16
    assert len(addresses.addresses()) <= 1 + 8
    assert stack.counters[Drop.ND_ROUTERS_FULL] == 10_000 - 8
    assert stack.counters[Drop.ND_PREFIXES_FULL] == 10_000 - 16
    assert stack.counters[Drop.ND_ADDRESSES_FULL] == 10_000 - 8
    run_until(stack, 10.0, 3.0)
    assert len(stack.ipv6.neighbours) <= 256
    assert stack.counters[Drop.INTERNAL_ERROR] == 0


def test_ra_from_a_global_source_or_with_a_hop_limit_below_255_is_refused() -> None:
    stack = ready_stack()
    assert stack.ipv6 is not None
    stack.frame_received(3.0, ra_frame(prefix_option(PREFIX), src=PEER6))
    assert stack.counters[Drop.ND_RA_NOT_LINK_LOCAL] == 1
    stack.frame_received(3.0, ra_frame(prefix_option(PREFIX), hop_limit=254))
    assert stack.counters[Drop.ND_BAD_HOP_LIMIT] == 1
    assert stack.ipv6.addresses.routers() == ()
    assert stack.ipv6.addresses.prefixes() == ()


def test_ra_mtu_option_lowers_what_we_send() -> None:
    stack = ready_stack(STATIC)
    stack.frame_received(3.0, ra_frame(mtu_option(1280)))
    assert stack.ipv6 is not None
    assert stack.ipv6.addresses.mtu == 1280
    teach_peer6(stack)
    stack.frame_received(3.0, echo_frame(PEER6, US_STATIC, data=bytes(1400)))
    out = sent6(stack.take_frames(3.0))
    assert len(out) == 2
    assert all(len(s.payload) + 40 <= 1280 for s in out)
    assert all(s.next_header == 44 for s in out)
    # an MTU above the link's is refused
    stack.frame_received(3.0, ra_frame(mtu_option(9000)))
    assert stack.counters[Drop.ND_RA_BAD_MTU] == 1


def test_static_gateway_and_off_link_traffic_go_to_the_router() -> None:
    stack = ready_stack(StaticIp6(US_STATIC, 64, ROUTER_LL))
    stack.frame_received(3.0, echo_frame(FAR6, US_STATIC, src_mac=ROUTER_MAC))
    (ns,) = sent6(stack.take_frames(3.0))
    assert ns.icmp_type == NS
    assert ns.payload[8:24] == ROUTER_LL
    assert ns.src == US_STATIC
    stack.frame_received(3.0, na_frame(ROUTER_LL, US_STATIC, ROUTER_LL, ROUTER_MAC, src_mac=ROUTER_MAC,
                                       router=True))
    (reply,) = sent6(stack.take_frames(3.0))
    assert reply.dst_mac == ROUTER_MAC
    assert reply.dst == FAR6
    assert reply.src == US_STATIC


# --- default router selection (RFC 4861 §6.3.6) ---------------------------------------------------------------

FAKE_LL = bytes.fromhex("fe80000000000000000000000000bad1")
FAKE_MAC = bytes.fromhex("02000000bad1")
OTHER_LL = bytes.fromhex("fe80000000000000000000000000000b")
OTHER_MAC = bytes.fromhex("02000000000b")


def _send_far(stack: Stack, now: float) -> None:
    stack.udp_send(now, FAR6, 5000, 5001, b"x")


def test_a_forged_router_that_never_answers_is_rotated_behind_the_real_one() -> None:
    """One RA from a made-up router learned first (lifetime 65535, a MAC nobody owns): its unicast probes go
    unanswered, it moves behind the real router, and off-link traffic goes to the real one from then on."""
    stack = ready_stack()
    assert stack.ipv6 is not None
    addresses = stack.ipv6.addresses
    stack.frame_received(3.0, ra_frame(src=FAKE_LL, src_mac=FAKE_MAC, lifetime=65535))
    stack.frame_received(3.5, ra_frame(prefix_option(PREFIX)))
    now, _ = run_until(stack, 6.0, 3.5)
    assert addresses.routers() == (FAKE_LL, ROUTER_LL)
    assert addresses.default_router(stack.ipv6.neighbours.known) == FAKE_LL
    _send_far(stack, now)
    (first,) = sent6(stack.take_frames(now))
    assert first.dst_mac == FAKE_MAC  # the STALE entry from the RA is used: DELAY, then 3 probes
    now, _ = run_until(stack, 20.0, now)
    assert stack.counters[Drop.ND_PROBE_FAILED] == 1
    assert stack.counters[Drop.ND_ROUTER_UNREACHABLE] == 1
    assert addresses.routers() == (ROUTER_LL, FAKE_LL)
    _send_far(stack, now)
    (second,) = sent6(stack.take_frames(now))
    assert (second.dst, second.dst_mac) == (FAR6, ROUTER_MAC)


def test_a_router_known_in_the_cache_is_preferred_to_one_being_resolved() -> None:
    """§6.3.6: a router with a cache entry (probably reachable) before one with none (reachability unknown)."""
    stack = ready_stack()
    assert stack.ipv6 is not None
    stack.frame_received(3.0, ra_frame(src=OTHER_LL, src_mac=OTHER_MAC, with_sll=False))  # no SLLA: not cached
    stack.frame_received(3.0, ra_frame(prefix_option(PREFIX)))
    now, _ = run_until(stack, 6.0, 3.0)
    assert stack.ipv6.addresses.routers() == (OTHER_LL, ROUTER_LL)
    _send_far(stack, now)
    (packet,) = sent6(stack.take_frames(now))
    assert (packet.dst, packet.dst_mac) == (FAR6, ROUTER_MAC)


def test_routers_that_all_fail_resolution_are_tried_in_turn() -> None:
    """None reachable: each failed resolution moves that router to the end (the round-robin of §6.3.6)."""
    stack = ready_stack()
    assert stack.ipv6 is not None
    stack.frame_received(3.0, ra_frame(src=FAKE_LL, src_mac=FAKE_MAC, with_sll=False))
    stack.frame_received(3.0, ra_frame(prefix_option(PREFIX), src=OTHER_LL, src_mac=OTHER_MAC, with_sll=False))
    now, _ = run_until(stack, 6.0, 3.0)
    targets = []
    for _ in range(3):
        _send_far(stack, now)
        (ns,) = sent6(stack.take_frames(now))
        assert ns.icmp_type == NS
        targets.append(ns.payload[8:24])
        now, _ = run_until(stack, now + 5.0, now)
    assert targets == [FAKE_LL, OTHER_LL, FAKE_LL]
    assert stack.counters[Drop.ND_ROUTER_UNREACHABLE] == 3


def test_a_failed_neighbour_that_is_not_a_router_changes_no_router() -> None:
    stack = ready_stack(STATIC)
    assert stack.ipv6 is not None
    stack.frame_received(3.0, ra_frame(src=FAKE_LL, src_mac=FAKE_MAC, with_sll=False))
    stack.frame_received(3.0, ra_frame())
    stack.take_frames(3.0)
    stack.udp_send(3.0, PEER6, 5000, 5001, b"x")  # on link: resolution of PEER6 fails
    run_until(stack, 10.0, 3.0)
    assert stack.counters[Drop.ND_UNRESOLVED] == 1
    assert stack.counters[Drop.ND_ROUTER_UNREACHABLE] == 0
    assert stack.ipv6.addresses.routers() == (FAKE_LL, ROUTER_LL)


# --- the RA's MTU reaches TCP (RFC 4861 §6.3.4) ---------------------------------------------------------------


def test_the_advertised_mtu_is_reported_to_tcp_once_per_change() -> None:
    tcp = FakeTcp()
    stack = ready_stack(STATIC, tcp)
    assert tcp.mtus6 == []  # the link's own MTU: nothing to report
    stack.frame_received(3.0, ra_frame(mtu_option(1280)))
    stack.frame_received(3.5, ra_frame(mtu_option(1280)))
    assert tcp.mtus6 == [1280]
    stack.frame_received(4.0, ra_frame(mtu_option(1000)))  # below the IPv6 minimum: refused, nothing reported
    stack.frame_received(4.0, ra_frame(mtu_option(9000)))  # above the link's: refused
    assert stack.counters[Drop.ND_RA_BAD_MTU] == 2
    assert tcp.mtus6 == [1280]
    stack.frame_received(5.0, ra_frame(mtu_option(1400)))
    assert tcp.mtus6 == [1280, 1400]
    stack.start(6.0)  # what routers said is forgotten: the link's MTU again
    assert tcp.mtus6 == [1280, 1400, 1500]


def test_tcp_over_the_stack_advertises_an_mss_that_fits_the_advertised_mtu() -> None:
    tcp = TcpLayer(bytes(32), TcpConfig(mtu=1500))
    stack = ready_with_peer(tcp)
    assert tcp.local_mss_for(US_STATIC) == 1440
    stack.frame_received(4.0, ra_frame(mtu_option(1280)))
    assert tcp.local_mss_for(US_STATIC) == 1220
    assert tcp.local_mss_for(bytes(4)) == 1460


def test_an_advertisement_that_clears_the_router_flag_removes_the_router() -> None:
    """RFC 4861 §7.2.5: IsRouter going from TRUE (the RA) to FALSE MUST remove it from the default routers."""
    stack = ready_stack()
    assert stack.ipv6 is not None
    addresses = stack.ipv6.addresses
    stack.frame_received(3.0, ra_frame(prefix_option(PREFIX)))
    stack.frame_received(3.1, na_frame(ROUTER_LL, ALL_NODES, ROUTER_LL, ROUTER_MAC, src_mac=ROUTER_MAC,
                                       solicited=False, router=True))
    assert addresses.routers() == (ROUTER_LL,)
    stack.frame_received(3.2, na_frame(PEER_LL, ALL_NODES, PEER_LL, solicited=False))  # not a router of ours
    assert stack.counters[Drop.ND_ROUTER_WITHDRAWN] == 0
    stack.frame_received(3.3, na_frame(ROUTER_LL, ALL_NODES, ROUTER_LL, ROUTER_MAC, src_mac=ROUTER_MAC,
                                       solicited=False))
    assert addresses.routers() == ()
    assert stack.counters[Drop.ND_ROUTER_WITHDRAWN] == 1


def test_probes_after_our_address_expired_come_from_one_we_still_have() -> None:
    """Audit F3 (RFC 4861 §7.2.2, §7.3.3): an NS to our SLAAC address made the peer's entry, the address then
    expired; the probes the next use starts came from it, the NAs went to an address we dropped, and the peer
    was declared unreachable. They now come from the link-local address, which we still have."""
    stack = ready_stack()
    stack.frame_received(3.0, ra_frame(prefix_option(PREFIX, autonomous=False, valid=86400, preferred=86400),
                                       prefix_option(PREFIX, on_link=False, valid=20, preferred=20)))
    run_until(stack, 6.0, 3.0)
    ll = link_local_of(stack)
    assert stack.ipv6 is not None
    [expiring] = [a for a, _ in stack.ipv6.addresses.addresses() if a != ll]
    stack.frame_received(6.0, ns_frame(PEER6, expiring))
    run_until(stack, 30.0, 6.0)
    assert not stack.ipv6.addresses.assigned(expiring)
    stack.frame_received(30.0, echo_frame(PEER6, ll))
    _, out = run_until(stack, 35.5, 30.0)  # DELAY for 5 s, then the first probe
    [probe] = [s for s in sent6(out) if s.icmp_type == NS]
    assert (probe.src, probe.dst) == (ll, PEER6)
    stack.frame_received(35.5, na_frame(PEER6, ll, PEER6))  # the answer reaches us
    _, out = run_until(stack, 60.0, 35.5)
    assert [s for s in sent6(out) if s.icmp_type == NS] == []
    assert stack.counters[Drop.ND_PROBE_FAILED] == 0
    assert stack.counters[Drop.ND_SOLICIT_NO_SOURCE] == 0
