"""Frames into a whole netstack `Stack` (Ethernet, ARP, IPv4 with fragments and options, ICMP, UDP), configured
as the appliance runs it with a static address, with the TCP layer attached and listening.

Chunks: RAW, a frame as it is; REPAIRED, a frame with its IPv4 and transport checksums made right; DATAGRAM,
an ICMP/UDP/TCP/other datagram the harness builds from the fuzzer's fields (from our neighbour, to us or to a
broadcast), whole or in fragments, in order or reversed; ARP, an ARP packet from the fuzzer's fields; TIME,
the clock moved on (timers run).

What must hold: nothing escapes `frame_received` (it counts); no frame or timer is counted as an internal
error, in the stack or in TCP; what the codecs parse going in they write back identically; every frame we send
is well formed (fuzz/net_checks.py); reassembly, the neighbour cache and the transmit queue stay within their
limits.
"""

from __future__ import annotations

import random

from fuzz import chunks, net_checks
from fuzz.clock import run_due_timers
from fuzz.errors import require
from fuzz.frames import (
    BROADCAST_MAC,
    FIELDS,
    GATEWAY,
    PREFIX,
    THEM,
    THEM_MAC,
    US,
    US_MAC,
    datagrams,
    ether,
    repair,
    transport,
)
from netstack import arp, ethernet
from netstack.config import StaticIp
from netstack.ipv4 import PROTO_ICMP, PROTO_TCP, PROTO_UDP
from netstack.stack import Stack, StackConfig
from netstack.tcp.layer import TcpLayer

RAW, REPAIRED, DATAGRAM, ARP, TIME = range(5)
PROTOCOLS = (PROTO_ICMP, PROTO_UDP, PROTO_TCP, 47)


class _Harness:
    def __init__(self) -> None:
        self.tcp = TcpLayer(b"fuzz-isn-secret-" * 2)
        self.tcp.listen(80)
        self.stack = Stack(StackConfig(US_MAC, StaticIp(US, PREFIX, GATEWAY)), self.tcp, rng=random.Random(18))
        self.now = 0.0
        self.stack.start(self.now)
        self.stack.take_frames(self.now)

    def frame(self, frame: bytes) -> None:
        net_checks.incoming(frame)
        self.stack.frame_received(self.now, frame)

    def datagram(self, body: bytes) -> None:
        """body: protocol choice, flags (bit 0 broadcast, bit 1 reversed), fragment size in 8-byte units,
        16-bit ident, the transport's fields (fuzz/frames.py `transport`), payload."""
        control = body[:5].ljust(5, b"\x00")
        protocol = PROTOCOLS[control[0] % len(PROTOCOLS)]
        dst = bytes((10, 0, 0, 255)) if control[1] & 1 else US
        fields, payload = body[5 : 5 + FIELDS], body[5 + FIELDS :]
        message = transport(protocol, THEM, dst, fields, payload) if protocol != 47 else body[5:]
        for packet in datagrams(THEM, dst, protocol, message[:65000], ident=int.from_bytes(control[3:5], "big"),
                                fragment=control[2] % 32, reverse=bool(control[1] & 2)):
            self.frame(ether(BROADCAST_MAC if control[1] & 1 else US_MAC, THEM_MAC, ethernet.ETHERTYPE_IPV4, packet))

    def arp(self, body: bytes) -> None:
        """body: op, sender IP's last octet, target IP's last octet, flags (bit 0: to broadcast)."""
        control = body[:4].ljust(4, b"\x00")
        packet = arp.ArpPacket(1 + control[0] % 2, THEM_MAC, bytes((10, 0, 0, control[1])), bytes(6),
                               bytes((10, 0, 0, control[2])))
        dst = BROADCAST_MAC if control[3] & 1 else US_MAC
        self.frame(ether(dst, THEM_MAC, ethernet.ETHERTYPE_ARP, arp.serialize_arp(packet)))

    def advance(self, body: bytes) -> None:
        self.now += int.from_bytes(body[:2].ljust(2, b"\x00"), "big") / 100
        run_due_timers(self.stack, self.now)
        self.stack.timers_expired(self.now)

    def check(self) -> None:
        net_checks.stack_sound(self.stack, self.tcp, self.now)
        limit = self.stack._limits.neighbours.cache_entries
        require(self.stack.stats()["arp-entries"] <= limit, "the neighbour cache outgrew its limit")


def fuzz_one(data: bytes) -> None:
    harness = _Harness()
    for kind, body in chunks.split(data, 5):
        if kind == RAW:
            harness.frame(body)
        elif kind == REPAIRED:
            harness.frame(repair(body))
        elif kind == DATAGRAM:
            harness.datagram(body)
        elif kind == ARP:
            harness.arp(body)
        else:
            harness.advance(body)
        harness.check()


def seeds() -> dict[str, bytes]:
    them = (ARP, bytes((1, 2, 1, 0)))  # a reply from our neighbour: its address is known, answers can go out
    ping = (DATAGRAM, bytes((0, 0, 0, 0, 1)) + bytes((8, 0, 0, 1, 0, 1)).ljust(FIELDS, b"\x00") + b"ping" * 8)
    syn = (DATAGRAM, bytes((2, 0, 0, 0, 2)) + bytes.fromhex("9c400050000000010000000002"))
    udp_closed = (DATAGRAM, bytes((1, 0, 0, 0, 3)) + bytes.fromhex("30390035").ljust(FIELDS, b"\x00") + b"query")
    fragments = (DATAGRAM, bytes((0, 2, 2, 0, 4)) + bytes((8, 0, 0, 1, 0, 2)).ljust(FIELDS, b"\x00")
                 + bytes(range(64)))
    big_ping = (DATAGRAM, bytes((0, 0, 31, 0, 5)) + bytes((8, 0, 0, 1, 0, 3)).ljust(FIELDS, b"\x00") + bytes(3000))
    raw_arp = ether(BROADCAST_MAC, THEM_MAC, ethernet.ETHERTYPE_ARP,
                    arp.serialize_arp(arp.ArpPacket(1, THEM_MAC, THEM, bytes(6), US)))
    options = bytearray(datagrams(THEM, US, PROTO_ICMP, transport(PROTO_ICMP, THEM, US, b"\x08", b"x"))[0])
    options[0] = 0x46  # a 24-byte header: three NOPs and the end of the list
    options[20:20] = b"\x01\x01\x01\x00"
    options[2:4] = len(options).to_bytes(2, "big")
    return {
        "ping": chunks.join([them, ping, (TIME, b"\x00\x64")]),
        "syn": chunks.join([them, syn]),
        "udp-closed-port": chunks.join([them, udp_closed]),
        "fragments-reversed": chunks.join([them, fragments, (TIME, b"\x0b\xb8")]),
        "big-ping": chunks.join([them, big_ping]),
        "arp-request": chunks.join([(RAW, raw_arp)]),
        "ip-options": chunks.join([them, (REPAIRED, ether(US_MAC, THEM_MAC, ethernet.ETHERTYPE_IPV4, bytes(options)))]),
        "unresolved": chunks.join([ping, (TIME, b"\x01\x00"), (TIME, b"\x02\x00")]),
    }
