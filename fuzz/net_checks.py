"""What the network targets check on every frame that goes in and comes out, with the stack's own codecs.

Going in: each codec that has both directions gives back the bytes it parsed (Ethernet, ARP, option-less
IPv4, IPv6, UDP with a checksum, ICMP, ICMPv6). Coming out: every frame we send parses with its checksums right
and fits the MTU, and re-encodes to itself; over IPv6, neighbour discovery leaves with a hop limit of 255 and
an ICMPv6 error fits the minimum MTU (RFC 4443 §2.4(c)).
"""

from __future__ import annotations

from fuzz.errors import PropertyViolationError, require
from netstack import arp, ethernet, icmp, icmpv6, ipv6, mld, ndp, udp
from netstack.errors import MalformedError
from netstack.ipv4 import MIN_HEADER_LEN, PROTO_ICMP, PROTO_TCP, PROTO_UDP, parse_ipv4, serialize_ipv4
from netstack.reasons import Drop
from netstack.stack import Stack
from netstack.tcp.counters import Count
from netstack.tcp.layer import TcpLayer
from netstack.tcp.segment import SegmentError, parse_segment


def incoming(frame: bytes) -> None:
    """Round trips on whatever of `frame` the codecs accept (the stack decides separately what to do with it)."""
    try:
        eth = ethernet.parse_frame(frame)
    except MalformedError:
        return
    require(ethernet.serialize_frame(eth) == frame, "Ethernet does not round-trip")
    payload = bytes(eth.payload)
    if eth.ethertype == ethernet.ETHERTYPE_ARP:
        try:
            packet = arp.parse_arp(payload[: arp.PACKET_LEN])
        except MalformedError:
            return
        require(arp.serialize_arp(packet) == payload[: arp.PACKET_LEN], "ARP does not round-trip")
    elif eth.ethertype == ethernet.ETHERTYPE_IPV4:
        try:
            header, body = parse_ipv4(payload)
        except MalformedError:
            return
        if header.header_len == MIN_HEADER_LEN:
            require(serialize_ipv4(header, body) == payload, "IPv4 does not round-trip")
        if not header.is_fragment:
            _transport(header.protocol, header.src, header.dst, bytes(body))
    elif eth.ethertype == ethernet.ETHERTYPE_IPV6:
        _incoming6(payload)


def _incoming6(payload: bytes) -> None:
    try:
        header, body = ipv6.parse_ipv6(payload)
    except MalformedError:
        return
    require(ipv6.serialize_ipv6(header, body) == payload, "IPv6 does not round-trip")
    if header.next_header == ipv6.PROTO_ICMPV6:
        try:
            message = icmpv6.parse_icmpv6(body, header.src, header.dst)
        except MalformedError:
            return
        again = icmpv6.serialize_icmpv6(message.type, message.code, message.body, header.src, header.dst)
        require(again == bytes(body), "ICMPv6 does not round-trip")


def _transport(protocol: int, src: bytes, dst: bytes, body: bytes) -> None:
    try:
        if protocol == PROTO_UDP and body[6:8] != b"\x00\x00":
            datagram = udp.parse_udp(body, src, dst)
            again = udp.serialize_udp(src, dst, datagram.src_port, datagram.dst_port, datagram.payload)
            require(again == body, "UDP does not round-trip")
        elif protocol == PROTO_ICMP:
            message = icmp.parse_icmp(body)
            require(icmp.serialize_icmp(message.type, message.code, message.rest, message.body) == body,
                    "ICMP does not round-trip")
    except MalformedError:
        return


def outgoing(frame: bytes, mtu: int) -> None:
    """A frame the stack sends must be well formed in every layer we wrote."""
    try:
        eth = ethernet.parse_frame(frame)
        require(len(eth.payload) <= mtu, f"sent a frame of {len(eth.payload)} bytes over the MTU")
        if eth.ethertype == ethernet.ETHERTYPE_ARP:
            arp.parse_arp(eth.payload)
            return
        if eth.ethertype == ethernet.ETHERTYPE_IPV6:
            _outgoing6(bytes(eth.payload))
            return
        require(eth.ethertype == ethernet.ETHERTYPE_IPV4, "sent an unknown ethertype")
        header, body = parse_ipv4(eth.payload)
    except MalformedError as bad:
        raise PropertyViolationError(f"sent a malformed frame: {bad}") from bad
    require(serialize_ipv4(header, body) == bytes(eth.payload), "a sent IPv4 header does not round-trip")
    if header.is_fragment:
        return
    try:
        if header.protocol == PROTO_UDP:
            udp.parse_udp(body, header.src, header.dst)
        elif header.protocol == PROTO_ICMP:
            icmp.parse_icmp(body)
        elif header.protocol == PROTO_TCP:
            parse_segment(header.src, header.dst, body)
    except (MalformedError, SegmentError) as bad:
        raise PropertyViolationError(f"sent a malformed {header.protocol} message: {bad}") from bad


def _outgoing6(packet: bytes) -> None:
    """What we send over IPv6: no extension header but a fragment header, or a hop-by-hop header with a Router
    Alert in front of an MLD report (RFC 3810 §5), and nothing else; checksums right, ND at hop limit 255, MLD
    reports at hop limit 1 to ff02::16, errors within 1280 bytes."""
    try:
        header, body = ipv6.parse_ipv6(packet)
        chain = ipv6.walk(header, body)
    except MalformedError as bad:
        raise PropertyViolationError(f"sent a malformed IPv6 packet: {bad}") from bad
    require(ipv6.serialize_ipv6(header, body) == packet, "a sent IPv6 header does not round-trip")
    if header.next_header == ipv6.PROTO_HOP_BY_HOP:
        _mld_report_only(header, body, chain)
        return
    require(chain.extension_headers == (chain.fragment is not None), "sent an extension header other than a fragment")
    if chain.fragment is not None and (chain.fragment.offset or chain.fragment.more):
        return
    upper = body[chain.upper_offset :]
    try:
        if chain.upper == ipv6.PROTO_ICMPV6:
            message = icmpv6.parse_icmpv6(upper, header.src, header.dst)
            require(message.type not in mld.TYPES, "sent an MLD message without its hop-by-hop Router Alert")
            if message.type in ndp.ND_TYPES:
                require(header.hop_limit == ndp.HOP_LIMIT, "neighbour discovery sent with a hop limit below 255")
            if icmpv6.is_error(message.type):
                require(len(packet) <= ipv6.MIN_MTU, f"an ICMPv6 error of {len(packet)} bytes")
        elif chain.upper == ipv6.PROTO_UDP:
            udp.parse_udp(upper, header.src, header.dst)
        elif chain.upper == ipv6.PROTO_TCP:
            parse_segment(header.src, header.dst, upper)
        else:
            raise PropertyViolationError(f"sent IPv6 next header {chain.upper}")
    except (MalformedError, SegmentError) as bad:
        raise PropertyViolationError(f"sent a malformed IPv6 {chain.upper} message: {bad}") from bad


def _mld_report_only(header: ipv6.Ipv6Header, body: memoryview, chain: ipv6.HeaderChain) -> None:
    """The one hop-by-hop header we send: exactly one, a Router Alert for MLD, before a well-formed MLDv2 report
    at hop limit 1 to ff02::16."""
    require(chain.extension_headers == 1 and chain.fragment is None and chain.upper == ipv6.PROTO_ICMPV6,
            "sent a hop-by-hop header other than in front of an MLD report")
    require(mld.has_router_alert(body[: chain.upper_offset]), "sent a hop-by-hop header without a Router Alert")
    try:
        message = icmpv6.parse_icmpv6(body[chain.upper_offset :], header.src, header.dst)
        require(message.type == mld.REPORT_V2, f"sent ICMPv6 type {message.type} behind a hop-by-hop header")
        mld.parse_report(message.body)
    except MalformedError as bad:
        raise PropertyViolationError(f"sent a malformed MLD report: {bad}") from bad
    require(header.hop_limit == mld.HOP_LIMIT and header.dst == mld.ALL_MLDV2_ROUTERS,
            "sent an MLD report off the link or not to ff02::16")


def stack_sound(stack: Stack, tcp: TcpLayer, now: float) -> list[bytes]:
    """What every whole-stack target checks after each chunk: every frame sent is well formed, nothing was
    counted as an internal error in the stack or TCP, and reassembly and the transmit queue stayed within
    their limits. Returns the frames taken, for the target's own checks."""
    frames = stack.take_frames(now)
    for frame in frames:
        outgoing(frame, stack.mtu)
    require(stack.counters[Drop.INTERNAL_ERROR] == 0, "the stack counted an internal error")
    require(tcp.stats[Count.INTERNAL_ERROR] == 0, "TCP counted an internal error")
    limits = stack._limits
    stats = stack.stats()
    require(stats["reassembly-bytes"] <= limits.reassembly.stored_bytes, "reassembly holds too many bytes")
    require(stats["reassembly-datagrams"] <= limits.reassembly.datagrams, "reassembly holds too many datagrams")
    require(len(frames) <= limits.tx_queue_frames, "sent more frames than the queue holds")
    return frames
