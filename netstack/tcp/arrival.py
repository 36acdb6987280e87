"""SEGMENT ARRIVES (RFC 9293 §3.10.7): in SYN-SENT, and in every other state one method per step of §3.10.7.4.

With RFC 7323 (PAWS, timestamps), RFC 5961 (challenge ACKs instead of believing blind RSTs, SYNs and ACKs) and
RFC 1337 (no TIME-WAIT assassination). Each step says whether processing goes on; what a step does to the
state goes through `Tcb._enter`.
"""

from __future__ import annotations

from netstack.tcp import events as ev
from netstack.tcp.counters import Count
from netstack.tcp.receive import ReceiveSide
from netstack.tcp.segment import ACK, FIN, RST, SYN, Segment
from netstack.tcp.seq import MASK, seq_gt, seq_in, seq_le, seq_lt
from netstack.tcp.state import RECEIVES_DATA, Cause, State
from netstack.tcp.tcb import HANDSHAKE_DONE, TS_OPTION_LEN
from netstack.tcp.timers import INF
from netstack.tcp.window import receive_buffer_size

# What the first check (sequence number) makes of a segment.
_DROP, _ACCEPT, _ACK_ONLY = 0, 1, 2
# States in which an acceptable ACK may end something (`_ack_closes`).
_ACK_CLOSES = frozenset({State.FIN_WAIT_1, State.CLOSING, State.LAST_ACK, State.TIME_WAIT})


class Arrival(ReceiveSide):
    """Segment arrival, step by step."""

    __slots__ = ()

    def segment_arrived(self, now: float, seg: Segment) -> None:
        # (The peer is heard from, for keepalive, only once a segment passes the checks: `_process_ack`.)
        if self._state == State.SYN_SENT:
            self._syn_sent(now, seg)
        else:
            self._synchronized(now, seg)
        if self._state != State.CLOSED:
            self.output(now)

    def apply_peer_syn_options(self, seg: Segment) -> None:
        cfg = self.host.config
        opts = seg.options
        peer_mss = opts.mss if opts.mss is not None else cfg.default_peer_mss_for(self.remote)
        self.mss = self.bounded_mss(peer_mss)
        self.wscale_ok = cfg.window_scaling and opts.wscale is not None
        if self.wscale_ok and opts.wscale is not None:
            self.snd_wscale = opts.wscale
        else:
            self.snd_wscale = 0
            self.rcv_wscale = 0
        self.ts_enabled = cfg.timestamps and opts.ts_val is not None
        if self.ts_enabled and opts.ts_val is not None:
            self.ts_recent = opts.ts_val
            self.mss -= TS_OPTION_LEN
        self.irs = seg.seq
        self.rcv_nxt = (seg.seq + 1) & MASK
        self.rcv_adv = self.rcv_nxt
        self.rcv_buf_size = receive_buffer_size(cfg, self.mss + TS_OPTION_LEN if self.ts_enabled else self.mss)
        self.congestion.start(self.mss, cfg)

    def _syn_sent(self, now: float, seg: Segment) -> None:
        flags = seg.flags
        ack_ok = False
        if flags & ACK:
            if seq_le(seg.ack, self.iss) or seq_gt(seg.ack, self.snd_max):
                if not flags & RST:
                    self.host.count(Count.SYN_SENT_BAD_ACK)
                    self.host.send_reset_for(self.local, self.remote, seg, now)
                return
            ack_ok = True
        if flags & RST:
            if ack_ok:
                self.host.destroy(self, Cause.RCV_RST, "refused")
            else:
                self.host.count(Count.RST_WITHOUT_ACK_IN_SYN_SENT)
            return
        if not flags & SYN:
            self.host.count(Count.SYN_SENT_NO_SYN)
            return
        # (A FIN with the SYN never gets here: the layer drops SYN+FIN or strips its FIN, `drop_syn_fin`.)
        self.apply_peer_syn_options(seg)
        self.snd_wnd = seg.window  # never scaled in a SYN
        self.max_snd_wnd = self.snd_wnd
        self.snd_wl1 = seg.seq
        self.snd_wl2 = seg.ack
        if ack_ok:
            self.snd_una = seg.ack
            if self.rtt.timed_seq is not None and self.retries == 0:
                self.rtt.sample(now - self.rtt.timed_at, self.host.config)
            self.rtt.cancel()
            self.retries = 0
            self.backoff = 0
            self.timers.rtx = INF
            self.timers.phase = INF
            self._enter(State.ESTABLISHED, Cause.RCV_SYN_ACK)
            self.handshake = HANDSHAKE_DONE
            self.timers.last_progress = now
            self.timers.last_heard = now
            self.host.emit(ev.Connected(self.id))
            if len(seg.payload):
                self._receive_data(now, (seg.seq + 1) & MASK, seg.payload, False)
            self.send_ack(now)
            return
        # Simultaneous open (RFC 9293 §3.5, figure 8): answer with SYN-ACK of the same ISS.
        self._enter(State.SYN_RECEIVED, Cause.RCV_SYN)
        if len(seg.payload):
            self.handshake.syn_data = bytes(seg.payload[: self.free_space()])
        self.send_syn_ack(now, None)
        self.timers.rtx = now + self.rtt.rto

    def _established_from_syn_received(self, now: float, seg: Segment) -> None:
        self.snd_una = seg.ack
        self.snd_wnd = seg.window << self.snd_wscale
        self.max_snd_wnd = max(self.max_snd_wnd, self.snd_wnd)
        self.snd_wl1 = seg.seq
        self.snd_wl2 = seg.ack
        if self.retries == 0 and self.rtt.timed_at:
            self.rtt.sample(now - self.rtt.timed_at, self.host.config)
        self.retries = 0
        self.backoff = 0
        self.rtt.handshake_done(self.host.config)
        self.timers.rtx = INF
        self.timers.phase = INF
        self.timers.last_progress = now
        self._enter(State.ESTABLISHED, Cause.RCV_ACK_OF_SYN)
        if self.send_buffer.fin_queued:
            self._enter(State.FIN_WAIT_1, Cause.CLOSE)  # the user closed during the handshake
            if self.app_closed:
                self.timers.phase = now + self.host.config.orphan_timeout  # as `Connection.user_close` sets
        self.host.half_open_done(self)
        handshake = self.handshake
        self.handshake = HANDSHAKE_DONE
        if handshake.passive:
            self.host.emit(ev.Accepted(self.id, handshake.listener_port))
        else:
            self.host.emit(ev.Connected(self.id))
        if handshake.syn_data:
            self._receive_data(now, self.rcv_nxt, memoryview(handshake.syn_data), False)

    def _acceptable(self, seg: Segment, seg_len: int) -> bool:
        """RFC 9293 §3.10.7.4 first check, the four-case table."""
        wnd = self.rcv_wnd()
        seq = seg.seq
        if seg_len == 0:
            if wnd == 0:
                return seq == self.rcv_nxt
            return seq_in(seq, self.rcv_nxt, wnd)
        if wnd == 0:
            return False
        return seq_in(seq, self.rcv_nxt, wnd) or seq_in((seq + seg_len - 1) & MASK, self.rcv_nxt, wnd)

    def _synchronized(self, now: float, seg: Segment) -> None:
        """RFC 9293 §3.10.7.4, SEGMENT ARRIVES in SYN-RECEIVED and every later state: one method per step of the
        RFC (the third, security, and the sixth, URG, have nothing to do here), each saying whether to go on."""
        if self._state == State.SYN_RECEIVED:
            seg = self._simultaneous_open_ack(seg)
        if not self._preliminary_checks(now, seg):
            return
        verdict = self._check_sequence(now, seg)  # first
        if verdict == _DROP:
            return
        flags = seg.flags
        if flags & RST:
            self._check_rst(now, seg)  # second
            return
        if flags & SYN:
            self._check_syn(now)  # fourth
            return
        if not self._check_ack(now, seg, verdict == _ACCEPT or seg.seq == self.rcv_nxt):  # fifth
            return
        if self._state in _ACK_CLOSES and not self._ack_closes(now, seg, verdict == _ACK_ONLY):
            return
        if verdict == _ACK_ONLY:
            self.send_ack(now)
            return
        if seg.payload or flags & FIN:
            self._segment_text_and_fin(now, seg)  # seventh and eighth

    def _simultaneous_open_ack(self, seg: Segment) -> Segment:
        """In a simultaneous open (RFC 9293 figure 8) the peer's SYN-ACK repeats the SYN we already hold: what
        is new in it is the ACK, so it is processed as the ACK that follows the SYN."""
        if not self.handshake.passive and seg.flags & SYN and seg.flags & ACK and seg.seq == self.irs:
            return seg._replace(flags=seg.flags & ~SYN, seq=(seg.seq + 1) & MASK)
        return seg

    def _preliminary_checks(self, now: float, seg: Segment) -> bool:
        """What is judged before the sequence number: PAWS, flagless segments, RSTs in TIME-WAIT and a
        retransmitted SYN."""
        host = self.host
        flags = seg.flags
        # PAWS (RFC 7323 §5): a timestamp older than TS.Recent marks an old duplicate.
        ts_val = seg.options.ts_val
        if self.ts_enabled and ts_val is not None and not flags & RST and \
                ((self.ts_recent - ts_val) & MASK) < 0x80000000 and ts_val != self.ts_recent:
            host.count(Count.PAWS)
            self._oow_reply(now)
            return False
        if not flags & (ACK | SYN | RST):
            host.count(Count.NO_ACK)
            return False
        if flags & RST and self._state == State.TIME_WAIT:
            # RFC 1337 §3 fix F1, as FreeBSD does (Linux with net.ipv4.tcp_rfc1337=1), instead of RFC 9293
            # §3.10.7.4's "enter CLOSED": a RST, even one exactly at RCV.NXT (an old duplicate, or anyone who
            # guesses it), would end TIME-WAIT early ("TIME-WAIT assassination"), so a delayed segment of this
            # connection could be taken for data of the next one on the same ports (RFC 1337 hazards H1-H3).
            # Both sides have finished; nothing is lost by waiting out 2*MSL.
            host.count(Count.TIME_WAIT_RST_IGNORED)
            return False
        if self._state == State.SYN_RECEIVED and self.handshake.passive and flags & SYN and \
                not flags & (ACK | RST) and seg.seq == self.irs:
            # The peer retransmitted its SYN: our SYN-ACK was lost. Repeat it rather than challenge.
            host.count(Count.SYN_RETRANSMITTED)
            if self._oow_reply_allowed(now):
                self._emit(now, self.iss, SYN | ACK, options=self.handshake.syn_options)
            return False
        return True

    def _check_sequence(self, now: float, seg: Segment) -> int:
        """First: is the segment in the window? `_ACCEPT`, `_DROP` (answered as the RFC says), or `_ACK_ONLY`
        for a segment whose acknowledgement is news though its text is not."""
        flags = seg.flags
        seg_len = len(seg.payload) + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
        rcv_nxt = self.rcv_nxt
        if seg.seq == rcv_nxt and (seg_len == 0 or seq_lt(rcv_nxt, self.rcv_adv)):
            # The usual case, decided without computing the window: at RCV.NXT, an empty segment is always
            # acceptable and one with text is whenever the window we advertised is open.
            return _ACCEPT
        if self._acceptable(seg, seg_len):
            return _ACCEPT
        host = self.host
        if seg.seq == self.rcv_nxt and flags & ACK and not flags & SYN:
            # A segment with text at RCV.NXT fails the test only when our window is closed: a zero-window probe.
            # RFC 9293 §3.10.7.4: "special allowance should be made to accept valid ACKs, URGs, and RSTs" (BSD and
            # Linux take the ACK too). Its acknowledgement may be the only one the peer sends us while it probes;
            # its octet is dropped and answered, like an old segment's.
            host.count(Count.ZERO_WINDOW_PROBE_RECEIVED)
            return _ACK_ONLY
        if flags & RST:
            host.count(Count.RST_OUT_OF_WINDOW)
            return _DROP
        if flags & SYN and host.config.challenge_syn:
            host.count(Count.SYN_CHALLENGE_ACK)
            self.challenge_ack(now)
            return _DROP
        # Counted once: `old-segment` below, `out-of-window` otherwise.
        if self._state == State.SYN_RECEIVED:
            host.count(Count.OUT_OF_WINDOW)
            return _DROP
        end = (seg.seq + seg_len) & MASK
        if flags & SYN or not flags & ACK or seq_gt(end, self.rcv_nxt):
            host.count(Count.OUT_OF_WINDOW)
            self._oow_reply(now)
            return _DROP
        if ((self.rcv_nxt - end) & MASK) > max(self.rcv_buf_size, 1):
            # "Entirely old" by the modular comparison is half the sequence space: any SEQ a blind attacker
            # picks qualifies with even odds, and processing its ACK let it overwrite TS.Recent (PAWS then
            # drops the real peer) or acknowledge data the peer never received (audit-tcp #2, #3). No
            # retransmission of the peer's can end more than a window behind RCV.NXT (it sent nothing beyond a
            # window past an ACK of ours), and no window of ours exceeds the buffer: RFC 9293 §3.10.7.4's
            # answer, an ACK, and the segment dropped (Linux accepts nothing ending before rcv_wup).
            host.count(Count.OLD_SEGMENT)
            self._oow_reply(now)
            return _DROP
        # Old, within a window (a duplicate, or a keepalive probe at RCV.NXT - 1): its acknowledgement is still
        # news, as BSD treats it; the data is not.
        host.count(Count.OUT_OF_WINDOW)
        return _ACK_ONLY

    def _oow_reply_allowed(self, now: float) -> bool:
        """Whether one more reply that anyone knowing the 4-tuple can elicit 1:1 (an ACK to an unacceptable
        segment, a SYN-ACK repeated for a duplicate SYN) fits this second's `oow_reply_limit` (RFC 5961 §7's
        throttle, per connection so that it reveals nothing about others); counted when it does not."""
        if self.oow_budget.take(now, self.host.config.oow_reply_limit):
            return True
        self.host.count(Count.OOW_REPLY_RATE_LIMITED)
        return False

    def _oow_reply(self, now: float) -> None:
        """The ACK RFC 9293 §3.10.7.4 (and RFC 7323 §5.3 for PAWS) asks for, throttled (`_oow_reply_allowed`)."""
        if self._oow_reply_allowed(now):
            self.send_ack(now)

    def _check_rst(self, now: float, seg: Segment) -> None:
        """Second: a RST in the window (RFC 5961 §3.2: only one exactly at RCV.NXT is believed)."""
        host = self.host
        if host.config.challenge_rst and seg.seq != self.rcv_nxt:
            host.count(Count.RST_CHALLENGE_ACK)
            self.challenge_ack(now)
            return
        host.count(Count.RST_ACCEPTED)
        if self._state == State.SYN_RECEIVED:
            # A passive open goes back to LISTEN (figure 5, note 1): the user never saw it, so nobody is told.
            passive = self.handshake.passive
            host.destroy(self, Cause.RCV_RST, None if passive else "refused", notify=not passive)
        else:
            host.destroy(self, Cause.RCV_RST, "reset")

    def _check_syn(self, now: float) -> None:
        """Fourth: a SYN in the window of a synchronized connection (RFC 5961 §4.2: challenge, do not reset)."""
        host = self.host
        if host.config.challenge_syn:
            host.count(Count.SYN_CHALLENGE_ACK)
            self.challenge_ack(now)
            return
        host.count(Count.SYN_IN_WINDOW_RESET)
        self.send_rst(now)
        host.destroy(self, Cause.ABORT, "reset")

    def _check_ack(self, now: float, seg: Segment, in_window: bool) -> bool:
        """Fifth: the ACK field. Completes a handshake in SYN-RECEIVED, refuses ACKs outside RFC 5961 §5.2's
        [SND.UNA - MAX.SND.WND, SND.MAX], then advances the send side; False when processing stops. (The ACK
        bit is set: a segment without ACK, SYN or RST went in the preliminary checks, and SYN and RST before.)
        `in_window`: the segment passed the first check (or is a zero-window probe exactly at RCV.NXT), so its
        timestamp may become TS.Recent; an old one's never does."""
        host = self.host
        ack = seg.ack
        if self._state == State.SYN_RECEIVED:
            if not (seq_lt(self.snd_una, ack) and seq_le(ack, self.snd_max)):
                host.count(Count.SYN_RECEIVED_BAD_ACK)
                host.send_reset_for(self.local, self.remote, seg, now)
                return False
            self._established_from_syn_received(now, seg)
            if self.state == State.CLOSED:  # (the property: mypy narrowed _state above)
                return False  # data a simultaneous open's SYN carried reached a user who had closed
        if seq_gt(ack, self.snd_max):
            host.count(Count.ACK_UNSENT_DATA)
            self.challenge_ack(now)
            return False
        if host.config.ack_check and seq_lt(ack, (self.snd_una - self.max_snd_wnd) & MASK):
            host.count(Count.ACK_TOO_OLD)
            self.challenge_ack(now)
            return False
        ts_val = seg.options.ts_val
        if self.ts_enabled and ts_val is not None and in_window and seq_le(seg.seq, self.last_ack_sent):
            # RFC 7323 §4.3 (2) and §5.3 R3: only a segment that passed the window test (R2 comes first) and
            # starts at or before Last.ACK.sent, after the ACK checks (a segment dropped there records nothing);
            # PAWS has already refused a TSval older than TS.Recent.
            self.ts_recent = ts_val
        self._process_ack(now, seg)
        return self._state != State.CLOSED

    def _ack_closes(self, now: float, seg: Segment, old: bool) -> bool:
        """Fifth, continued: what the ACK of our FIN does in each closing state; False when processing stops."""
        state = self._state
        if state == State.FIN_WAIT_1 and self.send_buffer.fin_acked:
            self._enter(State.FIN_WAIT_2, Cause.RCV_ACK_OF_FIN)
            if self.app_closed:
                self.timers.phase = now + self.host.config.fin_wait_2_timeout
        elif state == State.CLOSING and self.send_buffer.fin_acked:
            self._enter_time_wait(now, Cause.RCV_ACK_OF_FIN)
            return False
        elif state == State.LAST_ACK and self.send_buffer.fin_acked:
            self.host.destroy(self, Cause.RCV_ACK_OF_FIN, None)
            return False
        elif state == State.TIME_WAIT:
            # Acknowledge anything but an exact duplicate ACK; a repeated FIN restarts the 2*MSL wait.
            fin = seg.flags & FIN
            if fin or seg.payload or old or seg.seq != self.rcv_nxt or seg.ack != self.snd_nxt:
                self.send_ack(now)
            if fin:
                self.timers.phase = now + 2 * self.host.config.msl
            return False
        return True

    def _segment_text_and_fin(self, now: float, seg: Segment) -> None:
        """Seventh and eighth: data and FIN go to the receive side while the peer may still send."""
        payload = seg.payload
        fin = seg.flags & FIN
        if self._state in RECEIVES_DATA:
            self._receive_data(now, seg.seq, payload, bool(fin))
        elif payload:
            self.host.count(Count.DATA_AFTER_FIN)
            self.send_ack(now)
