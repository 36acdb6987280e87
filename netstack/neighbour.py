"""Neighbour resolution: RFC 826's merge rule over a bounded cache, and a bounded queue per next hop.

Why the merge rule and not "learn from every reply": an ARP packet may only *create* an entry when it is
addressed to us (target protocol address is ours); any other packet may only refresh an entry we already
have. So an attacker broadcasting replies for hosts we never talked to fills nothing, and the total table is
capped anyway. We additionally refuse senders that are not plausible on-link hosts.

Why refresh before expiry: a mapping in use (the gateway, during a transfer) would otherwise vanish every
`entry_ttl` seconds (netstack.limits.NeighbourLimits) and the packets in flight would pile into the pending
queue. A mapping used in its last `refresh_before` seconds is re-confirmed with unicast requests to the known
MAC (RFC 1122 2.3.2.1).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

from netstack.addresses import (
    ANY,
    MAC_BROADCAST,
    is_multicast_mac,
    is_subnet_network_or_broadcast,
    is_unicast_host,
    same_subnet,
)
from netstack.arp import OP_REPLY, OP_REQUEST, ArpCache, ArpPacket, serialize_arp
from netstack.limits import DEFAULT_STACK_LIMITS, NeighbourLimits
from netstack.reasons import Counters, Drop

_ZERO_MAC = bytes(6)


@dataclass(slots=True)
class _Pending:
    """An ARP resolution in progress for one next hop: when the next request goes, how many went, and the packets
    held until the answer (bounded per destination). A refresh of an entry in use takes one with no packets.
    Mutable: each retry updates it in place."""

    next_request: float
    tries: int
    packets: deque[bytes] = field(default_factory=deque)


@dataclass(frozen=True, slots=True)
class ArpOutcome:
    """What one received ARP packet caused: an optional reply (an ARP payload) and released packets."""

    reply: bytes | None
    released: tuple[bytes, ...]  # IPv4 packets that were waiting for this neighbour
    mac: bytes  # the sender's MAC: where the reply and the released packets go


class Neighbours:
    __slots__ = ("_counters", "_limits", "_mac", "_pending", "_refreshing", "_unresolved", "cache")

    def __init__(self, mac: bytes, counters: Counters,
                 limits: NeighbourLimits = DEFAULT_STACK_LIMITS.neighbours) -> None:
        self._mac = mac
        self._counters = counters
        self._limits = limits
        self.cache = ArpCache(limits.cache_entries, limits.entry_ttl, counters)
        self._pending: OrderedDict[bytes, _Pending] = OrderedDict()
        self._refreshing: dict[bytes, _Pending] = {}  # in-use entries near expiry: next unicast request, tries
        self._unresolved: list[bytes] = []  # next hops given up on since `take_unresolved`

    def lookup(self, ip: bytes, now: float) -> bytes | None:
        """The MAC to send to, on the hot path; notes entries that need re-confirming soon."""
        entry = self.cache.entry(ip)
        if entry is None or entry[1] <= now:
            return None
        if entry[1] - now < self._limits.refresh_before and ip not in self._refreshing:
            self._refreshing[ip] = _Pending(next_request=now, tries=0)
        return entry[0]

    def pending_count(self, ip: bytes) -> int:
        pending = self._pending.get(ip)
        return len(pending.packets) if pending else 0

    def hold(self, now: float, ip: bytes, packet: bytes, my_ip: bytes) -> bytes | None:
        """Queue a packet for an unresolved next hop; returns an ARP request to broadcast if one is due now."""
        pending = self._pending.get(ip)
        if pending is None:
            if len(self._pending) >= self._limits.pending_destinations:
                self._counters.add(Drop.ARP_PENDING_DESTINATIONS_FULL)
                return None
            pending = _Pending(next_request=now + self._limits.request_interval, tries=1)
            pending.packets.append(packet)
            self._pending[ip] = pending
            return self.request(my_ip, ip)
        if len(pending.packets) >= self._limits.pending_packets_per_destination:
            self._counters.add(Drop.ARP_PENDING_FULL)
            return None
        pending.packets.append(packet)
        return None

    def request(self, my_ip: bytes, target_ip: bytes) -> bytes:
        return serialize_arp(ArpPacket(OP_REQUEST, self._mac, my_ip, _ZERO_MAC, target_ip))

    def announcement(self, my_ip: bytes) -> bytes:
        """Gratuitous ARP (RFC 5227 announcement): refreshes neighbours that cached a previous owner's MAC."""
        return serialize_arp(ArpPacket(OP_REQUEST, self._mac, my_ip, _ZERO_MAC, my_ip))

    def arp_received(
        self, now: float, eth_src: bytes, packet: ArpPacket, my_ip: bytes | None, prefix_len: int
    ) -> ArpOutcome | None:
        if packet.sender_mac != eth_src:
            self._counters.add(Drop.ARP_MAC_MISMATCH)
            return None
        if is_multicast_mac(packet.sender_mac) or packet.sender_mac == _ZERO_MAC:
            self._counters.add(Drop.ARP_BAD_SENDER)
            return None
        if packet.sender_mac == self._mac:
            # Our own frame looped back, or a forgery: one gratuitous ARP naming us as the gateway's MAC would
            # black-hole every off-link packet, with refreshes that go to ourselves and never correct it. Not
            # a conflict either (RFC 5227 §2.4: a packet carrying our own hardware address is ours).
            self._counters.add(Drop.ARP_OWN_SENDER)
            return None
        if my_ip is None:
            self._counters.add(Drop.ARP_NOT_FOR_US)
            return None
        if packet.sender_ip == my_ip:
            self._counters.add(Drop.ARP_ADDRESS_CONFLICT)
            return None
        for_us = packet.target_ip == my_ip
        probe = packet.sender_ip == ANY  # RFC 5227 probe: answer it (to defend our address), learn nothing
        if not probe and not self._plausible_sender(packet.sender_ip, my_ip, prefix_len):
            self._counters.add(Drop.ARP_BAD_SENDER)
            return None
        learned = False
        if not probe and packet.sender_ip in self.cache:  # RFC 826 merge: refresh what we already know
            self.cache.store(packet.sender_ip, packet.sender_mac, now)
            learned = True
        if not for_us:
            if not learned:
                self._counters.add(Drop.ARP_NOT_FOR_US)
            return self._outcome(None, packet) if learned else None
        if not probe and not learned:
            self.cache.store(packet.sender_ip, packet.sender_mac, now)
        reply = None
        if packet.op == OP_REQUEST:
            reply = serialize_arp(ArpPacket(OP_REPLY, self._mac, my_ip, packet.sender_mac, packet.sender_ip))
        return self._outcome(reply, packet)

    @staticmethod
    def _plausible_sender(ip: bytes, my_ip: bytes, prefix_len: int) -> bool:
        """A unicast host in our subnet: not its network or broadcast address, which a reply would otherwise
        map to a MAC (RFC 1122 3.2.1.3), so a gateway or destination named so could be captured."""
        return (is_unicast_host(ip) and same_subnet(ip, my_ip, prefix_len)
                and not is_subnet_network_or_broadcast(ip, prefix_len))  # fmt: skip

    def _outcome(self, reply: bytes | None, packet: ArpPacket) -> ArpOutcome:
        pending = self._pending.pop(packet.sender_ip, None)
        released = tuple(pending.packets) if pending else ()
        return ArpOutcome(reply, released, packet.sender_mac)

    def timers_expired(self, now: float, my_ip: bytes | None) -> list[tuple[bytes, bytes]]:
        """Retry or give up on pending resolutions and refreshes; returns ARP requests as (payload, dst MAC)."""
        self.cache.expire(now)
        requests = []
        for ip in [ip for ip, p in self._pending.items() if p.next_request <= now]:
            pending = self._pending[ip]
            if pending.tries >= self._limits.request_tries or my_ip is None:
                self._counters.add(Drop.ARP_UNRESOLVED, len(pending.packets))
                del self._pending[ip]
                if len(self._unresolved) < self._limits.pending_destinations:
                    self._unresolved.append(ip)
                continue
            pending.tries += 1
            pending.next_request = now + self._limits.request_interval
            requests.append((self.request(my_ip, ip), MAC_BROADCAST))
        for ip in [ip for ip, p in self._refreshing.items() if p.next_request <= now]:
            refresh = self._refreshing[ip]
            entry = self.cache.entry(ip)
            limits = self._limits
            if entry is None or entry[1] - now >= limits.refresh_before or refresh.tries >= limits.request_tries:
                del self._refreshing[ip]  # confirmed again, expired, or out of tries (it expires on its own)
                continue
            if my_ip is not None:
                refresh.tries += 1
                refresh.next_request = now + self._limits.request_interval
                requests.append((self.request(my_ip, ip), entry[0]))
        return requests

    def take_unresolved(self) -> list[bytes]:
        """The next hops whose resolution failed since the last call (their packets were dropped): the stack
        tells TCP, as Linux's ip_link_failure does with a local ICMP error."""
        out, self._unresolved = self._unresolved, []
        return out

    def next_deadline(self) -> float | None:
        deadlines = [p.next_request for p in self._pending.values()]
        deadlines += [p.next_request for p in self._refreshing.values()]
        cache_deadline = self.cache.next_deadline()
        if cache_deadline is not None:
            deadlines.append(cache_deadline)
        return min(deadlines) if deadlines else None

    def clear(self) -> None:
        """Forget everything (our address changed: old mappings and held packets no longer apply)."""
        self._pending.clear()
        self._refreshing.clear()
        self.cache = ArpCache(self._limits.cache_entries, self._limits.entry_ttl, self._counters)
