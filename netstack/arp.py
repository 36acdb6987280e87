"""ARP for IPv4 over Ethernet (RFC 826): the packet codec and a bounded, expiring cache.

The merge rule lives in neighbour.py; this module only knows what a well-formed packet is and how to remember
a mapping without letting the table grow.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass

from netstack.errors import MalformedError
from netstack.reasons import Counters, Drop

OP_REQUEST = 1
OP_REPLY = 2
PACKET_LEN = 28
_PACKET = struct.Struct("!HHBBH6s4s6s4s")
_HTYPE_ETHERNET = 1
_PTYPE_IPV4 = 0x0800


@dataclass(frozen=True, slots=True)
class ArpPacket:
    """An ARP packet (RFC 826) for the one pairing we speak, Ethernet and IPv4: the parser refuses any other
    hardware or protocol type, so what is left is the operation and the two (MAC, IPv4 address) pairs."""

    op: int
    sender_mac: bytes
    sender_ip: bytes
    target_mac: bytes
    target_ip: bytes


def parse_arp(data: bytes | memoryview) -> ArpPacket:
    """Exactly one Ethernet/IPv4 ARP packet (the caller strips link padding)."""
    if len(data) != PACKET_LEN:
        raise MalformedError(Drop.ARP_MALFORMED, f"{len(data)} bytes")
    htype, ptype, hlen, plen, op, smac, sip, tmac, tip = _PACKET.unpack(data)
    if htype != _HTYPE_ETHERNET or ptype != _PTYPE_IPV4 or hlen != 6 or plen != 4:
        raise MalformedError(Drop.ARP_UNSUPPORTED, f"htype {htype} ptype {ptype:#x} hlen {hlen} plen {plen}")
    if op not in (OP_REQUEST, OP_REPLY):
        raise MalformedError(Drop.ARP_UNSUPPORTED, f"op {op}")
    return ArpPacket(op, smac, sip, tmac, tip)


def serialize_arp(packet: ArpPacket) -> bytes:
    return _PACKET.pack(
        _HTYPE_ETHERNET, _PTYPE_IPV4, 6, 4, packet.op,
        packet.sender_mac, packet.sender_ip, packet.target_mac, packet.target_ip,
    )  # fmt: skip


class ArpCache:
    """IPv4 -> MAC with a fixed capacity and a fixed lifetime per entry.

    Entries are kept in expiry order (refreshing moves an entry to the end), so expiry and eviction both take
    from the front in O(1).
    """

    __slots__ = ("_capacity", "_counters", "_entries", "_ttl")

    def __init__(self, capacity: int, ttl: float, counters: Counters) -> None:
        self._capacity = capacity
        self._ttl = ttl
        self._counters = counters
        self._entries: OrderedDict[bytes, tuple[bytes, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, ip: bytes) -> bool:
        return ip in self._entries

    def entry(self, ip: bytes) -> tuple[bytes, float] | None:
        """(MAC, expiry) even if expired; the caller decides."""
        return self._entries.get(ip)

    def lookup(self, ip: bytes, now: float) -> bytes | None:
        entry = self._entries.get(ip)
        if entry is None or entry[1] <= now:
            return None
        return entry[0]

    def store(self, ip: bytes, mac: bytes, now: float) -> None:
        """Insert or refresh; evicts the entry closest to expiry when the table is full."""
        if ip in self._entries:
            self._entries.move_to_end(ip)
        elif len(self._entries) >= self._capacity:
            self._entries.popitem(last=False)
            self._counters.add(Drop.ARP_CACHE_EVICTED)
        self._entries[ip] = (mac, now + self._ttl)

    def expire(self, now: float) -> None:
        while self._entries:
            ip, (_, expiry) = next(iter(self._entries.items()))
            if expiry > now:
                break
            del self._entries[ip]

    def next_deadline(self) -> float | None:
        for _, expiry in self._entries.values():
            return expiry
        return None
