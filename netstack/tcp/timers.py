"""A connection's timers as absolute deadlines, and the clocks its idle and keepalive limits run from.

Why deadlines rather than timer objects: the layer keeps one heap entry per connection, at the earliest of
these (`Connection.deadline`), so arming or moving a timer costs an assignment, and a timer that is stopped is
simply INF. Nothing here reads a clock: every value was computed from a `now` the caller passed in.
"""

from __future__ import annotations

from netstack.tcp.config import TcpConfig

INF = float("inf")


class Timers:
    """`rtx`: retransmission (RFC 6298); `delack`: delayed ACK (RFC 1122 4.2.3.2); `persist`: zero-window
    probe (RFC 9293 §3.8.6.1); `phase`: the deadline of the phase the connection is in (the whole connect, the
    2*MSL of TIME-WAIT, an orphaned FIN-WAIT-2, an orphan's whole stay in FIN-WAIT-1, CLOSING or LAST-ACK
    under `orphan_timeout`). `last_heard` (a segment passed the sequence and ACK checks, `_process_ack`, or
    SYN-SENT reached ESTABLISHED; a segment dropped on the 4-tuple does not count), `last_activity` (data
    moved either way) and `last_progress` (the peer acknowledged something) start the keepalive, idle and user
    timeouts; `keepalive_sent` counts unanswered keepalive probes. `window_shut` is when we first probed the
    peer's closed window (INF: it is open), the start of `persist_timeout`: only the window opening clears it,
    never an ACK of a probe byte, so a peer cannot hold us by taking one byte at a time. `queued` is the
    layer's: the deadline of this connection's current entry in its timer heap (INF: none), written by the
    layer alone."""

    __slots__ = ("delack", "keepalive_sent", "last_activity", "last_heard", "last_progress", "persist",
                 "phase", "queued", "rtx", "window_shut")

    def __init__(self, now: float) -> None:
        self.rtx = INF
        self.delack = INF
        self.persist = INF
        self.phase = INF
        self.queued = INF
        self.keepalive_sent = 0
        self.last_heard = now
        self.last_activity = now
        self.last_progress = now
        self.window_shut = INF

    def idle_deadline(self, cfg: TcpConfig) -> float:
        return self.last_activity + cfg.idle_timeout

    def keepalive_deadline(self, cfg: TcpConfig) -> float:
        """When the next keepalive probe is due: the idle time, then one interval per probe already sent."""
        return self.last_heard + cfg.keepalive_idle + self.keepalive_sent * cfg.keepalive_interval


__all__ = ["INF", "Timers"]
