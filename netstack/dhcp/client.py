"""A sans-I/O DHCP client (RFC 2131 4.4): messages and time in, messages to send and lease events out.

States are frozen dataclasses carrying their data (the offer while requesting, the lease while bound, renewing
or rebinding), and one table maps (state class, input) to the handler, where an input is a DHCP message type or
the timer: the same idiom as the TLS engines (`tls.states`), so no handler asks "do I have a lease?". The
client keeps one deadline at a time: the next retransmission while acquiring, T1 while bound, the next
renewal/rebinding attempt or T2/expiry after that.
Not implemented, by decision: INIT-REBOOT (we never remember a lease across boots) and DECLINE after an
ARP conflict check (the appliance is the only client of its lease; a conflict shows up in the ARP counters).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from netstack.addresses import LIMITED_BROADCAST, is_unicast_host, mask_to_prefix
from netstack.config import ConfigError, StaticIp
from netstack.dhcp.message import (
    ACK,
    BOOTREPLY,
    BOOTREQUEST,
    DISCOVER,
    FLAG_BROADCAST,
    NAK,
    OFFER,
    OPT_LEASE_TIME,
    OPT_MESSAGE_TYPE,
    OPT_PARAMETER_LIST,
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
    SELECTING,
    TIMER,
    Bound,
    ClientState,
    DhcpInvariantError,
    DhcpState,
    Init,
    Lease,
    Rebinding,
    Renewing,
    Requesting,
    Selecting,
)
from netstack.errors import MalformedError
from netstack.limits import DEFAULT_STACK_LIMITS, DhcpLimits
from netstack.reasons import Counters, Drop

__all__ = ["DhcpClient", "DhcpSend", "DhcpState", "Lease", "LeaseAcquired", "LeaseEvent", "LeaseLost"]


@dataclass(frozen=True, slots=True)
class LeaseAcquired:
    """For the stack: configure the interface with `lease.config` (a first lease, a renewal, or a new address after
    a renewal that changed it)."""

    lease: Lease


@dataclass(frozen=True, slots=True)
class LeaseLost:
    """For the stack: stop using the leased address (a restart, a NAK, or a renewal that changed the address);
    `reason` names which."""

    reason: str


LeaseEvent = LeaseAcquired | LeaseLost


@dataclass(frozen=True, slots=True)
class DhcpSend:
    """A message for UDP port 67 at dst (the limited broadcast, or the server when renewing)."""

    dst: bytes
    payload: bytes


_PARAMETERS = bytes((OPT_SUBNET_MASK, OPT_ROUTER, OPT_LEASE_TIME, OPT_RENEWAL_TIME, OPT_REBINDING_TIME))


class DhcpClient:
    def __init__(self, mac: bytes, rng: random.Random, counters: Counters,
                 limits: DhcpLimits = DEFAULT_STACK_LIMITS.dhcp) -> None:
        self._mac = mac
        self._limits = limits
        self._rng = rng
        self._counters = counters
        self._state: ClientState = Init()
        self._xid = 0
        self._deadline: float | None = None
        self._attempt = 0
        self._started_at = 0.0
        self._outgoing: list[DhcpSend] = []
        self._events: list[LeaseEvent] = []

    def _to(self, new: ClientState) -> None:
        """Every state change goes through here and must be in `_TRANSITIONS`; a handler moving elsewhere is a
        bug, raised to the stack (which counts it as an internal error and goes on)."""
        if (type(self._state), type(new)) not in _TRANSITIONS:
            raise DhcpInvariantError(f"DHCP state change {type(self._state).__name__} -> {type(new).__name__}")
        self._state = new

    @property
    def state(self) -> DhcpState:
        return self._state.name

    @property
    def lease(self) -> Lease | None:
        state = self._state
        return state.lease if isinstance(state, Bound | Renewing | Rebinding) else None

    def start(self, now: float) -> None:
        self._lose_lease("restart")
        self._to(SELECTING)
        self._xid = self._rng.getrandbits(32)
        self._started_at = now
        self._attempt = 0
        self._send_discover(now)

    def take_outgoing(self) -> list[DhcpSend]:
        out, self._outgoing = self._outgoing, []
        return out

    def take_events(self) -> list[LeaseEvent]:
        out, self._events = self._events, []
        return out

    def next_deadline(self) -> float | None:
        return self._deadline

    def timers_expired(self, now: float) -> None:
        if self._deadline is None or now < self._deadline:
            return
        self._deadline = None
        state = self._state
        _ON_INPUT[(type(state), TIMER)](self, state, now, None)

    def message_received(self, now: float, payload: bytes | memoryview) -> None:
        try:
            message = parse_dhcp(payload)
        except MalformedError as exc:
            self._counters.add(exc.reason)
            return
        if message.op != BOOTREPLY or message.xid != self._xid or message.chaddr != self._mac:
            self._counters.add(Drop.DHCP_NOT_OURS)
            return
        state = self._state
        handler = _ON_INPUT.get((type(state), message.message_type if message.message_type is not None else -1))
        if handler is None:
            self._counters.add(Drop.DHCP_UNEXPECTED)
            return
        handler(self, state, now, message)

    # --- timers -------------------------------------------------------------------------------------------------

    def _on_selecting_timer(self, state: Selecting, now: float, _: None) -> None:
        self._attempt += 1
        self._send_discover(now)

    def _on_requesting_timer(self, state: Requesting, now: float, _: None) -> None:
        self._attempt += 1
        if self._attempt >= self._limits.request_tries:
            self.start(now)
            return
        self._send_select_request(now, state.offer)

    def _on_bound_timer(self, state: Bound, now: float, _: None) -> None:
        self._renew(Renewing(state.lease), now)

    def _on_renewing_timer(self, state: Renewing, now: float, _: None) -> None:
        self._renew(state, now)

    def _renew(self, state: Renewing, now: float) -> None:
        lease = state.lease
        if now >= lease.rebind_at:
            self._rebind(Rebinding(lease), now)
            return
        self._to(state)
        self._send_renewal(now, lease, lease.server_id)
        self._deadline = min(lease.rebind_at, now + max(self._limits.min_renew_interval, (lease.rebind_at - now) / 2))

    def _on_rebinding_timer(self, state: Rebinding, now: float, _: None) -> None:
        self._rebind(state, now)

    def _rebind(self, state: Rebinding, now: float) -> None:
        lease = state.lease
        if now >= lease.expires_at:
            self.start(now)  # RFC 2131 4.4.5: the lease expired, stop using the address and start over
            return
        self._to(state)
        self._send_renewal(now, lease, LIMITED_BROADCAST)
        self._deadline = min(lease.expires_at, now + max(self._limits.min_renew_interval, (lease.expires_at - now) / 2))

    def _on_init_timer(self, state: Init, now: float, _: None) -> None:
        self.start(now)

    # --- messages -----------------------------------------------------------------------------------------------

    def _on_offer(self, state: Selecting, now: float, message: DhcpMessage) -> None:
        if self._lease_from(now, message) is None:
            return
        self._to(Requesting(message))
        self._attempt = 0
        self._send_select_request(now, message)

    def _on_requested_ack(self, state: Requesting, now: float, message: DhcpMessage) -> None:
        lease = self._lease_from(now, message)
        if lease is None:
            return
        if lease.server_id != state.offer.address_option(OPT_SERVER_ID):
            self._counters.add(Drop.DHCP_UNEXPECTED)  # an ACK from a server we did not select
            return
        self._bind(lease)

    def _on_renewal_ack(self, state: Renewing | Rebinding, now: float, message: DhcpMessage) -> None:
        lease = self._lease_from(now, message)
        if lease is None:
            return
        if lease.config.address != state.lease.config.address:
            self._events.append(LeaseLost("renewed with a different address"))
        self._bind(lease)

    def _bind(self, lease: Lease) -> None:
        self._to(Bound(lease))
        self._deadline = lease.renew_at
        self._events.append(LeaseAcquired(lease))

    def _on_requested_nak(self, state: Requesting, now: float, message: DhcpMessage) -> None:
        if message.address_option(OPT_SERVER_ID) != state.offer.address_option(OPT_SERVER_ID):
            self._counters.add(Drop.DHCP_UNEXPECTED)  # only the selected server may refuse us
            return
        self._restart_after_nak(now)

    def _on_renewal_nak(self, state: Renewing | Rebinding, now: float, message: DhcpMessage) -> None:
        self._restart_after_nak(now)

    def _restart_after_nak(self, now: float) -> None:
        self._lose_lease("nak")
        # RFC 2131 3.1 step 5: restart; wait one initial interval so a NAK storm cannot make us spin
        self._to(Init())
        self._deadline = now + self._limits.initial_retransmit

    # --- helpers ------------------------------------------------------------------------------------------------

    def _lease_from(self, now: float, message: DhcpMessage) -> Lease | None:
        """Validate the address, server and timers a server offers; refuse anything we could not use."""
        server_id = message.address_option(OPT_SERVER_ID)
        lease_time = message.seconds_option(OPT_LEASE_TIME)
        if server_id is None or not is_unicast_host(server_id) or lease_time is None:
            self._counters.add(Drop.DHCP_BAD_LEASE)
            return None
        mask = message.options.get(OPT_SUBNET_MASK)
        try:
            if mask is not None:
                if len(mask) != 4:
                    raise ConfigError("subnet mask option is not 4 bytes")
                prefix_len = mask_to_prefix(mask)
            else:
                prefix_len = _classful_prefix(message.yiaddr)
            config = StaticIp(message.yiaddr, prefix_len)
        except ValueError:
            self._counters.add(Drop.DHCP_BAD_LEASE)
            return None
        config = self._with_router(config, message.address_option(OPT_ROUTER))
        duration = float(max(lease_time, self._limits.min_lease))
        renewal = message.seconds_option(OPT_RENEWAL_TIME)
        rebinding = message.seconds_option(OPT_REBINDING_TIME)
        if renewal is not None and rebinding is not None and 0 < renewal < rebinding < duration:
            t1, t2 = float(renewal), float(rebinding)
        else:
            t1, t2 = duration * 0.5, duration * 0.875  # RFC 2131 4.4.5 defaults
        if t1 < self._limits.min_lease / 2:
            # The lease was raised to min_lease so that a server cannot make us spin; a T1 of 1 s would make us
            # send a REQUEST every second all the same (each ACK schedules the next renewal at T1). The
            # defaults are never this short, since the duration is at least min_lease.
            self._counters.add(Drop.DHCP_SHORT_TIMERS)
            t1, t2 = duration * 0.5, duration * 0.875
        return Lease(config, server_id, now, duration, t1, t2)

    def _with_router(self, config: StaticIp, router: bytes | None) -> StaticIp:
        """`config` with the first router of option 3 as its gateway if StaticIp takes it (an on-link unicast
        host, not us, not the subnet's network or broadcast address: RFC 1122 3.3.1.1, 3.2.1.3). StaticIp holds
        the one list of those rules, for a static gateway and a leased one alike. Otherwise `config` as it is,
        counted (dhcp-router-unusable): we still take the on-link address, and a lease without a route says why
        in the counters. Only a lease whose address we take gets here, so a message counts under one reason."""
        if router is None:
            return config
        try:
            return StaticIp(config.address, config.prefix_len, router)
        except ConfigError:
            self._counters.add(Drop.DHCP_ROUTER_UNUSABLE)
            return config

    def _lose_lease(self, reason: str) -> None:
        if self.lease is not None:
            self._to(Init())
            self._events.append(LeaseLost(reason))

    def _retransmit_delay(self) -> float:
        base = min(self._limits.initial_retransmit * (1 << min(self._attempt, 8)), self._limits.max_retransmit)
        jitter: float = self._rng.uniform(-1.0, 1.0)
        return base + jitter

    def _request(self, now: float, options: dict[int, bytes], *, ciaddr: bytes = bytes(4)) -> DhcpMessage:
        secs = min(int(now - self._started_at), 0xFFFF)
        flags = FLAG_BROADCAST if ciaddr == bytes(4) else 0  # no address yet: ask the server to broadcast
        options = {**options, OPT_PARAMETER_LIST: _PARAMETERS}
        return DhcpMessage(BOOTREQUEST, self._xid, self._mac, options, secs=secs, flags=flags, ciaddr=ciaddr)

    def _send_discover(self, now: float) -> None:
        message = self._request(now, {OPT_MESSAGE_TYPE: bytes((DISCOVER,))})
        self._outgoing.append(DhcpSend(LIMITED_BROADCAST, serialize_dhcp(message)))
        self._deadline = now + self._retransmit_delay()

    def _send_select_request(self, now: float, offer: DhcpMessage) -> None:
        server_id = offer.address_option(OPT_SERVER_ID) or bytes(4)
        options = {OPT_MESSAGE_TYPE: bytes((REQUEST,)), OPT_REQUESTED_IP: offer.yiaddr, OPT_SERVER_ID: server_id}
        message = self._request(now, options)
        self._outgoing.append(DhcpSend(LIMITED_BROADCAST, serialize_dhcp(message)))
        self._deadline = now + self._retransmit_delay()

    def _send_renewal(self, now: float, lease: Lease, dst: bytes) -> None:
        # RFC 2131 4.3.2: RENEWING/REBINDING requests carry ciaddr and no server id or requested address
        message = self._request(now, {OPT_MESSAGE_TYPE: bytes((REQUEST,))}, ciaddr=lease.config.address)
        self._outgoing.append(DhcpSend(dst, serialize_dhcp(message)))


def _classful_prefix(address: bytes) -> int:
    first = address[0]
    return 8 if first < 128 else 16 if first < 192 else 24


_ON_INPUT: dict[tuple[type, int], Callable[[DhcpClient, Any, float, Any], None]] = {
    (Init, TIMER): DhcpClient._on_init_timer,
    (Selecting, TIMER): DhcpClient._on_selecting_timer,
    (Selecting, OFFER): DhcpClient._on_offer,
    (Requesting, TIMER): DhcpClient._on_requesting_timer,
    (Requesting, ACK): DhcpClient._on_requested_ack,
    (Requesting, NAK): DhcpClient._on_requested_nak,
    (Bound, TIMER): DhcpClient._on_bound_timer,
    (Renewing, TIMER): DhcpClient._on_renewing_timer,
    (Renewing, ACK): DhcpClient._on_renewal_ack,
    (Renewing, NAK): DhcpClient._on_renewal_nak,
    (Rebinding, TIMER): DhcpClient._on_rebinding_timer,
    (Rebinding, ACK): DhcpClient._on_renewal_ack,
    (Rebinding, NAK): DhcpClient._on_renewal_nak,
}
"""(state class, input) → handler, input being a message type or TIMER; a message without an entry is counted
as unexpected and dropped. Every state has a TIMER entry: a deadline always belongs to the state that set it."""

_STATES: tuple[type, ...] = (Init, Selecting, Requesting, Bound, Renewing, Rebinding)
_TRANSITIONS: frozenset[tuple[type, type]] = frozenset({
    *((state, Selecting) for state in _STATES),  # start() may be called in any state
    (Bound, Init), (Renewing, Init), (Rebinding, Init),  # the lease is lost
    (Requesting, Init), (Init, Init),  # a NAK: wait one interval, then start over
    (Selecting, Requesting),
    (Bound, Renewing), (Renewing, Renewing),
    (Bound, Rebinding), (Renewing, Rebinding), (Rebinding, Rebinding),
    (Requesting, Bound), (Renewing, Bound), (Rebinding, Bound),
})
"""(from, to): the only state changes `DhcpClient._to` allows."""
