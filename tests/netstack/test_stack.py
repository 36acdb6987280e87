from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netstack import icmp as icmp_codec
from netstack.arp import parse_arp
from netstack.config import UseDhcp
from netstack.ethernet import parse_frame
from netstack.ipv4 import FLAG_DF, FLAG_MF, parse_ipv4
from netstack.limits import DEFAULT_STACK_LIMITS
from netstack.reasons import Drop
from netstack.stack import SegmentLayer, Stack, StackConfig
from netstack.tcp.config import TcpConfig
from netstack.tcp.layer import TcpLayer
from netstack.tcp.segment import SYN, build_options, build_segment
from tests.netstack.builders import (
    BROADCAST_MAC,
    FAR,
    OTHER,
    OTHER_MAC,
    PEER,
    PEER_MAC,
    US,
    US_MAC,
    arp,
    eth,
    icmp,
    ip_frame,
    ipv4,
    make_stack,
    teach_peer,
    udp,
)


class FakeTcp:
    """Records what the stack hands to TCP and lets a test queue outgoing segments."""

    def __init__(self) -> None:
        self.segments: list[tuple[float, bytes, bytes, bytes]] = []
        self.errors: list[tuple[int, int, bytes, int | None]] = []
        self.outgoing: list[tuple[bytes, bytes, bytes]] = []
        self.deadline: float | None = None
        self.expired: list[float] = []
        self.fragmentable: frozenset[bytes] = frozenset()
        self.unresolved: list[bytes] = []
        self.mtus6: list[int] = []

    def segment_received(self, now: float, src: bytes, dst: bytes, segment: memoryview) -> None:
        self.segments.append((now, src, dst, bytes(segment)))

    def icmp_error_received(
        self, now: float, icmp_type: int, icmp_code: int, quoted: bytes, next_hop_mtu: int | None
    ) -> None:
        self.errors.append((icmp_type, icmp_code, quoted, next_hop_mtu))

    def take_outgoing(self) -> list[tuple[bytes, bytes, bytes]]:
        out, self.outgoing = self.outgoing, []
        return out

    def unreachable(self, now: float, address: bytes) -> None:
        self.unresolved.append(address)

    def link_mtu6_changed(self, now: float, mtu: int) -> None:
        self.mtus6.append(mtu)

    def next_deadline(self) -> float | None:
        return self.deadline

    def timers_expired(self, now: float) -> None:
        self.expired.append(now)
        if self.deadline is not None and self.deadline <= now:
            self.deadline = None  # like a real layer: a timer that ran is no longer due


def test_fake_tcp_satisfies_the_protocol() -> None:
    layer: SegmentLayer = FakeTcp()
    assert layer.next_deadline() is None


def ip_out(frame: bytes) -> tuple[bytes, object, bytes]:
    parsed = parse_frame(frame)
    assert parsed.ethertype == 0x0800
    header, payload = parse_ipv4(parsed.payload)
    return parsed.dst, header, bytes(payload)


def test_start_announces_the_address() -> None:
    from netstack.config import parse_static

    stack = Stack(StackConfig(US_MAC, parse_static("10.0.0.2/24")), None)
    stack.start(0.0)
    (frame,) = stack.take_frames()
    parsed = parse_frame(frame)
    assert parsed.dst == BROADCAST_MAC
    announcement = parse_arp(parsed.payload)
    assert announcement.sender_ip == announcement.target_ip == US


def test_answers_arp_request_with_link_padding() -> None:
    stack = make_stack()
    stack.frame_received(0.0, eth(BROADCAST_MAC, PEER_MAC, 0x0806, arp(1, PEER_MAC, PEER, bytes(6), US) + bytes(18)))
    (frame,) = stack.take_frames()
    parsed = parse_frame(frame)
    assert parsed.dst == PEER_MAC
    assert parse_arp(parsed.payload).op == 2


def test_echo_reply() -> None:
    stack = make_stack()
    stack.frame_received(0.0, ip_frame(PEER, 1, icmp(8, 0, b"\x00\x07\x00\x01", b"hello")))
    frames = stack.take_frames()
    # the peer is unknown: the reply waits for ARP, which was requested
    assert len(frames) == 1
    assert parse_arp(parse_frame(frames[0]).payload).target_ip == PEER
    stack.frame_received(0.1, eth(US_MAC, PEER_MAC, 0x0806, arp(2, PEER_MAC, PEER, US_MAC, US)))
    (reply,) = stack.take_frames()
    dst, header, payload = ip_out(reply)
    assert dst == PEER_MAC
    assert (header.src, header.dst, header.protocol) == (US, PEER, 1)  # type: ignore[attr-defined]
    message = icmp_codec.parse_icmp(payload)
    assert (message.type, message.rest, bytes(message.body)) == (0, b"\x00\x07\x00\x01", b"hello")


def test_echo_is_rate_limited() -> None:
    stack = make_stack()
    teach_peer(stack)
    for _ in range(int(DEFAULT_STACK_LIMITS.icmp.echo_burst) + 10):
        stack.frame_received(0.0, ip_frame(PEER, 1, icmp(8, 0, b"\x00\x07\x00\x01", b"x")))
    assert len(stack.take_frames()) == DEFAULT_STACK_LIMITS.icmp.echo_burst
    assert stack.counters[Drop.ICMP_ECHO_RATE_LIMITED] == 10
    stack.frame_received(1.0, ip_frame(PEER, 1, icmp(8, 0, b"\x00\x07\x00\x01", b"x")))
    assert len(stack.take_frames()) == 1  # tokens come back with time


def test_broadcast_echo_is_ignored() -> None:
    stack = make_stack()
    teach_peer(stack)
    frame = eth(BROADCAST_MAC, PEER_MAC, 0x0800, ipv4(PEER, bytes([10, 0, 0, 255]), 1, icmp(8, 0, bytes(4), b"")))
    stack.frame_received(0.0, frame)
    assert stack.take_frames() == []
    assert stack.counters[Drop.ICMP_ECHO_BROADCAST] == 1


def test_large_fragmented_echo_is_reassembled_and_answered_in_fragments() -> None:
    stack = make_stack()
    teach_peer(stack)
    message = icmp(8, 0, b"\x00\x01\x00\x01", bytes(range(256)) * 16)  # 4104 bytes
    for start in range(0, len(message), 1480):
        chunk = message[start : start + 1480]
        more = FLAG_MF if start + 1480 < len(message) else 0
        stack.frame_received(0.0, ip_frame(PEER, 1, chunk, ident=99, flags=more, offset=start))
    frames = stack.take_frames()
    assert len(frames) == 3
    pieces = sorted((h.fragment_offset, p) for _, h, p in map(ip_out, frames))  # type: ignore[attr-defined]
    reply = icmp_codec.parse_icmp(b"".join(p for _, p in pieces))
    assert reply.type == 0
    assert bytes(reply.body) == bytes(range(256)) * 16


def test_udp_to_closed_port_gets_port_unreachable_quoting_the_datagram() -> None:
    stack = make_stack()
    teach_peer(stack)
    datagram = udp(PEER, US, 4000, 9999, b"probe")
    stack.frame_received(0.0, ip_frame(PEER, 17, datagram))
    (frame,) = stack.take_frames()
    _, _header, payload = ip_out(frame)
    message = icmp_codec.parse_icmp(payload)
    assert (message.type, message.code) == (3, 3)
    assert bytes(message.body) == ipv4(PEER, US, 17, datagram)
    assert stack.counters[Drop.UDP_PORT_CLOSED] == 1


def test_port_unreachable_is_rate_limited_and_not_sent_for_broadcasts() -> None:
    stack = make_stack()
    teach_peer(stack)
    for _ in range(int(DEFAULT_STACK_LIMITS.icmp.error_burst) + 5):
        stack.frame_received(0.0, ip_frame(PEER, 17, udp(PEER, US, 4000, 9999, b"")))
    assert len(stack.take_frames()) == DEFAULT_STACK_LIMITS.icmp.error_burst
    assert stack.counters[Drop.ICMP_ERROR_RATE_LIMITED] == 5
    bcast = bytes([10, 0, 0, 255])
    stack.frame_received(9.0, eth(BROADCAST_MAC, PEER_MAC, 0x0800, ipv4(PEER, bcast, 17, udp(PEER, bcast, 1, 9, b""))))
    assert stack.take_frames() == []


def test_udp_handler_receives_payload() -> None:
    stack = make_stack()
    got: list[tuple[bytes, int, bytes, bytes]] = []
    stack.udp_bind(7000, lambda now, src, sport, dst, data: got.append((src, sport, dst, bytes(data))))
    stack.frame_received(0.0, ip_frame(PEER, 17, udp(PEER, US, 4000, 7000, b"hi")))
    assert got == [(PEER, 4000, US, b"hi")]
    with pytest.raises(ValueError, match="taken"):
        stack.udp_bind(7000, lambda *a: None)


def test_unknown_protocol_gets_protocol_unreachable() -> None:
    stack = make_stack()
    teach_peer(stack)
    stack.frame_received(0.0, ip_frame(PEER, 99, b"xx"))
    (frame,) = stack.take_frames()
    message = icmp_codec.parse_icmp(ip_out(frame)[2])
    assert (message.type, message.code) == (3, 2)


@pytest.mark.parametrize(
    ("src", "dst", "reason"),
    [
        (US, US, Drop.IPV4_LAND),
        (US, bytes([10, 0, 0, 255]), Drop.IPV4_MARTIAN_SOURCE),  # our own address as a source from outside
        (bytes([127, 0, 0, 1]), US, Drop.IPV4_MARTIAN_SOURCE),
        (bytes([224, 0, 0, 1]), US, Drop.IPV4_MARTIAN_SOURCE),
        (bytes([0, 0, 0, 0]), US, Drop.IPV4_MARTIAN_SOURCE),
        (bytes([10, 0, 0, 255]), US, Drop.IPV4_MARTIAN_SOURCE),  # our subnet's broadcast address
        (PEER, OTHER, Drop.IPV4_NOT_FOR_US),
    ],
)
def test_addressing_refusals(src: bytes, dst: bytes, reason: Drop) -> None:
    tcp = FakeTcp()
    stack = make_stack(tcp=tcp)
    stack.frame_received(0.0, ip_frame(src, 6, bytes(20), dst=dst))
    assert stack.counters[reason] == 1
    assert tcp.segments == []
    assert stack.take_frames() == []


def test_frames_for_other_macs_and_types_dropped() -> None:
    stack = make_stack()
    stack.frame_received(0.0, eth(PEER_MAC, PEER_MAC, 0x0800, ipv4(PEER, US, 1, icmp(8, 0, bytes(4), b""))))
    stack.frame_received(0.0, eth(US_MAC, BROADCAST_MAC, 0x0800, ipv4(PEER, US, 1, icmp(8, 0, bytes(4), b""))))
    stack.frame_received(0.0, eth(US_MAC, PEER_MAC, 0x88B5, bytes(40)))  # IEEE's local experimental type
    assert stack.counters[Drop.ETH_NOT_FOR_US] == 1
    assert stack.counters[Drop.ETH_BAD_SOURCE] == 1
    assert stack.counters[Drop.ETH_UNKNOWN_TYPE] == 1
    assert stack.take_frames() == []


def test_ipv6_frames_reaching_a_stack_without_ipv6_are_counted_as_such() -> None:
    stack = make_stack()
    stack.frame_received(0.0, eth(US_MAC, PEER_MAC, 0x86DD, bytes(40)))
    assert stack.counters[Drop.IPV6_OFF] == 1
    assert stack.counters[Drop.ETH_UNKNOWN_TYPE] == 0
    assert stack.take_frames() == []


def test_tcp_segments_reach_the_segment_layer() -> None:
    tcp = FakeTcp()
    stack = make_stack(tcp=tcp)
    segment = bytes(range(40))
    stack.frame_received(1.5, ip_frame(PEER, 6, segment) + bytes(6))  # with link padding
    assert tcp.segments == [(1.5, PEER, US, segment)]


def test_tcp_in_a_link_broadcast_frame_is_refused() -> None:
    tcp = FakeTcp()
    stack = make_stack(tcp=tcp)
    stack.frame_received(0.0, eth(BROADCAST_MAC, PEER_MAC, 0x0800, ipv4(PEER, US, 6, bytes(20))))
    assert tcp.segments == []
    assert stack.counters[Drop.IPV4_UNICAST_LINK_BROADCAST] == 1  # RFC 1122 §3.3.6, before TCP's own check
    stack.frame_received(0.0, eth(BROADCAST_MAC, PEER_MAC, 0x0800, ipv4(PEER, bytes([10, 0, 0, 255]), 6, bytes(20))))
    assert tcp.segments == []
    assert stack.counters[Drop.TCP_NOT_UNICAST] == 1


def test_tcp_without_a_layer_is_dropped_silently() -> None:
    stack = make_stack()
    stack.frame_received(0.0, ip_frame(PEER, 6, bytes(20)))
    assert stack.take_frames() == []
    assert stack.counters[Drop.TCP_NO_LAYER] == 1


def test_tcp_output_routed_on_link_and_via_gateway() -> None:
    tcp = FakeTcp()
    stack = make_stack(tcp=tcp)
    teach_peer(stack)  # PEER is also the gateway (10.0.0.1)
    tcp.outgoing = [(US, PEER, b"seg-1"), (US, FAR, b"seg-2")]
    frames = stack.take_frames(1.0)
    assert len(frames) == 2
    for frame, dst, seg in zip(frames, (PEER, FAR), (b"seg-1", b"seg-2"), strict=True):
        mac, header, payload = ip_out(frame)
        assert mac == PEER_MAC  # on-link peer, and the gateway's MAC for the far host
        assert (header.dst, header.dont_fragment, payload) == (dst, True, seg)  # type: ignore[attr-defined]


def test_tcp_output_waits_for_arp_in_a_bounded_queue() -> None:
    tcp = FakeTcp()
    stack = make_stack("10.0.0.2/24", tcp=tcp)
    tcp.outgoing = [(US, OTHER, b"a"), (US, OTHER, b"b"), (US, FAR, b"c")]
    frames = stack.take_frames(0.0)
    assert len(frames) == 1  # one ARP request for OTHER; FAR has no route without a gateway
    assert parse_arp(parse_frame(frames[0]).payload).target_ip == OTHER
    assert stack.counters[Drop.IPV4_NO_ROUTE] == 1
    stack.frame_received(0.2, eth(US_MAC, bytes.fromhex("020000000003"), 0x0806,
                                  arp(2, bytes.fromhex("020000000003"), OTHER, US_MAC, US)))  # fmt: skip
    released = [ip_out(f)[2] for f in stack.take_frames()]
    assert released == [b"a", b"b"]


def test_tcp_output_with_a_foreign_source_refused() -> None:
    tcp = FakeTcp()
    stack = make_stack(tcp=tcp)
    teach_peer(stack)
    tcp.outgoing = [(OTHER, PEER, b"spoof")]
    assert stack.take_frames() == []
    assert stack.counters[Drop.IPV4_TX_BAD_SOURCE] == 1


def test_oversized_df_segment_refused() -> None:
    tcp = FakeTcp()
    stack = make_stack(tcp=tcp)
    teach_peer(stack)
    tcp.outgoing = [(US, PEER, bytes(1481))]
    assert stack.take_frames() == []
    assert stack.counters[Drop.IPV4_TX_TOO_BIG] == 1


def quoted_tcp(src: bytes = US, dst: bytes = PEER) -> bytes:
    return ipv4(src, dst, 6, struct.pack("!HHI", 40000, 443, 12345) + bytes(12), flags=FLAG_DF)


def test_icmp_errors_reach_tcp_with_the_next_hop_mtu() -> None:
    tcp = FakeTcp()
    stack = make_stack(tcp=tcp)
    quote = quoted_tcp()
    stack.frame_received(0.0, ip_frame(PEER, 1, icmp(3, 4, b"\x00\x00\x05\x00", quote)))
    stack.frame_received(0.0, ip_frame(PEER, 1, icmp(3, 1, bytes(4), quote[:28])))
    assert tcp.errors == [(3, 4, quote, 1280), (3, 1, quote[:28], None)]


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (icmp(3, 3, bytes(4), quoted_tcp()[:27]), Drop.ICMP_BAD_QUOTE),
        (icmp(3, 3, bytes(4), b"\x65" + quoted_tcp()[1:]), Drop.ICMP_BAD_QUOTE),
        (icmp(3, 3, bytes(4), quoted_tcp(src=OTHER)), Drop.ICMP_ERROR_NOT_OURS),
        (icmp(4, 0, bytes(4), quoted_tcp()), Drop.ICMP_ERROR_UNHANDLED),  # source quench (RFC 6633)
        (icmp(0, 0, bytes(4), b""), Drop.ICMP_UNHANDLED_TYPE),
        (icmp(8, 0, bytes(4), b"")[:-1] + b"\x01", Drop.ICMP_BAD_CHECKSUM),
    ],
)
def test_icmp_refusals(message: bytes, reason: Drop) -> None:
    tcp = FakeTcp()
    stack = make_stack(tcp=tcp)
    stack.frame_received(0.0, ip_frame(PEER, 1, message))
    assert tcp.errors == []
    assert stack.counters[reason] == 1


def test_deadlines_combine_and_timers_reach_tcp() -> None:
    tcp = FakeTcp()
    stack = make_stack(tcp=tcp)
    assert stack.next_deadline() is None
    tcp.deadline = 5.0
    stack.frame_received(0.0, ip_frame(PEER, 1, bytes(8), flags=FLAG_MF))  # starts a reassembly (30 s)
    assert stack.next_deadline() == 5.0
    stack.timers_expired(5.0)
    assert tcp.expired == [5.0]
    tcp.deadline = None
    assert stack.next_deadline() == 30.0
    stack.timers_expired(30.0)
    assert stack.stats()["reassembly-datagrams"] == 0
    assert stack.counters[Drop.FRAG_TIMEOUT] == 1


def test_dhcp_needs_a_random_source() -> None:
    with pytest.raises(ValueError, match="random"):
        Stack(StackConfig(US_MAC, UseDhcp()), None)


def test_stats_are_a_flat_dict_of_ints() -> None:
    stack = make_stack()
    stack.frame_received(0.0, b"short")
    stats = stack.stats()
    assert stats["eth-truncated"] == 1
    assert stats["rx-frames"] == 1
    assert all(isinstance(v, int) for v in stats.values())


# --- hostile input never raises ---------------------------------------------------------------------------------

valid_frames = [
    ip_frame(PEER, 1, icmp(8, 0, bytes(4), b"abc")),
    ip_frame(PEER, 17, udp(PEER, US, 1, 9, b"abc")),
    ip_frame(PEER, 6, bytes(20)),
    ip_frame(PEER, 1, icmp(3, 4, b"\x00\x00\x05\x00", quoted_tcp())),
    ip_frame(PEER, 1, bytes(16), flags=FLAG_MF),
    eth(BROADCAST_MAC, PEER_MAC, 0x0806, arp(1, PEER_MAC, PEER, bytes(6), US)),
]


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=120))
def test_random_bytes_never_raise(data: bytes) -> None:
    stack = make_stack(tcp=FakeTcp())
    stack.frame_received(0.0, data)
    stack.frame_received(0.0, US_MAC + PEER_MAC + b"\x08\x00" + data)
    stack.frame_received(0.0, US_MAC + PEER_MAC + b"\x08\x06" + data)
    stack.take_frames()
    stack.timers_expired(100.0)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(valid_frames), st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=6),
       st.integers(0, 200))  # fmt: skip
def test_mutated_valid_frames_never_raise(frame: bytes, flips: list[tuple[int, int]], cut: int) -> None:
    stack = make_stack(tcp=FakeTcp())
    data = bytearray(frame)
    for position, value in flips:
        if position < len(data):
            data[position] = value
    stack.frame_received(0.0, bytes(data[: len(data) - cut % (len(data) + 1)]))
    stack.take_frames()


def test_tcp_from_a_source_with_no_route_back_never_reaches_tcp() -> None:
    """Issue 15: without a gateway, a SYN from a spoofed off-link source made TCP compute and count a SYN
    cookie (or hold a half-open entry) for an answer the stack then dropped as ipv4-no-route."""
    tcp = TcpLayer(b"k" * 32, TcpConfig(max_half_open=0))  # every SYN is answered with a cookie
    tcp.listen(80)
    stack = make_stack("10.0.0.2/24", tcp=tcp)
    syn = build_segment(FAR, US, 40000, 80, 1000, 0, SYN, 65535, build_options(mss=1460))
    stack.frame_received(0.0, ip_frame(FAR, 6, syn))
    assert stack.take_frames(0.0) == []
    assert stack.counters[Drop.TCP_NO_ROUTE_BACK] == 1
    assert stack.counters[Drop.IPV4_NO_ROUTE] == 0
    assert tcp.stats["syn-cookie-sent"] == 0
    # An on-link source is still answered.
    teach_peer(stack)
    syn = build_segment(PEER, US, 40000, 80, 1000, 0, SYN, 65535, build_options(mss=1460))
    stack.frame_received(0.0, ip_frame(PEER, 6, syn))
    assert len(stack.take_frames(0.0)) == 1
    assert tcp.stats["syn-cookie-sent"] == 1


def test_tcp_segments_to_a_path_below_the_floor_go_without_df() -> None:
    """Issue 15: segments to a destination whose path MTU TCP found below its floor are sent without DF, so
    a router on a really small path fragments them instead of dropping them all."""
    tcp = FakeTcp()
    stack = make_stack(tcp=tcp)
    teach_peer(stack)
    tcp.fragmentable = frozenset({FAR})
    tcp.outgoing = [(US, PEER, b"seg-1"), (US, FAR, b"seg-2")]
    frames = stack.take_frames(1.0)
    assert [parse_ipv4(parse_frame(frame).payload)[0].dont_fragment for frame in frames] == [True, False]


def test_half_open_entries_for_an_unresolvable_source_go_when_arp_gives_up() -> None:
    """Issue 15: a SYN flood from on-link addresses nobody answers ARP for left half-open entries (and the
    listener in cookie mode) for connect_timeout, 75 s. When resolution fails the stack tells TCP, which
    drops them."""
    tcp = TcpLayer(b"k" * 32)
    tcp.listen(80)
    stack = make_stack("10.0.0.2/24", tcp=tcp)
    syn = build_segment(OTHER, US, 40000, 80, 1000, 0, SYN, 65535, build_options(mss=1460))
    stack.frame_received(0.0, ip_frame(OTHER, 6, syn, src_mac=OTHER_MAC))
    stack.take_frames(0.0)
    assert len(tcp.half_open) == 1
    now = 0.0
    while now < 10.0:
        deadline = stack.next_deadline()
        assert deadline is not None
        now = max(now, deadline)
        stack.timers_expired(now)
        stack.take_frames(now)
        if not tcp.half_open:
            break
    assert not tcp.half_open
    assert now < 10.0
    assert tcp.stats["half-open-unreachable"] == 1
