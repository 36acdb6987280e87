"""The sending side of a connection: building segments, the send loop within the windows, retransmission of
the first unacknowledged segment, and what an acknowledgement from the peer does to the send side.

The send buffer holds bytes from SND.UNA on (send_buffer.py), so a retransmission is a slice of it; congestion
control (congestion.py) and RTT estimation (rtt.py) are told of acknowledgements here.
"""

from __future__ import annotations

import struct

from netstack.tcp import events as ev
from netstack.tcp.counters import Count
from netstack.tcp.segment import ACK, FIN, HEADER, PSH, RST, SYN, Segment, build_options, finish_checksum, ones_sum
from netstack.tcp.seq import MASK, seq_gt, seq_le, seq_lt
from netstack.tcp.state import SYNCHRONIZED, State
from netstack.tcp.tcb import Tcb
from netstack.tcp.timers import INF
from netstack.tcp.window import MAX_RAW_WINDOW, window_shift

_U16 = struct.Struct("!H")
_TS_OPT = struct.Struct("!BBBBII")


class SendSide(Tcb):
    """Segments out, acknowledgements in."""

    __slots__ = ()

    def _emit(self, now: float, seq: int, flags: int, payload: bytes | bytearray | memoryview = b"",
              options: bytes | None = None) -> None:
        if options is None:
            options = _TS_OPT.pack(1, 1, 8, 10, self.ts_now(now), self.ts_recent) if self.ts_enabled else b""
        if flags & SYN:
            window = min(self.free_space(), MAX_RAW_WINDOW)
            self.rcv_adv = (self.rcv_nxt + window) & MASK
        elif flags & RST:
            window = 0
        else:
            window = self._window_field()
        ack = self.rcv_nxt if flags & ACK else 0
        header_len = 20 + len(options)
        header = HEADER.pack(self.local_port, self.remote_port, seq, ack, header_len << 2, flags, window, 0, 0)
        if options:
            header += options
        residue = self.pseudo_base + header_len + len(payload) + ones_sum(header)
        if payload:
            residue += ones_sum(payload)
        segment = header[:16] + _U16.pack(finish_checksum(residue)) + header[18:] + payload
        self.host.transmit(self.local, self.remote, segment)
        if flags & ACK:
            self.last_ack_sent = ack
            self.timers.delack = INF
            self.unacked_segments = 0

    def send_ack(self, now: float) -> None:
        """An ACK numbered SND.NXT, or the right edge of the peer's window when SND.NXT lies beyond it (a
        zero-window probe's octet, a window the peer shrank). A receiver whose window is closed accepts only
        SEG.SEQ = RCV.NXT (RFC 9293 §3.10.7.4; Linux and BSD alike) and drops anything beyond it unread, so an
        ACK numbered after the probe would never deliver what it acknowledges: two peers each waiting for the
        other's window to open would deadlock (Linux's tcp_acceptable_seq makes the same choice)."""
        seq = self.snd_nxt
        if self._state in SYNCHRONIZED:
            edge = (self.snd_una + self.snd_wnd) & MASK
            if seq_lt(edge, seq):
                seq = edge
        self._emit(now, seq, ACK)

    def send_rst(self, now: float) -> None:
        self._emit(now, self.snd_nxt, RST | ACK, options=b"")

    def challenge_ack(self, now: float) -> None:
        """RFC 5961 §3.2/§4.2/§5.2 challenge ACK, throttled (§7). The budget is per connection: a layer-wide
        counter is an off-path side channel (CVE-2016-5696) that reveals whether a guess hit a connection."""
        if not self.challenge_budget.take(now, self.host.config.challenge_ack_limit):
            self.host.count(Count.CHALLENGE_ACK_RATE_LIMITED)
            return
        self.host.count(Count.CHALLENGE_ACK)
        self.send_ack(now)

    def _syn_option_bytes(self, now: float, *, reply_to: Segment | None) -> bytes:
        cfg = self.host.config
        offer_ws = cfg.window_scaling and (reply_to is None or reply_to.options.wscale is not None)
        offer_ts = cfg.timestamps and (reply_to is None or reply_to.options.ts_val is not None)
        if offer_ws:
            self.rcv_wscale = window_shift(self.rcv_buf_size)
        ts = (self.ts_now(now), self.ts_recent if reply_to is not None else 0) if offer_ts else None
        return build_options(mss=self.rcv_mss, wscale=self.rcv_wscale if offer_ws else None, ts=ts)

    def send_syn(self, now: float) -> None:
        self.handshake.syn_options = self._syn_option_bytes(now, reply_to=None)
        self._emit(now, self.iss, SYN, options=self.handshake.syn_options)
        self.snd_nxt = (self.iss + 1) & MASK
        self.snd_max = self.snd_nxt
        self.rtt.start(self.iss, now)

    def send_syn_ack(self, now: float, syn: Segment | None) -> None:
        """Answer a SYN: a listener's new connection (`syn` given), or our own SYN-SENT one in a simultaneous
        open (`syn` None: `apply_peer_syn_options` has already settled what the peer's SYN agreed to). A
        SYN-ACK may carry window scale and timestamps only if the SYN it answers did (RFC 7323 §1.3, §3.2), so
        the options are rebuilt from that agreement rather than repeated from our SYN; the window scale keeps
        the value our SYN announced, which the peer may already be using."""
        if syn is not None:
            self.handshake.syn_options = self._syn_option_bytes(now, reply_to=syn)
        else:
            ts = (self.ts_now(now), self.ts_recent) if self.ts_enabled else None
            wscale = self.rcv_wscale if self.wscale_ok else None
            self.handshake.syn_options = build_options(mss=self.rcv_mss, wscale=wscale, ts=ts)
        self._emit(now, self.iss, SYN | ACK, options=self.handshake.syn_options)
        self.snd_nxt = (self.iss + 1) & MASK
        self.snd_max = self.snd_nxt
        self.rtt.timed_at = now

    def output(self, now: float) -> None:
        """Send what the windows allow: new data, a FIN, or arm the persist timer on a zero window."""
        state = self._state
        if state not in SYNCHRONIZED or state == State.TIME_WAIT:
            return
        buffer = self.send_buffer
        buflen = len(buffer.data)
        mss = self.mss
        cwnd = self.congestion.cwnd
        sent_any = False
        while True:
            off = (self.snd_nxt - self.snd_una) & MASK
            avail = buflen - off
            window = min(self.snd_wnd, cwnd)
            usable = window - off
            if avail > 0:
                if usable <= 0:
                    break
                n = min(mss, avail, usable)
                # Sender silly window avoidance (RFC 9293 §3.8.6.2.1): full segments, or everything that is
                # left, or at least half the largest window the peer has offered, or nothing in flight (the
                # ACK of what is in flight brings us back here). It holds back new data only: what a timeout
                # resends from SND.UNA (SND.NXT behind SND.MAX) is sent as the window allows. A peer whose SYN
                # offered 64 KiB and whose window then stayed at 100 bytes had its lost 100-byte segment never
                # resent (the rule waited for an ACK that could not come) until the connection was dropped.
                if n < mss and n < avail and n < self.max_snd_wnd // 2 and self.snd_max != self.snd_una and \
                        self.snd_nxt == self.snd_max:
                    break
                flags = ACK
                if n == avail:
                    flags |= PSH
                    if buffer.fin_queued:
                        flags |= FIN
                self._transmit(now, off, n, flags)
                sent_any = True
                continue
            if avail == 0 and buffer.fin_queued and not buffer.fin_acked and usable >= 0:
                self._transmit(now, off, 0, ACK | FIN)
                sent_any = True
            break
        if self.snd_max != self.snd_una:
            if self.timers.rtx == INF:
                self.timers.rtx = now + self.rtt.rto
            self.timers.persist = INF
        elif buflen and self.snd_wnd == 0:
            if self.timers.persist == INF:
                self.timers.persist = now + self._persist_interval()
        elif sent_any:
            self.timers.persist = INF

    def _persist_interval(self) -> float:
        cfg = self.host.config
        base = max(self.rtt.rto, cfg.persist_min)
        return min(base * (1 << min(self.backoff, 16)), cfg.persist_max)

    def _transmit(self, now: float, off: int, n: int, flags: int) -> None:
        """Send `n` bytes of the send buffer from offset `off` (relative to SND.UNA), plus FIN if flagged."""
        seq = (self.snd_una + off) & MASK
        payload = memoryview(self.send_buffer.data)[off:off + n] if n else b""
        try:
            self._emit(now, seq, flags, payload)
        finally:
            if isinstance(payload, memoryview):
                payload.release()
        end = (seq + n + (1 if flags & FIN else 0)) & MASK
        if seq_gt(end, self.snd_max):
            # New data: time it if nothing is being timed (Karn: only never-retransmitted data is timed).
            if self.rtt.timed_seq is None and not self.ts_enabled and self.snd_nxt == self.snd_max:
                self.rtt.start(seq, now)
            self.snd_max = end
        self.snd_nxt = end
        if n:
            self.timers.last_activity = now

    def retransmit_first(self, now: float) -> None:
        """Resend the segment at SND.UNA (fast retransmit, NewReno partial ACK, PMTU shrink): at most a segment
        of what was already sent. The send buffer may hold more than that, queued after a short segment that
        filled the peer's window; resending a full segment of it would go past the right edge the peer set."""
        buffer = self.send_buffer
        buflen = len(buffer.data)
        n = min(self.mss, buflen, (self.snd_max - self.snd_una) & MASK)
        flags = ACK
        if n == buflen and buffer.fin_queued and not buffer.fin_acked and \
                seq_gt(self.snd_max, (self.snd_una + buflen) & MASK):
            flags |= FIN
        if n == 0 and not flags & FIN:
            return
        saved_nxt = self.snd_nxt
        self._transmit(now, 0, n, flags)
        if seq_gt(saved_nxt, self.snd_nxt):
            self.snd_nxt = saved_nxt
        self.rtt.cancel()

    def _process_ack(self, now: float, seg: Segment) -> None:
        """An acceptable segment's ACK field (it passed the sequence and ACK checks, `Arrival._check_ack`).
        Only such a segment shows the peer alive, so only here is it heard from for keepalive (Linux's
        rcv_tstamp, set in tcp_ack): any segment on the 4-tuple, one then dropped as out of window, PAWS-failed
        or with an unacceptable ACK, did it before, and an off-path host that knows the ports alone could keep
        a dead peer from being detected until the idle timeout."""
        self.timers.last_heard = now
        self.timers.keepalive_sent = 0
        ack = seg.ack
        acked = (ack - self.snd_una) & MASK
        window = seg.window << self.snd_wscale
        if acked and acked < 0x80000000 and seq_le(ack, self.snd_max):
            self._new_ack(now, seg, acked)
        elif acked == 0 and self.snd_max != self.snd_una and not seg.payload and not seg.flags & FIN and \
                window == self.snd_wnd and window and \
                self.congestion.duplicate_ack(ack, self.snd_una, self.snd_max, self.mss, self.host.config):
            # A duplicate ACK (RFC 5681 §2 definition) that starts fast retransmit.
            self.host.count(Count.FAST_RETRANSMIT)
            self.retransmit_first(now)
        # Window update (RFC 9293 §3.10.7.4, SND.WL1/SND.WL2 rule)
        if seq_lt(self.snd_wl1, seg.seq) or (self.snd_wl1 == seg.seq and seq_le(self.snd_wl2, ack)):
            self.snd_wnd = window
            self.snd_wl1 = seg.seq
            self.snd_wl2 = ack
            self.max_snd_wnd = max(self.max_snd_wnd, window)
            if window:
                self.timers.persist = INF
                self.timers.window_shut = INF  # `persist_timeout` starts again at the next closed window
                if self.backoff and self.snd_max == self.snd_una:
                    self.backoff = 0

    def _new_ack(self, now: float, seg: Segment, acked: int) -> None:
        # RTT sample: timestamps echo (RFC 7323 §4) or the one timed segment; Karn excludes retransmissions.
        ecr = seg.options.ts_ecr
        if self.ts_enabled and ecr and self.retries == 0:
            self.rtt.sample(((self.ts_now(now) - ecr) & MASK) / 1000.0, self.host.config)
        elif self.rtt.timed_seq is not None and seq_gt(seg.ack, self.rtt.timed_seq):
            self.rtt.sample(now - self.rtt.timed_at, self.host.config)
            self.rtt.cancel()
        self.send_buffer.acknowledge(acked)
        self.snd_una = seg.ack
        # SND.WND counts from SND.UNA, so it shrinks by what was acknowledged and the right edge stays where the
        # peer put it; _process_ack then takes the segment's window if the SND.WL1/SND.WL2 rule allows. Without
        # this, an ACK that may not update the window (the peer's retransmission of an old segment, SEG.SEQ below
        # SND.WL1) slid the edge forward by `acked` and we sent that much beyond the window (BSD does the same).
        self.snd_wnd = self.snd_wnd - acked if self.snd_wnd > acked else 0
        if seq_lt(self.snd_nxt, self.snd_una):
            self.snd_nxt = self.snd_una
        self.retries = 0
        self.backoff = 0
        self.timers.last_progress = now
        if self.congestion.new_ack(seg.ack, acked, self.snd_una, self.snd_max, self.mss, self.host.config):
            self.host.count(Count.PARTIAL_ACK_RETRANSMIT)
            self.retransmit_first(now)
        self.timers.rtx = INF if self.snd_max == self.snd_una else now + self.rtt.rto
        if self.send_buffer.notify_writable and self.send_buffer.room() > 0:
            self.send_buffer.notify_writable = False
            self.host.emit(ev.Writable(self.id))
