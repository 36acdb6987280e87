"""The packetdrill runner's side of the wire: our whole stack behind the in-memory link, with virtual time.

Why the whole stack rather than TcpLayer alone: the scripts' segments are meant to reach TCP the way an attacker's
do, so every inbound segment is framed as Ethernet/IPv4 (or Ethernet/IPv6 for `--ip_version=ipv6` scripts) by the
peer, crosses a `netstack.link.memory.Channel`
(the pure, virtual-time half of the in-memory link; the asyncio `MemoryLink` needs a running loop and real timers)
and goes through `Stack.frame_received`; every outbound segment comes back out of `Stack.take_frames` and is
parsed with netstack's own Ethernet, IPv4 and TCP codecs (header checksum, total length, TCP checksum). The peer
behaves like a host on the same subnet: it answers the stack's ARP requests (or neighbour solicitations) and
ignores everything that is not TCP between the script's two addresses (as packetdrill ignores packets that are not
for the socket under test).

Over IPv6 the stack is dual-stack with a static global address, which must pass duplicate address detection
(RFC 4862) before it may be used: the wire starts the stack `IPV6_SETTLE` seconds before the script's time 0,
so the address is ready when the script begins and the script's clock is untouched.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from netstack import ethernet, icmp, icmpv6, ipv6, ndp
from netstack.addresses6 import UNSPECIFIED, ip6_from_text
from netstack.arp import OP_REPLY, OP_REQUEST, ArpPacket, parse_arp, serialize_arp
from netstack.config import NoIpv6, StaticIp, StaticIp6
from netstack.ipv4 import PROTO_ICMP, PROTO_TCP, build_header, parse_ipv4, strip_link_padding
from netstack.link.memory import Channel
from netstack.stack import Stack, StackConfig
from netstack.tcp.layer import TcpLayer

LOCAL = bytes([192, 168, 0, 1])
REMOTE = bytes([192, 168, 0, 2])
PREFIX_LEN = 24
LOCAL6 = ip6_from_text("2001:db8::1")
REMOTE6 = ip6_from_text("2001:db8::2")
PREFIX6_LEN = 64
IPV6_SETTLE = 5.0  # seconds before time 0: duplicate address detection takes at most 1 s of delay + 1 s
IPV6_SECRET = b"packetdrill-runner-rfc7217-key-32"
LOCAL_MAC = bytes.fromhex("020000000001")
REMOTE_MAC = bytes.fromhex("020000000002")
PEER_TTL = 64
MAX_PUMP_ROUNDS = 1000  # frames bounce between the two ends a few times per instant; more means a livelock
MAX_TIMER_ROUNDS = 100_000  # timer expiries in one advance(); more means a timer that never moves forward


class WireError(AssertionError):
    """The stack put something on the wire that no IPv4 host could accept, or time stopped moving."""


@dataclass(frozen=True)
class Outbound:
    """A TCP segment the stack sent to the peer, with the virtual time it left and whether IPv4 may fragment it."""

    time: float
    segment: bytes
    dont_fragment: bool


class Wire:
    def __init__(self, layer: TcpLayer, mtu: int, *, ipv6: bool = False) -> None:
        self.ipv6 = ipv6
        self.local, self.remote = (LOCAL6, REMOTE6) if ipv6 else (LOCAL, REMOTE)
        config = StackConfig(LOCAL_MAC, StaticIp(LOCAL, PREFIX_LEN), mtu,
                             ipv6=StaticIp6(LOCAL6, PREFIX6_LEN) if ipv6 else NoIpv6(), ipv6_secret=IPV6_SECRET)
        self.stack = Stack(config, layer, rng=random.Random(0) if ipv6 else None)  # DAD delays, not secrets
        self.to_stack = Channel()
        self.from_stack = Channel()
        self.now = -IPV6_SETTLE if ipv6 else 0.0
        self.outbound: list[Outbound] = []
        self._ident = 0
        self.stack.start(self.now)
        self.pump()
        if ipv6:
            self.advance(0.0)
            if self.stack.ipv6 is None or not self.stack.ipv6.addresses.assigned(LOCAL6):
                raise WireError("the stack's IPv6 address did not pass duplicate address detection")

    # ---------------------------------------------------------------- the peer's transmit side

    def _send_ip(self, protocol: int, payload: bytes) -> None:
        self._ident = (self._ident + 1) & 0xFFFF
        header = build_header(REMOTE, LOCAL, protocol, len(payload), self._ident, ttl=PEER_TTL)
        frame = ethernet.build_header(LOCAL_MAC, REMOTE_MAC, ethernet.ETHERTYPE_IPV4) + bytes(header) + payload
        self.to_stack.put(self.now, frame)
        self.pump()

    def _send_ip6(self, next_header: int, payload: bytes, *, src: bytes = REMOTE6, dst: bytes = LOCAL6,
                  hop_limit: int = PEER_TTL) -> None:
        header = ipv6.build_header(src, dst, next_header, len(payload), hop_limit=hop_limit)
        frame = ethernet.build_header(LOCAL_MAC, REMOTE_MAC, ethernet.ETHERTYPE_IPV6) + header + payload
        self.to_stack.put(self.now, frame)
        self.pump()

    def send_tcp(self, segment: bytes) -> None:
        if self.ipv6:
            self._send_ip6(ipv6.PROTO_TCP, segment)
        else:
            self._send_ip(PROTO_TCP, segment)

    def send_icmp(self, icmp_type: int, code: int, rest: bytes, quoted: bytes) -> None:
        """An ICMP error (ICMPv6 over IPv6: `rest` is then its 32-bit word) quoting `quoted`."""
        if self.ipv6:
            body = rest + quoted
            self._send_ip6(ipv6.PROTO_ICMPV6, icmpv6.serialize_icmpv6(icmp_type, code, body, REMOTE6, LOCAL6))
        else:
            self._send_ip(PROTO_ICMP, icmp.serialize_icmp(icmp_type, code, rest, quoted))

    # ---------------------------------------------------------------- moving frames and time

    def pump(self) -> None:
        """Deliver everything due now in both directions until the wire is quiet."""
        for _ in range(MAX_PUMP_ROUNDS):
            busy = False
            for frame in self.to_stack.take_due(self.now):
                self.stack.frame_received(self.now, frame)
                busy = True
            for frame in self.stack.take_frames(self.now):
                self.from_stack.put(self.now, frame)
                busy = True
            for frame in self.from_stack.take_due(self.now):
                self._peer_received(frame)
                busy = True
            if not busy:
                return
        raise WireError(f"the wire did not go quiet at {self.now:.3f}")

    def next_deadline(self) -> float | None:
        deadlines = [d for d in (self.stack.next_deadline(), self.to_stack.next_deadline(),
                                 self.from_stack.next_deadline()) if d is not None]
        return min(deadlines) if deadlines else None

    def advance(self, until: float, *, stop_on_output: bool = False) -> None:
        """Run timers up to `until`; with stop_on_output, return at the first instant a segment leaves."""
        for _ in range(MAX_TIMER_ROUNDS):
            deadline = self.next_deadline()
            if deadline is None or deadline > until:
                self.now = max(self.now, until)
                self.pump()
                return
            self.now = max(self.now, deadline)
            self.stack.timers_expired(self.now)
            self.pump()
            if stop_on_output and self.outbound:
                return
        raise WireError(f"timers kept firing at {self.now:.3f}")

    # ---------------------------------------------------------------- the peer's receive side

    def _peer_received(self, frame: bytes) -> None:
        eth = ethernet.parse_frame(frame)  # MalformedError is a stack bug here: let it fail the script
        if eth.src != LOCAL_MAC:
            raise WireError(f"frame from {eth.src.hex()}, not the stack's MAC")
        if eth.ethertype == ethernet.ETHERTYPE_ARP:
            arp = parse_arp(bytes(eth.payload[:28]))
            if arp.op == OP_REQUEST and arp.target_ip == REMOTE:
                reply = serialize_arp(ArpPacket(OP_REPLY, REMOTE_MAC, REMOTE, arp.sender_mac, arp.sender_ip))
                self.to_stack.put(self.now, ethernet.build_header(arp.sender_mac, REMOTE_MAC,
                                                                  ethernet.ETHERTYPE_ARP) + reply)
            return  # otherwise a gratuitous announcement: nothing to answer
        if eth.ethertype == ethernet.ETHERTYPE_IPV6:
            self._peer_received6(eth)
            return
        if eth.ethertype != ethernet.ETHERTYPE_IPV4 or eth.dst != REMOTE_MAC:
            return
        header, body = parse_ipv4(strip_link_padding(eth.payload))
        if header.protocol != PROTO_TCP or header.src != LOCAL or header.dst != REMOTE:
            return
        if header.is_fragment or header.header_len != 20:
            raise WireError("a TCP segment left fragmented or with IPv4 options")
        self.outbound.append(Outbound(self.now, bytes(body), header.dont_fragment))

    def _peer_received6(self, eth: ethernet.EthernetFrame) -> None:
        header, body = ipv6.parse_ipv6(ipv6.strip_link_padding(eth.payload))
        if header.next_header == ipv6.PROTO_ICMPV6:
            message = icmpv6.parse_icmpv6(body, header.src, header.dst)
            if message.type == ndp.NEIGHBOR_SOLICIT and header.src != UNSPECIFIED:
                solicit = ndp.parse_nd(message.type, message.code, message.body, hop_limit=header.hop_limit,
                                       src=header.src, dst=header.dst)
                if isinstance(solicit, ndp.NeighborSolicit) and solicit.target == REMOTE6:
                    answer = ndp.serialize_na(REMOTE6, REMOTE_MAC, router=False, solicited=True, override=True)
                    reply = icmpv6.serialize_icmpv6(ndp.NEIGHBOR_ADVERT, 0, answer, REMOTE6, header.src)
                    packet = ipv6.build_header(REMOTE6, header.src, ipv6.PROTO_ICMPV6, len(reply),
                                               hop_limit=ndp.HOP_LIMIT) + reply
                    self.to_stack.put(self.now, ethernet.build_header(eth.src, REMOTE_MAC,
                                                                      ethernet.ETHERTYPE_IPV6) + packet)
            return  # DAD probes and router solicitations: nothing for this peer to answer
        if eth.dst != REMOTE_MAC or header.src != LOCAL6 or header.dst != REMOTE6:
            return
        if header.next_header != ipv6.PROTO_TCP:
            raise WireError(f"a packet to the peer with next header {header.next_header}, not TCP (extension "
                            "headers or a fragment)")
        self.outbound.append(Outbound(self.now, bytes(body), dont_fragment=True))  # IPv6: routers never fragment
