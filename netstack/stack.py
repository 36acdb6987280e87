"""The whole non-TCP stack as one sans-I/O object: frames and time in, frames out.

Why one composition object: the driver (driver.py) and the tests need exactly four calls (frame_received,
take_frames, next_deadline, timers_expired) whatever happens inside, and the TCP layer plugs in through the
SegmentLayer protocol below without knowing about Ethernet or ARP.

Decisions documented here:
- Without a TCP layer, TCP segments are dropped and counted (tcp-no-layer); we send no RST, so a port scan of a
  stack without TCP sees silence. Nor do TCP segments from a source we have no route back to reach TCP
  (tcp-no-route-back): nothing TCP answered could leave.
- ICMP errors are originated for unfragmented datagrams (destination unreachable) and for a reassembly that
  timed out after fragment zero arrived (time exceeded, RFC 1122 §3.3.2 MUST); never for broadcasts, anything
  that came in a link-layer broadcast frame, ICMP errors or martian sources (RFC 1122 §3.2.2, §3.2.2.6 and
  RFC 1812 §4.3.2.7), and at most `IcmpLimits.error_rate` a second.
- Outgoing datagrams larger than the MTU are fragmented unless DF is set; DF datagrams that do not fit are
  dropped (tx-too-big). TCP segments are sent with DF (path MTU discovery, RFC 1191), but to destinations
  whose path MTU TCP found below its floor (`SegmentLayer.fragmentable`).
- IPv6 is the other half (stack6.Ipv6Path), switched on by `StackConfig.ipv6`: it shares the link, the
  transmit queue, the fragment budget (one Reassembler for both families), the UDP ports and the TCP layer,
  and owns the rest. The family of an address is its length: 4 or 16 bytes.
"""

from __future__ import annotations

import hashlib
import logging
import random
from array import array
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Protocol

from netstack import ethernet, icmp
from netstack.addresses import (
    ANY,
    LIMITED_BROADCAST,
    MAC_BROADCAST,
    is_martian_source,
    is_multicast_mac,
    prefix_mask,
    subnet_broadcast,
)
from netstack.arp import PACKET_LEN as ARP_PACKET_LEN
from netstack.arp import parse_arp
from netstack.config import Ipv6Addressing, NoIpv6, StaticIp, StaticIp6, UseDhcp
from netstack.dhcp.client import DhcpClient, LeaseAcquired
from netstack.dhcp.message import CLIENT_PORT, SERVER_PORT
from netstack.errors import MalformedError
from netstack.faults import FaultLog
from netstack.ipv4 import (
    MIN_HEADER_LEN,
    PROTO_ICMP,
    PROTO_TCP,
    PROTO_UDP,
    Ipv4Header,
    build_header,
    parse_ipv4,
    strip_link_padding,
)
from netstack.ipv6 import MIN_MTU as IPV6_MIN_MTU
from netstack.limits import (
    DEFAULT_STACK_LIMITS,
    ICMP_ERROR_QUOTE_LIMIT,
    IPV4_DEFAULT_TTL,
    IPV4_IDENT_BUCKETS,
    StackLimits,
)
from netstack.neighbour import Neighbours
from netstack.ratelimit import TokenBucket
from netstack.reasons import Counters, Drop
from netstack.reassembly import Reassembler
from netstack.stack6 import Ipv6Path
from netstack.udp import parse_udp, serialize_udp

logger = logging.getLogger(__name__)


class SegmentLayer(Protocol):
    """What the TCP layer implements. Addresses are 4-byte (IPv4) or 16-byte (IPv6) `bytes`."""

    def segment_received(self, now: float, src: bytes, dst: bytes, segment: memoryview) -> None:
        """A whole TCP segment from a datagram addressed to us; TCP verifies its own checksum."""

    def icmp_error_received(
        self, now: float, icmp_type: int, icmp_code: int, quoted: bytes, next_hop_mtu: int | None
    ) -> None:
        """An ICMP or ICMPv6 error quoting a TCP segment we sent: `quoted` is our IP header + leading TCP bytes
        (its version nibble says which family's type numbers these are)."""

    def take_outgoing(self) -> list[tuple[bytes, bytes, bytes]]:
        """(src, dst, segment with its checksum filled in) for every segment to send now."""
        ...

    def unreachable(self, now: float, address: bytes) -> None:
        """Neighbour resolution for `address` (a next hop) failed: what was sent to it was dropped."""

    def link_mtu6_changed(self, now: float, mtu: int) -> None:
        """The IPv6 link MTU changed (a router advertisement's MTU option, RFC 4861 §6.3.4, or back to the link's
        own at a restart): IPv6 segments must fit it, or every full one leaves as fragments."""

    @property
    def fragmentable(self) -> AbstractSet[bytes]:
        """Destinations whose path MTU is below TCP's floor: their segments go without DF (RFC 1191 §4)."""
        ...

    def next_deadline(self) -> float | None:
        """The earliest time timers_expired must be called, or None."""
        ...

    def timers_expired(self, now: float) -> None:
        """Run every timer due at `now`."""


_NO_IPV6 = NoIpv6()
_IDENT_PERSON = b"pinata4i"  # domain separation of the IPv4 identification key from the IPv6 uses of the secret

UdpHandler = Callable[[float, bytes, int, bytes, memoryview], None]
"""(now, source address, source port, destination address, payload)."""


@dataclass(frozen=True, slots=True)
class StackConfig:
    """`ipv6_secret` keys the RFC 7217 interface identifiers (the same secret on the same network gives the
    same addresses after a reboot) and our IPv6 fragment and IPv4 datagram identifications: required with
    IPv6, and drawn by the composition root from its randomness source (which passes one with IPv6 off too),
    since the stack's own `rng` is for timing jitter only. Without one (tests, fuzz targets), the IPv4
    identification key is drawn from `rng`."""

    mac: bytes
    addressing: StaticIp | UseDhcp
    mtu: int = 1500
    limits: StackLimits = DEFAULT_STACK_LIMITS
    ipv6: Ipv6Addressing = _NO_IPV6
    ipv6_secret: bytes | None = field(default=None, repr=False)  # a key: never in a repr, a log or a message

    def __post_init__(self) -> None:
        if len(self.mac) != 6 or is_multicast_mac(self.mac):
            raise ValueError("the interface needs a unicast 6-byte MAC address")
        if not 576 <= self.mtu <= 9000:
            raise ValueError(f"MTU {self.mtu} out of range 576..9000")
        if not isinstance(self.ipv6, NoIpv6) and self.mtu < IPV6_MIN_MTU:
            raise ValueError(f"IPv6 needs an MTU of at least {IPV6_MIN_MTU}, not {self.mtu}")
        if not isinstance(self.ipv6, NoIpv6) and (self.ipv6_secret is None or len(self.ipv6_secret) < 16):
            raise ValueError("IPv6 needs a secret of at least 16 bytes (ipv6_secret) for its identifiers")


class Stack:
    def __init__(self, config: StackConfig, tcp: SegmentLayer | None, *, rng: random.Random | None = None) -> None:
        self.counters = Counters()
        self.faults = FaultLog(logger)
        self._mac = config.mac
        self._mtu = config.mtu
        self._tcp = tcp
        self._now = 0.0
        self._out: list[bytes] = []
        start = rng.getrandbits(16) if rng is not None else 0  # drawn before the key, as ever: seeded timing holds
        self._ident_counters = array("H", [start]) * IPV4_IDENT_BUCKETS
        # Keyed once: each datagram's hash continues a copy of this state (the same digest as a keyed one-shot,
        # a third cheaper on every IPv4 datagram sent).
        self._ident_keyed = hashlib.blake2s(digest_size=4, key=_ident_key(config.ipv6_secret, rng))
        limits = config.limits
        self._limits = limits
        self._neighbours = Neighbours(config.mac, self.counters, limits.neighbours)
        self._reassembler = Reassembler(self.counters, limits.reassembly)
        self._echo_bucket = TokenBucket(limits.icmp.echo_rate, limits.icmp.echo_burst)
        self._error_bucket = TokenBucket(limits.icmp.error_rate, limits.icmp.error_burst)
        self._udp: dict[int, UdpHandler] = {}
        self._static = config.addressing if isinstance(config.addressing, StaticIp) else None
        self._ip: StaticIp | None = None
        self._address: bytes | None = None
        self._mask = 0
        self._network = -1
        self._broadcast = LIMITED_BROADCAST
        self._gateway: bytes | None = None
        self._address_changes = 0
        self.rx_frames = 0
        self.tx_frames = 0
        self._dhcp: DhcpClient | None = None
        if isinstance(config.addressing, UseDhcp):
            if rng is None:
                raise ValueError("DHCP needs a random source for its transaction ids")
            self._dhcp = DhcpClient(config.mac, rng, self.counters, config.limits.dhcp)
            self.udp_bind(CLIENT_PORT, self._dhcp_received)
        self._ipv6: Ipv6Path | None = None
        if not isinstance(config.ipv6, NoIpv6):
            if rng is None:
                raise ValueError("IPv6 needs a random source (DAD delays, neighbour timer jitter)")
            if config.ipv6_secret is None:  # refused by StackConfig already; this tells the type checker
                raise ValueError("IPv6 needs ipv6_secret")
            self._ipv6 = Ipv6Path(
                mac=config.mac, link_mtu=config.mtu, counters=self.counters, emit=self._emit, tcp=tcp, udp=self._udp,
                reassembler=self._reassembler, limits=limits, rng=rng, secret=config.ipv6_secret,
                static=config.ipv6 if isinstance(config.ipv6, StaticIp6) else None,
            )  # fmt: skip

    # --- state visible to the layers above ----------------------------------------------------------------------

    @property
    def mac(self) -> bytes:
        return self._mac

    @property
    def mtu(self) -> int:
        return self._mtu

    @property
    def address(self) -> bytes | None:
        """Our IPv4 address, or None before DHCP binds."""
        return self._address

    @property
    def interface(self) -> StaticIp | None:
        return self._ip

    @property
    def neighbours(self) -> Neighbours:
        return self._neighbours

    @property
    def dhcp(self) -> DhcpClient | None:
        return self._dhcp

    @property
    def ipv6(self) -> Ipv6Path | None:
        """The IPv6 half (its addresses, neighbours and routers), or None when IPv6 is off."""
        return self._ipv6

    @property
    def address_changes(self) -> int:
        """A count that moves whenever our addresses change: the IPv4 configuration (static at start, a DHCP
        lease bound or lost) or the set of usable IPv6 addresses. Why a count: a driver compares it after every
        batch to report the addresses when they change, which costs an integer comparison, not a snapshot."""
        return self._address_changes + (self._ipv6.address_changes if self._ipv6 is not None else 0)

    def source_for(self, dst: bytes) -> bytes | None:
        """Our address to send to `dst` from: the IPv4 address, or the IPv6 address RFC 6724 picks."""
        if len(dst) == 16:
            return self._ipv6.source_for(dst) if self._ipv6 is not None else None
        return self._address

    def stats(self) -> dict[str, int]:
        """Drop counters by reason plus a few gauges, for /stats.json."""
        return {
            "rx-frames": self.rx_frames,
            "tx-frames": self.tx_frames,
            "arp-entries": len(self._neighbours.cache),
            "reassembly-datagrams": len(self._reassembler),
            "reassembly-bytes": self._reassembler.stored_bytes,
            **(self._ipv6.stats() if self._ipv6 is not None else {}),
            **self.counters.as_dict(),
        }

    # --- the four calls the driver makes ------------------------------------------------------------------------

    def start(self, now: float) -> None:
        """Bring the interface up: announce a static address, or start DHCP."""
        self._now = now
        if self._static is not None:
            self._configure(self._static)
        elif self._dhcp is not None:
            self._dhcp.start(now)
            self._pump_dhcp(now)
        if self._ipv6 is not None:
            self._ipv6.start(now)

    def frame_received(self, now: float, frame: bytes | memoryview) -> None:
        self._now = now
        self.rx_frames += 1
        try:
            self._frame(now, frame)
        except MalformedError as exc:
            self.counters.add(exc.reason)
        except Exception as exc:  # noqa: BLE001 (a bug reachable from the wire: counted, never fatal)
            self.internal_error("frame handling failed", exc)

    def internal_error(self, what: str, error: Exception) -> None:
        """Count and log (netstack/faults.py) an exception nobody expected; the driver reports its own here too."""
        self.counters.add(Drop.INTERNAL_ERROR)
        self.faults.report(what, error)

    def take_frames(self, now: float | None = None) -> list[bytes]:
        """Everything to transmit now, including what the TCP layer has queued since the last call."""
        if now is not None:
            self._now = now
        if self._tcp is not None:
            self._send_tcp(self._now, self._tcp.take_outgoing())
        out, self._out = self._out, []
        self.tx_frames += len(out)
        return out

    def next_deadline(self) -> float | None:
        deadlines = [
            d for d in (
                self._neighbours.next_deadline(),
                self._reassembler.next_deadline(),
                self._dhcp.next_deadline() if self._dhcp is not None else None,
                self._ipv6.next_deadline() if self._ipv6 is not None else None,
                self._tcp.next_deadline() if self._tcp is not None else None,
            ) if d is not None
        ]  # fmt: skip
        return min(deadlines) if deadlines else None

    def timers_expired(self, now: float) -> None:
        self._now = now
        # Each part separately: a bug in one (counted) must not stop the timers of the others.
        for what, run in (
            ("ARP timer failed", self._neighbour_timers),
            ("reassembly timer failed", self._reassembly_timers),
            ("DHCP timer failed", self._dhcp_timers),
            ("IPv6 timer failed", self._ipv6.timers_expired if self._ipv6 is not None else None),
            ("TCP timer failed", self._tcp.timers_expired if self._tcp is not None else None),
        ):  # fmt: skip
            if run is None:
                continue
            try:
                run(now)
            except Exception as exc:  # noqa: BLE001 (counted, see internal_error)
                self.internal_error(what, exc)

    def _neighbour_timers(self, now: float) -> None:
        for request, dst_mac in self._neighbours.timers_expired(now, self._address):
            self._emit(dst_mac, ethernet.ETHERTYPE_ARP, request)
        for next_hop in self._neighbours.take_unresolved():
            if self._tcp is not None:
                self._tcp.unreachable(now, next_hop)

    def _reassembly_timers(self, now: float) -> None:
        self._reassembler.expire(now)
        for expired in self._reassembler.take_expired4():
            header = expired.header
            # RFC 1122 §3.3.2: Time Exceeded (code 1) to the source of a datagram whose fragment zero arrived;
            # §3.2.2: never about a datagram to a broadcast address or one whose first fragment came in a link-layer
            # broadcast, nor to a source that names no single host, nor about an ICMP error message.
            if (expired.link_broadcast or header.dst != self._address or is_martian_source(header.src)
                    or header.src == self._broadcast or _quotes_icmp_error(header, expired.quote)):  # fmt: skip
                continue
            self._send_icmp_error(now, icmp.TIME_EXCEEDED, icmp.CODE_REASSEMBLY_TIME_EXCEEDED, header,
                                  memoryview(expired.quote))  # fmt: skip
        if self._ipv6 is not None:
            self._ipv6.reassembly_expired(now)

    def _dhcp_timers(self, now: float) -> None:
        if self._dhcp is not None:
            self._dhcp.timers_expired(now)
            self._pump_dhcp(now)

    # --- UDP hooks (DHCP uses these) ----------------------------------------------------------------------------

    def udp_bind(self, port: int, handler: UdpHandler) -> None:
        if port in self._udp or not 0 < port <= 0xFFFF:
            raise ValueError(f"UDP port {port} is taken or invalid")
        if len(self._udp) >= self._limits.udp_bindings:
            raise ValueError("too many UDP bindings")
        self._udp[port] = handler

    def udp_unbind(self, port: int) -> None:
        self._udp.pop(port, None)

    def udp_send(self, now: float, dst: bytes, src_port: int, dst_port: int, payload: bytes) -> None:
        """Send from our address (or 0.0.0.0 before we have one, as DHCP requires)."""
        self._now = now
        if len(dst) == 16:
            source = self.source_for(dst)
            if self._ipv6 is None or source is None:
                self.counters.add(Drop.IPV6_NO_ROUTE)
                return
            self._ipv6.send(now, source, dst, PROTO_UDP, serialize_udp(source, dst, src_port, dst_port, payload))
            return
        src = self._address or ANY
        self._send_ip(now, dst, PROTO_UDP, serialize_udp(src, dst, src_port, dst_port, payload), src=src)

    # --- receive path -------------------------------------------------------------------------------------------

    def _frame(self, now: float, frame: bytes | memoryview) -> None:
        eth = ethernet.parse_frame(frame)
        if eth.ethertype == ethernet.ETHERTYPE_IPV6:
            self._ipv6_frame(now, eth)
            return
        if eth.dst not in (self._mac, MAC_BROADCAST):
            self.counters.add(Drop.ETH_NOT_FOR_US)
            return
        if is_multicast_mac(eth.src):
            self.counters.add(Drop.ETH_BAD_SOURCE)
            return
        if eth.ethertype == ethernet.ETHERTYPE_IPV4:
            self._ipv4(now, eth.payload, eth.dst == MAC_BROADCAST)
        elif eth.ethertype == ethernet.ETHERTYPE_ARP:
            body = eth.payload[:ARP_PACKET_LEN] if len(eth.payload) > ARP_PACKET_LEN else eth.payload
            outcome = self._neighbours.arp_received(now, eth.src, parse_arp(body), self._address, self._prefix_len)
            if outcome is not None:
                if outcome.reply is not None:
                    self._emit(outcome.mac, ethernet.ETHERTYPE_ARP, outcome.reply)
                for packet in outcome.released:
                    self._emit(outcome.mac, ethernet.ETHERTYPE_IPV4, packet)
        else:
            self.counters.add(Drop.ETH_UNKNOWN_TYPE)

    def _ipv6_frame(self, now: float, eth: ethernet.EthernetFrame) -> None:
        if self._ipv6 is None:
            self.counters.add(Drop.IPV6_OFF)
        elif not self._ipv6.accepts_mac(eth.dst):
            self.counters.add(Drop.ETH_NOT_FOR_US)
        elif is_multicast_mac(eth.src):
            self.counters.add(Drop.ETH_BAD_SOURCE)
        else:
            self._ipv6.packet_received(now, eth.payload, link_multicast=eth.dst != self._mac)

    def _ipv4(self, now: float, payload: memoryview, link_broadcast: bool) -> None:
        raw = strip_link_padding(payload)
        header, body = parse_ipv4(raw)
        src = header.src
        dst = header.dst
        if is_martian_source(src) or src == self._broadcast:  # RFC 1122 3.2.1.3: never from a broadcast address
            self.counters.add(Drop.IPV4_MARTIAN_SOURCE)
            return
        if src == self._address:
            self.counters.add(Drop.IPV4_LAND if dst == src else Drop.IPV4_MARTIAN_SOURCE)
            return
        local = dst == self._address
        unconfigured_udp = self._address is None and header.protocol == PROTO_UDP  # DHCP may unicast the offer
        if not local and dst not in (LIMITED_BROADCAST, self._broadcast) and not unconfigured_udp:
            self.counters.add(Drop.IPV4_NOT_FOR_US)
            return
        original: memoryview | None = raw
        if header.is_fragment:
            whole = self._reassembler.add(now, header, body, link_broadcast=link_broadcast, packet=raw)
            if whole is None:
                return
            header, body, link_broadcast = whole[0], memoryview(whole[1]), whole[2]
            original = None
        if local and link_broadcast and not _to_dhcp_client(header, body):
            # RFC 1122 §3.3.6 (SHOULD): a datagram to our unicast address in a link-layer broadcast frame is
            # discarded, whatever its protocol, and also when any of its fragments came so: otherwise an echo
            # in such a frame was answered, and TCP, which takes only frames sent to our MAC, could be reached by
            # fragmenting. Except DHCP to the client port: some relays and servers send it that way.
            self.counters.add(Drop.IPV4_UNICAST_LINK_BROADCAST)
            return
        protocol = header.protocol
        if protocol == PROTO_TCP:
            self._tcp_received(now, src, dst, body, unicast=local and not link_broadcast)
        elif protocol == PROTO_UDP:
            self._udp_received(now, header, body, original if local and not link_broadcast else None)
        elif protocol == PROTO_ICMP:
            self._icmp_received(now, header, body, local)
        else:
            self.counters.add(Drop.IPV4_UNKNOWN_PROTOCOL)
            if local and not link_broadcast and original is not None:
                self._send_icmp_error(now, icmp.DEST_UNREACHABLE, icmp.CODE_PROTOCOL_UNREACHABLE, header, original)

    def _tcp_received(self, now: float, src: bytes, dst: bytes, body: memoryview, *, unicast: bool) -> None:
        if not unicast:  # like Linux: TCP only from frames sent to our own MAC
            self.counters.add(Drop.TCP_NOT_UNICAST)
        elif self._tcp is None:
            self.counters.add(Drop.TCP_NO_LAYER)
        elif self._next_hop(src) is None:
            # No route back (a spoofed off-link source without a gateway): every answer TCP could make, a
            # SYN cookie included, would be dropped as ipv4-no-route, and a half-open entry for it would only
            # hold the listener in cookie mode. Refused before TCP spends anything on it.
            self.counters.add(Drop.TCP_NO_ROUTE_BACK)
        else:
            self._tcp.segment_received(now, src, dst, body)

    def _udp_received(self, now: float, header: Ipv4Header, body: memoryview, original: memoryview | None) -> None:
        datagram = parse_udp(body, header.src, header.dst)
        handler = self._udp.get(datagram.dst_port)
        if handler is None:
            self.counters.add(Drop.UDP_PORT_CLOSED)
            if original is not None:
                self._send_icmp_error(now, icmp.DEST_UNREACHABLE, icmp.CODE_PORT_UNREACHABLE, header, original)
            return
        handler(now, header.src, datagram.src_port, header.dst, datagram.payload)

    def _icmp_received(self, now: float, header: Ipv4Header, body: memoryview, local: bool) -> None:
        message = icmp.parse_icmp(body)
        if message.type == icmp.ECHO_REQUEST:
            if not local:
                self.counters.add(Drop.ICMP_ECHO_BROADCAST)  # no smurf amplification
            elif not self._echo_bucket.allow(now):
                self.counters.add(Drop.ICMP_ECHO_RATE_LIMITED)
            else:
                reply = icmp.serialize_icmp(icmp.ECHO_REPLY, 0, message.rest, message.body)
                self._send_ip(now, header.src, PROTO_ICMP, reply)
            return
        if message.type not in icmp.ERROR_TYPES:
            self.counters.add(Drop.ICMP_UNHANDLED_TYPE)
            return
        if not local:
            self.counters.add(Drop.ICMP_ERROR_NOT_OURS)
            return
        quoted = message.body
        if len(quoted) < MIN_HEADER_LEN + 8 or quoted[0] >> 4 != 4:
            self.counters.add(Drop.ICMP_BAD_QUOTE)
            return
        quoted_header_len = (quoted[0] & 0x0F) * 4
        if quoted_header_len < MIN_HEADER_LEN or len(quoted) < quoted_header_len + 8:
            self.counters.add(Drop.ICMP_BAD_QUOTE)
            return
        if bytes(quoted[12:16]) != self._address:
            self.counters.add(Drop.ICMP_ERROR_NOT_OURS)
            return
        # RFC 6633: source quench is ignored; everything else about TCP goes to TCP, which checks RFC 5927
        if quoted[9] == PROTO_TCP and self._tcp is not None and message.type != icmp.SOURCE_QUENCH:
            self._tcp.icmp_error_received(now, message.type, message.code, bytes(quoted), icmp.next_hop_mtu(message))
        else:
            self.counters.add(Drop.ICMP_ERROR_UNHANDLED)

    def _dhcp_received(self, now: float, src: bytes, src_port: int, dst: bytes, payload: memoryview) -> None:
        if self._dhcp is None or src_port != SERVER_PORT or len(src) != len(ANY):  # DHCPv4 never comes over IPv6
            self.counters.add(Drop.DHCP_NOT_OURS)
            return
        self._dhcp.message_received(now, payload)
        self._pump_dhcp(now)

    # --- send path ----------------------------------------------------------------------------------------------

    def _send_tcp(self, now: float, segments: list[tuple[bytes, bytes, bytes]]) -> None:
        fragmentable = self._tcp.fragmentable if self._tcp is not None else frozenset()
        for src, dst, segment in segments:
            if len(dst) == 16:
                if self._ipv6 is not None:
                    self._ipv6.send_tcp(now, src, dst, segment)
                else:
                    self.counters.add(Drop.IPV6_OFF)
                continue
            if src != self._address:
                self.counters.add(Drop.IPV4_TX_BAD_SOURCE)
                continue
            self._send_ip(now, dst, PROTO_TCP, segment, src=src, dont_fragment=dst not in fragmentable)

    def _send_ip(
        self, now: float, dst: bytes, protocol: int, payload: bytes, *, src: bytes | None = None,
        dont_fragment: bool = False,
    ) -> None:  # fmt: skip
        source = src if src is not None else self._address
        if source is None:
            self.counters.add(Drop.IPV4_NO_ROUTE)
            return
        packets = self._packets(source, dst, protocol, payload, dont_fragment)
        if dst in (LIMITED_BROADCAST, self._broadcast):
            for packet in packets:
                self._emit(MAC_BROADCAST, ethernet.ETHERTYPE_IPV4, packet)
            return
        next_hop = self._next_hop(dst)
        if next_hop is None:
            self.counters.add(Drop.IPV4_NO_ROUTE)
            return
        mac = self._neighbours.lookup(next_hop, now)
        for packet in packets:
            if mac is not None:
                self._emit(mac, ethernet.ETHERTYPE_IPV4, packet)
            elif self._address is not None:
                request = self._neighbours.hold(now, next_hop, packet, self._address)
                if request is not None:
                    self._emit(MAC_BROADCAST, ethernet.ETHERTYPE_ARP, request)
            else:
                self.counters.add(Drop.IPV4_NO_ROUTE)

    def _next_ident(self, dst: bytes, *, advance: bool) -> int:
        """The IPv4 Identification of a datagram to `dst`: RFC 7739 §5.3's double hash, applied to IPv4 (RFC
        6274 §3.5 asks the same of it). A keyed hash of the destination picks one of IPV4_IDENT_BUCKETS counters
        and a per-destination offset; the ID is the offset plus that counter, which each datagram that may be
        fragmented advances by one. So:
        - IDs to one destination repeat only after 2^16 such datagrams to its bucket, as RFC 6864 §4.2 asks
          within a datagram's lifetime (a keyed hash per datagram repeated by the birthday bound, about a 7 %
          chance in 100 fragmented echo replies);
        - one global +1 counter made us an idle-scan zombie (two probes told anyone how many datagrams we sent
          in between). Now a prober's IDs move only with our traffic to itself and to the destinations that
          share its bucket, which the key hides; its own offset tells it nothing about another's;
        - the memory is the fixed array, whatever the number of destinations.
        Atomic datagrams (DF, RFC 6864 §4.1: their ID means nothing) carry the destination's current value
        without advancing it, so a TCP burst cannot wrap the counter under a fragmented datagram still being
        reassembled."""
        keyed = self._ident_keyed.copy()
        keyed.update(dst)
        digest = keyed.digest()
        bucket = int.from_bytes(digest[:2], "big") % IPV4_IDENT_BUCKETS
        if advance:
            self._ident_counters[bucket] = (self._ident_counters[bucket] + 1) & 0xFFFF
        return (int.from_bytes(digest[2:], "big") + self._ident_counters[bucket]) & 0xFFFF

    def _packets(self, src: bytes, dst: bytes, protocol: int, payload: bytes, dont_fragment: bool) -> list[bytes]:
        ident = self._next_ident(dst, advance=not dont_fragment)
        if MIN_HEADER_LEN + len(payload) <= self._mtu:
            header = build_header(
                src, dst, protocol, len(payload), ident, ttl=IPV4_DEFAULT_TTL, dont_fragment=dont_fragment
            )
            return [b"".join((header, payload))]
        if dont_fragment or MIN_HEADER_LEN + len(payload) > 0xFFFF:
            self.counters.add(Drop.IPV4_TX_TOO_BIG)
            return []
        step = (self._mtu - MIN_HEADER_LEN) // 8 * 8
        packets = []
        for offset in range(0, len(payload), step):
            chunk = payload[offset : offset + step]
            more = offset + step < len(payload)
            header = build_header(
                src, dst, protocol, len(chunk), ident, ttl=IPV4_DEFAULT_TTL, more_fragments=more,
                fragment_offset=offset,
            )  # fmt: skip
            packets.append(b"".join((header, chunk)))
        return packets

    def _next_hop(self, dst: bytes) -> bytes | None:
        if int.from_bytes(dst, "big") & self._mask == self._network:
            return dst
        return self._gateway

    def _send_icmp_error(
        self, now: float, icmp_type: int, code: int, header: Ipv4Header, original: memoryview
    ) -> None:
        if not self._error_bucket.allow(now):
            self.counters.add(Drop.ICMP_ERROR_RATE_LIMITED)
            return
        quote = original[: ICMP_ERROR_QUOTE_LIMIT - MIN_HEADER_LEN - icmp.HEADER_LEN]
        self._send_ip(now, header.src, PROTO_ICMP, icmp.serialize_icmp(icmp_type, code, bytes(4), quote))

    def _emit(self, dst_mac: bytes, ethertype: int, payload: bytes) -> None:
        if len(self._out) >= self._limits.tx_queue_frames:
            self.counters.add(Drop.TX_QUEUE_FULL)
            return
        self._out.append(b"".join((ethernet.build_header(dst_mac, self._mac, ethertype), payload)))

    # --- configuration ------------------------------------------------------------------------------------------

    @property
    def _prefix_len(self) -> int:
        return self._ip.prefix_len if self._ip is not None else 32

    def _configure(self, ip: StaticIp | None) -> None:
        if ip == self._ip:
            return
        self._neighbours.clear()
        self._ip = ip
        self._address_changes += 1
        if ip is None:
            self._address = None
            self._mask = 0
            self._network = -1
            self._broadcast = LIMITED_BROADCAST
            self._gateway = None
            return
        self._address = ip.address
        self._mask = prefix_mask(ip.prefix_len)
        self._network = int.from_bytes(ip.address, "big") & self._mask
        self._broadcast = subnet_broadcast(ip.address, ip.prefix_len) if ip.prefix_len < 31 else LIMITED_BROADCAST
        self._gateway = ip.gateway
        self._emit(MAC_BROADCAST, ethernet.ETHERTYPE_ARP, self._neighbours.announcement(ip.address))

    def _pump_dhcp(self, now: float) -> None:
        if self._dhcp is None:
            return
        for event in self._dhcp.take_events():
            self._configure(event.lease.config if isinstance(event, LeaseAcquired) else None)
        for send in self._dhcp.take_outgoing():
            self.udp_send(now, send.dst, CLIENT_PORT, SERVER_PORT, send.payload)


def _to_dhcp_client(header: Ipv4Header, body: memoryview) -> bool:
    return header.protocol == PROTO_UDP and len(body) >= 4 and int.from_bytes(body[2:4], "big") == CLIENT_PORT


def _quotes_icmp_error(header: Ipv4Header, quote: bytes) -> bool:
    """Whether fragment zero (`quote`, the fragment as received) starts an ICMP error message, which RFC 1122
    §3.2.2 says no ICMP error may answer. A fragment zero too short to show its ICMP type counts as one: we
    cannot tell, and staying silent is the side that cannot loop two stacks' errors."""
    if header.protocol != PROTO_ICMP:
        return False
    return len(quote) <= header.header_len or quote[header.header_len] in icmp.SUPPRESSES_ERRORS


def _ident_key(secret: bytes | None, rng: random.Random | None) -> bytes:
    """The key of the IPv4 identifications: from the stack's secret when it has one, else from `rng`."""
    if secret is not None:
        return hashlib.blake2s(secret, digest_size=32, person=_IDENT_PERSON).digest()
    return (rng.getrandbits(256) if rng is not None else 0).to_bytes(32, "big")
