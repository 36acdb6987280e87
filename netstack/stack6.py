"""The IPv6 half of the stack: packets in, packets and neighbour discovery out, under `Stack`'s four calls.

Why a part of its own rather than more branches in stack.py: IPv6 brings its own address configuration
(slaac.AddressConfig), neighbour cache (neighbour6.Neighbours6), extension headers and ICMPv6 rules, and
shares with IPv4 only the link, the fragment budget, the UDP ports and the TCP layer. `Stack` hands it every
frame of type 0x86DD and every IPv6 segment TCP sends; this class owns everything between.

Decisions documented here:
- A packet is accepted for a unicast address we own or for a group we joined (all-nodes and the
  solicited-node group of each address, slaac.AddressConfig.groups). A tentative address takes neighbour
  discovery only (RFC 4862 §5.4): anything else sent to it is dropped.
- TCP only from frames to our own MAC and packets to a usable unicast address, as over IPv4.
- Errors we originate follow RFC 4443 §2.4 (icmpv6.error_allowed) and share one token bucket per family
  (netstack.limits.IcmpLimits); an error never answers an error, a multicast (but for the two exemptions) or
  a source that is not a unicast host.
- Atomic fragments (offset 0, no more fragments: RFC 6946) are processed at once, outside the reassembler. A
  reassembled packet came as a link-layer multicast if any of its fragments did (no echo reply, no TCP), and its
  Time Exceeded is not sent if its first fragment did (RFC 4443 §2.4(e.4)).
- What we send is fragmented with a fragment header if it exceeds the link MTU (an echo reply to a large
  reassembled request); TCP never needs it: its MSS follows the link MTU, which `_pump` reports to it whenever
  it changes (an RA's MTU option, RFC 4861 §6.3.4, may lower it), and nothing we send is jumbo.
- The groups we accept are reported with MLDv2 (netstack/mld.py) so that snooping switches forward them to us:
  the group set is compared with the last one after every address-configuration event, and the reports go out
  before the DAD probe queued by the same event. Reports are the one thing we send with an extension header
  other than a fragment header: the hop-by-hop Router Alert RFC 3810 §5 requires.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from typing import Protocol

from netstack import ethernet, icmpv6, ipv6, mld, ndp
from netstack.addresses6 import (
    UNSPECIFIED,
    ip6_to_text,
    is_martian_source,
    is_multicast,
    multicast_mac,
)
from netstack.config import StaticIp6
from netstack.ipv6 import HEADER_LEN, Ipv6Header, ParameterProblemError
from netstack.limits import StackLimits
from netstack.mld import MldHost
from netstack.ndp import NeighborAdvert, NeighborSolicit, RouterAdvert
from netstack.neighbour6 import NdSend, Neighbours6, Rng
from netstack.ratelimit import TokenBucket
from netstack.reasons import Counters, Drop
from netstack.reassembly import Reassembler
from netstack.slaac import AddressConfig, AddressState
from netstack.udp import parse_udp

logger = logging.getLogger(__name__)
_FRAGMENT = ipv6.FRAGMENT_HEADER_LEN
_FROM_UNSPECIFIED = frozenset({ndp.NEIGHBOR_SOLICIT, ndp.ROUTER_SOLICIT})
_IDENT_PERSON = b"pinata6f"  # domain separation of the fragment-id key from the RFC 7217 identifiers


class Ipv6SegmentLayer(Protocol):
    """The part of `stack.SegmentLayer` this half calls (TCP takes 16-byte addresses the same way)."""

    def segment_received(self, now: float, src: bytes, dst: bytes, segment: memoryview) -> None: ...

    def icmp_error_received(
        self, now: float, icmp_type: int, icmp_code: int, quoted: bytes, next_hop_mtu: int | None
    ) -> None: ...

    def unreachable(self, now: float, address: bytes) -> None: ...

    def link_mtu6_changed(self, now: float, mtu: int) -> None: ...


Emit = Callable[[bytes, int, bytes], None]
"""(destination MAC, ethertype, payload): Stack._emit, which bounds the transmit queue."""
UdpHandlers = Mapping[int, Callable[[float, bytes, int, bytes, memoryview], None]]


class Ipv6Path:
    __slots__ = ("_accepted", "_accepted_macs", "_counters", "_echo_bucket", "_emit", "_error_bucket",
                 "_fragments_sent", "_groups", "_ident_key", "_limits", "_mac", "_mtu", "_quiet",
                 "_reassembler", "_reported", "_tcp", "_udp", "_usable", "address_changes", "addresses", "mld",
                 "neighbours", "rx_packets", "tx_packets")  # fmt: skip

    def __init__(
        self, *, mac: bytes, link_mtu: int, counters: Counters, emit: Emit, tcp: Ipv6SegmentLayer | None,
        udp: UdpHandlers, reassembler: Reassembler, limits: StackLimits, rng: Rng, secret: bytes,
        static: StaticIp6 | None,
    ) -> None:  # fmt: skip
        self._mac = mac
        self._counters = counters
        self._emit = emit
        self._tcp = tcp
        self._udp = udp
        self._reassembler = reassembler
        self._limits = limits
        self._ident_key = hashlib.blake2s(secret, digest_size=32, person=_IDENT_PERSON).digest()
        self._fragments_sent = 0
        self._echo_bucket = TokenBucket(limits.icmp.echo_rate, limits.icmp.echo_burst)
        self._error_bucket = TokenBucket(limits.icmp.error_rate, limits.icmp.error_burst)
        fixed = (static.address, static.prefix_len, static.gateway) if static is not None else None
        self.addresses = AddressConfig(mac, counters, rng, secret, link_mtu=link_mtu, static=fixed,
                                       limits=limits.slaac)
        self.neighbours = Neighbours6(mac, counters, rng, limits.nd)
        self.mld = MldHost(counters, rng, limits.mld)
        self._groups: frozenset[bytes] = frozenset()  # the group set MldHost was last told
        # The groups we accept, and their Ethernet addresses: kept by _pump, which every change of our addresses
        # passes through, so a multicast frame costs two set lookups instead of building the set twice.
        self._accepted: frozenset[bytes] = frozenset()
        self._accepted_macs: frozenset[bytes] = frozenset()
        self._quiet = True  # since start, nothing sent yet: joins wait for the first DAD probe
        self._reported = (self.addresses.base_reachable_time, self.addresses.retrans_timer)
        self._mtu = link_mtu  # the link MTU TCP was last told (Ipv6SegmentLayer.link_mtu6_changed)
        self._usable: tuple[tuple[bytes, int], ...] = ()  # the usable addresses _pump last saw
        self.address_changes = 0
        """Moves when the usable addresses change (Stack.address_changes)."""
        self.rx_packets = 0
        self.tx_packets = 0

    # --- driver-facing ------------------------------------------------------------------------------------------

    def start(self, now: float) -> None:
        self.neighbours.clear()
        self.mld.reset()
        self._groups = frozenset()
        self._quiet = True
        self.addresses.start(now)
        self._pump(now)

    def accepts_mac(self, dst_mac: bytes) -> bool:
        """Our MAC, or the Ethernet group of a multicast group we joined (RFC 2464 §7)."""
        return dst_mac == self._mac or dst_mac in self._accepted_macs

    def next_deadline(self) -> float | None:
        deadlines = [d for d in (self.addresses.next_deadline(), self.neighbours.next_deadline(),
                                 self.mld.next_deadline()) if d is not None]
        return min(deadlines) if deadlines else None

    def timers_expired(self, now: float) -> None:
        self.addresses.timers_expired(now)
        for message in self.neighbours.timers_expired(now, self.addresses.assigned,
                                                      self.addresses.solicitation_source):
            self._send_nd(message)
        for next_hop in self.neighbours.take_unresolved():
            self.addresses.router_unreachable(next_hop)
            if self._tcp is not None:
                self._tcp.unreachable(now, next_hop)
        for next_hop in self.neighbours.take_lost():
            self.addresses.router_unreachable(next_hop)
        self.mld.timers_expired(now)
        self._pump(now)

    def reassembly_expired(self, now: float) -> None:
        """After the shared reassembler expired datagrams: Time Exceeded code 1 for those whose first fragment
        we held (RFC 8200 §4.5), unless that fragment came in a link-layer multicast frame (RFC 4443 §2.4(e.4))."""
        for header, packet, link_multicast in self._reassembler.take_expired6():
            self._send_error(now, header, memoryview(packet), icmp_type=icmpv6.TIME_EXCEEDED,
                             code=icmpv6.CODE_REASSEMBLY_TIMEOUT, word=0, link_multicast=link_multicast)

    def stats(self) -> dict[str, int]:
        return {
            "ipv6-rx-packets": self.rx_packets,
            "ipv6-tx-packets": self.tx_packets,
            "ipv6-addresses": len(self.addresses.addresses()),
            "ipv6-neighbours": len(self.neighbours),
            "ipv6-routers": len(self.addresses.routers()),
            "ipv6-prefixes": len(self.addresses.prefixes()),
        }

    # --- receive path -------------------------------------------------------------------------------------------

    def packet_received(self, now: float, payload: memoryview, *, link_multicast: bool) -> None:
        self.rx_packets += 1
        raw = ipv6.strip_link_padding(payload)
        header, body = ipv6.parse_ipv6(raw)
        admitted = self._admitted(header)
        if admitted is None:
            return
        unicast, tentative = admitted
        if tentative:
            self._tentative_received(now, header, body)
            return
        try:
            whole = self._whole(now, header, body, link_multicast=link_multicast)
        except ParameterProblemError as problem:
            self._counters.add(problem.reason)
            self._send_error(now, header, raw, icmp_type=icmpv6.PARAMETER_PROBLEM, code=problem.code,
                             word=problem.pointer, link_multicast=link_multicast,
                             multicast_exempt=problem.multicast_exempt)
            return
        if whole is None:
            return
        header, body, chain, reassembled, link_multicast = whole
        original = None if reassembled else raw  # errors quote only a packet that arrived whole
        self._dispatch(now, header, chain, body, original, unicast=unicast, link_multicast=link_multicast,
                       fragmented=reassembled or chain.fragment is not None)

    def _tentative_received(self, now: float, header: Ipv6Header, body: memoryview) -> None:
        """RFC 4862 §5.4: a tentative address takes only the neighbour discovery that DAD listens for, and
        everything else sent to it is discarded silently: no reassembly (ND is never fragmented, RFC 6980) and
        no ICMPv6 error, which would come from an address we do not yet have."""
        chain = ipv6.walk(header, body, self._limits.ipv6)  # a malformed chain is counted by Stack; no answer
        if chain.fragment is None and chain.upper == ipv6.PROTO_ICMPV6:
            message = icmpv6.parse_icmpv6(body[chain.upper_offset :], header.src, header.dst)
            if message.type in (ndp.NEIGHBOR_SOLICIT, ndp.NEIGHBOR_ADVERT):
                if header.src == UNSPECIFIED and message.type not in _FROM_UNSPECIFIED:
                    # RFC 4861 §4.4: an NA comes from an address of its sender; as _icmp_received refuses it
                    self._counters.add(Drop.IPV6_MARTIAN_SOURCE)
                    return
                self._nd_received(now, header, message)
                return
        self._counters.add(Drop.IPV6_TENTATIVE_DESTINATION)

    def _admitted(self, header: Ipv6Header) -> tuple[bool, bool] | None:
        """Whether the destination is unicast (or one of our groups), and if so whether it is a tentative
        address of ours; None when the packet is refused for its addresses."""
        src = header.src
        dst = header.dst
        if src != UNSPECIFIED and is_martian_source(src):  # :: only for ND (DAD probes), see _icmp_received
            self._counters.add(Drop.IPV6_MARTIAN_SOURCE)
            return None
        if self.addresses.assigned(src):  # not a tentative one: the defender's NA comes from it (RFC 4862 §5.4.4)
            self._counters.add(Drop.IPV6_LAND if dst == src else Drop.IPV6_MARTIAN_SOURCE)
            return None
        if is_multicast(dst):
            if dst not in self._accepted:
                self._counters.add(Drop.IPV6_NOT_FOR_US)
                return None
            return False, False
        state = self.addresses.state_of(dst)
        if state is None or state is AddressState.DUPLICATE:
            self._counters.add(Drop.IPV6_NOT_FOR_US)
            return None
        return True, state is AddressState.TENTATIVE

    def _whole(self, now: float, header: Ipv6Header, body: memoryview, *,
               link_multicast: bool) -> tuple[Ipv6Header, memoryview, ipv6.HeaderChain, bool, bool] | None:
        """The packet's header chain, after reassembly if it is a fragment (then True), and whether it came in a
        link-layer multicast frame (a reassembled one if any of its fragments did: Reassembler.add6); None while
        fragments are missing. An atomic fragment (offset 0, no more: RFC 6946) is a whole packet."""
        chain = ipv6.walk(header, body, self._limits.ipv6)
        fragment = chain.fragment
        if fragment is not None and header.src == UNSPECIFIED:
            # :: is let through _admitted for DAD probes alone, and ND is never fragmented (RFC 6980): refused
            # before it takes reassembly budget rather than after, at dispatch
            self._counters.add(Drop.IPV6_MARTIAN_SOURCE)
            return None
        if fragment is None or not (fragment.offset or fragment.more):
            return header, body, chain, False, link_multicast
        joined = self._reassembler.add6(now, header, chain, body, link_multicast=link_multicast)
        if joined is None:
            return None
        header, whole, link_multicast = joined
        body = memoryview(whole)
        return header, body, ipv6.walk(header, body, self._limits.ipv6, reassembled=True), True, link_multicast

    def _dispatch(
        self, now: float, header: Ipv6Header, chain: ipv6.HeaderChain, body: memoryview,
        original: memoryview | None, *, unicast: bool, link_multicast: bool, fragmented: bool,
    ) -> None:  # fmt: skip
        upper = body[chain.upper_offset :]
        if header.src == UNSPECIFIED and chain.upper != ipv6.PROTO_ICMPV6:
            self._counters.add(Drop.IPV6_MARTIAN_SOURCE)
            return
        if chain.upper == ipv6.PROTO_ICMPV6:
            hop_by_hop = body[: chain.upper_offset] if header.next_header == ipv6.PROTO_HOP_BY_HOP else None
            self._icmp_received(now, header, upper, unicast=unicast and not link_multicast, fragmented=fragmented,
                                hop_by_hop=hop_by_hop)
        elif chain.upper == ipv6.PROTO_TCP:
            self._tcp_received(now, header.src, header.dst, upper, unicast=unicast and not link_multicast)
        elif chain.upper == ipv6.PROTO_UDP:
            self._udp_received(now, header, upper, original if unicast and not link_multicast else None)
        elif chain.upper == ipv6.PROTO_NO_NEXT:
            self._counters.add(Drop.IPV6_NO_NEXT_HEADER)
        else:
            self._counters.add(Drop.IPV6_UNKNOWN_NEXT_HEADER)
            if original is not None:
                self._send_error(now, header, original, icmp_type=icmpv6.PARAMETER_PROBLEM,
                                 code=icmpv6.CODE_UNRECOGNIZED_NEXT_HEADER, word=ipv6.next_header_pointer(chain),
                                 link_multicast=link_multicast)

    def _tcp_received(self, now: float, src: bytes, dst: bytes, segment: memoryview, *, unicast: bool) -> None:
        if not unicast:
            self._counters.add(Drop.TCP_NOT_UNICAST)
        elif self._tcp is None:
            self._counters.add(Drop.TCP_NO_LAYER)
        elif self._next_hop(src) is None:  # see stack.py: nothing TCP answered could leave
            self._counters.add(Drop.TCP_NO_ROUTE_BACK)
        else:
            self._tcp.segment_received(now, src, dst, segment)

    def _udp_received(self, now: float, header: Ipv6Header, body: memoryview, original: memoryview | None) -> None:
        datagram = parse_udp(body, header.src, header.dst)
        handler = self._udp.get(datagram.dst_port)
        if handler is None:
            self._counters.add(Drop.UDP_PORT_CLOSED)
            if original is not None:
                self._send_error(now, header, original, icmp_type=icmpv6.DEST_UNREACHABLE,
                                 code=icmpv6.CODE_PORT_UNREACHABLE, word=0, link_multicast=False)
            return
        handler(now, header.src, datagram.src_port, header.dst, datagram.payload)

    def _icmp_received(self, now: float, header: Ipv6Header, body: memoryview, *, unicast: bool,
                       fragmented: bool, hop_by_hop: memoryview | None = None) -> None:
        """`unicast`: to our own address in a frame to our own MAC (what echo and errors are answered for);
        `hop_by_hop`: the extension headers when the first of them is a hop-by-hop header (MLD's Router Alert)."""
        message = icmpv6.parse_icmpv6(body, header.src, header.dst)
        if header.src == UNSPECIFIED and message.type not in _FROM_UNSPECIFIED:
            self._counters.add(Drop.IPV6_MARTIAN_SOURCE)  # RFC 4861 §7.1, RFC 4862 §5.4: only DAD probes and RSs
            return
        if message.type in mld.TYPES:
            self._mld_received(now, header, message, fragmented=fragmented, hop_by_hop=hop_by_hop)
            return
        if message.type in ndp.ND_TYPES:
            if fragmented:  # RFC 6980: fragmented ND is how RA-Guard and DAD defences are evaded
                self._counters.add(Drop.ND_FRAGMENTED)
            else:
                self._nd_received(now, header, message)
            return
        if message.type == icmpv6.ECHO_REQUEST:
            if not unicast:
                self._counters.add(Drop.ICMPV6_ECHO_MULTICAST)  # no amplification by a group
            elif not self._echo_bucket.allow(now):
                self._counters.add(Drop.ICMPV6_ECHO_RATE_LIMITED)
            else:
                self.send(now, header.dst, header.src, ipv6.PROTO_ICMPV6,
                          icmpv6.serialize_icmpv6(icmpv6.ECHO_REPLY, 0, message.body, header.dst, header.src))
        elif message.type in icmpv6.ERROR_TYPES:
            self._error_received(now, message, unicast=unicast)
        else:
            self._counters.add(Drop.ICMPV6_UNHANDLED_TYPE)

    def _error_received(self, now: float, message: icmpv6.Icmp6Message, *, unicast: bool) -> None:
        if not unicast:
            self._counters.add(Drop.ICMPV6_ERROR_NOT_OURS)
            return
        quoted = icmpv6.quoted_packet(message)
        if len(quoted) < HEADER_LEN + 8 or quoted[0] >> 4 != 6:
            self._counters.add(Drop.ICMPV6_BAD_QUOTE)
            return
        if not self.addresses.assigned(bytes(quoted[8:24])):
            self._counters.add(Drop.ICMPV6_ERROR_NOT_OURS)
            return
        if quoted[6] == ipv6.PROTO_TCP and self._tcp is not None:
            self._tcp.icmp_error_received(now, message.type, message.code, bytes(quoted),
                                          icmpv6.packet_too_big_mtu(message))
        else:
            self._counters.add(Drop.ICMPV6_ERROR_UNHANDLED)

    def _mld_received(self, now: float, header: Ipv6Header, message: icmpv6.Icmp6Message, *, fragmented: bool,
                      hop_by_hop: memoryview | None) -> None:
        """Queries go to MldHost once valid (a query's destination was already one of ours: a group we joined,
        all-nodes, or our own address, all of which §5.1.15 says to accept); others' reports are not for a
        host."""
        if message.type != mld.QUERY:
            self._counters.add(Drop.MLD_REPORT_IGNORED)
            return
        if fragmented:
            self._counters.add(Drop.MLD_FRAGMENTED)
            return
        query = mld.parse_query(message.body, hop_limit=header.hop_limit, src=header.src,
                                max_sources=self._limits.mld.sources_per_message)
        if query.sources_unread:
            self._counters.add(Drop.MLD_QUERY_SOURCES_UNREAD)
        if hop_by_hop is None or not mld.has_router_alert(hop_by_hop):
            self._counters.add(Drop.MLD_NO_ROUTER_ALERT)
        self.mld.query_received(now, query)

    def _nd_received(self, now: float, header: Ipv6Header, message: icmpv6.Icmp6Message) -> None:
        parsed = ndp.parse_nd(message.type, message.code, message.body, hop_limit=header.hop_limit,
                              src=header.src, dst=header.dst, max_options=self._limits.nd.options_per_message)
        if isinstance(parsed, NeighborSolicit):
            self.addresses.neighbour_solicit_received(now, parsed.target, header.src)
            reply = self.neighbours.solicitation_received(now, parsed, header.src, self.addresses.assigned)
            if reply is not None:
                self._send_nd(reply)
        elif isinstance(parsed, NeighborAdvert):
            self.addresses.neighbour_advert_received(now, parsed.target)
            if not parsed.router:
                self.addresses.router_withdrawn(parsed.target)
            released = self.neighbours.advertisement_received(now, parsed)
            if released is not None:
                mac, packets = released
                for packet in packets:
                    self._transmit(mac, packet)
        elif isinstance(parsed, RouterAdvert):
            self.addresses.router_advert_received(now, parsed, header.src)
            source = self.addresses.source_for(header.src)
            if parsed.source_mac is not None and source is not None:
                self.neighbours.router_advertised(now, header.src, parsed.source_mac, source)
        else:  # a router solicitation: we are a host (RFC 4861 §6.2.6 is for routers)
            self._counters.add(Drop.ND_ROUTER_SOLICIT_IGNORED)
        self._pump(now)

    # --- send path ----------------------------------------------------------------------------------------------

    def source_for(self, dst: bytes) -> bytes | None:
        return self.addresses.source_for(dst)

    def send_tcp(self, now: float, src: bytes, dst: bytes, segment: bytes) -> None:
        if not self.addresses.assigned(src):
            self._counters.add(Drop.IPV6_TX_BAD_SOURCE)
            return
        self.send(now, src, dst, ipv6.PROTO_TCP, segment)

    def send(self, now: float, src: bytes, dst: bytes, next_header: int, payload: bytes) -> None:
        packets = self._packets(src, dst, next_header, payload)
        if is_multicast(dst):
            for packet in packets:
                self._transmit(multicast_mac(dst), packet)
            return
        next_hop = self._next_hop(dst)
        if next_hop is None:
            self._counters.add(Drop.IPV6_NO_ROUTE)
            return
        mac = self.neighbours.lookup(next_hop, now)
        for packet in packets:
            if mac is not None:
                self._transmit(mac, packet)
            else:
                request = self.neighbours.hold(now, next_hop, packet, src)
                if request is not None:
                    self._send_nd(request)

    def _next_hop(self, dst: bytes) -> bytes | None:
        if self.addresses.on_link(dst):
            return dst
        return self.addresses.default_router(self.neighbours.known)

    def _packets(self, src: bytes, dst: bytes, next_header: int, payload: bytes) -> list[bytes]:
        mtu = self.addresses.mtu
        hop_limit = self.addresses.hop_limit
        if HEADER_LEN + len(payload) <= mtu:
            return [ipv6.build_header(src, dst, next_header, len(payload), hop_limit=hop_limit) + payload]
        if len(payload) > ipv6.MAX_PAYLOAD - _FRAGMENT:
            self._counters.add(Drop.IPV6_TX_TOO_BIG)
            return []
        ident = self._fragment_ident(dst)
        step = (mtu - HEADER_LEN - _FRAGMENT) // 8 * 8
        packets = []
        for offset in range(0, len(payload), step):
            chunk = payload[offset : offset + step]
            more = offset + step < len(payload)
            fragment = ipv6.serialize_fragment_header(ipv6.FragmentHeader(next_header, offset, more, ident))
            header = ipv6.build_header(src, dst, ipv6.PROTO_FRAGMENT, _FRAGMENT + len(chunk), hop_limit=hop_limit)
            packets.append(b"".join((header, fragment, chunk)))
        return packets

    def _fragment_ident(self, dst: bytes) -> int:
        """RFC 7739 §5: an identification no one can predict from the ones we sent them or anyone else. A
        counter would let whoever sees one of our fragments (pinging us with a large echo is enough) guess the
        next and spoil it with an overlapping fragment, which RFC 5722 makes the receiver drop whole."""
        self._fragments_sent += 1
        digest = hashlib.blake2s(dst + self._fragments_sent.to_bytes(8, "big"), digest_size=4, key=self._ident_key)
        return int.from_bytes(digest.digest(), "big")

    def _send_error(
        self, now: float, header: Ipv6Header, original: memoryview, *, icmp_type: int, code: int, word: int,
        link_multicast: bool, multicast_exempt: bool = False,
    ) -> None:  # fmt: skip
        """An ICMPv6 error about `original` (the invoking packet as received), if RFC 4443 §2.4 allows one and
        the bucket has a token. `word` is the pointer, MTU or zero."""
        invoking_is_error = self._invoking_is_error(header, original)
        if not icmpv6.error_allowed(invoking_src=header.src, invoking_dst=header.dst, link_multicast=link_multicast,
                                    invoking_is_error=invoking_is_error, error_type=icmp_type,
                                    multicast_exempt=multicast_exempt):
            return
        if self.addresses.is_subnet_anycast(header.src):
            self._counters.add(Drop.ICMPV6_ERROR_TO_ANYCAST)
            return
        source = header.dst if not is_multicast(header.dst) and self.addresses.assigned(header.dst) \
            else self.addresses.source_for(header.src)
        if source is None:
            return
        if not self._error_bucket.allow(now):
            self._counters.add(Drop.ICMPV6_ERROR_RATE_LIMITED)
            return
        body = icmpv6.error_body(word, original)
        self.send(now, source, header.src, ipv6.PROTO_ICMPV6,
                  icmpv6.serialize_icmpv6(icmp_type, code, body, source, header.src))

    def _invoking_is_error(self, header: Ipv6Header, original: memoryview) -> bool:
        """RFC 4443 §2.4(e.1, e.2) for an ICMPv6 message behind extension headers too (even behind the one the
        walk refused). A chain longer than the skim's bound counts as an error: the walk may refuse its first
        header before reaching the bound, and what lies behind is unknown (fail closed)."""
        upper = ipv6.skim_to_upper(header, original, self._limits.ipv6.extension_headers + 1)
        if upper is not None and ipv6.is_extension_header(upper[0]):
            return True  # the skim gave up at its bound: it may be an error, so fail closed (no answer)
        return upper is not None and upper[0] == ipv6.PROTO_ICMPV6 and upper[1] < len(original) and \
            icmpv6.suppresses_errors(original[upper[1]])

    def _send_mld(self, report: mld.Report) -> None:
        """IPv6 + hop-by-hop (Router Alert) + ICMPv6 to ff02::16 at hop limit 1 (RFC 3810 §5), from the
        link-local address or :: while it is tentative (§5.2.13); the checksum covers the final destination."""
        dst = mld.ALL_MLDV2_ROUTERS
        src = self.addresses.source_for(dst) or UNSPECIFIED
        icmp = icmpv6.serialize_icmpv6(mld.REPORT_V2, 0, mld.serialize_report(report), src, dst)
        options = mld.router_alert_header(ipv6.PROTO_ICMPV6)
        header = ipv6.build_header(src, dst, ipv6.PROTO_HOP_BY_HOP, len(options) + len(icmp), hop_limit=mld.HOP_LIMIT)
        self._transmit(multicast_mac(dst), header + options + icmp)

    def _send_nd(self, message: NdSend) -> None:
        icmp = icmpv6.serialize_icmpv6(message.icmp_type, 0, message.body, message.src, message.dst)
        header = ipv6.build_header(message.src, message.dst, ipv6.PROTO_ICMPV6, len(icmp), hop_limit=ndp.HOP_LIMIT)
        self._transmit(message.dst_mac, header + icmp)

    def _transmit(self, mac: bytes, packet: bytes) -> None:
        self.tx_packets += 1
        self._emit(mac, ethernet.ETHERTYPE_IPV6, packet)

    def _pump(self, now: float) -> None:
        """Report a changed group set, send the reports due and what address configuration queued (in that
        order: a new address's group is reported before its DAD probe), log the addresses DAD gave up on, count
        a change of the usable addresses, and pass router-advertised timers to the neighbour cache and the link
        MTU to TCP. After start, the joins wait for the first DAD probe: RFC 4862 §5.4.2 delays the first message
        after (re)initialisation, the joins included, by the random delay that spares a switch every host's
        burst after a power cut."""
        outgoing = self.addresses.take_outgoing()
        groups = self.addresses.groups()
        if groups != self._accepted:
            self._accepted = groups
            self._accepted_macs = frozenset(multicast_mac(group) for group in groups)
        if groups != self._groups and not (self._quiet and not outgoing):
            self._groups = groups
            self._quiet = False
            self.mld.groups_changed(now, groups)
        for report in self.mld.take_reports():
            self._send_mld(report)
        for message in outgoing:
            self._send_nd(message)
        for address in self.addresses.take_failed():
            logger.warning("IPv6 address %s is in use by another node (duplicate address detection); not using it",
                           ip6_to_text(address))
        usable = self.addresses.addresses()
        if usable != self._usable:
            self._usable = usable
            self.address_changes += 1
        timers = (self.addresses.base_reachable_time, self.addresses.retrans_timer)
        if timers != self._reported:
            self._reported = timers
            self.neighbours.configure(base_reachable_time=timers[0], retrans_timer=timers[1])
        if self.addresses.mtu != self._mtu:
            self._mtu = self.addresses.mtu
            if self._tcp is not None:
                self._tcp.link_mtu6_changed(now, self._mtu)

