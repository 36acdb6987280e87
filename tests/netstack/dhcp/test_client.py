"""The DHCP client against a scripted fake server, with virtual time."""

from __future__ import annotations

import random

import pytest

from netstack.addresses import LIMITED_BROADCAST
from netstack.config import StaticIp
from netstack.dhcp.client import _ON_INPUT, _TRANSITIONS, DhcpClient, DhcpSend, DhcpState, LeaseAcquired, LeaseLost
from netstack.dhcp.message import (
    ACK,
    BOOTREPLY,
    DISCOVER,
    NAK,
    OFFER,
    OPT_LEASE_TIME,
    OPT_MESSAGE_TYPE,
    OPT_REBINDING_TIME,
    OPT_RENEWAL_TIME,
    OPT_REQUESTED_IP,
    OPT_ROUTER,
    OPT_SERVER_ID,
    OPT_SUBNET_MASK,
    REQUEST,
    DhcpMessage,
    parse_dhcp,
    serialize_dhcp,
)
from netstack.dhcp.states import (
    TIMER,
    Bound,
    DhcpInvariantError,
    Init,
    Lease,
    Rebinding,
    Renewing,
    Requesting,
    Selecting,
)
from netstack.limits import DEFAULT_STACK_LIMITS, DhcpLimits
from netstack.reasons import Counters, Drop

DHCP = DEFAULT_STACK_LIMITS.dhcp

MAC = bytes.fromhex("020000000001")
SERVER = bytes([10, 0, 0, 1])
OTHER_SERVER = bytes([10, 0, 0, 9])
OFFERED = bytes([10, 0, 0, 50])


class FakeServer:
    """Answers DISCOVER with OFFER and REQUEST with ACK (or NAK), recording what it saw."""

    def __init__(self, server_id: bytes = SERVER, lease: int = 3600, extra: dict[int, bytes] | None = None) -> None:
        self.server_id = server_id
        self.lease = lease
        self.extra = extra or {}
        self.seen: list[tuple[DhcpSend, DhcpMessage]] = []
        self.nak = False
        self.silent = False

    def reply(self, send: DhcpSend) -> bytes | None:
        request = parse_dhcp(send.payload)
        self.seen.append((send, request))
        if self.silent:
            return None
        kind = {DISCOVER: OFFER, REQUEST: NAK if self.nak else ACK}[request.message_type or 0]
        options = {
            OPT_MESSAGE_TYPE: bytes([kind]), OPT_SERVER_ID: self.server_id,
            OPT_LEASE_TIME: self.lease.to_bytes(4, "big"), OPT_SUBNET_MASK: bytes([255, 255, 255, 0]),
            OPT_ROUTER: SERVER, **self.extra,
        }  # fmt: skip
        return serialize_dhcp(DhcpMessage(BOOTREPLY, request.xid, request.chaddr, options, yiaddr=OFFERED))


def state(client: DhcpClient) -> DhcpState:
    """Read through a call so that mypy does not narrow the property across state-changing calls."""
    return client.state


def make(limits: DhcpLimits = DHCP) -> tuple[DhcpClient, Counters]:
    counters = Counters()
    return DhcpClient(MAC, random.Random(5), counters, limits), counters


def exchange(client: DhcpClient, server: FakeServer, now: float) -> None:
    """Deliver everything the client sent to the server and the server's answers back, until quiet."""
    while sends := client.take_outgoing():
        for send in sends:
            answer = server.reply(send)
            if answer is not None:
                client.message_received(now, answer)


def run_until(client: DhcpClient, server: FakeServer, end: float) -> float:
    now = 0.0
    while (deadline := client.next_deadline()) is not None and deadline <= end:
        now = deadline
        client.timers_expired(now)
        exchange(client, server, now)
    return now


def bound(client: DhcpClient, server: FakeServer) -> None:
    client.start(0.0)
    exchange(client, server, 0.0)
    assert state(client) is DhcpState.BOUND


def test_discover_offer_request_ack() -> None:
    client, _ = make()
    server = FakeServer()
    bound(client, server)
    (discover_send, discover), (request_send, request) = server.seen
    assert discover.message_type == DISCOVER
    assert discover_send.dst == LIMITED_BROADCAST
    assert request.message_type == REQUEST
    assert request_send.dst == LIMITED_BROADCAST
    assert request.options[OPT_REQUESTED_IP] == OFFERED
    assert request.options[OPT_SERVER_ID] == SERVER
    assert request.xid == discover.xid
    assert discover.flags & 0x8000  # no address yet: replies must be broadcast
    (event,) = client.take_events()
    assert isinstance(event, LeaseAcquired)
    lease = event.lease
    assert (lease.config.address, lease.config.prefix_len, lease.config.gateway) == (OFFERED, 24, SERVER)
    assert (lease.renew_at, lease.rebind_at, lease.expires_at) == (1800.0, 3150.0, 3600.0)


def test_discover_is_retransmitted_with_backoff() -> None:
    client, _ = make()
    server = FakeServer()
    server.silent = True
    client.start(0.0)
    exchange(client, server, 0.0)
    times: list[float] = []
    while len(times) < 6:
        now = client.next_deadline()
        assert now is not None
        client.timers_expired(now)
        exchange(client, server, now)
        times.append(now)
    gaps = [b - a for a, b in zip([0.0, *times], times, strict=False)]
    for gap, base in zip(gaps, [4, 8, 16, 32, 64, 64], strict=True):
        assert base - 1 <= gap <= base + 1  # RFC 2131 4.1: doubling from 4 s, capped at 64 s, +-1 s
    assert len({m.xid for _, m in server.seen}) == 1


def test_renew_unicast_then_rebind_broadcast_then_expire() -> None:
    client, _ = make()
    server = FakeServer()
    bound(client, server)
    client.take_events()
    server.silent = True
    run_until(client, server, 1800.0)
    assert state(client) is DhcpState.RENEWING
    renew_send, renew = server.seen[-1]
    assert renew_send.dst == SERVER
    assert renew.ciaddr == OFFERED
    assert OPT_SERVER_ID not in renew.options
    assert OPT_REQUESTED_IP not in renew.options
    run_until(client, server, 3150.0)
    assert state(client) is DhcpState.REBINDING
    assert server.seen[-1][0].dst == LIMITED_BROADCAST
    renewals = [s for s, m in server.seen if m.ciaddr == OFFERED]
    assert len(renewals) >= 3
    run_until(client, server, 3600.0)
    assert state(client) is DhcpState.SELECTING
    assert client.lease is None
    assert [type(e) for e in client.take_events()] == [LeaseLost]


def test_renewal_ack_extends_the_lease() -> None:
    client, _ = make()
    server = FakeServer()
    bound(client, server)
    client.take_events()
    run_until(client, server, 1800.0)
    assert state(client) is DhcpState.BOUND
    lease = client.lease
    assert lease is not None
    assert lease.acquired_at == 1800.0
    assert [type(e) for e in client.take_events()] == [LeaseAcquired]


def test_nak_while_renewing_loses_the_lease_and_restarts() -> None:
    client, _ = make()
    server = FakeServer()
    bound(client, server)
    client.take_events()
    server.nak = True
    run_until(client, server, 1800.0)
    assert client.lease is None
    assert [type(e) for e in client.take_events()] == [LeaseLost]
    assert state(client) is DhcpState.INIT
    server.nak = False
    run_until(client, server, 1900.0)
    assert state(client) is DhcpState.BOUND


@pytest.mark.parametrize("tries", [DHCP.request_tries, 2])
def test_request_retries_fall_back_to_discover(tries: int) -> None:
    """After `request_tries` unanswered REQUESTs (a leaf of the limits tree: stack.dhcp.request_tries)."""
    client, _ = make(DhcpLimits(request_tries=tries))
    server = FakeServer()
    client.start(0.0)
    (send,) = client.take_outgoing()
    offer = server.reply(send)
    assert offer is not None
    client.message_received(0.0, offer)
    assert state(client) is DhcpState.REQUESTING
    server.silent = True
    exchange(client, server, 0.0)
    now = 0.0
    while state(client) is DhcpState.REQUESTING:
        now = client.next_deadline() or 0.0
        client.timers_expired(now)
        exchange(client, server, now)
    assert state(client) is DhcpState.SELECTING
    requests = [m for _, m in server.seen if m.message_type == REQUEST]
    assert len(requests) == tries


def test_replies_for_someone_else_are_ignored() -> None:
    client, counters = make()
    client.start(0.0)
    (send,) = client.take_outgoing()
    request = parse_dhcp(send.payload)
    options = {OPT_MESSAGE_TYPE: bytes([OFFER]), OPT_SERVER_ID: SERVER, OPT_LEASE_TIME: b"\x00\x00\x0e\x10"}
    for xid, chaddr in ((request.xid ^ 1, MAC), (request.xid, bytes(6))):
        client.message_received(0.0, serialize_dhcp(DhcpMessage(BOOTREPLY, xid, chaddr, options, yiaddr=OFFERED)))
    client.message_received(0.0, b"garbage")
    assert state(client) is DhcpState.SELECTING
    assert counters[Drop.DHCP_NOT_OURS] == 2
    assert counters[Drop.DHCP_MALFORMED] == 1


def test_ack_from_an_unselected_server_is_refused() -> None:
    client, counters = make()
    server = FakeServer()
    client.start(0.0)
    (send,) = client.take_outgoing()
    offer = server.reply(send)
    assert offer is not None
    client.message_received(0.0, offer)
    (request_send,) = client.take_outgoing()
    rogue = FakeServer(server_id=OTHER_SERVER)
    ack = rogue.reply(request_send)
    assert ack is not None
    client.message_received(0.0, ack)
    assert state(client) is DhcpState.REQUESTING
    assert counters[Drop.DHCP_UNEXPECTED] == 1


@pytest.mark.parametrize(
    "extra",
    [
        {OPT_SUBNET_MASK: bytes([255, 0, 255, 0])},  # non-contiguous mask
        {OPT_SUBNET_MASK: bytes([255, 255])},
        {OPT_SERVER_ID: bytes([255, 255, 255, 255])},
        {OPT_LEASE_TIME: b"\x00\x01"},
    ],
)
def test_unusable_offers_are_refused(extra: dict[int, bytes]) -> None:
    client, counters = make()
    client.start(0.0)
    exchange(client, FakeServer(extra=extra), 0.0)
    assert state(client) is DhcpState.SELECTING
    assert counters[Drop.DHCP_BAD_LEASE] == 1


def test_short_leases_are_raised_and_bad_timers_replaced() -> None:
    client, _ = make()
    server = FakeServer(lease=5, extra={OPT_RENEWAL_TIME: (100).to_bytes(4, "big"), OPT_REBINDING_TIME: bytes(4)})
    bound(client, server)
    lease = client.lease
    assert lease is not None
    assert lease.lease_time == DHCP.min_lease
    assert lease.t1 == DHCP.min_lease / 2


def test_server_timers_are_used_when_consistent() -> None:
    client, _ = make()
    server = FakeServer(
        extra={OPT_RENEWAL_TIME: (600).to_bytes(4, "big"), OPT_REBINDING_TIME: (900).to_bytes(4, "big")}
    )
    bound(client, server)
    assert client.lease is not None
    assert (client.lease.t1, client.lease.t2) == (600.0, 900.0)


def test_off_link_router_is_not_used() -> None:
    client, _ = make()
    bound(client, FakeServer(extra={OPT_ROUTER: bytes([192, 168, 0, 1])}))
    assert client.lease is not None
    assert client.lease.config.gateway is None


def test_unexpected_message_types_are_counted() -> None:
    client, counters = make()
    server = FakeServer()
    bound(client, server)
    _, request = server.seen[-1]
    options = {OPT_MESSAGE_TYPE: bytes([OFFER]), OPT_SERVER_ID: SERVER, OPT_LEASE_TIME: b"\x00\x00\x0e\x10"}
    client.message_received(1.0, serialize_dhcp(DhcpMessage(BOOTREPLY, request.xid, MAC, options, yiaddr=OFFERED)))
    assert state(client) is DhcpState.BOUND
    assert counters[Drop.DHCP_UNEXPECTED] == 1


def _reply_to(client: DhcpClient, kind: int, server_id: bytes, *, yiaddr: bytes = OFFERED,
              lease: int | None = 3600, router: bytes | None = None) -> bytes:
    """A server's answer to the client's last message, built from the codec (not by the fake server)."""
    (send,) = client.take_outgoing()
    request = parse_dhcp(send.payload)
    options = {OPT_MESSAGE_TYPE: bytes([kind]), OPT_SERVER_ID: server_id, OPT_SUBNET_MASK: bytes([255, 255, 255, 0])}
    if lease is not None:
        options[OPT_LEASE_TIME] = lease.to_bytes(4, "big")
    if router is not None:
        options[OPT_ROUTER] = router
    return serialize_dhcp(DhcpMessage(BOOTREPLY, request.xid, request.chaddr, options, yiaddr=yiaddr))


def _requesting() -> tuple[DhcpClient, Counters]:
    client, counters = make()
    client.start(0.0)
    client.message_received(0.0, _reply_to(client, OFFER, SERVER))
    assert state(client) is DhcpState.REQUESTING
    return client, counters


def test_nak_from_an_unselected_server_is_ignored() -> None:
    client, counters = _requesting()
    client.message_received(0.0, _reply_to(client, NAK, OTHER_SERVER))
    assert state(client) is DhcpState.REQUESTING
    assert counters[Drop.DHCP_UNEXPECTED] == 1
    assert client.take_events() == []


def test_ack_without_a_lease_time_is_refused_while_requesting() -> None:
    client, counters = _requesting()
    client.message_received(0.0, _reply_to(client, ACK, SERVER, lease=None))
    assert state(client) is DhcpState.REQUESTING
    assert client.lease is None
    assert counters[Drop.DHCP_BAD_LEASE] == 1


def _renewing() -> tuple[DhcpClient, Counters]:
    client, counters = make()
    bound(client, FakeServer())
    client.take_events()
    client.timers_expired(1800.0)
    assert state(client) is DhcpState.RENEWING
    return client, counters


def test_renewal_with_a_different_address_loses_the_old_lease() -> None:
    client, _ = _renewing()
    moved = bytes([10, 0, 0, 77])
    client.message_received(1800.0, _reply_to(client, ACK, SERVER, yiaddr=moved))
    events = client.take_events()
    assert [type(e) for e in events] == [LeaseLost, LeaseAcquired]
    assert isinstance(events[1], LeaseAcquired)
    assert events[1].lease.config.address == moved
    assert client.lease is not None
    assert client.lease.config.address == moved


def test_unusable_renewal_ack_keeps_the_lease() -> None:
    client, counters = _renewing()
    client.message_received(1800.0, _reply_to(client, ACK, SERVER, lease=None))
    assert state(client) is DhcpState.RENEWING
    assert client.lease is not None
    assert client.lease.config.address == OFFERED
    assert counters[Drop.DHCP_BAD_LEASE] == 1


def test_every_state_has_a_timer_handler_and_no_handler_for_a_foreign_state() -> None:
    """A deadline always belongs to the state that set it, so each state class handles TIMER; and the
    table names only the client's own states."""
    states = {Init, Selecting, Requesting, Bound, Renewing, Rebinding}
    assert {cls for cls, _ in _ON_INPUT} == states
    assert {cls for cls, event in _ON_INPUT if event == TIMER} == states
    assert {(cls, event) for cls, event in _ON_INPUT if event != TIMER} == {
        (Selecting, OFFER), (Requesting, ACK), (Requesting, NAK), (Renewing, ACK), (Renewing, NAK),
        (Rebinding, ACK), (Rebinding, NAK)}


def test_nak_from_the_selected_server_restarts_after_a_pause() -> None:
    client, _ = _requesting()
    client.message_received(3.0, _reply_to(client, NAK, SERVER))
    assert state(client) is DhcpState.INIT
    assert client.next_deadline() == 3.0 + DHCP.initial_retransmit
    assert client.take_events() == []  # there was no lease to lose


def test_a_state_change_outside_the_transition_table_is_an_invariant_failure() -> None:
    """Selecting may not jump to Bound without a REQUEST/ACK: `_to` refuses, and the state stays."""
    client, _ = make()
    client.start(0.0)
    lease = Lease(StaticIp(OFFERED, 24, SERVER), SERVER, 0.0, 3600.0, 1800.0, 3150.0)
    with pytest.raises(DhcpInvariantError, match="Selecting -> Bound"):
        client._to(Bound(lease))
    assert state(client) is DhcpState.SELECTING
    assert {b for _, b in _TRANSITIONS} == {cls for cls, _ in _ON_INPUT}


@pytest.mark.parametrize("router", [bytes([10, 0, 0, 255]), bytes([10, 0, 0, 0]), bytes([192, 168, 0, 1]), OFFERED])
def test_an_unusable_router_is_dropped_and_counted_but_the_lease_kept(router: bytes) -> None:
    """RFC 1122 3.3.1.1: a gateway is a host on the connected network; the subnet's broadcast or network
    address would send off-link traffic to whoever answers ARP for it."""
    client, counters = make()
    bound(client, FakeServer(extra={OPT_ROUTER: router}))
    assert client.lease is not None
    assert client.lease.config.gateway is None
    assert counters[Drop.DHCP_ROUTER_UNUSABLE] == 2  # the OFFER's and the ACK's


def test_a_usable_router_is_not_counted() -> None:
    client, counters = make()
    bound(client, FakeServer())
    assert client.lease is not None
    assert client.lease.config.gateway == SERVER
    assert counters[Drop.DHCP_ROUTER_UNUSABLE] == 0


def test_renewal_timers_below_half_the_minimum_lease_are_replaced_and_counted() -> None:
    """A server offering T1 = 1 s and T2 = 2 s would have us send a REQUEST every second for as long as it
    answers: the lease is raised to min_lease and T1/T2 go back to the RFC 2131 defaults."""
    client, counters = make()
    server = FakeServer(lease=0, extra={OPT_RENEWAL_TIME: (1).to_bytes(4, "big"),
                                        OPT_REBINDING_TIME: (2).to_bytes(4, "big")})  # fmt: skip
    bound(client, server)
    assert client.lease is not None
    assert (client.lease.t1, client.lease.t2) == (DHCP.min_lease * 0.5, DHCP.min_lease * 0.875)
    assert counters[Drop.DHCP_SHORT_TIMERS] == 2  # the OFFER's and the ACK's
    seen = len(server.seen)
    run_until(client, server, 600.0)
    assert len(server.seen) - seen <= 600 / (DHCP.min_lease / 2)


def test_renewal_timers_at_half_the_minimum_lease_are_kept() -> None:
    client, counters = make()
    t1 = int(DHCP.min_lease / 2)
    timers = {OPT_RENEWAL_TIME: t1.to_bytes(4, "big"), OPT_REBINDING_TIME: (t1 * 2).to_bytes(4, "big")}
    server = FakeServer(lease=int(DHCP.min_lease) * 4, extra=timers)
    bound(client, server)
    assert client.lease is not None
    assert client.lease.t1 == t1
    assert counters[Drop.DHCP_SHORT_TIMERS] == 0


@pytest.mark.parametrize("yiaddr", [bytes([10, 0, 0, 255]), bytes([10, 0, 0, 0])], ids=["broadcast", "network"])
def test_an_unusable_offer_with_an_unusable_router_is_counted_once_as_a_bad_lease(yiaddr: bytes) -> None:
    """One message, one reason (review-s26b R7): the address is refused, so its router is never looked at."""
    client, counters = make()
    client.start(0.0)
    client.message_received(0.0, _reply_to(client, OFFER, SERVER, yiaddr=yiaddr, router=bytes([192, 168, 0, 1])))
    assert state(client) is DhcpState.SELECTING
    assert counters[Drop.DHCP_BAD_LEASE] == 1
    assert counters[Drop.DHCP_ROUTER_UNUSABLE] == 0
