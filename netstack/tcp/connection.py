"""One TCP connection: how it is made (active, passive and SYN-cookie opens), the user's calls, its timers and
the ICMP errors about it. The rest of it is in the classes it is built on (see tcb.py's docstring).
"""

from __future__ import annotations

from netstack.tcp import events as ev
from netstack.tcp import family
from netstack.tcp.arrival import Arrival
from netstack.tcp.counters import Count
from netstack.tcp.host import Host
from netstack.tcp.segment import ACK, SYN, Segment
from netstack.tcp.seq import MASK
from netstack.tcp.state import CAN_SEND, FIN_QUEUED_STATES, ORPHAN_STATES, SYNCHRONIZED, Cause, State
from netstack.tcp.tcb import TS_OPTION_LEN
from netstack.tcp.timers import INF
from netstack.tcp.window import cookie_receive_buffer, cookie_wscale, window_shift


class Connection(Arrival):
    """One connection of a `TcpLayer` (which alone creates them, through the constructors below)."""

    __slots__ = ()

    @classmethod
    def active_open(cls, host: Host, conn_id: int, local: bytes, local_port: int, remote: bytes,  # noqa: PLR0917
                    remote_port: int, iss: int, now: float) -> Connection:
        """`connect`: our SYN goes out at once."""
        conn = cls(host, conn_id, local, local_port, remote, remote_port, iss, now)
        conn._enter(State.SYN_SENT, Cause.ACTIVE_OPEN)
        conn.send_syn(now)
        conn.timers.rtx = now + conn.rtt.rto
        conn.timers.phase = now + host.config.connect_timeout
        return conn

    @classmethod
    def passive_open(cls, host: Host, conn_id: int, local: bytes, remote: bytes, syn: Segment,  # noqa: PLR0917
                     iss: int, now: float) -> Connection:
        """A listener's SYN: the connection is forked out of LISTEN and answers with its SYN-ACK."""
        conn = cls(host, conn_id, local, syn.dst_port, remote, syn.src_port, iss, now, State.LISTEN)
        conn.handshake.passive = True
        conn.handshake.listener_port = syn.dst_port
        conn._enter(State.SYN_RECEIVED, Cause.RCV_SYN)
        conn.apply_peer_syn_options(syn)
        conn.snd_wnd = conn.max_snd_wnd = syn.window  # never scaled in a SYN
        conn.snd_wl1 = syn.seq
        conn.send_syn_ack(now, syn)
        conn.timers.rtx = now + conn.rtt.rto
        conn.timers.phase = now + host.config.connect_timeout
        return conn

    @classmethod
    def cookie_open(cls, host: Host, conn_id: int, local: bytes, remote: bytes, ack: Segment,  # noqa: PLR0917
                    mss: int, window: int, now: float) -> Connection:
        """The ACK that returns a valid SYN cookie: the connection is rebuilt from what the cookie carried (the
        ISS, the MSS), what our stateless SYN-ACK advertised (`window`, unscaled) and, when the handshake
        agreed on timestamps, the peer's window scale that our TSval carried and its ACK echoes
        (`TcpLayer._send_cookie`). The ACK itself is then processed as usual, which completes the handshake."""
        cfg = host.config
        cookie = (ack.ack - 1) & MASK
        conn = cls(host, conn_id, local, ack.dst_port, remote, ack.src_port, cookie, now, State.LISTEN)
        conn.handshake.passive = True
        conn.handshake.listener_port = ack.dst_port
        conn._enter(State.SYN_RECEIVED, Cause.RCV_SYN)  # the SYN the cookie stands for
        opts = ack.options
        timestamps = cfg.timestamps and opts.ts_val is not None and bool(opts.ts_ecr)
        conn.rcv_buf_size = cookie_receive_buffer(cfg, mss, timestamps, conn.rcv_mss)
        conn.mss = conn.bounded_mss(mss)
        if timestamps and opts.ts_val is not None and opts.ts_ecr is not None:
            conn.ts_enabled = True
            conn.ts_recent = opts.ts_val
            conn.mss -= TS_OPTION_LEN
            peer_wscale = cookie_wscale(opts.ts_ecr)
            if peer_wscale is not None:
                conn.wscale_ok = True
                conn.snd_wscale = peer_wscale
                conn.rcv_wscale = window_shift(conn.rcv_buf_size)
        conn.irs = (ack.seq - 1) & MASK
        conn.rcv_nxt = ack.seq
        conn.last_ack_sent = ack.seq  # what the cookie SYN-ACK acknowledged
        # Data on the segment that completes the handshake, as when the bare ACK was lost, must fall inside
        # the window the cookie SYN-ACK advertised.
        conn.rcv_adv = (ack.seq + window) & MASK
        conn.congestion.start(conn.mss, cfg)
        conn.snd_nxt = conn.snd_max = (cookie + 1) & MASK
        conn.snd_wl1 = ack.seq
        return conn

    def user_send(self, now: float, data: bytes | bytearray | memoryview) -> int:
        buffer = self.send_buffer
        space = buffer.room()
        if buffer.budget_limited(space, len(data)):
            self.host.count(Count.SND_BUDGET_EXHAUSTED)
        take = buffer.write(data, space)
        if take:
            self.timers.last_activity = now
            if self.snd_max == self.snd_una:
                self.timers.last_progress = now
            self.output(now)
        return take

    def user_shutdown(self, now: float) -> None:
        """Queue our FIN after the buffered data (SHUT_WR)."""
        state = self._state
        if self.send_buffer.fin_queued or state in FIN_QUEUED_STATES:
            return
        if state == State.SYN_SENT:
            self.host.destroy(self, Cause.CLOSE, None, notify=False)
            return
        # In SYN-RECEIVED the FIN waits for the handshake to complete (_established_from_syn_received).
        if state == State.ESTABLISHED:
            self._enter(State.FIN_WAIT_1, Cause.CLOSE)
        elif state == State.CLOSE_WAIT:
            self._enter(State.LAST_ACK, Cause.CLOSE)
        self.send_buffer.fin_queued = True
        self.output(now)

    def user_close(self, now: float) -> None:
        """Close for both directions: the application will neither send nor read any more (RFC 9293 §3.6.1's
        "half-duplex" close; `user_shutdown` is the RFC's CLOSE that keeps receiving). The FIN follows
        buffered data and the connection lingers in the layer until the peer is done: an orphaned FIN-WAIT-2
        for at most `fin_wait_2_timeout`, FIN-WAIT-1, CLOSING and LAST-ACK for at most `orphan_timeout` in all
        (`_phase_ended`). Received data nobody read is lost, and SHLD-2 says to tell the
        peer so with a RST rather than a FIN that claims an orderly end (Linux does; a peer's lingering close
        avoids it by reading to the end first); data arriving later is answered the same way
        (`ReceiveSide._receive_data`)."""
        self.app_closed = True
        self.reading_paused = True
        state = self._state
        if self.rcvbuf and state in SYNCHRONIZED and state != State.TIME_WAIT:
            self.host.count(Count.CLOSE_WITH_UNREAD_DATA)
            self.send_rst(now)
            self.host.destroy(self, Cause.ABORT, "aborted", notify=False)
            return
        self.discard_received()  # out-of-order data only (never acknowledged), or TIME-WAIT's leftovers
        if state == State.SYN_SENT:
            self.host.destroy(self, Cause.CLOSE, None, notify=False)
            return
        self.user_shutdown(now)
        if self._state == State.FIN_WAIT_2:
            self.timers.phase = now + self.host.config.fin_wait_2_timeout
        elif self._state in ORPHAN_STATES:
            self.timers.phase = now + self.host.config.orphan_timeout

    def pause_reading(self) -> None:
        self.reading_paused = True

    def resume_reading(self) -> None:
        self.reading_paused = False
        if self.rcvbuf and not self.readable_pending:
            self.readable_pending = True
            self.host.emit(ev.Readable(self.id))

    def path_mtu_reduced(self, now: float, next_hop_mtu: int) -> bool:
        """Fragmentation needed (packet too big over IPv6): shrink the MSS to the path and resend what it no
        longer fits; True if the MSS shrank (RFC 1191, RFC 8201). The layer has already held `next_hop_mtu` to its
        family's floor (`min_path_mtu`, or IPv6's 1280)."""
        path_mss = next_hop_mtu - family.overhead(self.local)
        if path_mss >= self.path_mss:
            return False
        # Kept in every state, for `bounded_mss`: in SYN-SENT the MSS is only a placeholder until the peer's
        # SYN sets it, and that must not bring back what the path no longer carries.
        self.path_mss = path_mss
        new_mss = path_mss - (TS_OPTION_LEN if self.ts_enabled else 0)
        if new_mss >= self.mss:
            return False
        self.mss = new_mss
        # Resent only once synchronized: before that the one number in flight is our SYN's (ISS), and after
        # a simultaneous open with data queued retransmit_first put a byte of it there (review s26 #3). The
        # SYN or SYN-ACK carries no data, and the data is first sent at the new MSS.
        if self._state in SYNCHRONIZED:
            self.retransmit_first(now)
        return True

    def soft_error(self, error: str) -> None:
        """Remember an error that does not end the connection; it becomes the reason if a timeout does."""
        self.error = error

    def on_timer(self, now: float) -> None:
        """Run whatever timer is due; the layer calls this at `deadline()`."""
        timers = self.timers
        if timers.phase <= now:
            timers.phase = INF
            if self._phase_ended(now):
                return
        if timers.rtx <= now:
            timers.rtx = INF
            self._retransmit_timeout(now)
            if self._state == State.CLOSED:
                return
        if timers.persist <= now:
            timers.persist = INF
            self._persist_probe(now)
        if timers.delack <= now:
            timers.delack = INF
            self.send_ack(now)
        if self._state in SYNCHRONIZED and self._state != State.TIME_WAIT:
            self._idle_and_keepalive(now)

    def _phase_ended(self, now: float) -> bool:
        """The phase timer expired: TIME-WAIT's 2*MSL is over, the handshake took too long (the whole connect,
        BSD's keepinit), an orphaned FIN-WAIT-2 waited long enough, or an orphan still sending (FIN-WAIT-1,
        CLOSING, LAST-ACK) used up `orphan_timeout`. That last bound is the one a peer cannot stretch: every
        other timer of a sending connection restarts on progress, and a peer that acknowledges one byte at a
        time through a 1-byte window makes progress while holding the connection, its table slot and its send
        buffer for as long as it likes. Nobody is left to read or write on an orphan, so what it could not
        deliver in that time is given up with a RST. True if the phase ended the connection."""
        state = self._state
        if state == State.TIME_WAIT:
            self.host.destroy(self, Cause.TIMEOUT_2MSL, None)
        elif state in (State.SYN_SENT, State.SYN_RECEIVED):
            self._give_up(now, "timeout")
        elif state == State.FIN_WAIT_2:
            self.host.count(Count.FIN_WAIT_2_TIMEOUT)
            self.host.destroy(self, Cause.TIMEOUT, None)
        elif state in ORPHAN_STATES and self.app_closed:
            self.host.count(Count.ORPHAN_TIMEOUT)
            self._give_up(now, "timeout")
        else:
            return False
        return True

    def _idle_and_keepalive(self, now: float) -> None:
        """A synchronized connection silent for `idle_timeout` is dropped; one we may send on is probed after
        `keepalive_idle` (RFC 9293 §3.8.4: SEG.SEQ = SND.NXT - 1 elicits an ACK) and dropped after
        `keepalive_probes` unanswered probes."""
        cfg = self.host.config
        timers = self.timers
        if now >= timers.idle_deadline(cfg):
            self.host.count(Count.IDLE_TIMEOUT)
            self._give_up(now, "idle")
            return
        if cfg.keepalive and self._state in CAN_SEND and now >= timers.keepalive_deadline(cfg):
            if timers.keepalive_sent >= cfg.keepalive_probes:
                self.host.count(Count.KEEPALIVE_TIMEOUT)
                self._give_up(now, "timeout")
                return
            timers.keepalive_sent += 1
            self._emit(now, (self.snd_una - 1) & MASK, ACK)

    def _give_up(self, now: float, error: str) -> None:
        if self._state in SYNCHRONIZED or self._state == State.SYN_RECEIVED:
            self.send_rst(now)
        self.host.destroy(self, Cause.TIMEOUT, error)

    def _retransmit_timeout(self, now: float) -> None:
        cfg = self.host.config
        self.retries += 1
        self.rtt.cancel()  # Karn: nothing sent before this timeout can be timed
        state = self._state
        if state in (State.SYN_SENT, State.SYN_RECEIVED):
            if self.retries > cfg.syn_retries:
                self.host.count(Count.SYN_RETRIES_EXCEEDED)
                self._give_up(now, "timeout")
                return
            self._backoff()
            if state == State.SYN_SENT:
                self._emit(now, self.iss, SYN, options=self.handshake.syn_options)
            else:
                self._emit(now, self.iss, SYN | ACK, options=self.handshake.syn_options)
            self.timers.rtx = now + self.rtt.rto
            return
        if self.snd_max == self.snd_una:
            return
        if self.snd_wnd == 0 and self.send_buffer.data:
            # Still probing a zero window: the peer answers, so this is not a dead connection, but one whose
            # window stays shut is given up after `persist_timeout` (`_window_shut_too_long`).
            if self._window_shut_too_long(now):
                return
            self.retries -= 1
            self.backoff += 1
            self.host.count(Count.WINDOW_PROBE)
            self._emit(now, self.snd_una, ACK, self.send_buffer.data[:1])
            self.timers.rtx = now + self._persist_interval()
            return
        if self.retries > cfg.data_retries or now - self.timers.last_progress >= cfg.user_timeout:
            self.host.count(Count.RETRANSMIT_TIMEOUT)
            self._give_up(now, self.error if self.error == "unreachable" else "timeout")
            return
        self._backoff()
        self.congestion.timeout(self.retries == 1, self.snd_una, self.snd_max, self.mss)
        self.snd_nxt = self.snd_una
        self.timers.rtx = INF
        self.output(now)
        if self.timers.rtx == INF:
            self.timers.rtx = now + self.rtt.rto

    def _backoff(self) -> None:
        self.backoff += 1
        self.rtt.back_off(self.host.config)

    def _persist_probe(self, now: float) -> None:
        """Zero-window probe (RFC 9293 §3.8.6.1): send one byte of new data beyond the closed window; from then
        on the retransmission timer repeats it with backoff, without counting toward `data_retries`."""
        if self._state not in SYNCHRONIZED or not self.send_buffer.data or self.snd_wnd != 0 or \
                self.snd_max != self.snd_una:
            return
        if self._window_shut_too_long(now):
            return
        self.host.count(Count.WINDOW_PROBE)
        self._transmit(now, 0, 1, ACK)
        self.backoff += 1
        self.timers.rtx = now + self._persist_interval()

    def _window_shut_too_long(self, now: float) -> bool:
        """Before a zero-window probe: give up (True) once the peer's window has stayed shut for
        `persist_timeout` since our first probe. The clock (`Timers.window_shut`) stops only when the window
        opens (`SendSide._process_ack`), not when a probe's byte is acknowledged: that ACK moves SND.UNA and
        so looks like progress, and a peer acknowledging one probe byte every few minutes with its window
        still 0 held a connection (an orphan above all, with its send buffer and table slot) for as long as
        it liked. RFC 9293 §3.8.6.1 keeps probing while the peer answers; RFC 6429 allows ending it for the
        sake of resources. This is stricter than Linux's default, which probes for as long as probes are
        answered and bounds only unanswered ones (tcp_retries2, tcp_orphan_retries for orphans); it is what
        Linux does with TCP_USER_TIMEOUT set, where the bound runs from the first probe (icsk_probes_tstamp).
        We bound it always, because an answered probe costs a peer nothing and holds our send buffer and
        table slot. The cost: a peer whose application stops reading for longer than `persist_timeout` (a
        paused download) is aborted, where Linux by default would wait; a reader that reads opens its window
        within the limit and is not affected."""
        timers = self.timers
        if timers.window_shut == INF:
            timers.window_shut = now
        if now - timers.window_shut < self.host.config.persist_timeout:
            return False
        self.host.count(Count.PERSIST_TIMEOUT)
        self._give_up(now, "timeout")
        return True


__all__ = ["Connection"]
