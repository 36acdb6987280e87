from __future__ import annotations

from netstack.arp import OP_REPLY, OP_REQUEST, ArpPacket, parse_arp
from netstack.limits import DEFAULT_STACK_LIMITS
from netstack.neighbour import Neighbours
from netstack.reasons import Counters, Drop
from tests.netstack.builders import OTHER, OTHER_MAC, PEER, PEER_MAC, US, US_MAC

LIMITS = DEFAULT_STACK_LIMITS.neighbours

FAR_SUBNET = bytes([192, 168, 9, 9])


def make() -> tuple[Neighbours, Counters]:
    counters = Counters()
    return Neighbours(US_MAC, counters), counters


def packet(op: int, smac: bytes, sip: bytes, tip: bytes, tmac: bytes = bytes(6)) -> ArpPacket:
    return ArpPacket(op, smac, sip, tmac, tip)


def test_request_for_us_is_answered_and_learned() -> None:
    n, _ = make()
    outcome = n.arp_received(0.0, PEER_MAC, packet(OP_REQUEST, PEER_MAC, PEER, US), US, 24)
    assert outcome is not None
    assert outcome.reply is not None
    assert parse_arp(outcome.reply) == ArpPacket(OP_REPLY, US_MAC, US, PEER_MAC, PEER)
    assert outcome.mac == PEER_MAC
    assert n.lookup(PEER, 1.0) == PEER_MAC


def test_unsolicited_reply_not_for_us_creates_nothing() -> None:
    n, counters = make()
    assert n.arp_received(0.0, OTHER_MAC, packet(OP_REPLY, OTHER_MAC, OTHER, PEER), US, 24) is None
    assert n.lookup(OTHER, 0.0) is None
    assert counters[Drop.ARP_NOT_FOR_US] == 1


def test_gratuitous_arp_updates_only_known_entries() -> None:
    n, _ = make()
    n.arp_received(0.0, PEER_MAC, packet(OP_REQUEST, PEER_MAC, PEER, US), US, 24)
    new_mac = bytes.fromhex("02000000bbbb")
    # gratuitous announcements (target = sender) for a known and an unknown host
    n.arp_received(1.0, new_mac, packet(OP_REQUEST, new_mac, PEER, PEER), US, 24)
    n.arp_received(1.0, OTHER_MAC, packet(OP_REQUEST, OTHER_MAC, OTHER, OTHER), US, 24)
    assert n.lookup(PEER, 2.0) == new_mac  # RFC 826 merge: an existing entry is updated
    assert n.lookup(OTHER, 2.0) is None  # but nothing new is created


def test_claims_on_our_own_address_refused() -> None:
    n, counters = make()
    assert n.arp_received(0.0, OTHER_MAC, packet(OP_REPLY, OTHER_MAC, US, US), US, 24) is None
    assert n.arp_received(0.0, OTHER_MAC, packet(OP_REQUEST, OTHER_MAC, US, PEER), US, 24) is None
    assert counters[Drop.ARP_ADDRESS_CONFLICT] == 2
    assert n.lookup(US, 0.0) is None


def test_sender_mac_must_match_the_frame_source() -> None:
    n, counters = make()
    assert n.arp_received(0.0, OTHER_MAC, packet(OP_REQUEST, PEER_MAC, PEER, US), US, 24) is None
    assert counters[Drop.ARP_MAC_MISMATCH] == 1
    assert n.lookup(PEER, 0.0) is None


def test_implausible_senders_refused() -> None:
    n, counters = make()
    assert n.arp_received(0.0, PEER_MAC, packet(OP_REQUEST, PEER_MAC, FAR_SUBNET, US), US, 24) is None
    multicast = bytes.fromhex("01005e000001")
    assert n.arp_received(0.0, multicast, packet(OP_REQUEST, multicast, PEER, US), US, 24) is None
    loopback = bytes([127, 0, 0, 1])
    assert n.arp_received(0.0, PEER_MAC, packet(OP_REQUEST, PEER_MAC, loopback, US), US, 8) is None
    assert counters[Drop.ARP_BAD_SENDER] == 3
    assert len(n.cache) == 0


def test_probe_for_our_address_is_answered_but_not_learned() -> None:
    n, _ = make()
    outcome = n.arp_received(0.0, PEER_MAC, packet(OP_REQUEST, PEER_MAC, bytes(4), US), US, 24)
    assert outcome is not None
    assert outcome.reply is not None
    assert len(n.cache) == 0


def test_unconfigured_interface_learns_nothing() -> None:
    n, counters = make()
    assert n.arp_received(0.0, PEER_MAC, packet(OP_REQUEST, PEER_MAC, PEER, US), None, 32) is None
    assert counters[Drop.ARP_NOT_FOR_US] == 1


def test_held_packets_are_released_by_the_reply() -> None:
    n, _ = make()
    request = n.hold(0.0, PEER, b"p1", US)
    assert request is not None
    assert parse_arp(request) == ArpPacket(OP_REQUEST, US_MAC, US, bytes(6), PEER)
    assert n.hold(0.1, PEER, b"p2", US) is None  # one request per interval
    outcome = n.arp_received(0.2, PEER_MAC, packet(OP_REPLY, PEER_MAC, PEER, US, US_MAC), US, 24)
    assert outcome is not None
    assert outcome.reply is None
    assert outcome.released == (b"p1", b"p2")
    assert n.pending_count(PEER) == 0


def test_pending_queue_is_bounded_per_destination_and_in_destinations() -> None:
    n, counters = make()
    for i in range(LIMITS.pending_packets_per_destination + 5):
        n.hold(0.0, PEER, bytes([i]), US)
    assert n.pending_count(PEER) == LIMITS.pending_packets_per_destination
    assert counters[Drop.ARP_PENDING_FULL] == 5
    for i in range(LIMITS.pending_destinations + 3):
        n.hold(0.0, bytes([10, 1, i // 256, i % 256]), b"x", US)
    assert counters[Drop.ARP_PENDING_DESTINATIONS_FULL] == 4  # PEER already holds one slot


def test_requests_are_retried_then_packets_dropped() -> None:
    n, counters = make()
    n.hold(0.0, PEER, b"a", US)
    n.hold(0.0, PEER, b"b", US)
    sent = 1
    now = 0.0
    while (deadline := n.next_deadline()) is not None:
        now = deadline
        sent += len(n.timers_expired(now, US))
    assert sent == LIMITS.request_tries
    assert counters[Drop.ARP_UNRESOLVED] == 2
    assert n.pending_count(PEER) == 0
    assert now == float(LIMITS.request_tries)


def test_mapping_in_use_is_reconfirmed_by_unicast_before_it_expires() -> None:
    n, _ = make()
    n.arp_received(0.0, PEER_MAC, packet(OP_REQUEST, PEER_MAC, PEER, US), US, 24)
    assert n.lookup(PEER, 100.0) == PEER_MAC
    assert n.next_deadline() == LIMITS.entry_ttl  # not in use near expiry: nothing to do before it expires
    near = LIMITS.entry_ttl - LIMITS.refresh_before + 1.0
    assert n.lookup(PEER, near) == PEER_MAC
    assert n.next_deadline() == near
    ((request, dst_mac),) = n.timers_expired(near, US)
    assert dst_mac == PEER_MAC  # a unicast poll, not a broadcast
    assert parse_arp(request) == ArpPacket(OP_REQUEST, US_MAC, US, bytes(6), PEER)
    n.arp_received(near + 0.1, PEER_MAC, packet(OP_REPLY, PEER_MAC, PEER, US, US_MAC), US, 24)
    assert n.timers_expired(near + LIMITS.request_interval, US) == []
    assert n.lookup(PEER, LIMITS.entry_ttl + 10.0) == PEER_MAC  # the reply extended the mapping


def test_unanswered_refresh_gives_up_and_the_entry_expires() -> None:
    n, _ = make()
    n.arp_received(0.0, PEER_MAC, packet(OP_REQUEST, PEER_MAC, PEER, US), US, 24)
    n.lookup(PEER, LIMITS.entry_ttl - 10.0)
    polls = 0
    while (deadline := n.next_deadline()) is not None:
        polls += len(n.timers_expired(deadline, US))
    assert polls == LIMITS.request_tries
    assert n.lookup(PEER, LIMITS.entry_ttl) is None
    assert len(n.cache) == 0


def test_arp_naming_our_own_mac_as_sender_is_never_learned() -> None:
    """One forged gratuitous ARP with our MAC for the gateway would send every off-link packet to ourselves."""
    n, counters = make()
    assert n.arp_received(0.0, PEER_MAC, packet(OP_REQUEST, PEER_MAC, PEER, US), US, 24) is not None
    for op, target in ((OP_REQUEST, PEER), (OP_REPLY, US), (OP_REQUEST, US)):
        assert n.arp_received(1.0, US_MAC, packet(op, US_MAC, PEER, target), US, 24) is None
    assert n.lookup(PEER, 1.0) == PEER_MAC
    assert counters[Drop.ARP_OWN_SENDER] == 3
    # our own announcement looped back is ours, not a conflict (RFC 5227 §2.4)
    assert n.arp_received(2.0, US_MAC, packet(OP_REQUEST, US_MAC, US, US), US, 24) is None
    assert counters[Drop.ARP_ADDRESS_CONFLICT] == 0
    assert counters[Drop.ARP_OWN_SENDER] == 4


def test_arp_from_the_subnet_broadcast_or_network_address_is_refused() -> None:
    n, counters = make()
    for sender in (bytes([10, 0, 0, 255]), bytes([10, 0, 0, 0])):
        assert n.arp_received(0.0, OTHER_MAC, packet(OP_REPLY, OTHER_MAC, sender, US, US_MAC), US, 24) is None
        assert n.lookup(sender, 0.0) is None
    assert counters[Drop.ARP_BAD_SENDER] == 2
    # on a /31 both addresses are hosts
    assert n.arp_received(0.0, OTHER_MAC, packet(OP_REPLY, OTHER_MAC, bytes([10, 0, 0, 3]), US, US_MAC),
                          bytes([10, 0, 0, 2]), 31) is not None  # fmt: skip
