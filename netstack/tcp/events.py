"""What the TCP layer tells its user, drained with `TcpLayer.take_events()`.

Events carry a connection id, not data: received bytes wait in the connection's receive buffer until the user
calls `TcpLayer.receive`, which is what opens the window again (so a paused reader really pushes back).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Accepted:
    """A passive open completed: connection `conn` on listener port `port` is ESTABLISHED."""

    conn: int
    port: int


@dataclass(frozen=True, slots=True)
class Connected:
    """An active open (`TcpLayer.connect`) completed."""

    conn: int


@dataclass(frozen=True, slots=True)
class Readable:
    """The receive buffer went from empty to non-empty."""

    conn: int


@dataclass(frozen=True, slots=True)
class Writable:
    """Acknowledged data freed send-buffer space after a `send` could not take everything."""

    conn: int


@dataclass(frozen=True, slots=True)
class PeerClosed:
    """The peer's FIN arrived and every byte before it has been queued for reading (end of stream)."""

    conn: int


@dataclass(frozen=True, slots=True)
class Closed:
    """The connection is gone. `error` is None after an orderly close, else one of `ERRORS`."""

    conn: int
    error: str | None


ERRORS = frozenset({"reset", "refused", "timeout", "aborted", "unreachable", "idle"})

Event = Accepted | Connected | Readable | Writable | PeerClosed | Closed
