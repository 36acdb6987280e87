"""IPv6 frames into a whole netstack `Stack` (extension headers, fragments, ICMPv6, neighbour discovery, router
advertisements, UDP and TCP over IPv6), dual-stack as the appliance runs it, with a static IPv6 address that has
passed duplicate address detection and the TCP layer attached and listening.

Chunks: RAW, a frame as it is; PACKET, an IPv6 packet the harness builds from the fuzzer's fields (source and
destination from a menu of neighbours, routers, groups, :: and ourselves; hop limit; extension-header bytes as
given; the upper layer checksummed); FRAGMENTS, the same packet cut into fragments, in order or reversed;
TIME, the clock moved on (timers run: neighbour reachability, DAD, router lifetimes, reassembly timeouts).

What must hold: nothing escapes `frame_received` (it counts); no frame or timer is counted as an internal error,
in the stack or in TCP; every frame we send is well formed (fuzz/net_checks.py), neighbour discovery goes with a
hop limit of 255 and an ICMPv6 error fits in 1280 bytes; the neighbour cache, the router, prefix and address
lists and reassembly stay within their limits however many advertisements and solicitations arrive.
"""

from __future__ import annotations

import random

from fuzz import chunks, net_checks
from fuzz.clock import run_due_timers
from fuzz.errors import require
from fuzz.frames import GATEWAY, PREFIX, THEM_MAC, US, US_MAC
from fuzz.frames6 import (
    ALL_NODES,
    FAR6,
    PREFIX6,
    ROUTER_LL,
    THEM6,
    THEM_LL,
    UPPERS,
    US6,
    frame6,
    link_destination,
    packets,
    upper_message,
)
from netstack import ipv6, ndp
from netstack.addresses6 import UNSPECIFIED, solicited_node
from netstack.config import StaticIp, StaticIp6
from netstack.stack import Stack, StackConfig
from netstack.tcp.layer import TcpLayer

RAW, PACKET, FRAGMENTS, TIME = range(4)
SETTLE = 3.0  # seconds: duplicate address detection of the link-local and the static address is over by then
CONTROL = 8


class _Harness:
    def __init__(self) -> None:
        self.tcp = TcpLayer(b"fuzz-isn-secret-" * 2)
        self.tcp.listen(80)
        config = StackConfig(US_MAC, StaticIp(US, PREFIX, GATEWAY), ipv6=StaticIp6(US6, PREFIX6),
                             ipv6_secret=bytes(range(32)))
        self.stack = Stack(config, self.tcp, rng=random.Random(18))
        self.now = 0.0
        self.stack.start(self.now)
        self.advance_to(SETTLE)
        path = self.stack.ipv6
        require(path is not None and path.addresses.assigned(US6), "the static address did not pass DAD")
        self.link_local = path.addresses.addresses()[0][0] if path is not None else UNSPECIFIED
        self.sources = (THEM_LL, THEM6, UNSPECIFIED, ROUTER_LL, FAR6, ALL_NODES, US6)
        self.destinations = (US6, self.link_local, ALL_NODES, solicited_node(US6), solicited_node(self.link_local),
                             THEM6)

    def advance_to(self, until: float) -> None:
        self.now = until
        run_due_timers(self.stack, self.now)
        self.stack.timers_expired(self.now)
        self.check()

    def frame(self, frame: bytes) -> None:
        net_checks.incoming(frame)
        self.stack.frame_received(self.now, frame)

    def packet(self, body: bytes, *, fragmented: bool) -> None:
        """body: source choice, destination choice, hop limit, upper choice, first next header (used when
        extension bytes are given), extension length, fragment size in 8-byte units, flags (bit 0 reversed),
        then the extension bytes and the upper layer's bytes (fuzz/frames6.py `upper_message`)."""
        control = body[:CONTROL].ljust(CONTROL, b"\x00")
        src = self.sources[control[0] % len(self.sources)]
        dst = self.destinations[control[1] % len(self.destinations)]
        upper = UPPERS[control[3] % len(UPPERS)]
        extension = body[CONTROL : CONTROL + control[5]]
        rest = body[CONTROL + len(extension) :]
        message = upper_message(upper, src, dst, rest)[:65000]
        first = control[4] if extension else upper
        pieces = packets(src, dst, first, extension + message, hop_limit=control[2],
                         fragment=(control[6] % 32 or 1) if fragmented else 0, ident=control[6] << 8 | control[7],
                         reverse=bool(control[7] & 1))
        for packet in pieces:
            self.frame(frame6(link_destination(dst, US_MAC), THEM_MAC, packet))

    def check(self) -> None:
        net_checks.stack_sound(self.stack, self.tcp, self.now)
        limits = self.stack._limits
        path = self.stack.ipv6
        require(path is not None, "IPv6 went away")
        if path is None:
            return
        require(len(path.neighbours) <= limits.nd.cache_entries, "the neighbour cache outgrew its limit")
        require(len(path.addresses.routers()) <= limits.slaac.routers, "the router list outgrew its limit")
        require(len(path.addresses.prefixes()) <= limits.slaac.prefixes, "the prefix list outgrew its limit")
        require(len(path.addresses.addresses()) <= limits.slaac.addresses + 2, "too many addresses")


def fuzz_one(data: bytes) -> None:
    harness = _Harness()
    for kind, body in chunks.split(data, 4):
        if kind == RAW:
            harness.frame(body)
        elif kind == PACKET:
            harness.packet(body, fragmented=False)
        elif kind == FRAGMENTS:
            harness.packet(body, fragmented=True)
        else:
            harness.advance_to(harness.now + int.from_bytes(body[:2].ljust(2, b"\x00"), "big") / 100)
        harness.check()


def _control(src: int, dst: int, hop_limit: int, upper: int, *, first: int = 0, extension: bytes = b"",
             fragment: int = 0, flags: int = 0) -> bytes:
    return bytes((src, dst, hop_limit, upper, first, len(extension), fragment, flags)) + extension


def seeds() -> dict[str, bytes]:
    icmp, tcp, udp = 0, 1, 2
    them_ll, them6, unspecified, router = 0, 1, 2, 3
    us6, link_local, all_nodes, solicited = 0, 1, 2, 3
    ns_body = bytes(4) + US6 + bytes((ndp.OPT_SOURCE_LINK_ADDRESS, 1)) + THEM_MAC
    neighbour = (PACKET, _control(them6, solicited, 255, icmp) + bytes((ndp.NEIGHBOR_SOLICIT, 0)) + ns_body)
    link_local_neighbour = (PACKET, _control(them_ll, solicited, 255, icmp) + bytes((ndp.NEIGHBOR_SOLICIT, 0))
                            + ns_body)
    dad = (PACKET, _control(unspecified, solicited, 255, icmp) + bytes((ndp.NEIGHBOR_SOLICIT, 0)) + bytes(4) + US6)
    prefix = bytes((ndp.OPT_PREFIX_INFORMATION, 4, 64, 0xC0)) + (3600).to_bytes(4, "big") * 2 + bytes(4) + \
        bytes.fromhex("20010db8000000070000000000000000")
    ra_body = bytes((64, 0)) + (1800).to_bytes(2, "big") + bytes(8) + prefix + \
        bytes((ndp.OPT_SOURCE_LINK_ADDRESS, 1)) + bytes.fromhex("0200000000fe")
    ra = (PACKET, _control(router, all_nodes, 255, icmp) + bytes((ndp.ROUTER_ADVERT, 0)) + ra_body)
    echo = (PACKET, _control(them6, us6, 64, icmp) + bytes((128, 0, 0, 1, 0, 1)) + b"ping" * 8)
    syn = (PACKET, _control(them6, us6, 64, tcp) + bytes.fromhex("9c400050000000010000000002"))
    udp_closed = (PACKET, _control(them6, us6, 64, udp) + bytes.fromhex("30390035") + b"query")
    fragments = (FRAGMENTS, _control(them6, us6, 64, icmp, fragment=2) + bytes((128, 0, 0, 1, 0, 2))
                 + bytes(range(64)))
    big_echo = (FRAGMENTS, _control(them6, us6, 64, icmp, fragment=31) + bytes((128, 0, 0, 1, 0, 3)) + bytes(3000))
    options = bytes((ipv6.PROTO_ICMPV6, 0, 0x81, 4, 0, 0, 0, 0))  # unknown option, action 10
    bad_option = (PACKET, _control(them6, us6, 64, icmp, first=ipv6.PROTO_DEST_OPTS, extension=options)
                  + bytes((128, 0, 0, 1, 0, 4)))
    routing0 = bytes((ipv6.PROTO_ICMPV6, 2, 0, 1, 0, 0, 0, 0)) + FAR6
    rh0 = (PACKET, _control(them6, us6, 64, icmp, first=ipv6.PROTO_ROUTING, extension=routing0)
           + bytes((128, 0, 0, 1, 0, 5)))
    unknown = (PACKET, _control(them6, link_local, 64, 4) + b"payload")
    return {
        "neighbour-solicit": chunks.join([neighbour]),
        "dad-probe": chunks.join([dad]),
        "router-advert": chunks.join([ra, (TIME, b"\x01\x2c")]),
        "echo": chunks.join([neighbour, echo, (TIME, b"\x00\x64")]),
        "syn": chunks.join([neighbour, syn]),
        "udp-closed-port": chunks.join([neighbour, udp_closed]),
        "fragments-reversed": chunks.join([neighbour, fragments, (TIME, b"\x0b\xb8")]),
        "big-echo": chunks.join([neighbour, big_echo]),
        "unknown-option": chunks.join([neighbour, bad_option]),
        "routing-header-0": chunks.join([neighbour, rh0]),
        "unknown-next-header": chunks.join([link_local_neighbour, unknown]),
        "unresolved": chunks.join([echo, (TIME, b"\x01\x00"), (TIME, b"\x02\x00")]),
    }
