"""Frame builders for tests, written independently of the code under test where it matters (struct by hand)."""

from __future__ import annotations

import asyncio
import random
import struct
from collections.abc import Callable

from adapters.network import Network, NetworkConfig, start_network
from netstack.checksum import checksum, pseudo_header_sum
from netstack.config import parse_static
from netstack.link.memory import Impairment, memory_link_pair
from netstack.stack import SegmentLayer, Stack, StackConfig
from netstack.tcp.config import TcpConfig

US_MAC = bytes.fromhex("020000000001")
PEER_MAC = bytes.fromhex("020000000002")
OTHER_MAC = bytes.fromhex("020000000003")
US = bytes([10, 0, 0, 2])
PEER = bytes([10, 0, 0, 1])
OTHER = bytes([10, 0, 0, 3])
FAR = bytes([192, 0, 2, 7])
BROADCAST_MAC = b"\xff" * 6


def textbook_sum(data: bytes) -> int:
    """The one's-complement sum of RFC 1071, word by word with each carry folded at once: the oracle that
    netstack.checksum's faster sum is checked against."""
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return total


def eth(dst: bytes, src: bytes, ethertype: int, payload: bytes) -> bytes:
    return dst + src + struct.pack("!H", ethertype) + payload


def ipv4(
    src: bytes, dst: bytes, proto: int, payload: bytes, *, ident: int = 1, flags: int = 0, offset: int = 0,
    ttl: int = 64, options: bytes = b"", total: int | None = None, csum: int | None = None,
) -> bytes:  # fmt: skip
    ihl = 5 + len(options) // 4
    total_len = ihl * 4 + len(payload) if total is None else total
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x40 | ihl, 0, total_len, ident, flags | (offset // 8), ttl, proto, 0, src, dst
    )
    header += options
    value = checksum(header) if csum is None else csum
    return header[:10] + struct.pack("!H", value) + header[12:] + payload


def icmp(type_: int, code: int, rest: bytes, body: bytes) -> bytes:
    message = struct.pack("!BBH", type_, code, 0) + rest + body
    return message[:2] + struct.pack("!H", checksum(message)) + message[4:]


def udp(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes, *, zero_checksum: bool = False) -> bytes:
    length = 8 + len(payload)
    datagram = struct.pack("!HHHH", sport, dport, length, 0) + payload
    if zero_checksum:
        return datagram
    value = checksum(datagram, pseudo_header_sum(src, dst, 17, length)) or 0xFFFF
    return datagram[:6] + struct.pack("!H", value) + datagram[8:]


def arp(op: int, smac: bytes, sip: bytes, tmac: bytes, tip: bytes) -> bytes:
    return struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, smac, sip, tmac, tip)


def ip_frame(
    src: bytes, proto: int, payload: bytes, *, dst: bytes = US, src_mac: bytes = PEER_MAC, ident: int = 1,
    flags: int = 0, offset: int = 0,
) -> bytes:  # fmt: skip
    return eth(US_MAC, src_mac, 0x0800, ipv4(src, dst, proto, payload, ident=ident, flags=flags, offset=offset))


def make_stack(text: str = "10.0.0.2/24,gw=10.0.0.1", tcp: SegmentLayer | None = None, mac: bytes = US_MAC) -> Stack:
    """A started stack with its announcement already taken (so tests see only what they cause)."""
    stack = Stack(StackConfig(mac, parse_static(text)), tcp, rng=random.Random(7))
    stack.start(0.0)
    stack.take_frames()
    return stack


def teach_peer(stack: Stack, now: float = 0.0, ip: bytes = PEER, mac: bytes = PEER_MAC) -> None:
    """Make the stack learn ip -> mac the RFC 826 way (a request addressed to us) and drop its reply."""
    stack.frame_received(now, eth(US_MAC, mac, 0x0806, arp(1, mac, ip, bytes(6), US)))
    stack.take_frames()


async def two_networks(impairment: Impairment | None = None,
                       tcp: TcpConfig | None = None) -> tuple[Network, Network]:
    """Two whole stacks (adapters.network) on the in-memory link, 10.9.0.1 and 10.9.0.2, with a fast RTO."""
    link_a, link_b = memory_link_pair(US_MAC, PEER_MAC, impairment or Impairment(), random.Random(3))
    tcp = tcp or TcpConfig(rto_min=0.2, rto_initial=0.2)
    a = await start_network(link_a, NetworkConfig(parse_static("10.9.0.1/24"), tcp))
    b = await start_network(link_b, NetworkConfig(parse_static("10.9.0.2/24"), tcp))
    return a, b


async def until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    """Wait (in the running loop) until `condition()` holds; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)
