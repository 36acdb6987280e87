"""What a connection may ask of the layer that holds it: the whole interface, in one place.

Why narrow: a connection that could reach all of `TcpLayer` would (and did) read and write the layer's tables;
the layer did the same to connections. Now a connection sees only this: its configuration, the shared byte
budgets, a counter, the event and transmit queues, and the few bookkeeping calls that end or change its
standing in the layer's tables. `TcpLayer` implements it; a test can implement it with a stub.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from netstack.tcp import events as ev
from netstack.tcp.config import TcpConfig
from netstack.tcp.counters import Count
from netstack.tcp.segment import Segment
from netstack.tcp.state import Cause

if TYPE_CHECKING:
    from netstack.tcp.tcb import Tcb


class Budgets:
    """Bytes held across every connection of a layer, against `TcpConfig.rcv_budget`, `ooo_budget` and
    `snd_budget` (see netstack/tcp/config.py): each connection adds what it takes and gives it back."""

    __slots__ = ("ooo_held", "rcv_held", "snd_held")

    def __init__(self) -> None:
        self.rcv_held = 0
        self.ooo_held = 0
        self.snd_held = 0


class Host(Protocol):
    """The layer as a connection sees it."""

    @property
    def config(self) -> TcpConfig: ...

    @property
    def budgets(self) -> Budgets: ...

    def local_mss_for(self, address: bytes) -> int:
        """The MSS we advertise and send at most on a new connection from `address` (the link MTU may change)."""
        ...

    def count(self, reason: Count) -> None:
        """Add one to a counter."""

    def emit(self, event: ev.Event) -> None:
        """Queue an event for the user."""

    def transmit(self, local: bytes, remote: bytes, segment: bytes) -> None:
        """Queue a built segment for the wire."""

    def send_reset_for(self, local: bytes, remote: bytes, seg: Segment, now: float) -> None:
        """Answer a segment no connection wants with a (rate-limited) RST."""

    def destroy(self, conn: Tcb, cause: Cause, error: str | None, *, notify: bool = True) -> None:
        """End `conn`: it enters CLOSED for `cause` and leaves the layer's tables."""

    def half_open_done(self, conn: Tcb) -> None:
        """`conn` left SYN-RECEIVED: it no longer counts against the half-open limits."""

    def entered_time_wait(self, conn: Tcb) -> None:
        """`conn` entered TIME-WAIT: it no longer counts against its source's limit."""


__all__ = ["Budgets", "Host"]
