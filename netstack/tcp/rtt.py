"""Round-trip time estimation and the retransmission timeout (RFC 6298), with Karn's algorithm.

Why apart: the estimator is arithmetic on samples, with no say over what is sent; kept on its own it can be
checked against the RFC's formulas directly, and the connection only decides when a sample is valid (a
timestamp echo, or the one timed segment acknowledged before any retransmission).
"""

from __future__ import annotations

from netstack.tcp.config import TcpConfig


class RttEstimator:
    """SRTT, RTTVAR and RTO, plus the one segment being timed when timestamps are not in use.

    `timed_seq` is the sequence number whose acknowledgement ends the timing (None: nothing is timed);
    `timed_at` is when it was sent. Karn: a retransmission cancels the timing, so only segments sent once are
    ever measured. It keeps no configuration of its own (a reference per connection): the caller passes the
    layer's `TcpConfig`."""

    __slots__ = ("rto", "rttvar", "srtt", "timed_at", "timed_seq")

    def __init__(self, config: TcpConfig) -> None:
        self.srtt = 0.0
        self.rttvar = 0.0
        self.rto = config.rto_initial
        self.timed_seq: int | None = None
        self.timed_at = 0.0

    def sample(self, rtt: float, cfg: TcpConfig) -> None:
        """RFC 6298 §2.2 (first sample) and §2.3 (later ones); RTO clamped to [rto_min, rto_max]."""
        rtt = max(rtt, 0.0)
        if self.srtt == 0.0:
            self.srtt = rtt
            self.rttvar = rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt
        self.rto = min(max(self.srtt + max(cfg.clock_granularity, 4 * self.rttvar), cfg.rto_min), cfg.rto_max)

    def back_off(self, cfg: TcpConfig) -> None:
        """RFC 6298 §5.5: double the RTO after an expiry, up to `rto_max`."""
        self.rto = min(self.rto * 2, cfg.rto_max)

    def start(self, seq: int, now: float) -> None:
        """Time the segment ending at `seq`."""
        self.timed_seq = seq
        self.timed_at = now

    def cancel(self) -> None:
        """Karn: what was timed has been (or may be) retransmitted; its ACK is no sample."""
        self.timed_seq = None

    def handshake_done(self, cfg: TcpConfig) -> None:
        """RFC 6298 §5.7: an RTO backed off during the handshake goes back to its initial value unless a
        sample was taken; with one, it is at least `rto_min`."""
        self.rto = max(self.rto, cfg.rto_min) if self.srtt else cfg.rto_initial


__all__ = ["RttEstimator"]
