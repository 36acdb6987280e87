"""The DHCP client's states (RFC 2131 4.4), each a frozen dataclass carrying the data valid in it: the offer
while requesting, the lease while bound, renewing or rebinding. Why: the client's handlers receive their state
and cannot reach a lease that does not exist; `name` keeps the public `DhcpState` vocabulary."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import ClassVar, Final

from netstack.config import StaticIp
from netstack.dhcp.message import DhcpMessage


class DhcpState(Enum):
    INIT = "init"
    SELECTING = "selecting"
    REQUESTING = "requesting"
    BOUND = "bound"
    RENEWING = "renewing"
    REBINDING = "rebinding"


@dataclass(frozen=True, slots=True)
class Lease:
    """What an ACK granted (RFC 2131 §4.4.5): the address configuration, the server that granted it, and the lease
    time and T1/T2 as durations from `acquired_at`, so each deadline follows from one reading of the clock."""

    config: StaticIp
    server_id: bytes
    acquired_at: float
    lease_time: float
    t1: float
    t2: float

    @property
    def renew_at(self) -> float:
        return self.acquired_at + self.t1

    @property
    def rebind_at(self) -> float:
        return self.acquired_at + self.t2

    @property
    def expires_at(self) -> float:
        return self.acquired_at + self.lease_time


@dataclass(frozen=True, slots=True)
class Init:
    """After a NAK: waiting one initial interval before starting over."""

    name: ClassVar[DhcpState] = DhcpState.INIT


@dataclass(frozen=True, slots=True)
class Selecting:
    """A DISCOVER is out (RFC 2131 §4.4.1): the first OFFER with a usable lease is taken; the timer sends the
    DISCOVER again, with backoff."""

    name: ClassVar[DhcpState] = DhcpState.SELECTING


@dataclass(frozen=True, slots=True)
class Requesting:
    """We asked for `offer`; only its server may answer."""

    offer: DhcpMessage
    name: ClassVar[DhcpState] = DhcpState.REQUESTING


@dataclass(frozen=True, slots=True)
class Bound:
    """The leased address is in use (RFC 2131 §4.4.5) until T1, when renewing with the granting server begins."""

    lease: Lease
    name: ClassVar[DhcpState] = DhcpState.BOUND


@dataclass(frozen=True, slots=True)
class Renewing:
    """Past T1 (RFC 2131 §4.4.5): REQUESTs go unicast to the server that granted `lease`, until T2 turns this into
    rebinding."""

    lease: Lease
    name: ClassVar[DhcpState] = DhcpState.RENEWING


@dataclass(frozen=True, slots=True)
class Rebinding:
    """Past T2 (RFC 2131 §4.4.5): REQUESTs are broadcast so that any server may extend `lease`; when it expires the
    address is given up and the client starts over."""

    lease: Lease
    name: ClassVar[DhcpState] = DhcpState.REBINDING


ClientState = Init | Selecting | Requesting | Bound | Renewing | Rebinding
Leased = Bound | Renewing | Rebinding
SELECTING: Final = Selecting()

TIMER: Final = 0x100
"""The input key for "the deadline passed" (DHCP message types are 1..8, so it never collides)."""


class DhcpInvariantError(RuntimeError):
    """A state change the transition table does not allow: a bug of ours, never the server's doing."""
