"""IPv6 frames for the net-ipv6 target, built with the stack's own encoders so that every checksum is right.

Why a builder: a mutated ICMPv6, TCP or UDP message fails its checksum (which covers the IPv6 addresses) at the
first check. The target lets the fuzzer choose the addresses, the extension headers, the upper layer's fields
and the fragmentation, and builds the frame here, so mutations reach neighbour discovery, the header walk and
reassembly; raw chunks keep the checksum paths covered.
"""

from __future__ import annotations

import struct

from netstack import ethernet, icmpv6, ipv6
from netstack.addresses6 import ip6_from_text, multicast_mac
from netstack.tcp.segment import build_segment
from netstack.udp import serialize_udp

US6 = ip6_from_text("2001:db8::1")
THEM6 = ip6_from_text("2001:db8::2")
THEM_LL = ip6_from_text("fe80::2")
ROUTER_LL = ip6_from_text("fe80::fe")
FAR6 = ip6_from_text("2001:db8:9::1")
ALL_NODES = ip6_from_text("ff02::1")
PREFIX6 = 64
UPPERS = (ipv6.PROTO_ICMPV6, ipv6.PROTO_TCP, ipv6.PROTO_UDP, ipv6.PROTO_NO_NEXT, 253)


def upper_message(protocol: int, src: bytes, dst: bytes, data: bytes) -> bytes:
    """An upper-layer message from the fuzzer's bytes, checksummed over the IPv6 pseudo-header. ICMPv6: type,
    code, then the message body; UDP: the two ports, then the payload; TCP: ports, sequence and acknowledgment
    numbers and flags (13 bytes), then the payload; any other protocol: the bytes as they are."""
    if protocol == ipv6.PROTO_ICMPV6:
        head = data[:2].ljust(2, b"\x00")
        return icmpv6.serialize_icmpv6(head[0], head[1], data[2:].ljust(4, b"\x00"), src, dst)  # 8 bytes at least
    if protocol == ipv6.PROTO_UDP:
        sport, dport = struct.unpack_from("!HH", data[:4].ljust(4, b"\x00"))
        return serialize_udp(src, dst, sport, dport or 1, data[4 : 0xFFFF - 8 + 4])
    if protocol == ipv6.PROTO_TCP:
        fields = data[:13].ljust(13, b"\x00")
        sport, dport, seq, ack = struct.unpack_from("!HHII", fields)
        return build_segment(src, dst, sport, dport, seq, ack, fields[12], 65535, b"", data[13:])
    return data


def packets(src: bytes, dst: bytes, next_header: int, body: bytes, *, hop_limit: int, fragment: int = 0,
            ident: int = 1, reverse: bool = False) -> list[bytes]:
    """One IPv6 packet whose payload is `body` (extension headers and upper layer, `next_header` naming the
    first), or its fragments of `fragment` * 8 bytes (0: whole), each behind a fragment header."""
    if not fragment:
        return [ipv6.build_header(src, dst, next_header, len(body), hop_limit=hop_limit) + body]
    step = fragment * 8
    pieces = []
    for offset in range(0, max(len(body), 1), step):
        chunk = body[offset : offset + step]
        more = offset + step < len(body)
        payload = ipv6.serialize_fragment_header(ipv6.FragmentHeader(next_header, offset, more, ident)) + chunk
        pieces.append(ipv6.build_header(src, dst, ipv6.PROTO_FRAGMENT, len(payload), hop_limit=hop_limit) + payload)
    return list(reversed(pieces)) if reverse else pieces


def frame6(dst_mac: bytes, src_mac: bytes, packet: bytes) -> bytes:
    return ethernet.build_header(dst_mac, src_mac, ethernet.ETHERTYPE_IPV6) + packet


def link_destination(dst: bytes, us_mac: bytes) -> bytes:
    """Where a frame to `dst` goes on the link: the group's MAC for multicast, else ours."""
    return multicast_mac(dst) if dst[0] == 0xFF else us_mac
