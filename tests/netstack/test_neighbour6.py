"""The IPv6 neighbour cache: creation rules, NUD state transitions in virtual time, bounds under floods."""

from __future__ import annotations

import random

import pytest

from netstack import ndp
from netstack.addresses6 import ALL_NODES, UNSPECIFIED, ip6_from_text, multicast_mac, solicited_node
from netstack.limits import NdLimits
from netstack.ndp import NeighborAdvert, NeighborSolicit, parse_nd
from netstack.neighbour6 import (
    DELAY_FIRST_PROBE_TIME,
    MAX_MULTICAST_SOLICIT,
    MAX_UNICAST_SOLICIT,
    NdSend,
    Neighbours6,
    NeighbourView,
    NudState,
)
from netstack.reasons import Counters, Drop

US_MAC = bytes.fromhex("020000000001")
PEER_MAC = bytes.fromhex("020000000002")
OTHER_MAC = bytes.fromhex("020000000003")
US = ip6_from_text("fe80::a")
PEER = ip6_from_text("fe80::2")
OTHER = ip6_from_text("fe80::3")


class FixedRng:
    """A generator whose draws are known: uniform returns the midpoint, so ReachableTime is exactly 30 s."""

    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2


def make(limits: NdLimits | None = None) -> tuple[Neighbours6, Counters]:
    counters = Counters()
    if limits is None:
        return Neighbours6(US_MAC, counters, FixedRng()), counters
    return Neighbours6(US_MAC, counters, FixedRng(), limits), counters


def ours(address: bytes) -> bool:
    return address == US


def pick(target: bytes) -> bytes | None:
    """Source selection with US as the one address assigned."""
    return US


def na(target: bytes, mac: bytes | None, *, solicited: bool = True, override: bool = True) -> NeighborAdvert:
    return NeighborAdvert(False, solicited, override, target, mac)


def decode(send: NdSend, src: bytes | None = None) -> ndp.NdMessage:
    return parse_nd(send.icmp_type, 0, memoryview(send.body), hop_limit=255, src=src or send.src, dst=send.dst)


def resolved(n: Neighbours6, ip: bytes = PEER, mac: bytes = PEER_MAC, now: float = 0.0) -> None:
    n.hold(now, ip, b"first", US)
    assert n.advertisement_received(now, na(ip, mac)) == (mac, (b"first",))


def state(n: Neighbours6, ip: bytes = PEER) -> NudState:
    return n.entries[ip].state


# --- resolution ------------------------------------------------------------------------------------------------


def test_hold_sends_multicast_ns_to_the_solicited_node_group() -> None:
    n, _ = make()
    send = n.hold(0.0, PEER, b"p1", US)
    assert send is not None
    group = solicited_node(PEER)
    assert (send.src, send.dst, send.dst_mac, send.icmp_type) == (US, group, multicast_mac(group), 135)
    assert decode(send) == NeighborSolicit(PEER, US_MAC)
    assert n.hold(0.1, PEER, b"p2", US) is None  # one solicitation per retransmission interval
    assert n.pending_count(PEER) == 2
    assert state(n) is NudState.INCOMPLETE
    assert n.lookup(PEER, 0.2) is None


def test_solicited_na_releases_packets_and_is_reachable() -> None:
    n, _ = make()
    n.hold(0.0, PEER, b"p1", US)
    n.hold(0.0, PEER, b"p2", US)
    assert n.advertisement_received(0.5, na(PEER, PEER_MAC)) == (PEER_MAC, (b"p1", b"p2"))
    assert state(n) is NudState.REACHABLE
    assert n.lookup(PEER, 1.0) == PEER_MAC
    assert n.pending_count(PEER) == 0


def test_unsolicited_na_resolving_a_pending_entry_is_stale() -> None:
    n, _ = make()
    n.hold(0.0, PEER, b"p1", US)
    assert n.advertisement_received(0.5, na(PEER, PEER_MAC, solicited=False)) == (PEER_MAC, (b"p1",))
    assert state(n) is NudState.STALE


def test_na_without_link_address_does_not_resolve() -> None:
    n, counters = make()
    n.hold(0.0, PEER, b"p1", US)
    assert n.advertisement_received(0.5, na(PEER, None)) is None
    assert counters[Drop.ND_NA_WITHOUT_LINK_ADDRESS] == 1
    assert n.pending_count(PEER) == 1


def test_resolution_retries_then_gives_up() -> None:
    n, counters = make()
    n.hold(0.0, PEER, b"p1", US)
    n.hold(0.0, PEER, b"p2", US)
    sends = []
    now = 0.0
    while (deadline := n.next_deadline()) is not None:
        now = deadline
        sends += n.timers_expired(now, ours, pick)
    assert len(sends) == MAX_MULTICAST_SOLICIT - 1  # plus the one hold() returned
    assert all(s.dst == solicited_node(PEER) for s in sends)
    assert now == pytest.approx(3.0)
    assert counters[Drop.ND_UNRESOLVED] == 2
    assert n.take_unresolved() == [PEER]
    assert n.take_unresolved() == []
    assert len(n) == 0


def test_pending_queue_limits() -> None:
    n, counters = make(NdLimits(pending_destinations=2, pending_packets_per_destination=3))
    for i in range(5):
        n.hold(0.0, PEER, bytes([i]), US)
    assert n.pending_count(PEER) == 3
    assert counters[Drop.ND_PENDING_FULL] == 2
    # RFC 4861 §7.2.2: each new packet replaced the oldest, so the newest three are released
    assert n.advertisement_received(0.5, NeighborAdvert(False, True, True, PEER, PEER_MAC)) == \
        (PEER_MAC, (b"\x02", b"\x03", b"\x04"))
    for i in range(5):
        n.hold(0.5, PEER, bytes([i]), US)
    assert n.hold(0.0, OTHER, b"x", US) is not None
    assert n.hold(0.0, ip6_from_text("fe80::4"), b"x", US) is None
    assert counters[Drop.ND_PENDING_DESTINATIONS_FULL] == 1


# --- NUD state machine (RFC 4861 §7.3.3) -----------------------------------------------------------------------


def test_reachable_becomes_stale_then_delay_then_probe_then_gone() -> None:
    n, counters = make()
    resolved(n)
    assert n.reachable_time == 30.0
    assert n.next_deadline() == 30.0
    assert n.timers_expired(30.0, ours, pick) == []
    assert state(n) is NudState.STALE
    assert n.next_deadline() is None  # STALE waits for traffic
    assert n.lookup(PEER, 100.0) == PEER_MAC  # a STALE entry is still used...
    assert state(n) is NudState.DELAY  # ...and that starts its re-confirmation
    assert n.next_deadline() == 100.0 + DELAY_FIRST_PROBE_TIME
    probes = []
    now = 100.0
    while (deadline := n.next_deadline()) is not None:
        now = deadline
        probes += n.timers_expired(now, ours, pick)
        if PEER in n.entries:
            assert state(n) is NudState.PROBE
            assert n.lookup(PEER, now) == PEER_MAC  # packets still go out while probing
    assert len(probes) == MAX_UNICAST_SOLICIT
    for probe in probes:  # unicast, to the cached MAC, from the address that used the neighbour
        assert (probe.src, probe.dst, probe.dst_mac) == (US, PEER, PEER_MAC)
        assert decode(probe) == NeighborSolicit(PEER, US_MAC)
    assert counters[Drop.ND_PROBE_FAILED] == 1
    assert n.lookup(PEER, now) is None
    assert n.take_lost() == [PEER]  # for default router selection (RFC 4861 §6.3.6)
    assert n.take_lost() == []
    assert not n.known(PEER)


def test_reachable_expiry_is_noticed_on_lookup_without_a_timer() -> None:
    n, _ = make()
    resolved(n)
    assert n.lookup(PEER, 31.0) == PEER_MAC
    assert state(n) is NudState.DELAY


def test_solicited_na_while_probing_makes_reachable() -> None:
    n, _ = make()
    resolved(n)
    n.lookup(PEER, 40.0)
    n.timers_expired(45.0, ours, pick)
    assert state(n) is NudState.PROBE
    assert n.advertisement_received(45.5, na(PEER, PEER_MAC)) == (PEER_MAC, ())
    assert state(n) is NudState.REACHABLE
    assert n.next_deadline() == 45.5 + 30.0


def test_confirm_from_upper_layer_skips_the_probes() -> None:
    n, _ = make()
    resolved(n)
    n.lookup(PEER, 40.0)
    assert state(n) is NudState.DELAY
    n.confirm(PEER, 42.0)
    assert state(n) is NudState.REACHABLE
    assert n.timers_expired(45.0, ours, pick) == []
    n.confirm(OTHER, 42.0)  # unknown: nothing created
    assert OTHER not in n.entries


def test_na_without_override_does_not_replace_the_address() -> None:
    n, _ = make()
    resolved(n)
    assert n.advertisement_received(1.0, na(PEER, OTHER_MAC, solicited=True, override=False)) is None
    assert n.entries[PEER].mac == PEER_MAC
    assert state(n) is NudState.STALE  # REACHABLE -> STALE: the address is in doubt


def test_na_with_override_replaces_the_address() -> None:
    n, _ = make()
    resolved(n)
    assert n.advertisement_received(1.0, na(PEER, OTHER_MAC, solicited=False)) == (OTHER_MAC, ())
    assert n.entries[PEER].mac == OTHER_MAC
    assert state(n) is NudState.STALE


def test_unsolicited_na_with_the_same_address_changes_nothing() -> None:
    n, _ = make()
    resolved(n)
    n.advertisement_received(1.0, na(PEER, PEER_MAC, solicited=False))
    assert state(n) is NudState.REACHABLE


# --- solicitations ---------------------------------------------------------------------------------------------


def test_ns_for_us_is_answered_and_creates_a_stale_entry() -> None:
    n, _ = make()
    reply = n.solicitation_received(0.0, NeighborSolicit(US, PEER_MAC), PEER, ours)
    assert reply is not None
    assert (reply.src, reply.dst, reply.dst_mac, reply.icmp_type) == (US, PEER, PEER_MAC, 136)
    assert decode(reply) == NeighborAdvert(False, True, True, US, US_MAC)
    assert n.entries[PEER] == NeighbourView(NudState.STALE, PEER_MAC)


def test_ns_with_a_new_address_marks_the_entry_stale() -> None:
    n, _ = make()
    resolved(n)
    n.solicitation_received(1.0, NeighborSolicit(US, OTHER_MAC), PEER, ours)
    assert n.entries[PEER].mac == OTHER_MAC
    assert state(n) is NudState.STALE


def test_ns_does_not_complete_a_pending_resolution() -> None:
    """The NA our own solicitation asked for does that, and it releases the held packets."""
    n, _ = make()
    n.hold(0.0, PEER, b"p1", US)
    assert n.solicitation_received(0.1, NeighborSolicit(US, PEER_MAC), PEER, ours) is not None
    assert state(n) is NudState.INCOMPLETE
    assert n.advertisement_received(0.2, na(PEER, PEER_MAC)) == (PEER_MAC, (b"p1",))


def test_unicast_ns_without_source_option_uses_the_cache() -> None:
    n, counters = make()
    assert n.solicitation_received(0.0, NeighborSolicit(US, None), PEER, ours) is None
    assert counters[Drop.ND_REPLY_UNRESOLVED] == 1
    assert PEER not in n.entries
    resolved(n)
    reply = n.solicitation_received(1.0, NeighborSolicit(US, None), PEER, ours)
    assert reply is not None
    assert reply.dst_mac == PEER_MAC


def test_dad_probe_for_our_address_is_defended_to_all_nodes() -> None:
    n, _ = make()
    reply = n.solicitation_received(0.0, NeighborSolicit(US, None), UNSPECIFIED, ours)
    assert reply is not None
    assert (reply.src, reply.dst, reply.dst_mac) == (US, ALL_NODES, multicast_mac(ALL_NODES))
    assert decode(reply) == NeighborAdvert(False, False, True, US, US_MAC)
    assert len(n) == 0


def test_ns_not_for_us_is_refused_and_learns_nothing() -> None:
    n, counters = make()
    assert n.solicitation_received(0.0, NeighborSolicit(OTHER, PEER_MAC), PEER, ours) is None
    assert counters[Drop.ND_NOT_FOR_US] == 1
    assert len(n) == 0


def test_ns_from_a_martian_source_is_refused() -> None:
    n, counters = make()
    loopback = bytes(15) + b"\x01"
    assert n.solicitation_received(0.0, NeighborSolicit(US, PEER_MAC), loopback, ours) is None
    assert counters[Drop.ND_BAD_SENDER] == 1
    assert len(n) == 0


# --- floods ----------------------------------------------------------------------------------------------------


def test_unsolicited_na_flood_creates_nothing() -> None:
    n, counters = make()
    for i in range(10_000):
        target = ip6_from_text("2001:db8::")[:8] + i.to_bytes(8, "big")
        assert n.advertisement_received(0.0, na(target, PEER_MAC, solicited=False)) is None
    assert len(n) == 0
    assert counters[Drop.ND_UNSOLICITED_NA] == 10_000


def test_ns_flood_from_10000_sources_is_bounded_and_keeps_entries_in_use() -> None:
    limits = NdLimits(cache_entries=64)
    n, counters = make(limits)
    resolved(n)  # the gateway, REACHABLE and in use
    rng = random.Random(7)
    for i in range(10_000):
        source = ip6_from_text("fe80::")[:8] + rng.randbytes(8)
        mac = bytes([2]) + i.to_bytes(5, "big")
        assert n.solicitation_received(1.0, NeighborSolicit(US, mac), source, ours) is not None
    assert len(n) == limits.cache_entries
    assert counters[Drop.ND_CACHE_EVICTED] == 10_000 - (limits.cache_entries - 1)
    assert n.lookup(PEER, 2.0) == PEER_MAC  # the flood evicted only STALE entries


def test_eviction_takes_the_oldest_when_nothing_is_stale() -> None:
    n, counters = make(NdLimits(cache_entries=2))
    resolved(n, PEER, PEER_MAC)
    resolved(n, OTHER, OTHER_MAC)
    third = ip6_from_text("fe80::4")
    resolved(n, third, PEER_MAC)
    assert counters[Drop.ND_CACHE_EVICTED] == 1
    assert set(n.entries) == {OTHER, third}


def test_clear_forgets_everything() -> None:
    n, _ = make()
    resolved(n)
    n.hold(0.0, OTHER, b"x", US)
    n.clear()
    assert len(n) == 0
    assert n.next_deadline() is None


def test_configure_redraws_reachable_time_and_sets_retransmissions() -> None:
    n = Neighbours6(US_MAC, Counters(), random.Random(1))
    assert 15.0 <= n.reachable_time <= 45.0
    n.configure(base_reachable_time=10.0, retrans_timer=2.0)
    assert 5.0 <= n.reachable_time <= 15.0
    n.hold(0.0, PEER, b"x", US)
    assert n.next_deadline() == 2.0


def test_ns_with_the_known_address_leaves_the_state_alone() -> None:
    n, _ = make()
    resolved(n)
    n.solicitation_received(1.0, NeighborSolicit(US, PEER_MAC), PEER, ours)
    assert state(n) is NudState.REACHABLE


# --- the source of each solicitation (RFC 4861 §7.2.2, §7.3.3; audit F3) ------------------------------------------

OLD = ip6_from_text("2001:db8:1::a")  # an address of ours that expired after the entry was made
NEW = ip6_from_text("2001:db8:1::b")


def probe_cycle(n: Neighbours6, now: float, owned: set[bytes], picked: bytes | None) -> list[NdSend]:
    """Use PEER's STALE entry at `now` and run its DELAY/PROBE cycle to the end, with `owned` assigned to us and
    `picked` what source selection returns."""
    assert n.lookup(PEER, now) == PEER_MAC
    probes: list[NdSend] = []
    while (deadline := n.next_deadline()) is not None:
        probes += n.timers_expired(deadline, owned.__contains__, lambda _target: picked)
    return probes


def test_probes_come_from_a_current_address_once_the_entry_source_is_gone() -> None:
    n, counters = make()
    n.solicitation_received(0.0, NeighborSolicit(OLD, PEER_MAC), PEER, lambda a: a == OLD)  # entry sourced OLD
    probes = probe_cycle(n, 30.0, {US, NEW}, NEW)  # OLD expired meanwhile
    assert len(probes) == MAX_UNICAST_SOLICIT
    assert {p.src for p in probes} == {NEW}  # never OLD: the NA would go to an address we dropped
    assert counters[Drop.ND_SOLICIT_NO_SOURCE] == 0


def test_probes_keep_the_entry_source_while_it_is_ours() -> None:
    n, _ = make()
    n.solicitation_received(0.0, NeighborSolicit(OLD, PEER_MAC), PEER, lambda a: a == OLD)
    probes = probe_cycle(n, 30.0, {US, OLD, NEW}, NEW)
    assert {p.src for p in probes} == {OLD}  # §7.2.2: the prompting packet's source, since it is still ours


def test_resolution_retries_come_from_a_current_address_once_the_packet_source_is_gone() -> None:
    n, _ = make()
    first = n.hold(0.0, PEER, b"p1", OLD)
    assert first is not None
    assert first.src == OLD
    sends: list[NdSend] = []
    while (deadline := n.next_deadline()) is not None:
        sends += n.timers_expired(deadline, {US}.__contains__, lambda _target: US)
    assert len(sends) == MAX_MULTICAST_SOLICIT - 1
    assert {s.src for s in sends} == {US}


def test_no_solicitation_without_a_source_and_the_entry_still_gives_up() -> None:
    n, counters = make()
    n.solicitation_received(0.0, NeighborSolicit(OLD, PEER_MAC), PEER, lambda a: a == OLD)
    assert probe_cycle(n, 30.0, set(), None) == []  # no address at all: nothing sent, nothing from OLD
    assert counters[Drop.ND_SOLICIT_NO_SOURCE] == MAX_UNICAST_SOLICIT
    assert counters[Drop.ND_PROBE_FAILED] == 1
    assert PEER not in n.entries
    n.hold(40.0, OTHER, b"x", OLD)
    sends: list[NdSend] = []
    while (deadline := n.next_deadline()) is not None:
        sends += n.timers_expired(deadline, set().__contains__, lambda _target: None)
    assert sends == []
    assert counters[Drop.ND_SOLICIT_NO_SOURCE] == MAX_UNICAST_SOLICIT + MAX_MULTICAST_SOLICIT - 1
    assert counters[Drop.ND_UNRESOLVED] == 1
