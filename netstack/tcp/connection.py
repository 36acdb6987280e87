"""One TCP connection: the RFC 9293 state machine with RFC 7323, 6298, 5681/6582, 5961 and 1337 behaviour.

Sans-I/O: every entry point takes `now`; segments go out through the owning layer's outgoing list and events
through its event list. The send buffer holds bytes from SND.UNA on (unacknowledged, then unsent), so a
retransmission is a slice of it; the receive buffer holds in-order bytes the user has not read yet, and its
free space is the window. Both are bytearrays: deleting from the front of a bytearray is O(1) in CPython.
"""

from __future__ import annotations

import struct

from netstack.tcp import events as ev
from netstack.tcp.congestion import NewReno
from netstack.tcp.counters import Count
from netstack.tcp.host import Host
from netstack.tcp.receive import NO_REASSEMBLY, Reassembly
from netstack.tcp.rtt import RttEstimator
from netstack.tcp.segment import (
    ACK,
    FIN,
    HEADER,
    PSH,
    RST,
    SYN,
    Segment,
    build_options,
    finish_checksum,
    ones_sum,
)
from netstack.tcp.send_buffer import SendBuffer
from netstack.tcp.seq import MASK, seq_diff, seq_gt, seq_in, seq_le, seq_lt
from netstack.tcp.state import (
    CAN_SEND,
    FIN_QUEUED_STATES,
    RECEIVES_DATA,
    SYNCHRONIZED,
    TRANSITIONS,
    Cause,
    IllegalTransitionError,
    State,
)
from netstack.tcp.timers import INF, Timers
from netstack.tcp.window import MAX_RAW_WINDOW, receive_buffer_size, window_shift

_U16 = struct.Struct("!H")
_TS_OPT = struct.Struct("!BBBBII")
TS_OPTION_LEN = 12
# What the first check (sequence number) makes of a segment.
_DROP, _ACCEPT, _ACK_ONLY = 0, 1, 2
# States in which an acceptable ACK may end something (`_ack_closes`).
_ACK_CLOSES = frozenset({State.FIN_WAIT_1, State.CLOSING, State.LAST_ACK, State.TIME_WAIT})


class Connection:
    __slots__ = (
        "_state",
        "_syn_options",
        "app_closed",
        "backoff",
        "budgets",
        "challenge_count",
        "challenge_second",
        "congestion",
        "error",
        "host",
        "id",
        "irs",
        "iss",
        "key",
        "listener_port",
        "local",
        "local_port",
        "max_snd_wnd",
        "mss",
        "passive",
        "pseudo_base",
        "rcv_adv",
        "rcv_buf_size",
        "rcv_mss",
        "rcv_nxt",
        "rcv_wscale",
        "rcvbuf",
        "readable_pending",
        "reading_paused",
        "reassembly",
        "remote",
        "remote_port",
        "retries",
        "rtt",
        "send_buffer",
        "snd_max",
        "snd_nxt",
        "snd_una",
        "snd_wl1",
        "snd_wl2",
        "snd_wnd",
        "snd_wscale",
        "syn_data",
        "timers",
        "ts_enabled",
        "ts_offset",
        "ts_recent",
        "unacked_segments",
        "wscale_ok",
    )

    def __init__(self, host: Host, conn_id: int, local: bytes, local_port: int, remote: bytes,  # noqa: PLR0917
                 remote_port: int, iss: int, now: float, state: State = State.CLOSED) -> None:
        cfg = host.config
        self.host = host
        self.budgets = host.budgets
        self.id = conn_id
        self.key = (remote, remote_port, local, local_port)
        self.local = local
        self.local_port = local_port
        self.remote = remote
        self.remote_port = remote_port
        self.pseudo_base = (int.from_bytes(local + remote, "big") + 6) % 0xFFFF
        self._state = state
        self.passive = False
        self.listener_port = 0
        self.app_closed = False
        self.error: str | None = None
        self.challenge_second = -1
        self.challenge_count = 0
        # send side
        self.iss = iss
        self.snd_una = iss
        self.snd_nxt = iss
        self.snd_max = iss
        self.snd_wnd = 0
        self.max_snd_wnd = 0
        self.snd_wl1 = 0
        self.snd_wl2 = 0
        self.snd_wscale = 0
        self.send_buffer = SendBuffer(cfg, host.budgets)
        self.mss = cfg.default_peer_mss
        # receive side
        self.irs = 0
        self.rcv_nxt = 0
        self.rcv_adv = 0
        self.rcv_wscale = 0
        self.rcv_mss = cfg.local_mss
        self.rcv_buf_size = cfg.rcv_buffer
        self.rcvbuf = bytearray()
        self.reassembly = NO_REASSEMBLY  # a queue of its own from the first out-of-order segment on
        self.reading_paused = False
        self.readable_pending = False
        self.syn_data = b""
        self.unacked_segments = 0
        # options
        self.wscale_ok = False
        self.ts_enabled = False
        self.ts_recent = 0
        self.ts_offset = (iss * 2654435761) & MASK
        self._syn_options = b""
        # RTT / RTO (RFC 6298)
        self.rtt = RttEstimator(cfg)
        self.backoff = 0
        self.retries = 0
        # congestion control (RFC 5681 / 6582)
        self.congestion = NewReno(cfg, iss)
        self.timers = Timers(cfg, now)

    # ------------------------------------------------------------------ constructors

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
        conn.passive = True
        conn.listener_port = syn.dst_port
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
        ISS, the MSS) and what our stateless SYN-ACK advertised (`window`, unscaled: a cookie offers no window
        scale, nor timestamps). The ACK itself is then processed as usual, which completes the handshake."""
        cfg = host.config
        cookie = (ack.ack - 1) & MASK
        conn = cls(host, conn_id, local, ack.dst_port, remote, ack.src_port, cookie, now, State.LISTEN)
        conn.passive = True
        conn.listener_port = ack.dst_port
        conn._enter(State.SYN_RECEIVED, Cause.RCV_SYN)  # the SYN the cookie stands for
        conn.mss = max(cfg.min_mss, min(mss, cfg.local_mss))
        conn.irs = (ack.seq - 1) & MASK
        conn.rcv_nxt = ack.seq
        # Data on the segment that completes the handshake, as when the bare ACK was lost, must fall inside
        # the window the cookie SYN-ACK advertised.
        conn.rcv_adv = (ack.seq + window) & MASK
        conn.rcv_buf_size = receive_buffer_size(cfg, conn.mss)
        conn.congestion.start(conn.mss)
        conn.snd_nxt = conn.snd_max = (cookie + 1) & MASK
        conn.snd_wl1 = ack.seq
        return conn

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> State:
        """Read-only: a state changes only through `_enter`, which checks it against `TRANSITIONS`."""
        return self._state

    def _enter(self, state: State, cause: Cause) -> None:
        """The one place a connection changes state; a change not in the table raises `IllegalTransitionError`."""
        if TRANSITIONS[self._state].get(cause) is not state:
            raise IllegalTransitionError(self._state, cause, state)
        self._state = state

    def closed(self, cause: Cause, error: str | None) -> None:
        """Enter CLOSED and let go of timers and buffers; `TcpLayer.destroy` calls this, then forgets us."""
        self._enter(State.CLOSED, cause)
        self.error = error
        timers = self.timers
        timers.rtx = timers.delack = timers.persist = timers.phase = INF
        self.send_buffer.discard()
        self.discard_received()

    # ------------------------------------------------------------------ helpers

    def __repr__(self) -> str:
        return f"<Connection {self.id} {self._state.name} {self.local_port}<->{self.remote_port}>"

    def deadline(self) -> float:
        """When `on_timer` must run next: the earliest timer, and once synchronized the idle limit and (while
        we may send) the next keepalive probe. On every segment's path, so computed here in one piece."""
        timers = self.timers
        d = min(timers.rtx, timers.delack, timers.persist, timers.phase)
        state = self._state
        if state in SYNCHRONIZED and state != State.TIME_WAIT:
            cfg = self.host.config
            d = min(d, timers.last_activity + cfg.idle_timeout)
            if cfg.keepalive and state in CAN_SEND:
                d = min(d, timers.last_heard + cfg.keepalive_idle + timers.keepalive_sent * cfg.keepalive_interval)
        return d

    def ts_now(self, now: float) -> int:
        return (int(now * 1000) + self.ts_offset) & MASK

    def free_space(self) -> int:
        """Room in the receive buffer, within the layer's shared budget (`TcpConfig.rcv_budget`); a connection
        may always fill `rcv_guaranteed` bytes, so paused readers elsewhere slow other connections down but
        cannot stop them."""
        held = len(self.rcvbuf)
        room = self.rcv_buf_size - held
        host = self.host
        cfg = host.config
        allowed = cfg.rcv_budget - self.budgets.rcv_held
        if allowed < room:  # rare: only with the budget nearly spent (this is on every segment's path)
            room = min(room, max(allowed, cfg.rcv_guaranteed - held))
        return room if room > 0 else 0

    def _rcv_append(self, data: bytes | memoryview) -> None:
        self.rcvbuf += data
        self.budgets.rcv_held += len(data)

    def _ooo_charge(self) -> int:
        """What this connection's out-of-order queue costs against `TcpConfig.ooo_budget`."""
        return self.reassembly.charge(self.host.config.ooo_entry_overhead)

    def discard_received(self) -> None:
        """Drop unread and out-of-order data (the application closed, or the connection is gone) and give its
        share of the layer's budgets back."""
        self.budgets.rcv_held -= len(self.rcvbuf)
        self.rcvbuf = bytearray()
        if self.reassembly.segments:
            self._drop_reassembly()

    def _drop_reassembly(self) -> None:
        self.budgets.ooo_held -= self._ooo_charge()
        self.reassembly = NO_REASSEMBLY

    def rcv_wnd(self) -> int:
        """The window segments are checked against: what we advertised, or more if the buffer has room."""
        advertised = max(0, seq_diff(self.rcv_adv, self.rcv_nxt))
        if self._state == State.TIME_WAIT or (self._state == State.SYN_RECEIVED and self.passive):
            return advertised  # no buffer behind these (BSD's syncache and time-wait entries)
        return max(self.free_space(), advertised)

    def _window_field(self) -> int:
        """Raw window for the header; never shrinks the right edge already advertised (RFC 9293 §3.8.6.2.2)."""
        free = self.free_space()
        # Receiver-side silly window avoidance: do not advertise a tiny opening.
        if free < min(self.rcv_buf_size // 2, self.rcv_mss):
            free = 0
        raw = min(free >> self.rcv_wscale, MAX_RAW_WINDOW)
        edge = (self.rcv_nxt + (raw << self.rcv_wscale)) & MASK
        if seq_lt(edge, self.rcv_adv):
            raw = min(max(0, seq_diff(self.rcv_adv, self.rcv_nxt)) >> self.rcv_wscale, MAX_RAW_WINDOW)
            edge = (self.rcv_nxt + (raw << self.rcv_wscale)) & MASK
        if seq_gt(edge, self.rcv_adv):
            self.rcv_adv = edge
        return raw

    # ------------------------------------------------------------------ output

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
        second = int(now)
        if second != self.challenge_second:
            self.challenge_second = second
            self.challenge_count = 0
        if self.challenge_count >= self.host.config.challenge_ack_limit:
            self.host.count(Count.CHALLENGE_ACK_RATE_LIMITED)
            return
        self.challenge_count += 1
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
        self._syn_options = self._syn_option_bytes(now, reply_to=None)
        self._emit(now, self.iss, SYN, options=self._syn_options)
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
            self._syn_options = self._syn_option_bytes(now, reply_to=syn)
        else:
            ts = (self.ts_now(now), self.ts_recent) if self.ts_enabled else None
            self._syn_options = build_options(mss=self.rcv_mss, wscale=self.rcv_wscale if self.wscale_ok else None,
                                              ts=ts)
        self._emit(now, self.iss, SYN | ACK, options=self._syn_options)
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
                # left, or at least half the largest window the peer has offered.
                if n < mss and n < avail and n < self.max_snd_wnd // 2 and self.snd_max != self.snd_una:
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

    # ------------------------------------------------------------------ user calls

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

    def user_receive(self, now: float, max_bytes: int) -> bytes:
        n = min(max_bytes, len(self.rcvbuf))
        if n <= 0:
            return b""
        data = bytes(self.rcvbuf[:n])
        del self.rcvbuf[:n]
        self.budgets.rcv_held -= n
        self.readable_pending = False
        if self._state in RECEIVES_DATA:
            # Window update when the opening is worth it: two segments or half the buffer (RFC 1122 4.2.3.3).
            advertised = max(0, seq_diff(self.rcv_adv, self.rcv_nxt))
            if self.free_space() - advertised >= min(2 * self.rcv_mss, self.rcv_buf_size // 2):
                self.send_ack(now)
        return data

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
        """Orderly close: unread data is dropped and the FIN follows buffered data; the connection lingers in
        the layer until the peer is done (an orphaned FIN-WAIT-2 for at most `fin_wait_2_timeout`)."""
        self.app_closed = True
        self.reading_paused = True
        self.discard_received()
        if self._state == State.SYN_SENT:
            self.host.destroy(self, Cause.CLOSE, None, notify=False)
            return
        self.user_shutdown(now)
        if self._state == State.FIN_WAIT_2:
            self.timers.phase = now + self.host.config.fin_wait_2_timeout

    def pause_reading(self) -> None:
        self.reading_paused = True

    def resume_reading(self) -> None:
        self.reading_paused = False
        if self.rcvbuf and not self.readable_pending:
            self.readable_pending = True
            self.host.emit(ev.Readable(self.id))

    # ------------------------------------------------------------------ ICMP (RFC 5927: the layer checked it)

    def path_mtu_reduced(self, now: float, next_hop_mtu: int) -> bool:
        """Fragmentation needed: shrink the MSS to the path and resend what it no longer fits; True if it
        shrank (RFC 1191, without ever going below `min_mss`)."""
        cfg = self.host.config
        new_mss = max(cfg.min_mss, next_hop_mtu - 40 - (TS_OPTION_LEN if self.ts_enabled else 0))
        if new_mss >= self.mss:
            return False
        self.mss = new_mss
        if self._state != State.SYN_SENT:
            self.retransmit_first(now)
        return True

    def soft_error(self, error: str) -> None:
        """Remember an error that does not end the connection; it becomes the reason if a timeout does."""
        self.error = error

    # ------------------------------------------------------------------ timers

    def on_timer(self, now: float) -> None:
        cfg = self.host.config
        if self.timers.phase <= now:
            self.timers.phase = INF
            if self._state == State.TIME_WAIT:
                self.host.destroy(self, Cause.TIMEOUT_2MSL, None)
                return
            if self._state in (State.SYN_SENT, State.SYN_RECEIVED):
                self._give_up(now, "timeout")
                return
            if self._state == State.FIN_WAIT_2:
                self.host.count(Count.FIN_WAIT_2_TIMEOUT)
                self.host.destroy(self, Cause.TIMEOUT, None)
                return
        if self.timers.rtx <= now:
            self.timers.rtx = INF
            self._retransmit_timeout(now)
            if self._state == State.CLOSED:
                return
        if self.timers.persist <= now:
            self.timers.persist = INF
            self._persist_probe(now)
        if self.timers.delack <= now:
            self.timers.delack = INF
            self.send_ack(now)
        if self._state in SYNCHRONIZED and self._state != State.TIME_WAIT:
            if now >= self.timers.idle_deadline():
                self.host.count(Count.IDLE_TIMEOUT)
                self._give_up(now, "idle")
                return
            if cfg.keepalive and self._state in CAN_SEND and now >= self.timers.keepalive_deadline():
                if self.timers.keepalive_sent >= cfg.keepalive_probes:
                    self.host.count(Count.KEEPALIVE_TIMEOUT)
                    self._give_up(now, "timeout")
                    return
                self.timers.keepalive_sent += 1
                # RFC 9293 §3.8.4: a segment with SEG.SEQ = SND.NXT-1 elicits an ACK.
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
                self._emit(now, self.iss, SYN, options=self._syn_options)
            else:
                self._emit(now, self.iss, SYN | ACK, options=self._syn_options)
            self.timers.rtx = now + self.rtt.rto
            return
        if self.snd_max == self.snd_una:
            return
        if self.snd_wnd == 0 and self.send_buffer.data:
            # Still probing a zero window: the peer answers, so this is not a dead connection.
            if now - self.timers.last_progress >= cfg.user_timeout:
                self.host.count(Count.PERSIST_TIMEOUT)
                self._give_up(now, "timeout")
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
        self.rtt.back_off()

    def _persist_probe(self, now: float) -> None:
        """Zero-window probe (RFC 9293 §3.8.6.1): send one byte of new data beyond the closed window; from then
        on the retransmission timer repeats it with backoff, without counting toward `data_retries`."""
        if self._state not in SYNCHRONIZED or not self.send_buffer.data or self.snd_wnd != 0 or \
                self.snd_max != self.snd_una:
            return
        if now - self.timers.last_progress >= self.host.config.user_timeout:
            self._give_up(now, "timeout")
            return
        self.host.count(Count.WINDOW_PROBE)
        self._transmit(now, 0, 1, ACK)
        self.backoff += 1
        self.timers.rtx = now + self._persist_interval()

    # ------------------------------------------------------------------ input

    def segment_arrived(self, now: float, seg: Segment) -> None:
        self.timers.last_heard = now
        self.timers.keepalive_sent = 0
        if self._state == State.SYN_SENT:
            self._syn_sent(now, seg)
        else:
            self._synchronized(now, seg)
        if self._state != State.CLOSED:
            self.output(now)

    def apply_peer_syn_options(self, seg: Segment) -> None:
        cfg = self.host.config
        opts = seg.options
        peer_mss = opts.mss if opts.mss is not None else cfg.default_peer_mss
        self.mss = max(cfg.min_mss, min(peer_mss, cfg.local_mss))
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
        self.congestion.start(self.mss)

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
                self.rtt.sample(now - self.rtt.timed_at)
            self.rtt.cancel()
            self.retries = 0
            self.backoff = 0
            self.timers.rtx = INF
            self.timers.phase = INF
            self._enter(State.ESTABLISHED, Cause.RCV_SYN_ACK)
            self._syn_options = b""  # only a retransmitted SYN needed them
            self.timers.last_progress = now
            self.host.emit(ev.Connected(self.id))
            if len(seg.payload):
                self._receive_data(now, (seg.seq + 1) & MASK, seg.payload, False)
            self.send_ack(now)
            return
        # Simultaneous open (RFC 9293 §3.5, figure 8): answer with SYN-ACK of the same ISS.
        self._enter(State.SYN_RECEIVED, Cause.RCV_SYN)
        if len(seg.payload):
            self.syn_data = bytes(seg.payload[: self.free_space()])
        self.send_syn_ack(now, None)
        self.timers.rtx = now + self.rtt.rto

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
        if not self._check_ack(now, seg):  # fifth
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
        if not self.passive and seg.flags & SYN and seg.flags & ACK and seg.seq == self.irs:
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
            self.send_ack(now)
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
        if self._state == State.SYN_RECEIVED and self.passive and flags & SYN and not flags & (ACK | RST) and \
                seg.seq == self.irs:
            # The peer retransmitted its SYN: our SYN-ACK was lost. Repeat it rather than challenge.
            host.count(Count.SYN_RETRANSMITTED)
            self._emit(now, self.iss, SYN | ACK, options=self._syn_options)
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
        host.count(Count.OUT_OF_WINDOW)
        if self._state == State.SYN_RECEIVED:
            return _DROP
        if flags & SYN or not flags & ACK or seq_gt((seg.seq + seg_len) & MASK, self.rcv_nxt):
            self.send_ack(now)
            return _DROP
        # Entirely old (a duplicate, or a keepalive probe): its acknowledgement is still news, as BSD treats it;
        # the data is not.
        return _ACK_ONLY

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
            host.destroy(self, Cause.RCV_RST, None if self.passive else "refused", notify=not self.passive)
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

    def _check_ack(self, now: float, seg: Segment) -> bool:
        """Fifth: the ACK field. Completes a handshake in SYN-RECEIVED, refuses ACKs outside RFC 5961 §5.2's
        [SND.UNA - MAX.SND.WND, SND.MAX], then advances the send side; False when processing stops. (The ACK
        bit is set: a segment without ACK, SYN or RST went in the preliminary checks, and SYN and RST before.)"""
        host = self.host
        ack = seg.ack
        if self._state == State.SYN_RECEIVED:
            if not (seq_lt(self.snd_una, ack) and seq_le(ack, self.snd_max)):
                host.count(Count.SYN_RECEIVED_BAD_ACK)
                host.send_reset_for(self.local, self.remote, seg, now)
                return False
            self._established_from_syn_received(now, seg)
        if seq_gt(ack, self.snd_max):
            host.count(Count.ACK_UNSENT_DATA)
            self.challenge_ack(now)
            return False
        if host.config.ack_check and seq_lt(ack, (self.snd_una - self.max_snd_wnd) & MASK):
            host.count(Count.ACK_TOO_OLD)
            self.challenge_ack(now)
            return False
        ts_val = seg.options.ts_val
        if self.ts_enabled and ts_val is not None and seq_le(seg.seq, self.rcv_nxt):
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

    def _established_from_syn_received(self, now: float, seg: Segment) -> None:
        self.snd_una = seg.ack
        self.snd_wnd = seg.window << self.snd_wscale
        self.max_snd_wnd = max(self.max_snd_wnd, self.snd_wnd)
        self.snd_wl1 = seg.seq
        self.snd_wl2 = seg.ack
        if self.retries == 0 and self.rtt.timed_at:
            self.rtt.sample(now - self.rtt.timed_at)
        self.retries = 0
        self.backoff = 0
        self.rtt.handshake_done()
        self.timers.rtx = INF
        self.timers.phase = INF
        self.timers.last_progress = now
        self._enter(State.ESTABLISHED, Cause.RCV_ACK_OF_SYN)
        self._syn_options = b""  # only a retransmitted SYN-ACK needed them
        if self.send_buffer.fin_queued:
            self._enter(State.FIN_WAIT_1, Cause.CLOSE)  # the user closed during the handshake
        self.host.half_open_done(self)
        if self.passive:
            self.host.emit(ev.Accepted(self.id, self.listener_port))
        else:
            self.host.emit(ev.Connected(self.id))
        if self.syn_data:
            data = self.syn_data
            self.syn_data = b""
            self._receive_data(now, self.rcv_nxt, memoryview(data), False)

    def _process_ack(self, now: float, seg: Segment) -> None:
        ack = seg.ack
        acked = (ack - self.snd_una) & MASK
        window = seg.window << self.snd_wscale
        if acked and acked < 0x80000000 and seq_le(ack, self.snd_max):
            self._new_ack(now, seg, acked)
        elif acked == 0 and self.snd_max != self.snd_una and not seg.payload and not seg.flags & FIN and \
                window == self.snd_wnd and window and \
                self.congestion.duplicate_ack(ack, self.snd_una, self.snd_max, self.mss):
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
                if self.backoff and self.snd_max == self.snd_una:
                    self.backoff = 0

    def _new_ack(self, now: float, seg: Segment, acked: int) -> None:
        # RTT sample: timestamps echo (RFC 7323 §4) or the one timed segment; Karn excludes retransmissions.
        ecr = seg.options.ts_ecr
        if self.ts_enabled and ecr and self.retries == 0:
            self.rtt.sample(((self.ts_now(now) - ecr) & MASK) / 1000.0)
        elif self.rtt.timed_seq is not None and seq_gt(seg.ack, self.rtt.timed_seq):
            self.rtt.sample(now - self.rtt.timed_at)
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
        if self.congestion.new_ack(seg.ack, acked, self.snd_una, self.snd_max, self.mss):
            self.host.count(Count.PARTIAL_ACK_RETRANSMIT)
            self.retransmit_first(now)
        self.timers.rtx = INF if self.snd_max == self.snd_una else now + self.rtt.rto
        if self.send_buffer.notify_writable and self.send_buffer.room() > 0:
            self.send_buffer.notify_writable = False
            self.host.emit(ev.Writable(self.id))

    def _receive_data(self, now: float, seq: int, payload: memoryview, fin: bool) -> None:
        host = self.host
        cfg = host.config
        n = len(payload)
        duplicate_head = False
        if seq != self.rcv_nxt:
            skip = (self.rcv_nxt - seq) & MASK
            if skip < 0x80000000:
                # Starts before RCV.NXT: trim the duplicate head.
                if skip >= n + (1 if fin else 0):
                    host.count(Count.DUPLICATE_SEGMENT)
                    self.send_ack(now)
                    return
                payload = payload[skip:]
                n -= skip
                seq = self.rcv_nxt
                duplicate_head = True
            else:
                self._queue_out_of_order(now, seq, payload, fin)
                return
        space = self.free_space()
        over_budget = False
        if n > space:
            # Within what we advertised but over the layer's receive budget: ACK at once, so the peer learns
            # where we stopped and sends the rest again.
            over_budget = n <= self.rcv_buf_size - len(self.rcvbuf)
            host.count(Count.RCV_BUDGET_EXHAUSTED if over_budget else Count.DATA_BEYOND_WINDOW)
            payload = payload[:space]
            n = space
            fin = False
        was_empty = not self.rcvbuf
        filled_gap = False
        if n:
            self._rcv_append(payload)
            self.rcv_nxt = (self.rcv_nxt + n) & MASK
            self.timers.last_activity = now
        if self.reassembly.segments:
            fin = self._drain_out_of_order(fin)
            filled_gap = True  # the segment changed the reassembly queue: ACK at once (RFC 5681 §4.2)
        if self.app_closed and self.rcvbuf:
            # Nobody will read this any more: acknowledge and discard, so the window stays open and the
            # peer can finish instead of probing a closed window until a timeout.
            self.host.count(Count.DATA_AFTER_CLOSE)
            self.discard_received()
        if self.rcvbuf and was_empty and not self.reading_paused:
            self.readable_pending = True
            host.emit(ev.Readable(self.id))
        if fin:
            self._fin_received(now)
            return
        if not n:
            if over_budget:
                self.send_ack(now)
            return
        self.unacked_segments += 1
        if filled_gap or duplicate_head or over_budget or self.reassembly.segments or \
                self.unacked_segments >= cfg.delayed_ack_segments:
            self.send_ack(now)
        elif self.timers.delack == INF:
            self.timers.delack = now + cfg.delayed_ack

    def _queue_out_of_order(self, now: float, seq: int, payload: memoryview, fin: bool) -> None:
        """Keep a segment that arrived ahead of RCV.NXT, within window and the queue's limits; ACK at once
        (RFC 5681 §4.2: out-of-order data triggers an immediate duplicate ACK)."""
        host = self.host
        cfg = host.config
        if self.app_closed:
            # Nobody will read it: queueing it would only hold memory for the peer. In-order data is
            # acknowledged and discarded (see _receive_data), so the peer can still finish.
            host.count(Count.DATA_AFTER_CLOSE)
            self.send_ack(now)
            return
        offset = (seq - self.rcv_nxt) & MASK
        room = self.rcv_wnd() - offset
        if room <= 0:
            host.count(Count.DATA_BEYOND_WINDOW)
            self.send_ack(now)
            return
        if len(payload) > room:
            payload = payload[:room]
            fin = False
        queue = self.reassembly
        if len(queue) >= cfg.ooo_max_segments or queue.bytes + len(payload) > cfg.ooo_max_bytes:
            host.count(Count.OOO_QUEUE_FULL)
            self.send_ack(now)
            return
        if self.budgets.ooo_held + len(payload) + cfg.ooo_entry_overhead > cfg.ooo_budget:
            # Every connection's queues together are full: drop rather than queue. The sender retransmits
            # after the hole is filled, so this costs throughput under loss, never correctness.
            host.count(Count.OOO_BUDGET_EXHAUSTED)
            self.send_ack(now)
            return
        if queue.holds(seq, len(payload)):
            host.count(Count.DUPLICATE_SEGMENT)
            self.send_ack(now)
            return
        if queue is NO_REASSEMBLY:
            queue = self.reassembly = Reassembly()
        queue.add(seq, bytes(payload), fin, self.rcv_nxt)
        self.budgets.ooo_held += len(payload) + cfg.ooo_entry_overhead
        host.count(Count.OUT_OF_ORDER)
        self.send_ack(now)

    def _drain_out_of_order(self, fin: bool) -> bool:
        """Move queued segments that now continue the stream into the receive buffer; whether a FIN follows."""
        charge = self._ooo_charge()
        self.rcv_nxt, _changed, reached_fin = self.reassembly.drain(self.rcv_nxt, self._take_in_order)
        self.budgets.ooo_held += self._ooo_charge() - charge
        return fin or reached_fin

    def _take_in_order(self, data: bytes) -> int:
        chunk = data[: self.free_space()]
        self._rcv_append(chunk)
        return len(chunk)

    def _fin_received(self, now: float) -> None:
        self.rcv_nxt = (self.rcv_nxt + 1) & MASK
        if self.reassembly.segments:
            self._drop_reassembly()  # whatever lies beyond the FIN can never be delivered
        if self._state == State.FIN_WAIT_1 and not self.send_buffer.fin_acked and not self.send_buffer.data and \
                self.snd_nxt == self.snd_max:
            # Simultaneous close: our FIN is still unacknowledged; repeat it with the ACK of theirs.
            self._emit(now, (self.snd_max - 1) & MASK, FIN | ACK)
        else:
            self.send_ack(now)
        self.host.emit(ev.PeerClosed(self.id))
        state = self._state
        if state == State.ESTABLISHED:
            self._enter(State.CLOSE_WAIT, Cause.RCV_FIN)
        elif state == State.FIN_WAIT_1:
            # Our FIN is unacknowledged here: an ACK of it has already taken us to FIN-WAIT-2 (`_ack_closes`
            # runs before the text), so figure 5's note 2 edge is taken as FIN-WAIT-2, then TIME-WAIT.
            self._enter(State.CLOSING, Cause.RCV_FIN)
        else:  # FIN-WAIT-2 (text and FIN are processed only in RECEIVES_DATA)
            self._enter_time_wait(now, Cause.RCV_FIN)

    def _enter_time_wait(self, now: float, cause: Cause) -> None:
        self._enter(State.TIME_WAIT, cause)
        self.timers.rtx = INF
        self.timers.persist = INF
        self.timers.delack = INF
        self.send_buffer.discard()
        if self.app_closed:
            self.discard_received()
        self.timers.phase = now + 2 * self.host.config.msl
        self.host.entered_time_wait(self)


__all__ = ["INF", "Connection", "State", "window_shift"]
