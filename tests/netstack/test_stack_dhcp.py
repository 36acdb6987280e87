"""The stack configured by DHCP over frames: a fake server on the wire, virtual time."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netstack.arp import parse_arp
from netstack.config import UseDhcp
from netstack.dhcp.client import DhcpState
from netstack.ethernet import parse_frame
from netstack.ipv4 import parse_ipv4
from netstack.stack import Stack, StackConfig
from netstack.udp import parse_udp
from tests.netstack.builders import BROADCAST_MAC, PEER_MAC, US_MAC, arp, eth, icmp, ip_frame, ipv4, udp
from tests.netstack.dhcp.test_client import OFFERED, SERVER, FakeServer, state


def address_of(stack: Stack) -> bytes | None:
    """Read through a call so that mypy does not narrow the property across calls that change it."""
    return stack.address


def serve(stack: Stack, server: FakeServer, now: float, *, unicast: bool) -> list[bytes]:
    """Answer the stack's DHCP frames like a server that sends to yiaddr (unicast) or broadcasts."""
    from netstack.dhcp.client import DhcpSend

    others = []
    for frame in stack.take_frames(now):
        parsed = parse_frame(frame)
        if parsed.ethertype != 0x0800:
            others.append(frame)
            continue
        header, payload = parse_ipv4(parsed.payload)
        datagram = parse_udp(payload, header.src, header.dst)
        assert (datagram.src_port, datagram.dst_port) == (68, 67)
        answer = server.reply(DhcpSend(header.dst, bytes(datagram.payload)))
        assert answer is not None
        dst_ip, dst_mac = (OFFERED, US_MAC) if unicast else (b"\xff" * 4, BROADCAST_MAC)
        reply = ipv4(SERVER, dst_ip, 17, udp(SERVER, dst_ip, 67, 68, answer))
        stack.frame_received(now, eth(dst_mac, PEER_MAC, 0x0800, reply))
    return others


def test_stack_acquires_its_address_by_dhcp() -> None:
    stack = Stack(StackConfig(US_MAC, UseDhcp()), None, rng=random.Random(3))
    stack.start(0.0)
    assert address_of(stack) is None
    server = FakeServer()
    (first,) = stack.take_frames(0.0)
    parsed = parse_frame(first)
    header, _ = parse_ipv4(parsed.payload)
    assert (parsed.dst, header.src, header.dst) == (BROADCAST_MAC, bytes(4), b"\xff" * 4)
    stack.frame_received(0.0, eth(BROADCAST_MAC, PEER_MAC, 0x0800, ipv4(SERVER, b"\xff" * 4, 17,
                                  udp(SERVER, b"\xff" * 4, 67, 68, _offer(server, first)))))  # fmt: skip
    others = serve(stack, server, 0.0, unicast=True)  # the REQUEST; the ACK comes unicast to the offered address
    assert address_of(stack) == OFFERED
    assert stack.dhcp is not None
    assert state(stack.dhcp) is DhcpState.BOUND
    (announcement,) = [parse_arp(parse_frame(f).payload) for f in others + stack.take_frames(0.0)]
    assert announcement.sender_ip == announcement.target_ip == OFFERED
    # now it answers pings on the new address
    stack.frame_received(1.0, eth(US_MAC, PEER_MAC, 0x0806, arp(1, PEER_MAC, SERVER, bytes(6), OFFERED)))
    stack.take_frames(1.0)
    stack.frame_received(1.0, ip_frame(SERVER, 1, icmp(8, 0, bytes(4), b"p"), dst=OFFERED))
    (reply,) = stack.take_frames(1.0)
    assert parse_ipv4(parse_frame(reply).payload)[0].src == OFFERED
    # at T1 the renewal goes unicast from our address to the server; its ARP entry has expired by then,
    # so the renewal waits for ARP resolution first
    stack.timers_expired(1800.0)
    (request,) = stack.take_frames(1800.0)
    assert parse_arp(parse_frame(request).payload).target_ip == SERVER
    stack.frame_received(1800.1, eth(US_MAC, PEER_MAC, 0x0806, arp(2, PEER_MAC, SERVER, US_MAC, OFFERED)))
    (frame,) = stack.take_frames(1800.1)
    header, _ = parse_ipv4(parse_frame(frame).payload)
    assert (parse_frame(frame).dst, header.src, header.dst) == (PEER_MAC, OFFERED, SERVER)


def _offer(server: FakeServer, frame: bytes) -> bytes:
    from netstack.dhcp.client import DhcpSend

    header, payload = parse_ipv4(parse_frame(frame).payload)
    answer = server.reply(DhcpSend(header.dst, bytes(parse_udp(payload, header.src, header.dst).payload)))
    assert answer is not None
    return answer


def test_lease_expiry_removes_the_address() -> None:
    stack = Stack(StackConfig(US_MAC, UseDhcp()), None, rng=random.Random(4))
    stack.start(0.0)
    server = FakeServer()
    serve(stack, server, 0.0, unicast=False)
    serve(stack, server, 0.0, unicast=False)
    assert address_of(stack) == OFFERED
    server.silent = True
    now = 0.0
    while address_of(stack) is not None:
        deadline = stack.next_deadline()
        assert deadline is not None
        now = deadline
        stack.timers_expired(now)
        stack.take_frames(now)
    assert now == 3600.0
    assert stack.dhcp is not None
    assert state(stack.dhcp) is DhcpState.SELECTING


def test_address_changes_moves_when_the_lease_binds_and_when_it_is_lost_and_only_then() -> None:
    stack = Stack(StackConfig(US_MAC, UseDhcp()), None, rng=random.Random(4))
    stack.start(0.0)
    unbound = stack.address_changes
    server = FakeServer()
    serve(stack, server, 0.0, unicast=False)  # the OFFER: nothing bound yet
    assert stack.address_changes == unbound
    serve(stack, server, 0.0, unicast=False)  # the ACK
    assert address_of(stack) == OFFERED
    bound = stack.address_changes
    assert bound != unbound
    stack.frame_received(1.0, ip_frame(SERVER, 1, icmp(8, 0, bytes(4), b"p"), dst=OFFERED))  # traffic: no change
    stack.take_frames(1.0)
    assert stack.address_changes == bound
    server.silent = True
    now = 0.0
    while address_of(stack) is not None:
        assert stack.address_changes == bound  # the renewals that go unanswered change nothing yet
        deadline = stack.next_deadline()
        assert deadline is not None
        now = deadline
        stack.timers_expired(now)
        stack.take_frames(now)
    assert stack.address_changes != bound


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600), st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=8))
def test_hostile_dhcp_replies_never_raise(noise: bytes, flips: list[tuple[int, int]]) -> None:
    stack = Stack(StackConfig(US_MAC, UseDhcp()), None, rng=random.Random(5))
    stack.start(0.0)
    server = FakeServer()
    (discover,) = stack.take_frames(0.0)
    offer = bytearray(_offer(server, discover))
    for position, value in flips:
        if position < len(offer):
            offer[position] = value
    for payload in (noise, bytes(offer)):
        stack.frame_received(0.0, eth(BROADCAST_MAC, PEER_MAC, 0x0800, ipv4(SERVER, b"\xff" * 4, 17,
                                      udp(SERVER, b"\xff" * 4, 67, 68, payload))))  # fmt: skip
    stack.take_frames(0.0)
    stack.timers_expired(10.0)
    assert address_of(stack) in (None, OFFERED)
