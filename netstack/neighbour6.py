"""IPv6 neighbour resolution and unreachability detection (RFC 4861 §7.2, §7.3): a bounded cache with the five
NUD states, and a bounded queue of packets per next hop being resolved. IPv6's counterpart of neighbour.py.

Why entries are created only two ways: when we need a next hop (INCOMPLETE, resolved by a solicited NA), or by
a Neighbor Solicitation addressed to one of our own addresses that carries its sender's link-layer address
(§7.2.3: we are about to answer it, and the answer needs that address). An unsolicited advertisement may only
update what we already have (§7.2.5), so a flood of NAs for hosts we never talked to fills nothing; a flood
of NSs from many sources can fill the cache but not push out the entries in use: eviction takes the least
recently confirmed STALE entry first, and only when none is left the least recently confirmed of the others.

Why REACHABLE expires into STALE rather than disappearing: a STALE entry is still used to send, and the first
use starts the DELAY/PROBE cycle that re-confirms it by unicast (§7.3.3), so a neighbour in use is never
re-resolved by multicast and its packets are never held while it is confirmed. `confirm` is what a solicited
advertisement does, and would take an upper layer's hint of forward progress too (§7.3.1); no upper layer
calls it yet (TCP has no path back to the stack for it), so a neighbour in use is re-confirmed by one unicast
probe per ReachableTime.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from netstack.addresses6 import ALL_NODES, UNSPECIFIED, is_unicast_host, multicast_mac, solicited_node
from netstack.limits import NdLimits
from netstack.ndp import (
    DEFAULT_ND_LIMITS,
    NEIGHBOR_ADVERT,
    NEIGHBOR_SOLICIT,
    NeighborAdvert,
    NeighborSolicit,
    serialize_na,
    serialize_ns,
)
from netstack.reasons import Counters, Drop

# RFC 4861 §10 protocol constants (the host ones); the two timers may be changed by router advertisements.
REACHABLE_TIME = 30.0  # BaseReachableTime, seconds
RETRANS_TIMER = 1.0
MAX_MULTICAST_SOLICIT = 3
MAX_UNICAST_SOLICIT = 3
DELAY_FIRST_PROBE_TIME = 5.0
MIN_RANDOM_FACTOR = 0.5
MAX_RANDOM_FACTOR = 1.5


class Rng(Protocol):
    """What we need of the injected `random.Random` (the cores may not import `random`)."""

    def uniform(self, a: float, b: float) -> float: ...


class NudState(Enum):
    INCOMPLETE = "incomplete"
    REACHABLE = "reachable"
    STALE = "stale"
    DELAY = "delay"
    PROBE = "probe"


@dataclass(frozen=True, slots=True)
class NdSend:
    """An ND message to send with hop limit 255: the stack adds the ICMPv6 header (type, code 0, checksum over
    the pseudo-header) and the IPv6 header, and sends it to `dst_mac`."""

    src: bytes
    dst: bytes
    dst_mac: bytes
    icmp_type: int
    body: bytes


@dataclass(frozen=True, slots=True)
class NeighbourView:
    """One cache entry as the statistics page shows it."""

    state: NudState
    mac: bytes | None  # None while INCOMPLETE


@dataclass(slots=True)
class _Entry:
    """A neighbour whose MAC is known, in one of the NUD states after INCOMPLETE (RFC 4861 §7.3.2), with the
    deadline that moves it on. Mutable: each confirmation, use and probe updates it in place."""

    mac: bytes
    state: NudState
    deadline: float  # REACHABLE: turns STALE; DELAY: first probe; PROBE: next probe; STALE: never
    source: bytes  # our address that talks to this neighbour: the source of our unicast probes while it is ours
    probes: int = 0


@dataclass(slots=True)
class _Pending:
    """An INCOMPLETE neighbour (RFC 4861 §7.2.2): a next hop being resolved by multicast solicitations from
    `source` (while it is ours: Neighbours6._source), with the packets held until a solicited advertisement
    answers (bounded per destination)."""

    source: bytes
    next_request: float
    tries: int
    packets: deque[bytes] = field(default_factory=deque)


class Neighbours6:
    __slots__ = ("_cache", "_counters", "_limits", "_lost", "_mac", "_pending", "_reachable_time", "_retrans_timer",
                 "_rng", "_unresolved")

    def __init__(self, mac: bytes, counters: Counters, rng: Rng, limits: NdLimits = DEFAULT_ND_LIMITS) -> None:
        self._mac = mac
        self._counters = counters
        self._rng = rng
        self._limits = limits
        self._cache: OrderedDict[bytes, _Entry] = OrderedDict()  # least recently confirmed first
        self._pending: OrderedDict[bytes, _Pending] = OrderedDict()  # the INCOMPLETE entries
        self._unresolved: list[bytes] = []
        self._lost: list[bytes] = []  # cached neighbours whose unicast probes went unanswered, since take_lost
        self._retrans_timer = RETRANS_TIMER
        self._reachable_time = 0.0
        self.configure(base_reachable_time=REACHABLE_TIME)

    def configure(self, *, base_reachable_time: float | None = None, retrans_timer: float | None = None) -> None:
        """Timer values learned from router advertisements (already bounded by slaac.AddressConfig). ReachableTime
        is redrawn around the base each time (§6.3.2) so that hosts on a link do not probe in step."""
        if retrans_timer is not None:
            self._retrans_timer = retrans_timer
        if base_reachable_time is not None:
            self._reachable_time = base_reachable_time * self._rng.uniform(MIN_RANDOM_FACTOR, MAX_RANDOM_FACTOR)

    @property
    def reachable_time(self) -> float:
        return self._reachable_time

    def __len__(self) -> int:
        return len(self._cache) + len(self._pending)

    @property
    def entries(self) -> Mapping[bytes, NeighbourView]:
        view = {ip: NeighbourView(NudState.INCOMPLETE, None) for ip in self._pending}
        view.update((ip, NeighbourView(entry.state, entry.mac)) for ip, entry in self._cache.items())
        return view

    def pending_count(self, next_hop: bytes) -> int:
        pending = self._pending.get(next_hop)
        return len(pending.packets) if pending else 0

    # --- sending -----------------------------------------------------------------------------------------------

    def lookup(self, next_hop: bytes, now: float) -> bytes | None:
        """The MAC to send to; using a STALE entry starts its re-confirmation (§7.3.3: STALE -> DELAY)."""
        entry = self._cache.get(next_hop)
        if entry is None:
            return None
        self._age(entry, now)
        if entry.state is NudState.STALE:
            entry.state = NudState.DELAY
            entry.deadline = now + DELAY_FIRST_PROBE_TIME
        return entry.mac

    def hold(self, now: float, next_hop: bytes, packet: bytes, source: bytes) -> NdSend | None:
        """Queue a packet for a next hop `lookup` did not know; the first time, returns the multicast NS that
        starts resolving it. `source` is the packet's source, one of our addresses: the NS comes from it
        (§7.2.2), and so do later solicitations while it stays ours (`_source`)."""
        pending = self._pending.get(next_hop)
        if pending is None:
            if len(self._pending) >= self._limits.pending_destinations:
                self._counters.add(Drop.ND_PENDING_DESTINATIONS_FULL)
                return None
            pending = _Pending(source, next_request=now + self._retrans_timer, tries=1)
            pending.packets.append(packet)
            self._pending[next_hop] = pending
            return self._multicast_solicit(source, next_hop)
        if len(pending.packets) >= self._limits.pending_packets_per_destination:
            # §7.2.2: the new packet SHOULD replace the oldest, so a retransmission outlives a stale segment
            self._counters.add(Drop.ND_PENDING_FULL)
            pending.packets.popleft()
        pending.packets.append(packet)
        return None

    def _multicast_solicit(self, source: bytes, target: bytes) -> NdSend:
        group = solicited_node(target)
        return NdSend(source, group, multicast_mac(group), NEIGHBOR_SOLICIT, serialize_ns(target, self._mac))

    # --- receiving ---------------------------------------------------------------------------------------------

    def solicitation_received(self, now: float, message: NeighborSolicit, src: bytes,
                              ours: Callable[[bytes], bool]) -> NdSend | None:
        """Answer an NS for one of our addresses. `ours` must say whether an address is assigned to us and
        usable: tentative addresses are not answered for (RFC 4862 §5.4.3, slaac.AddressConfig.assigned).
        Where it was sent (our address or its solicited-node group) the codec has checked already."""
        if not ours(message.target):
            self._counters.add(Drop.ND_NOT_FOR_US)
            return None
        if src == UNSPECIFIED:  # someone's duplicate address detection: defend the address to all nodes
            body = serialize_na(message.target, self._mac, router=False, solicited=False, override=True)
            return NdSend(message.target, ALL_NODES, multicast_mac(ALL_NODES), NEIGHBOR_ADVERT, body)
        if not is_unicast_host(src):
            self._counters.add(Drop.ND_BAD_SENDER)
            return None
        if message.source_mac is not None:
            self._learn(now, src, message.source_mac, message.target)
        entry = self._cache.get(src)
        mac = message.source_mac or (entry.mac if entry else None)
        if mac is None:  # a unicast NS without its sender's address, from a neighbour we do not know
            self._counters.add(Drop.ND_REPLY_UNRESOLVED)
            return None
        body = serialize_na(message.target, self._mac, router=False, solicited=True, override=True)
        return NdSend(message.target, src, mac, NEIGHBOR_ADVERT, body)

    def _learn(self, now: float, ip: bytes, mac: bytes, our_address: bytes) -> None:
        """§7.2.3: create a STALE entry, or mark a known one STALE if its address changed. A next hop still
        being resolved is left to the NA that our own solicitation asked for (it releases the held packets)."""
        if ip in self._pending:
            return
        entry = self._cache.get(ip)
        if entry is None:
            self._store(ip, _Entry(mac, NudState.STALE, math.inf, our_address))
        elif entry.mac != mac:
            entry.mac = mac
            entry.state, entry.deadline, entry.probes = NudState.STALE, math.inf, 0
            self._cache.move_to_end(ip)
        else:
            self._age(entry, now)

    def router_advertised(self, now: float, router: bytes, mac: bytes, our_address: bytes) -> None:
        """RFC 4861 §6.3.4: an RA's source link-layer address goes into the cache like an NS's (a STALE entry),
        so the first packet to the default router needs no multicast resolution."""
        self._learn(now, router, mac, our_address)

    def advertisement_received(self, now: float, message: NeighborAdvert) -> tuple[bytes, tuple[bytes, ...]] | None:
        """§7.2.5: resolve a next hop we asked for (its MAC and the held packets), or update an entry we have;
        None when the advertisement changed nothing usable."""
        ip = message.target
        pending = self._pending.get(ip)
        if pending is not None:
            if message.target_mac is None:
                self._counters.add(Drop.ND_NA_WITHOUT_LINK_ADDRESS)
                return None
            del self._pending[ip]
            created = _Entry(message.target_mac, NudState.STALE, math.inf, pending.source)
            if message.solicited:
                created.state, created.deadline = NudState.REACHABLE, now + self._reachable_time
            self._store(ip, created)
            return created.mac, tuple(pending.packets)
        entry = self._cache.get(ip)
        if entry is None:
            self._counters.add(Drop.ND_UNSOLICITED_NA)
            return None
        self._age(entry, now)
        changed = message.target_mac is not None and message.target_mac != entry.mac
        if changed and not message.override:  # keep the address we have, but stop trusting it blindly
            if entry.state is NudState.REACHABLE:
                entry.state, entry.deadline = NudState.STALE, math.inf
            return None
        if message.target_mac is not None:
            entry.mac = message.target_mac
        if message.solicited:  # the answer to our probe is forward progress too
            self.confirm(ip, now)
        elif changed:
            entry.state, entry.deadline, entry.probes = NudState.STALE, math.inf, 0
            self._cache.move_to_end(ip)
        return entry.mac, ()

    def confirm(self, next_hop: bytes, now: float) -> None:
        """Forward progress seen by an upper layer (§7.3.1): the neighbour is reachable, no probe needed."""
        entry = self._cache.get(next_hop)
        if entry is not None:
            entry.state, entry.deadline, entry.probes = NudState.REACHABLE, now + self._reachable_time, 0
            self._cache.move_to_end(next_hop)

    # --- cache and timers --------------------------------------------------------------------------------------

    def _age(self, entry: _Entry, now: float) -> None:
        if entry.state is NudState.REACHABLE and entry.deadline <= now:
            entry.state, entry.deadline = NudState.STALE, math.inf

    def _store(self, ip: bytes, entry: _Entry) -> None:
        if ip in self._cache:
            self._cache.move_to_end(ip)
        elif len(self._cache) >= self._limits.cache_entries:
            victim = next((k for k, e in self._cache.items() if e.state is NudState.STALE), None)
            del self._cache[victim if victim is not None else next(iter(self._cache))]
            self._counters.add(Drop.ND_CACHE_EVICTED)
        self._cache[ip] = entry

    def timers_expired(self, now: float, ours: Callable[[bytes], bool],
                       source_for: Callable[[bytes], bytes | None]) -> list[NdSend]:
        """Retry or give up on resolutions (multicast NS), and run the DELAY/PROBE cycle (unicast NS). Each
        solicitation's source is picked as it is built (`_source`): `ours` and `source_for` are the address
        configuration's `assigned` and `solicitation_source`."""
        sends: list[NdSend] = []
        for ip in [ip for ip, p in self._pending.items() if p.next_request <= now]:
            pending = self._pending[ip]
            if pending.tries >= MAX_MULTICAST_SOLICIT:
                self._counters.add(Drop.ND_UNRESOLVED, len(pending.packets))
                del self._pending[ip]
                if len(self._unresolved) < self._limits.pending_destinations:
                    self._unresolved.append(ip)
                continue
            pending.tries += 1
            pending.next_request = now + self._retrans_timer
            pending.source = self._source(pending.source, ip, ours, source_for)
            if pending.source:
                sends.append(self._multicast_solicit(pending.source, ip))
        for ip in [ip for ip, e in self._cache.items() if e.deadline <= now]:
            entry = self._cache[ip]
            if entry.state is NudState.REACHABLE:
                entry.state, entry.deadline = NudState.STALE, math.inf
                continue
            if entry.probes >= MAX_UNICAST_SOLICIT:  # §7.3.3: unreachable; the next packet re-resolves it
                self._counters.add(Drop.ND_PROBE_FAILED)
                del self._cache[ip]
                if len(self._lost) < self._limits.pending_destinations:
                    self._lost.append(ip)
                continue
            entry.state, entry.deadline = NudState.PROBE, now + self._retrans_timer
            entry.probes += 1
            entry.source = self._source(entry.source, ip, ours, source_for)
            if entry.source:
                sends.append(NdSend(entry.source, ip, entry.mac, NEIGHBOR_SOLICIT, serialize_ns(ip, self._mac)))
        return sends

    def _source(self, source: bytes, target: bytes, ours: Callable[[bytes], bool],
                source_for: Callable[[bytes], bytes | None]) -> bytes:
        """The source of a solicitation built now (RFC 4861 §7.2.2, which §7.3.3's probes follow): the prompting
        packet's source while it is still ours, otherwise an address assigned to the interface, as source
        selection picks it for the target. Kept from when the entry was made, the source could be an address
        that has since expired: the answer went to it, was dropped as not for us, and a neighbour in use was
        declared unreachable. b"" when we have no address to send from: the try is used up without a message
        (counted as nd-solicit-no-source), so the entry still gives up after its tries."""
        if ours(source):
            return source
        picked = source_for(target)
        if picked is None:
            self._counters.add(Drop.ND_SOLICIT_NO_SOURCE)
            return b""
        return picked

    def take_unresolved(self) -> list[bytes]:
        """The next hops whose resolution failed since the last call (their packets were dropped): the stack
        tells the upper layers, as with neighbour.Neighbours.take_unresolved."""
        out, self._unresolved = self._unresolved, []
        return out

    def take_lost(self) -> list[bytes]:
        """The cached neighbours found unreachable by their unicast probes since the last call (§7.3.3): the
        stack moves a default router among them behind the others (§6.3.6). Bounded as `take_unresolved`."""
        out, self._lost = self._lost, []
        return out

    def known(self, ip: bytes) -> bool:
        """Reachable or probably reachable in RFC 4861 §6.3.6's sense: a cache entry in any state but INCOMPLETE
        (those are `_pending`). What default router selection prefers."""
        return ip in self._cache

    def next_deadline(self) -> float | None:
        deadlines = [p.next_request for p in self._pending.values()]
        deadlines += [e.deadline for e in self._cache.values() if e.deadline != math.inf]
        return min(deadlines) if deadlines else None

    def clear(self) -> None:
        """Forget everything (the link went down or our addresses changed)."""
        self._cache.clear()
        self._pending.clear()
        self._unresolved.clear()
        self._lost.clear()
