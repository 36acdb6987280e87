"""stack6 through the whole Stack: start-up (DAD, router solicitation) and which packets are ours."""

from __future__ import annotations

import pytest

from netstack.reasons import Drop
from tests.netstack.builders import OTHER_MAC, PEER_MAC, US_MAC
from tests.netstack.builders6 import (
    ALL_NODES,
    ALL_ROUTERS,
    NA,
    NS,
    PEER6,
    PEER_LL,
    PREFIX,
    PROTO_ICMPV6,
    RS,
    STATIC,
    UNSPECIFIED,
    US_STATIC,
    echo_frame,
    frame,
    link_local_of,
    mmac,
    na_frame,
    new_stack,
    ns_frame,
    ready_stack,
    run_until,
    sent6,
    solicited,
    teach_peer6,
    udp6,
)


def test_dad_probe_for_link_local_and_static_then_usable_then_router_solicitation() -> None:
    stack = new_stack(STATIC)
    stack.start(0.0)
    assert sent6(stack.take_frames(0.0)) == []  # RFC 4862 §5.4.2: a random delay before the first probe
    assert stack.ipv6 is not None
    addresses = stack.ipv6.addresses
    assert addresses.addresses() == ()
    first = stack.next_deadline()
    assert first is not None
    assert 0.0 <= first <= 1.0
    _, out = run_until(stack, 1.0)
    probes = [s for s in sent6(out) if s.next_header == 58 and s.icmp_type == NS]
    targets = {p.payload[8:24] for p in probes}
    assert len(probes) == 2
    assert US_STATIC in targets
    for probe in probes:
        target = probe.payload[8:24]
        assert probe.src == UNSPECIFIED
        assert probe.dst == solicited(target)
        assert probe.dst_mac == mmac(solicited(target)) == b"\x33\x33\xff" + target[13:]
        assert probe.src_mac == US_MAC
        assert probe.hop_limit == 255
        assert len(probe.payload) == 24  # no source link-layer option from ::
        assert probe.checksum_ok()
    assert addresses.addresses() == ()  # tentative until RetransTimer (1 s) passed without an answer
    _, before = run_until(stack, 2.0, 1.0)
    usable = {a for a, _ in addresses.addresses()}
    assert usable == targets
    assert all(s.icmp_type != NS for s in sent6(before))
    _, out = run_until(stack, 3.1, 2.0)
    rs = [s for s in sent6(before + out) if s.icmp_type == RS]  # up to 1 s after the link-local address
    assert len(rs) == 1
    assert rs[0].src == link_local_of(stack)
    assert rs[0].dst == ALL_ROUTERS
    assert rs[0].dst_mac == mmac(ALL_ROUTERS)
    assert rs[0].hop_limit == 255
    assert rs[0].checksum_ok()
    assert rs[0].payload[8:16] == bytes((1, 1)) + US_MAC  # source link-layer address option
    assert stack.counters[Drop.INTERNAL_ERROR] == 0


def test_address_changes_moves_when_dad_makes_the_addresses_usable() -> None:
    stack = new_stack(STATIC)
    stack.start(0.0)
    assert stack.ipv6 is not None
    tentative = stack.address_changes
    assert stack.ipv6.addresses.addresses() == ()
    run_until(stack, 0.5)  # a probe waits up to 1 s, then a second for an answer: nothing is usable yet
    assert stack.ipv6.addresses.addresses() == ()
    assert stack.address_changes == tentative
    run_until(stack, 3.0)
    assert {address for address, _ in stack.ipv6.addresses.addresses()} >= {US_STATIC}
    usable = stack.address_changes
    assert usable != tentative
    run_until(stack, 4.0)
    assert stack.address_changes == usable  # nothing changed since


@pytest.mark.parametrize("how", ["na", "ns-from-unspecified"])
def test_duplicate_during_dad_gives_a_new_link_local_address(how: str) -> None:
    stack = new_stack()
    stack.start(0.0)
    _, out = run_until(stack, 1.0)
    (probe,) = [s for s in sent6(out) if s.next_header == PROTO_ICMPV6]  # MLD reports aside
    tentative = probe.payload[8:24]
    if how == "na":
        stack.frame_received(1.0, na_frame(tentative, ALL_NODES, tentative, solicited=False))
    else:
        stack.frame_received(1.0, ns_frame(UNSPECIFIED, tentative, None))
    assert stack.counters[Drop.ND_DAD_DUPLICATE] == 1
    _, out = run_until(stack, 4.0, 1.0)
    probes = [s for s in sent6(out) if s.next_header == PROTO_ICMPV6 and s.icmp_type == NS]
    assert len(probes) == 1
    second = probes[0].payload[8:24]
    assert second != tentative
    assert second[:8] == tentative[:8]
    assert link_local_of(stack) == second
    assert stack.counters[Drop.INTERNAL_ERROR] == 0


def test_duplicate_static_address_is_given_up() -> None:
    stack = new_stack(STATIC)
    stack.start(0.0)
    run_until(stack, 1.0)
    stack.frame_received(1.0, na_frame(US_STATIC, ALL_NODES, US_STATIC, solicited=False))
    run_until(stack, 5.0, 1.0)
    assert stack.counters[Drop.ND_DAD_FAILED] == 1
    assert stack.ipv6 is not None
    assert US_STATIC not in {a for a, _ in stack.ipv6.addresses.addresses()}


# --- which packets are ours -------------------------------------------------------------------------------------


def _echo_replies(frames: list[bytes]) -> int:
    return sum(1 for s in sent6(frames) if s.next_header == 58 and s.icmp_type == 129)


def test_echo_to_our_unicast_address_is_answered() -> None:
    stack = ready_stack(STATIC)
    stack.frame_received(3.0, na_frame(PEER6, US_STATIC, PEER6))  # nothing pending: unsolicited, ignored
    teach_peer6(stack)  # PEER6's NS teaches PEER6 -> PEER_MAC
    stack.frame_received(3.0, echo_frame(PEER6, US_STATIC))
    out = sent6(stack.take_frames(3.0))
    assert len(out) == 1
    assert out[0].dst_mac == PEER_MAC
    assert out[0].src == US_STATIC
    assert out[0].dst == PEER6
    assert out[0].icmp_type == 129
    assert out[0].payload[4:] == b"\x00\x01\x00\x01ping"
    assert out[0].checksum_ok()


def test_all_nodes_and_our_solicited_node_group_are_accepted_other_groups_refused() -> None:
    stack = ready_stack(STATIC)
    ours = solicited(US_STATIC)
    other = solicited(PEER6)
    # all-nodes and our group: accepted, and an echo to a group is not answered (no amplification)
    stack.frame_received(3.0, echo_frame(PEER6, ALL_NODES, dst_mac=mmac(ALL_NODES)))
    stack.frame_received(3.0, echo_frame(PEER6, ours, dst_mac=mmac(ours)))
    assert stack.counters[Drop.ICMPV6_ECHO_MULTICAST] == 2
    # another node's solicited-node group on its own MAC: refused at the link
    stack.frame_received(3.0, echo_frame(PEER6, other, dst_mac=mmac(other)))
    assert stack.counters[Drop.ETH_NOT_FOR_US] == 1
    # another node's group on a MAC we accept: refused at IPv6
    stack.frame_received(3.0, echo_frame(PEER6, other, dst_mac=mmac(ALL_NODES)))
    assert stack.counters[Drop.IPV6_NOT_FOR_US] == 1
    # another unicast address
    stack.frame_received(3.0, echo_frame(PEER6, PEER6[:15] + b"\x99"))
    assert stack.counters[Drop.IPV6_NOT_FOR_US] == 2
    # a 33:33 MAC we never joined, with our own address inside
    stack.frame_received(3.0, echo_frame(PEER6, US_STATIC, dst_mac=b"\x33\x33\x00\x00\x00\x99"))
    assert stack.counters[Drop.ETH_NOT_FOR_US] == 2
    assert _echo_replies(stack.take_frames(3.0)) == 0
    assert stack.counters[Drop.INTERNAL_ERROR] == 0


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (ALL_NODES, Drop.IPV6_MARTIAN_SOURCE),
        (bytes(15) + b"\x01", Drop.IPV6_MARTIAN_SOURCE),  # ::1
        (bytes(10) + b"\xff\xff" + bytes((192, 0, 2, 1)), Drop.IPV6_MARTIAN_SOURCE),  # v4-mapped
        (bytes(12) + bytes((192, 0, 2, 1)), Drop.IPV6_MARTIAN_SOURCE),  # v4-compatible
        (US_STATIC, Drop.IPV6_LAND),
    ],
)
def test_martian_sources_are_refused(source: bytes, reason: Drop) -> None:
    stack = ready_stack(STATIC)
    stack.frame_received(3.0, echo_frame(source, US_STATIC))
    assert stack.counters[reason] == 1
    assert sent6(stack.take_frames(3.0)) == []
    assert stack.counters[Drop.INTERNAL_ERROR] == 0


def test_our_own_address_as_the_source_to_another_of_ours_is_martian() -> None:
    stack = ready_stack(STATIC)
    stack.frame_received(3.0, echo_frame(link_local_of(stack), US_STATIC))
    assert stack.counters[Drop.IPV6_MARTIAN_SOURCE] == 1


def test_unspecified_source_only_for_neighbour_discovery() -> None:
    stack = ready_stack(STATIC)
    stack.udp_bind(7, lambda *args: None)
    stack.frame_received(3.0, frame(UNSPECIFIED, US_STATIC, 17, udp6(UNSPECIFIED, US_STATIC, 1, 7, b"x")))
    assert stack.counters[Drop.IPV6_MARTIAN_SOURCE] == 1
    stack.frame_received(3.0, echo_frame(UNSPECIFIED, US_STATIC))
    assert stack.counters[Drop.IPV6_MARTIAN_SOURCE] + stack.counters[Drop.ICMPV6_ECHO_RATE_LIMITED] >= 1
    assert _echo_replies(stack.take_frames(3.0)) == 0
    # a DAD probe from :: for our address is answered (defended) to all-nodes
    stack.frame_received(3.0, ns_frame(UNSPECIFIED, US_STATIC, None))
    (defence,) = sent6(stack.take_frames(3.0))
    assert defence.icmp_type == NA
    assert defence.dst == ALL_NODES
    assert defence.dst_mac == mmac(ALL_NODES)
    assert defence.payload[4] & 0x40 == 0
    assert defence.payload[4] & 0x20
    assert stack.counters[Drop.INTERNAL_ERROR] == 0


def test_tentative_destination_takes_neighbour_discovery_only() -> None:
    stack = new_stack(STATIC)
    stack.start(0.0)
    _, _out = run_until(stack, 1.0)
    assert stack.ipv6 is not None
    assert stack.ipv6.addresses.is_tentative(US_STATIC)
    stack.udp_bind(7, lambda *args: None)
    stack.frame_received(1.0, frame(PEER6, US_STATIC, 17, udp6(PEER6, US_STATIC, 1, 7, b"x")))
    stack.frame_received(1.0, echo_frame(PEER6, US_STATIC))
    assert stack.counters[Drop.IPV6_TENTATIVE_DESTINATION] == 2
    # an NS for a tentative address is not answered (RFC 4862 §5.4.3) but is ND: it reaches ND
    stack.frame_received(1.0, ns_frame(PEER6, US_STATIC, dst=US_STATIC))
    assert stack.counters[Drop.ND_NOT_FOR_US] == 1
    assert sent6(stack.take_frames(1.0)) == []
    assert stack.counters[Drop.INTERNAL_ERROR] == 0


def test_ipv6_off_counts_every_frame() -> None:
    from tests.netstack.builders import make_stack

    stack = make_stack()
    stack.frame_received(0.0, echo_frame(PEER_LL, US_STATIC))
    assert stack.counters[Drop.IPV6_OFF] == 1


def test_frames_from_a_multicast_mac_are_refused() -> None:
    stack = ready_stack(STATIC)
    stack.frame_received(3.0, echo_frame(PEER6, US_STATIC, src_mac=b"\x33\x33\x00\x00\x00\x01"))
    assert stack.counters[Drop.ETH_BAD_SOURCE] == 1


def test_prefix_constant_is_the_static_prefix() -> None:
    assert US_STATIC[:8] == PREFIX[:8]
    assert OTHER_MAC != US_MAC
