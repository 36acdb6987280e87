"""Peer-side IPv6 frame builders and readers for the stack tests (Ethernet, IPv6, extension headers, ICMPv6, ND).

Written with struct by hand and checksummed with builders.textbook_sum, not with the codecs under test: a frame
the stack accepts here was built to the RFCs, not to the stack's own idea of them.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass

from netstack.config import StaticIp, StaticIp6, UseSlaac
from netstack.stack import SegmentLayer, Stack, StackConfig
from tests.netstack.builders import PEER_MAC, US_MAC, textbook_sum

ETHERTYPE_IPV6 = 0x86DD
ALL_NODES = bytes.fromhex("ff020000000000000000000000000001")
ALL_ROUTERS = bytes.fromhex("ff020000000000000000000000000002")
UNSPECIFIED = bytes(16)
PEER_LL = bytes.fromhex("fe800000000000000000000000000002")  # fe80::2
ROUTER_LL = bytes.fromhex("fe80000000000000000000000000000a")  # fe80::a
ROUTER_MAC = bytes.fromhex("02000000000a")
PREFIX = bytes.fromhex("20010db8000100000000000000000000")  # 2001:db8:1::/64
US_STATIC = bytes.fromhex("20010db8000100000000000000000064")  # 2001:db8:1::64
PEER6 = bytes.fromhex("20010db8000100000000000000000002")  # 2001:db8:1::2 (on link)
FAR6 = bytes.fromhex("20010db8ffff00000000000000000007")  # 2001:db8:ffff::7 (off link)
SECRET = bytes(32)
STATIC = StaticIp6(US_STATIC, 64)  # our hand-configured global address

PROTO_HOP = 0
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ROUTING = 43
PROTO_FRAGMENT = 44
PROTO_ICMPV6 = 58
PROTO_NO_NEXT = 59
PROTO_DEST = 60

ECHO_REQUEST = 128
ECHO_REPLY = 129
RS, RA, NS, NA = 133, 134, 135, 136


def solicited(address: bytes) -> bytes:
    return bytes.fromhex("ff0200000000000000000001ff") + address[13:]


def mmac(group: bytes) -> bytes:
    return b"\x33\x33" + group[12:]


def pseudo_sum(src: bytes, dst: bytes, proto: int, payload: bytes) -> int:
    return textbook_sum(src + dst + struct.pack("!IxxxB", len(payload), proto) + payload)


def upper_checksum(src: bytes, dst: bytes, proto: int, payload: bytes, at: int) -> bytes:
    """`payload` with its checksum (zero at `at`) filled in over the IPv6 pseudo-header (RFC 8200 §8.1)."""
    value = ~pseudo_sum(src, dst, proto, payload) & 0xFFFF
    return payload[:at] + struct.pack("!H", value) + payload[at + 2 :]


def ipv6(src: bytes, dst: bytes, next_header: int, payload: bytes, *, hop_limit: int = 64,
         length: int | None = None) -> bytes:  # fmt: skip
    plen = len(payload) if length is None else length
    return struct.pack("!IHBB16s16s", 6 << 28, plen, next_header, hop_limit, src, dst) + payload


def icmp6(type_: int, code: int, body: bytes, src: bytes, dst: bytes) -> bytes:
    return upper_checksum(src, dst, PROTO_ICMPV6, struct.pack("!BBH", type_, code, 0) + body, 2)


def udp6(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes) -> bytes:
    datagram = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    out = upper_checksum(src, dst, PROTO_UDP, datagram, 6)
    return out if out[6:8] != b"\x00\x00" else out[:6] + b"\xff\xff" + out[8:]


def eth6(dst_mac: bytes, src_mac: bytes, packet: bytes) -> bytes:
    return dst_mac + src_mac + struct.pack("!H", ETHERTYPE_IPV6) + packet


def frame(src: bytes, dst: bytes, next_header: int, payload: bytes, *, dst_mac: bytes = US_MAC,
          src_mac: bytes = PEER_MAC, hop_limit: int = 64) -> bytes:  # fmt: skip
    return eth6(dst_mac, src_mac, ipv6(src, dst, next_header, payload, hop_limit=hop_limit))


def icmp_frame(src: bytes, dst: bytes, type_: int, code: int, body: bytes, *, dst_mac: bytes = US_MAC,
               src_mac: bytes = PEER_MAC, hop_limit: int = 64) -> bytes:  # fmt: skip
    return frame(src, dst, PROTO_ICMPV6, icmp6(type_, code, body, src, dst), dst_mac=dst_mac, src_mac=src_mac,
                 hop_limit=hop_limit)


def echo_frame(src: bytes, dst: bytes, ident: int = 1, seq: int = 1, data: bytes = b"ping", *,
               dst_mac: bytes = US_MAC, src_mac: bytes = PEER_MAC) -> bytes:  # fmt: skip
    return icmp_frame(src, dst, ECHO_REQUEST, 0, struct.pack("!HH", ident, seq) + data, dst_mac=dst_mac,
                      src_mac=src_mac)


# --- extension headers --------------------------------------------------------------------------------------


def options_header(next_header: int, options: bytes) -> bytes:
    """A hop-by-hop or destination options header, padded with PadN/Pad1 to a multiple of 8 bytes."""
    body = options
    rest = (-(2 + len(body))) % 8
    if rest == 1:
        body += b"\x00"
    elif rest:
        body += bytes((1, rest - 2)) + bytes(rest - 2)
    return bytes((next_header, (2 + len(body)) // 8 - 1)) + body


def routing_header(next_header: int, routing_type: int, segments_left: int, addresses: int = 1) -> bytes:
    return bytes((next_header, 2 * addresses, routing_type, segments_left)) + bytes(4) + bytes(16 * addresses)


def fragment_header(next_header: int, offset: int, more: bool, ident: int) -> bytes:
    return struct.pack("!BxHI", next_header, offset | int(more), ident)


def fragments(src: bytes, dst: bytes, next_header: int, upper: bytes, *, size: int, ident: int) -> list[bytes]:
    """The upper-layer bytes cut into fragments of `size` data bytes (a multiple of 8), each a whole packet."""
    out = []
    for offset in range(0, len(upper), size):
        chunk = upper[offset : offset + size]
        more = offset + size < len(upper)
        out.append(ipv6(src, dst, PROTO_FRAGMENT, fragment_header(next_header, offset, more, ident) + chunk))
    return out


# --- neighbour discovery ------------------------------------------------------------------------------------


def lla_option(kind: int, mac: bytes) -> bytes:
    return bytes((kind, 1)) + mac


def ns_body(target: bytes, source_mac: bytes | None = None) -> bytes:
    return bytes(4) + target + (lla_option(1, source_mac) if source_mac else b"")


def na_body(target: bytes, target_mac: bytes | None, *, router: bool = False, solicited: bool = True,
            override: bool = True) -> bytes:  # fmt: skip
    flags = (0x80 if router else 0) | (0x40 if solicited else 0) | (0x20 if override else 0)
    return bytes((flags, 0, 0, 0)) + target + (lla_option(2, target_mac) if target_mac else b"")


def prefix_option(prefix: bytes, length: int = 64, *, on_link: bool = True, autonomous: bool = True,
                  valid: int = 86400, preferred: int = 14400) -> bytes:  # fmt: skip
    flags = (0x80 if on_link else 0) | (0x40 if autonomous else 0)
    return struct.pack("!BBBBII4x16s", 3, 4, length, flags, valid, preferred, prefix)


def mtu_option(mtu: int) -> bytes:
    return struct.pack("!BBxxI", 5, 1, mtu)


def ra_body(*options: bytes, lifetime: int = 1800, hop_limit: int = 64, reachable: int = 0,
            retrans: int = 0) -> bytes:  # fmt: skip
    return struct.pack("!BBHII", hop_limit, 0, lifetime, reachable, retrans) + b"".join(options)


def ns_frame(src: bytes, target: bytes, source_mac: bytes | None = PEER_MAC, *, dst: bytes | None = None,
             src_mac: bytes = PEER_MAC, hop_limit: int = 255) -> bytes:  # fmt: skip
    to = solicited(target) if dst is None else dst
    return icmp_frame(src, to, NS, 0, ns_body(target, source_mac), dst_mac=mmac(to) if to[0] == 0xFF else US_MAC,
                      src_mac=src_mac, hop_limit=hop_limit)


def na_frame(src: bytes, dst: bytes, target: bytes, target_mac: bytes | None = PEER_MAC, *,
             src_mac: bytes = PEER_MAC, solicited: bool = True, override: bool = True,
             router: bool = False) -> bytes:  # fmt: skip
    return icmp_frame(src, dst, NA, 0, na_body(target, target_mac, router=router, solicited=solicited,
                                               override=override),
                      dst_mac=mmac(dst) if dst[0] == 0xFF else US_MAC, src_mac=src_mac, hop_limit=255)


def ra_frame(*options: bytes, src: bytes = ROUTER_LL, src_mac: bytes = ROUTER_MAC, hop_limit: int = 255,
             lifetime: int = 1800, with_sll: bool = True) -> bytes:  # fmt: skip
    sll = (lla_option(1, src_mac),) if with_sll else ()
    return icmp_frame(src, ALL_NODES, RA, 0, ra_body(*sll, *options, lifetime=lifetime), dst_mac=mmac(ALL_NODES),
                      src_mac=src_mac, hop_limit=hop_limit)


# --- reading what the stack sent ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """One IPv6 frame the stack sent, read by hand."""

    dst_mac: bytes
    src_mac: bytes
    hop_limit: int
    next_header: int
    src: bytes
    dst: bytes
    payload: bytes  # after the fixed header

    @property
    def icmp_type(self) -> int:
        assert self.next_header == PROTO_ICMPV6
        return self.payload[0]

    @property
    def icmp_code(self) -> int:
        return self.payload[1]

    def checksum_ok(self) -> bool:
        return pseudo_sum(self.src, self.dst, self.next_header, self.payload) == 0xFFFF


def read(raw: bytes) -> Sent:
    assert raw[12:14] == struct.pack("!H", ETHERTYPE_IPV6), raw[:14].hex()
    packet = raw[14:]
    word, length, next_header, hop_limit, src, dst = struct.unpack_from("!IHBB16s16s", packet)
    assert word >> 28 == 6
    assert length == len(packet) - 40
    return Sent(raw[:6], raw[6:12], hop_limit, next_header, src, dst, packet[40:])


def sent6(frames: list[bytes]) -> list[Sent]:
    return [read(f) for f in frames if f[12:14] == b"\x86\xdd"]


# --- stacks -------------------------------------------------------------------------------------------------------


def new_stack(ipv6: StaticIp6 | UseSlaac | None = None, tcp: SegmentLayer | None = None, *, mac: bytes = US_MAC,
              seed: int = 1, v4: str = "10.0.0.2/24") -> Stack:  # fmt: skip
    """A stack with IPv6 on (SLAAC by default), not yet started."""
    address, _, plen = v4.partition("/")
    ip4 = StaticIp(bytes(int(x) for x in address.split(".")), int(plen))
    config = StackConfig(mac, ip4, ipv6=ipv6 if ipv6 is not None else UseSlaac(), ipv6_secret=SECRET)
    return Stack(config, tcp, rng=random.Random(seed))


def run_until(stack: Stack, until: float, now: float = 0.0) -> tuple[float, list[bytes]]:
    """Fire every timer due up to `until`, collecting what goes out; returns the last time and the frames."""
    out = stack.take_frames(now)
    while True:
        deadline = stack.next_deadline()
        if deadline is None or deadline > until:
            return max(now, until), out
        now = max(now, deadline)
        stack.timers_expired(now)
        out += stack.take_frames(now)


def ready_stack(ipv6: StaticIp6 | UseSlaac | None = None, tcp: SegmentLayer | None = None, *,
                mac: bytes = US_MAC, seed: int = 1) -> Stack:  # fmt: skip
    """Started, DAD done on every address (3 s of virtual time), router solicitations sent; frames taken."""
    stack = new_stack(ipv6, tcp, mac=mac, seed=seed)
    stack.start(0.0)
    run_until(stack, 3.0)
    return stack


def link_local_of(stack: Stack) -> bytes:
    assert stack.ipv6 is not None
    return stack.ipv6.addresses.addresses()[0][0]


def teach_peer6(stack: Stack, now: float = 3.0) -> None:
    """Make the stack learn PEER6 -> PEER_MAC the RFC 4861 way (PEER6's NS for our static address) and drop the
    NA it answers with, so that answers to PEER6 leave at once and tests see only what they cause."""
    stack.frame_received(now, ns_frame(PEER6, US_STATIC))
    stack.take_frames(now)


def ready_with_peer(tcp: SegmentLayer | None = None) -> Stack:
    """`ready_stack` on STATIC with PEER6's MAC known, nothing pending."""
    stack = ready_stack(STATIC, tcp)
    teach_peer6(stack)
    return stack
