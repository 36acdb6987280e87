"""The transmission control block: what one TCP connection knows, and the one place its state changes.

Why a chain of classes: a connection is one object (its fields in `__slots__`, nothing between the per-segment
code and them), but what it does falls into concerns that read best apart, and Python has no partial classes.
So each concern is a class adding its methods to the one before, in its own file:
`Tcb` (fields, state changes, windows) -> `SendSide` (send.py: segments out, acknowledgements in) ->
`ReceiveSide` (receive.py: data and FIN in, reassembly) -> `Arrival` (arrival.py: RFC 9293 §3.10.7.4, one
method per step) -> `Connection` (connection.py: how connections are made, user calls, timers, ICMP). Each may
use only what comes before it in the chain; the data-only parts (RttEstimator, NewReno, SendBuffer, Timers,
Reassembly) are objects of their own.

Sans-I/O: every entry point takes `now`; segments and events go to the layer through `Host`.
"""

from __future__ import annotations

from netstack.tcp.congestion import NewReno
from netstack.tcp.host import Host
from netstack.tcp.reassembly import NO_REASSEMBLY
from netstack.tcp.rtt import RttEstimator
from netstack.tcp.send_buffer import SendBuffer
from netstack.tcp.seq import MASK, seq_diff, seq_gt, seq_lt
from netstack.tcp.state import CAN_SEND, SYNCHRONIZED, Cause, State, check_transition
from netstack.tcp.timers import INF, Timers
from netstack.tcp.window import MAX_RAW_WINDOW, ts_clock

TS_OPTION_LEN = 12


class PerSecondBudget:
    """At most `limit` uses in each whole second of the clock: a connection's throttle of a reply anyone who
    knows its 4-tuple can elicit one for one (RFC 5961 §7's challenge ACKs, the ACKs to unacceptable segments).
    One per connection, never layer-wide: a shared counter is the CVE-2016-5696 side channel."""

    __slots__ = ("count", "second")

    def __init__(self) -> None:
        self.second = -1
        self.count = 0

    def take(self, now: float, limit: int) -> bool:
        """Whether one more use fits this second (and it is counted)."""
        second = int(now)
        if second != self.second:
            self.second = second
            self.count = 0
        if self.count >= limit:
            return False
        self.count += 1
        return True


class Handshake:
    """What a connection needs only until it is synchronized (design rule 2: a state's data lives with it): the
    options of our SYN or SYN-ACK, to retransmit it; data a simultaneous open's SYN carried, delivered once
    established; whether a listener made it, and which. Synchronized connections share `HANDSHAKE_DONE`."""

    __slots__ = ("listener_port", "passive", "syn_data", "syn_options")

    def __init__(self) -> None:
        self.passive = False
        self.listener_port = 0
        self.syn_data = b""
        self.syn_options = b""


# Never written to: a connection replaces it with its own `Handshake` before the handshake writes anything.
HANDSHAKE_DONE = Handshake()


class Tcb:
    """A connection's fields and their invariants; see the module docstring for the classes built on it."""

    __slots__ = (
        "_state",
        "app_closed",
        "backoff",
        "challenge_budget",
        "congestion",
        "error",
        "handshake",
        "host",
        "id",
        "irs",
        "iss",
        "key",
        "last_ack_sent",
        "local",
        "local_port",
        "max_snd_wnd",
        "mss",
        "oow_budget",
        "path_mss",
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
        "timers",
        "ts_enabled",
        "ts_recent",
        "unacked_segments",
        "wscale_ok",
    )

    def __init__(self, host: Host, conn_id: int, local: bytes, local_port: int, remote: bytes,  # noqa: PLR0917
                 remote_port: int, iss: int, now: float, state: State = State.CLOSED) -> None:
        cfg = host.config
        self.host = host
        self.id = conn_id
        self.key = (remote, remote_port, local, local_port)
        self.local = local
        self.local_port = local_port
        self.remote = remote
        self.remote_port = remote_port
        # The pseudo-header's residue less the length, the same expression for either family
        # (segment.pseudo_header_sum says why).
        self.pseudo_base = (int.from_bytes(local + remote, "big") + 6) % 0xFFFF
        self._state = state
        self.handshake = Handshake()
        self.app_closed = False
        self.error: str | None = None
        self.challenge_budget = PerSecondBudget()  # `SendSide.challenge_ack`'s (TcpConfig.challenge_ack_limit)
        self.oow_budget = PerSecondBudget()  # `Arrival._oow_reply`'s (TcpConfig.oow_reply_limit)
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
        self.mss = cfg.default_peer_mss_for(remote)
        # receive side
        self.irs = 0
        self.rcv_nxt = 0
        self.rcv_adv = 0
        self.last_ack_sent = 0  # RFC 7323 §4.3 Last.ACK.sent: the ACK field of our latest segment (RCV.NXT then)
        self.rcv_wscale = 0
        self.rcv_mss = host.local_mss_for(local)
        # The most a segment's options and data may take on this path: the link MTU's to start with, lowered
        # by every packet too big / fragmentation needed and IPv6 link MTU change (`path_mtu_reduced`) in any
        # state, never raised. `mss` is always held to it (`bounded_mss`), so a step that recomputes `mss`,
        # such as the peer's SYN in SYN-SENT, cannot undo what the path taught us.
        self.path_mss = self.rcv_mss
        self.rcv_buf_size = cfg.rcv_buffer
        self.rcvbuf = bytearray()
        self.reassembly = NO_REASSEMBLY  # a queue of its own from the first out-of-order segment on
        self.reading_paused = False
        self.readable_pending = False
        self.unacked_segments = 0
        # options
        self.wscale_ok = False
        self.ts_enabled = False
        self.ts_recent = 0
        # RTT / RTO (RFC 6298)
        self.rtt = RttEstimator(cfg)
        self.backoff = 0
        self.retries = 0
        # congestion control (RFC 5681 / 6582)
        self.congestion = NewReno(iss)
        self.timers = Timers(now)

    @property
    def state(self) -> State:
        """Read-only: a state changes only through `_enter`, which checks it against `TRANSITIONS`."""
        return self._state

    def _enter(self, state: State, cause: Cause) -> None:
        """The one place a connection changes state; a change not in the table raises `IllegalTransitionError`."""
        check_transition(self._state, cause, state)
        self._state = state

    def closed(self, cause: Cause, error: str | None) -> None:
        """Enter CLOSED and let go of timers and buffers; `TcpLayer.destroy` calls this, then forgets us."""
        self._enter(State.CLOSED, cause)
        self.error = error
        timers = self.timers
        timers.rtx = timers.delack = timers.persist = timers.phase = INF
        self.send_buffer.discard()
        self.discard_received()

    def __repr__(self) -> str:
        return f"<Connection {self.id} {self._state.name} {self.local_port}<->{self.remote_port}>"

    def deadline(self) -> float:
        """When `on_timer` must run next: the earliest timer, and once synchronized the idle limit and (while
        we may send) the next keepalive probe. On every segment's path: comparisons, not calls to min()."""
        timers = self.timers
        d = timers.rtx
        if timers.delack < d:  # noqa: PLR1730
            d = timers.delack
        if timers.persist < d:  # noqa: PLR1730
            d = timers.persist
        if timers.phase < d:  # noqa: PLR1730
            d = timers.phase
        state = self._state
        if state in SYNCHRONIZED and state != State.TIME_WAIT:
            cfg = self.host.config
            idle = timers.last_activity + cfg.idle_timeout
            if idle < d:  # noqa: PLR1730
                d = idle
            if cfg.keepalive and state in CAN_SEND:
                probe = timers.last_heard + cfg.keepalive_idle + timers.keepalive_sent * cfg.keepalive_interval
                if probe < d:  # noqa: PLR1730
                    d = probe
        return d

    def bounded_mss(self, peer_mss: int) -> int:
        """The sending MSS (before the timestamp option's share) that the peer's MSS option `peer_mss` allows,
        held to what we advertised (`rcv_mss`) and to the path (`path_mss`, whatever packet too big or the
        IPv6 link MTU taught us, in SYN-SENT too), with the floor `min_mss` against a tiny-MSS peer."""
        return max(self.host.config.min_mss, min(peer_mss, self.rcv_mss, self.path_mss))

    def ts_now(self, now: float) -> int:
        """Our TSval (`window.ts_clock`): computed from the ISS each time rather than stored."""
        return ts_clock(now, self.iss)

    def free_space(self) -> int:
        """Room in the receive buffer, within the layer's shared budget (`TcpConfig.rcv_budget`); a connection
        may always fill `rcv_guaranteed` bytes, so paused readers elsewhere slow other connections down but
        cannot stop them."""
        held = len(self.rcvbuf)
        room = self.rcv_buf_size - held
        host = self.host
        cfg = host.config
        allowed = cfg.rcv_budget - host.budgets.rcv_held
        if allowed < room:  # rare: only with the budget nearly spent (this is on every segment's path)
            room = min(room, max(allowed, cfg.rcv_guaranteed - held))
        return room if room > 0 else 0

    def _rcv_append(self, data: bytes | memoryview) -> None:
        self.rcvbuf += data
        self.host.budgets.rcv_held += len(data)

    def _ooo_charge(self) -> int:
        """What this connection's out-of-order queue costs against `TcpConfig.ooo_budget`."""
        return self.reassembly.charge(self.host.config.ooo_entry_overhead)

    def discard_received(self) -> None:
        """Drop unread and out-of-order data (the application closed, or the connection is gone) and give its
        share of the layer's budgets back."""
        self.host.budgets.rcv_held -= len(self.rcvbuf)
        self.rcvbuf = bytearray()
        if self.reassembly.segments:
            self._drop_reassembly()

    def _drop_reassembly(self) -> None:
        self.host.budgets.ooo_held -= self._ooo_charge()
        self.reassembly = NO_REASSEMBLY

    def rcv_wnd(self) -> int:
        """The window segments are checked against: what we advertised, or more if the buffer has room."""
        advertised = max(0, seq_diff(self.rcv_adv, self.rcv_nxt))
        if self._state == State.TIME_WAIT or (self._state == State.SYN_RECEIVED and self.handshake.passive):
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
