"""Admission: how many connections the appliance holds at once, overall and per source, and who gives way
when the table is full.

Why a newcomer may displace someone: refusing every newcomer once the table is full lets whoever filled it
keep it. Sixteen source addresses at the per-source cap hold all 256 slots, each kept alive by one request
per idle period, or by nothing at all: a connection that never sends a byte is held until its first request's
(or TLS handshake's) timeout, and opening nine such connections a second keeps the table full. So when the
table is full, a newcomer takes the slot of one of two kinds of connection, the oldest of the source holding
the most slots:
- an IDLE keep-alive connection (served at least once, waiting for its next request, nothing in flight);
- an UNANSWERED connection (in its TLS handshake, or waiting for its first request, nothing yet given to it)
  at least `displace_unanswered_after` old. Its age is what keeps this from thrashing: a newcomer cannot
  itself be displaced before it had the time to ask.
Either only of a source holding at least two more slots than the newcomer's. With one more, the swap would
only trade places; and a source holding one slot would lose it to any fresh source: a bounty hunter's
mutual-TLS handshake over a slow link (or one slowed by a busy appliance) to whoever holds the rest of the
table with one idle connection per source and connects from one more.
A connection being answered (a response in progress, a secret being released, a connect-back) is never
displaced. Only when no such connection exists is the newcomer refused (and counted), never queued.

Closing an idle persistent connection is ordinary HTTP (RFC 9112 §9.6: a server may close one at any time,
and clients retry): the connection's handler is woken, ends its loop the ordinary way (TLS sends its
close_notify) and records its outcome (`served`); its slot is free at once. An unanswered connection is woken
the same way and recorded as `resource-limit`: it got nothing, because the table was full.

A source is what `appliance.peers.source_of` says it is: an IPv4 address, or an IPv6 /64, so that rotating
the low bits of an IPv6 address does not multiply a peer's share of the table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from appliance.config import Limits
from appliance.peers import source_of


@dataclass(eq=False)
class Slot:
    """One admitted connection, shared by the gate and the connection's handler."""

    source: str  # the peer's address text (what a connect-back connects to)
    accepted: float  # event-loop time of admission: a connection's lifetime runs from here
    withdraw: Callable[[], None]  # wakes the handler out of its wait for the peer's next bytes
    idle: bool = False  # the handler sets it while it waits for a next request with nothing in flight
    # the handler sets it from accept while the connection is owed nothing yet: in its TLS handshake, or
    # waiting for (or reading) its first request; it clears it once it starts answering
    unanswered: bool = False
    displaced: bool = False  # the gate gave this slot to a newcomer: the handler ends at its next boundary
    # the close of the channel a handler runs over the connection (TLS), set by the handler: the service closes
    # it once the outcome is known, so that a close cut short (at stop) keeps that outcome (appliance.service)
    closer: Callable[[], Awaitable[None]] | None = None
    key: str = field(init=False)  # the source it counts against (`appliance.peers.source_of`)

    def __post_init__(self) -> None:
        self.key = source_of(self.source)


class Gate:
    """Concurrent connections, overall and per source: admission is refused (and counted), never queued;
    a full table makes room by displacing an idle or unanswered connection of its biggest holder."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._per_source: Counter[str] = Counter()
        self._slots: dict[Slot, None] = {}  # in admission order: the first match of a scan is the oldest
        self.displaced = 0  # slots given to newcomers since start

    @property
    def total(self) -> int:
        return len(self._slots)

    def admit(self, source: str, accepted: float, withdraw: Callable[[], None]) -> Slot | str:
        """The newcomer's slot, or the reason for refusing it. `source`: the peer's address text; it counts
        against its source key (an IPv6 peer against its /64)."""
        slot = Slot(source, accepted, withdraw)
        if self._per_source[slot.key] >= self._limits.max_connections_per_source:
            return f"more than {self._limits.max_connections_per_source} concurrent connections from one source"
        if len(self._slots) >= self._limits.max_connections:
            victim = self._victim(slot.key, accepted)
            if victim is None:
                return f"more than {self._limits.max_connections} concurrent connections (none to displace)"
            self.release(victim)
            victim.displaced = True
            self.displaced += 1
            victim.withdraw()
        self._slots[slot] = None
        self._per_source[slot.key] += 1
        return slot

    def _victim(self, newcomer: str, now: float) -> Slot | None:
        """The oldest displaceable slot (module docstring) of the source holding the most slots, if that
        source holds at least two more than the newcomer's: an idle one, or an unanswered one at least
        `displace_unanswered_after` old."""
        mine = self._per_source[newcomer]
        old_enough = now - self._limits.displace_unanswered_after
        victim: Slot | None = None
        most = 0
        for slot in self._slots:  # oldest first, so on a tie the oldest stays chosen
            held = self._per_source[slot.key]
            if held <= most:
                continue
            if held >= mine + 2 and (slot.idle or (slot.unanswered and slot.accepted <= old_enough)):
                victim, most = slot, held
        return victim

    def release(self, slot: Slot) -> None:
        """Idempotent: a displaced slot was released when it was displaced."""
        if slot not in self._slots:
            return
        del self._slots[slot]
        self._per_source[slot.key] -= 1
        if not self._per_source[slot.key]:
            del self._per_source[slot.key]
