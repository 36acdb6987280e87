"""Congestion control: RFC 5681 slow start and congestion avoidance with RFC 6582 NewReno fast recovery.

Why apart: the congestion window is arithmetic over acknowledgements, duplicate ACKs and timeouts; the
connection decides what those events are and does the retransmitting, this decides how much may be in flight.
"""

from __future__ import annotations

from netstack.tcp.config import TcpConfig
from netstack.tcp.seq import MASK, seq_ge, seq_gt


class NewReno:
    """cwnd, ssthresh and the fast-recovery bookkeeping of one connection (all in bytes). It keeps no
    configuration of its own (a reference per connection): the caller passes the layer's `TcpConfig`."""

    __slots__ = ("cwnd", "dupacks", "in_recovery", "recover", "ssthresh")

    def __init__(self, iss: int) -> None:
        self.cwnd = 0
        self.ssthresh = 1 << 30
        self.dupacks = 0
        self.recover = iss
        self.in_recovery = False

    def start(self, mss: int, cfg: TcpConfig) -> None:
        """The handshake settled the MSS: open the initial window (RFC 6928: IW10, capped at
        max(2 * MSS, 14600) bytes). Every kind of open (active, passive, SYN cookie) comes through here."""
        self.cwnd = min(cfg.initial_window_segments * mss, max(2 * mss, 14600))

    def duplicate_ack(self, ack: int, snd_una: int, snd_max: int, mss: int, cfg: TcpConfig) -> bool:
        """A duplicate ACK (RFC 5681 §2). True when it starts fast retransmit: the caller resends SND.UNA."""
        self.dupacks += 1
        if self.in_recovery:
            self.cwnd += mss  # RFC 6582 §3.2 step 3: inflate
            return False
        # RFC 6582 §3.2 step 2: only if the ACK covers more than `recover` (or nothing was ever lost).
        if self.dupacks != cfg.dupack_threshold or not (seq_gt(ack, self.recover) or self.recover == snd_una):
            return False
        self.ssthresh = max(((snd_max - snd_una) & MASK) // 2, 2 * mss)
        self.recover = snd_max
        self.in_recovery = True
        self.cwnd = self.ssthresh + 3 * mss
        return True

    def new_ack(self, ack: int, acked: int, snd_una: int, snd_max: int, mss: int, cfg: TcpConfig) -> bool:  # noqa: PLR0917
        """`acked` new bytes were acknowledged (SND.UNA already advanced to `snd_una`). True for a partial
        acknowledgement in recovery (RFC 6582 §3.2 step 5): the next hole is lost too, and the caller resends it."""
        partial = False
        if self.in_recovery:
            if seq_ge(ack, self.recover):
                # Full acknowledgement (RFC 6582 §3.2 step 3): deflate.
                self.cwnd = min(self.ssthresh, max((snd_max - snd_una) & MASK, mss) + mss)
                self.in_recovery = False
                self.dupacks = 0
            else:
                self.cwnd = max(self.cwnd - acked + mss, mss)
                partial = True
        else:
            self.dupacks = 0
            if self.cwnd < self.ssthresh:
                self.cwnd += min(acked, mss)                 # slow start (RFC 5681 §3.1, RFC 3465 L=1)
            else:
                self.cwnd += max(1, mss * mss // self.cwnd)  # congestion avoidance
        self.cwnd = min(self.cwnd, cfg.snd_buffer + 4 * mss)
        return partial

    def timeout(self, first: bool, snd_una: int, snd_max: int, mss: int) -> None:
        """The retransmission timer expired: RFC 5681 §3.1 eq. 4 (on the first expiry only) and the loss
        window; RFC 6582 §3.2 step 4: leave recovery."""
        if first:
            self.ssthresh = max(((snd_max - snd_una) & MASK) // 2, 2 * mss)
        self.cwnd = mss
        self.recover = snd_max
        self.in_recovery = False
        self.dupacks = 0


__all__ = ["NewReno"]
