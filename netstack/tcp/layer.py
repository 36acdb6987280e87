"""The TCP layer: demultiplexing, listeners, admission control, SYN cookies, timers, and the user API.

It implements the `SegmentLayer` contract of `netstack.stack` (segment_received, icmp_error_received,
take_outgoing, next_deadline, timers_expired) and a socket-like API addressed by connection id. Time and the
ISN secret are passed in; nothing here reads a clock or a random source. Nothing raises out of
`segment_received` or `icmp_error_received`: a malformed or unwelcome segment is counted in `stats` under the
reason it was refused (a `Count`), and a bug, an illegal state transition included, is contained and counted
as `internal-error` (`internal_error`).

Both IP versions: addresses are 4-byte IPv4 or 16-byte IPv6 addresses, the family told by their length
(netstack/tcp/family.py), and a connection's two ends are always of one family. What depends on the family is
the MSS (the IP header's size), the checksum's pseudo-header, the ICMP numbering and path MTU floor, and what
counts as one source: per-source limits are kept by `addresses6.source_key`, an IPv4 address or an IPv6 /64,
since an IPv6 host holds a whole /64 and could otherwise multiply its share by rotating the low 64 bits.

Connections are made by their own constructors (`Connection.active_open`, `passive_open`, `cookie_open`) and
see this layer only through the `Host` protocol (netstack/tcp/host.py); the layer reads connections but changes
them only through their methods, apart from `timers.queued`, its own record of each one's timer-heap entry.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections import Counter

from netstack.addresses6 import NO_HOST_PREFIXES, is_unicast_host, source_key
from netstack.faults import FaultLog
from netstack.tcp import events as ev
from netstack.tcp import family, icmp
from netstack.tcp.config import TcpConfig
from netstack.tcp.connection import Connection
from netstack.tcp.counters import Count
from netstack.tcp.host import Budgets
from netstack.tcp.isn import COOKIE_LIFETIME, IsnGenerator
from netstack.tcp.replylimit import CookieBudget, RstBudget
from netstack.tcp.segment import (
    ACK,
    FIN,
    PSH,
    RST,
    SYN,
    URG,
    Segment,
    SegmentError,
    build_options,
    build_segment,
    parse_segment,
)
from netstack.tcp.seq import MASK, seq_gt, seq_in
from netstack.tcp.state import Cause, IllegalTransitionError, State
from netstack.tcp.tcb import Tcb
from netstack.tcp.timers import INF
from netstack.tcp.window import cookie_receive_buffer, cookie_tsval, window_shift

logger = logging.getLogger(__name__)

Key = tuple[bytes, int, bytes, int]  # (remote, remote port, local, local port)
EPHEMERAL_LOW = 49152
EPHEMERAL_COUNT = 16384


class TcpError(Exception):
    """A user call that cannot be honoured (unknown connection, limit reached, port in use)."""


class AddressError(TcpError, ValueError):
    """Addresses no connection can have: of two families (IPv4 local, IPv6 remote), of neither, or an IPv6
    address that is not a unicast host's. A caller's bug, so also a ValueError; a TcpError as "bad address"
    always was."""


class Listener:
    """A listening port; `cookie_sent` is when it last answered a SYN with a cookie (Linux's last_overflow)."""

    __slots__ = ("backlog", "cookie_sent", "half_open", "port")

    def __init__(self, port: int, backlog: int) -> None:
        self.port = port
        self.backlog = backlog
        self.half_open = 0
        self.cookie_sent = -INF


class TcpLayer:
    """All TCP state of one host. Addresses are 4-byte IPv4 or 16-byte IPv6 addresses (module docstring)."""

    def __init__(self, secret: bytes, config: TcpConfig | None = None) -> None:
        self.config = config or TcpConfig()
        self.isn = IsnGenerator(secret)
        self.connections: dict[Key, Connection] = {}
        self.by_id: dict[int, Connection] = {}
        self.listeners: dict[int, Listener] = {}
        # Verified TCBs by `source_key` of their remote address: our own opens and connections whose handshake
        # completed, TIME-WAIT apart. Half-open (SYN-RECEIVED) entries are not in it: their source is unproven,
        # and spoofed SYNs naming a victim must not use up the victim's share (`_listen_input`).
        self.per_source: Counter[bytes] = Counter()
        self.half_open: set[int] = set()
        self.time_wait_ids: dict[int, None] = {}  # insertion-ordered: the oldest TIME_WAIT first
        self.outgoing: list[tuple[bytes, bytes, bytes]] = []
        self.events: list[ev.Event] = []
        # Connections whose Accepted or Connected waits in `events` (True: passive), so that one destroyed
        # before the user takes it can take its events back (`destroy`).
        self._announced: dict[int, bool] = {}
        self.stats: Counter[str] = Counter()
        self.faults = FaultLog(logger)
        self.budgets = Budgets()  # bytes held across all connections (netstack/tcp/host.py)
        # The timer heap holds (deadline, connection id); a connection's `timers.queued` says which of its
        # entries is current, so a moved deadline needs no removal: a stale entry is skipped when it comes up.
        self._heap: list[tuple[float, int]] = []
        self._ids = itertools.count(1)  # connection ids, never reused
        self._rst_budget = RstBudget(secret, self.config)
        self._cookie_budget = CookieBudget(secret, self.config)
        # Destinations whose path MTU is below `min_path_mtu` (SegmentLayer contract: sent without DF), kept
        # while a connection that learned it lives, by connection id. IPv4 only: IPv6 has no DF to clear
        # (only the source fragments) and no path below 1280, so no IPv6 address is ever in it.
        self.fragmentable: frozenset[bytes] = frozenset()
        self._fragmenting: dict[int, bytes] = {}
        # Cookies that made a connection, by 4-tuple, until they expire: (cookie, expiry), oldest first.
        self._cookies_used: dict[Key, tuple[int, float]] = {}
        self._port_counter = 0
        # The IPv6 link MTU the stack last reported (`link_mtu6_changed`): an RA may lower it below `config.mtu`.
        self.link_mtu6 = self.config.mtu

    # ------------------------------------------------------------------ SegmentLayer contract

    def segment_received(self, now: float, src: bytes, dst: bytes, segment: memoryview) -> None:
        try:
            if not self._refuse_addresses(src, dst):
                self._input(now, src, dst, segment)
        except Exception as exc:  # noqa: BLE001 (the stack must survive its own bugs too)
            self.internal_error("TCP input failed", exc)

    def icmp_error_received(self, now: float, icmp_type: int, icmp_code: int, quoted: bytes,
                            next_hop_mtu: int | None) -> None:
        try:
            self._icmp_error(now, icmp_type, icmp_code, quoted, next_hop_mtu)
        except Exception as exc:  # noqa: BLE001
            self.internal_error("TCP ICMP handling failed", exc)

    def unreachable(self, now: float, address: bytes) -> None:
        """The stack could not resolve `address` on the link, so our SYN-ACKs to it were dropped. Half-open
        entries for it go at once: a spoofed on-link source that nobody answers ARP for otherwise held its
        slot for `connect_timeout` (75 s), and a flood of them kept the listener in cookie mode that long
        after it ended. A handshake we started ourselves (SYN-SENT) keeps retrying, as its user asked."""
        del now  # part of the contract; nothing here depends on the time
        try:
            for conn_id in [i for i in self.half_open if self.by_id[i].remote == address]:
                self.count(Count.HALF_OPEN_UNREACHABLE)
                self.destroy(self.by_id[conn_id], Cause.ABORT, "unreachable", notify=False)
        except Exception as exc:  # noqa: BLE001 - as every entry point of the layer: counted, not spread
            self.internal_error("TCP unreachable handling failed", exc)

    def link_mtu6_changed(self, now: float, mtu: int) -> None:
        """The stack's IPv6 link MTU changed (a router advertisement's MTU option, RFC 4861 §6.3.4). New IPv6
        connections advertise and send an MSS that fits it (`local_mss_for`: RFC 9293 §3.7.1, RFC 8200 §5 derive
        it from the outgoing interface's MTU), and existing ones shrink to it as a packet too big would make
        them (RFC 8201): otherwise every full segment went out as two IPv6 fragments, which many paths drop. A
        larger MTU only applies to new connections: a path MTU is never raised without probing. Contained per
        connection, as every entry point of the layer: a fault is counted as a TCP internal error and the other
        connections still shrink (the stack reports a change once, so it is never retried, and on a restart
        this runs inside Stack.start)."""
        self.link_mtu6 = mtu
        for conn in [c for c in self.by_id.values() if family.is_ipv6(c.local)]:
            try:
                self._packet_too_big(now, conn, mtu)
            except Exception as exc:  # noqa: BLE001
                self.internal_error("TCP link MTU change failed", exc)

    def local_mss_for(self, address: bytes) -> int:
        """`TcpConfig.local_mss_for`, held to the IPv6 link MTU (`link_mtu6_changed`) for an IPv6 address."""
        mss = self.config.local_mss_for(address)
        return min(mss, self.link_mtu6 - family.IPV6_OVERHEAD) if family.is_ipv6(address) else mss

    def take_outgoing(self) -> list[tuple[bytes, bytes, bytes]]:
        out = self.outgoing
        self.outgoing = []
        return out

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap:
            when, conn_id = heap[0]
            conn = self.by_id.get(conn_id)
            if conn is not None and conn.timers.queued == when:
                return when
            heapq.heappop(heap)
        return None

    def timers_expired(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, conn_id = heapq.heappop(heap)
            conn = self.by_id.get(conn_id)
            if conn is None or conn.timers.queued != when:
                continue
            conn.timers.queued = INF
            try:
                conn.on_timer(now)
            except Exception as exc:  # noqa: BLE001
                self.internal_error("TCP timer failed", exc)
            self._schedule(conn)

    def take_events(self) -> list[ev.Event]:
        out = self.events
        self.events = []
        self._announced.clear()
        return out

    # ------------------------------------------------------------------ services for connections

    def count(self, reason: Count) -> None:
        self.stats[reason] += 1

    def internal_error(self, what: str, error: Exception) -> None:
        """A bug, not an attack we expected: counted, and logged with its traceback once per place
        (netstack/faults.py) so that a peer who can trigger it cannot flood the log."""
        self.count(Count.INTERNAL_ERROR)
        self.faults.report(what, error)

    def emit(self, event: ev.Event) -> None:
        if len(self.events) >= self.config.max_events:
            self.count(Count.EVENT_QUEUE_FULL)
            return
        self.events.append(event)
        kind = type(event)
        if kind is ev.Accepted or kind is ev.Connected:
            self._announced[event.conn] = kind is ev.Accepted

    def transmit(self, local: bytes, remote: bytes, segment: bytes) -> None:
        """Queue a segment for take_outgoing; past `max_outgoing` it is dropped like on a full NIC queue, and
        TCP's retransmission recovers it."""
        if len(self.outgoing) >= self.config.max_outgoing:
            self.count(Count.TX_QUEUE_FULL)
            return
        self.outgoing.append((local, remote, segment))

    def send_reset_for(self, local: bytes, remote: bytes, seg: Segment, now: float) -> None:
        """The RFC 9293 §3.10.7.1 reply to a segment no connection wants, within the RST budget: per source and
        layer-wide with a per-second size nobody outside can know (netstack/tcp/replylimit.py says why)."""
        if seg.flags & RST:
            return
        refused = self._rst_budget.allow(now, remote)
        if refused is not None:
            self.count(refused)
            return
        self.count(Count.RST_SENT)
        if seg.flags & ACK:
            out = build_segment(local, remote, seg.dst_port, seg.src_port, seg.ack, 0, RST, 0)
        else:
            ack = (seg.seq + seg.seg_len) & MASK
            out = build_segment(local, remote, seg.dst_port, seg.src_port, 0, ack, RST | ACK, 0)
        self.transmit(local, remote, out)

    def half_open_done(self, conn: Tcb) -> None:
        """`conn` completed its handshake: a half-open entry is now a verified connection, and counts against
        its source's limit from here on (`_arrived` refuses it if that limit is exceeded)."""
        if self._leave_half_open(conn):
            self.per_source[source_key(conn.remote)] += 1

    def _leave_half_open(self, conn: Tcb) -> bool:
        """Take `conn` out of the half-open limits; True if it was a half-open entry."""
        if conn.id not in self.half_open:
            return False
        self.half_open.discard(conn.id)
        listener = self.listeners.get(conn.handshake.listener_port)
        if listener is not None and listener.half_open > 0:
            listener.half_open -= 1
        return True

    @property
    def time_wait(self) -> int:
        return len(self.time_wait_ids)

    def entered_time_wait(self, conn: Tcb) -> None:
        """A TIME_WAIT entry holds no buffers and no longer counts against its source's limit (a client of a
        server that closes first would otherwise be locked out for 2*MSL); the global limit recycles the
        oldest TIME_WAIT entry when it is reached."""
        self.time_wait_ids[conn.id] = None
        self._release_source(conn.remote)
        self.count(Count.TIME_WAIT)

    def _release_source(self, remote: bytes) -> None:
        key = source_key(remote)
        self.per_source[key] -= 1
        if self.per_source[key] <= 0:
            del self.per_source[key]

    def destroy(self, conn: Tcb, cause: Cause, error: str | None, *, notify: bool = True) -> None:
        """End `conn` (entering CLOSED for `cause`) and give back everything it held; `error` goes to the user."""
        if conn.id not in self.by_id:
            return
        conn.closed(cause, error)
        del self.by_id[conn.id]
        self.connections.pop(conn.key, None)
        if self._leave_half_open(conn):
            pass  # never counted against its source
        elif conn.id in self.time_wait_ids:
            del self.time_wait_ids[conn.id]
        else:
            self._release_source(conn.remote)
        if self._fragmenting and self._fragmenting.pop(conn.id, None) is not None:
            self.fragmentable = frozenset(self._fragmenting.values())
        passive = self._announced.pop(conn.id, None)
        if passive is not None:
            # The user has not taken the news of this connection yet (a RST behind the handshake's last ACK
            # in one batch): its events go back, so no event ever names a connection that is already gone.
            # The user never learns of a passive one (as of a RST in SYN-RECEIVED); an active open's caller
            # still waits, and the Closed below tells it why.
            self.events = [event for event in self.events if event.conn != conn.id]
            notify = notify and not passive
        if notify:
            self.emit(ev.Closed(conn.id, error))

    def _schedule(self, conn: Connection) -> None:
        if conn.id not in self.by_id:
            return  # destroyed (CLOSED): nothing left to time
        when = conn.deadline()
        timers = conn.timers
        if when < timers.queued:
            timers.queued = when
            heapq.heappush(self._heap, (when, conn.id))
            if len(self._heap) > self.config.timer_heap_slack * len(self.by_id) + self.config.timer_heap_floor:
                # Entries of closed connections or moved deadlines linger until their time; rebuild from
                # the live connections so the timer heap stays proportional to the connection count.
                self._heap = [(c.timers.queued, c.id) for c in self.by_id.values() if c.timers.queued != INF]
                heapq.heapify(self._heap)
                self.count(Count.TIMER_HEAP_COMPACTED)

    def _register(self, conn: Connection, *, verified: bool = True) -> Connection:
        """Enter `conn` in the tables; a `verified` one (not half-open) counts against its source's limit. A full
        table's oldest TIME-WAIT entry, which `_room` counted as room, is recycled here, once a TCB is really
        being made."""
        if len(self.by_id) >= self.config.max_connections and self.time_wait_ids:
            self.count(Count.TIME_WAIT_RECYCLED)
            self.destroy(self.by_id[next(iter(self.time_wait_ids))], Cause.ABORT, None)
        self.connections[conn.key] = conn
        self.by_id[conn.id] = conn
        if verified:
            self.per_source[source_key(conn.remote)] += 1
        return conn

    def _source_full(self, remote: bytes) -> bool:
        """`remote`'s source already holds `max_per_source` verified connections."""
        return self.per_source[source_key(remote)] >= self.config.max_per_source

    def _room(self) -> bool:
        """Room for one more TCB in the table; counted (`connection-limit`) if not. A full table with a TIME-WAIT
        entry in it has room, but the entry is recycled only by `_register`, once a TCB is really made: a SYN
        that is answered by a stateless cookie, or refused by a later check, must not wipe TIME-WAIT (RFC 1337's
        hazards) for nothing, as a spoofed flood at a full table otherwise would."""
        if len(self.by_id) >= self.config.max_connections and not self.time_wait_ids:
            self.count(Count.CONNECTION_LIMIT)
            return False
        return True

    def _admit(self, remote: bytes) -> bool:
        """A verified connection to or from `remote` may be made: its source's share, then the table."""
        if self._source_full(remote):
            self.count(Count.PER_SOURCE_LIMIT)
            return False
        return self._room()

    # ------------------------------------------------------------------ input

    def _refuse_addresses(self, src: bytes, dst: bytes) -> bool:
        """Both ends of one family, before anything is computed over them; True (counted) if not. An IPv6
        end no host has is refused here too, whatever the stack checked before: a multicast destination in
        particular must never reach a listener (RFC 9293 §3.10.7.2 says so of broadcast and multicast)."""
        if len(src) == family.IPV4_LEN == len(dst):
            return False  # every IPv4 segment: settled without a call
        if not family.pair_ok(src, dst):
            self.count(Count.ADDRESS_FAMILY_MISMATCH)
            return True
        # addresses6.is_unicast_host for both ends, written out: this runs for every IPv6 segment
        if len(src) == family.IPV6_LEN and (src[0] == 0xFF or dst[0] == 0xFF or src[:12] in NO_HOST_PREFIXES
                                            or dst[:12] in NO_HOST_PREFIXES):
            self.count(Count.BAD_ADDRESS6)
            return True
        return False

    def _input(self, now: float, src: bytes, dst: bytes, data: memoryview) -> None:
        try:
            seg = parse_segment(src, dst, data)
        except SegmentError as error:
            self.count(error.reason)
            return
        flags = seg.flags
        if seg.src_port == 0 or seg.dst_port == 0:
            self.count(Count.PORT_ZERO)
            return
        if src == dst and seg.src_port == seg.dst_port:
            self.count(Count.LAND)
            return
        if flags & SYN and flags & RST:
            self.count(Count.SYN_RST)
            return
        if not flags & (SYN | RST | ACK | FIN):
            self.count(Count.NULL_FLAGS)
            return
        if flags & (FIN | PSH | URG) == FIN | PSH | URG and not flags & ACK:
            self.count(Count.XMAS)
            return
        conn = self.connections.get((src, seg.src_port, dst, seg.dst_port))
        if conn is not None and flags & (SYN | ACK | RST | FIN) == SYN and self._reopens_time_wait(conn, seg):
            # A new SYN on the ports of a connection in TIME-WAIT (RFC 9293 §3.10.7.4, RFC 6191): clients
            # reuse ports quickly, and one whose new SYN only drew a challenge ACK (whose RST we then ignore,
            # RFC 1337) could not reconnect for 2*MSL. A timestamp newer than the old connection's is what
            # keeps old duplicates apart, so it is taken as a new connection.
            self.count(Count.TIME_WAIT_REOPENED)
            self.destroy(conn, Cause.ABORT, None, notify=False)
            conn = None
        if flags & SYN and flags & FIN:
            # SYN+FIN is a scanner's probe. A closed port answers it like any segment (RST); a listener or
            # a connecting socket drops it when configured to (BSD drop_synfin), else the FIN is ignored.
            self.count(Count.SYN_FIN)
            if conn is not None or seg.dst_port in self.listeners:
                if self.config.drop_syn_fin and (conn is None or conn.state == State.SYN_SENT):
                    return
                flags &= ~FIN
                seg = seg._replace(flags=flags)
        if conn is not None:
            self._arrived(now, conn, seg)
            return
        listener = self.listeners.get(seg.dst_port)
        if listener is not None:
            self._listen_input(now, src, dst, seg, listener)
            return
        self.count(Count.CLOSED_PORT)
        self.send_reset_for(dst, src, seg, now)

    def _reopens_time_wait(self, conn: Connection, seg: Segment) -> bool:
        """For a SYN without ACK, RST or FIN (an ECN-setup SYN's ECE and CWR may come with it) to a listening
        port: RFC 9293 §3.10.7.4 accepts a new connection in TIME-WAIT only when the Timestamp Option is in
        use and meets RFC 6191's expectation, a TSval newer than the old connection's TS.Recent. Any other
        SYN gets RFC 5961's challenge ACK (BSD also reopens on an ISN beyond RCV.NXT; the RFC does not)."""
        if conn.state != State.TIME_WAIT or seg.dst_port not in self.listeners:
            return False
        ts_val = seg.options.ts_val
        return conn.ts_enabled and ts_val is not None and seq_gt(ts_val, conn.ts_recent)

    def _listen_input(self, now: float, src: bytes, dst: bytes, seg: Segment, listener: Listener) -> None:
        flags = seg.flags
        cfg = self.config
        if flags & RST:
            self.count(Count.LISTEN_RST)
            return
        if flags & SYN and flags & ACK:
            self.count(Count.LISTEN_SYN_ACK)
            return
        if flags & ACK:
            if cfg.syn_cookies and now - listener.cookie_sent <= COOKIE_LIFETIME and \
                    self._cookie_ack(now, src, dst, seg):
                # Only while cookies may be outstanding (Linux's tcp_synq_no_recent_overflow): at other times
                # an ACK to a listener is a stray or a guess, and is not worth a hash.
                return
            self.count(Count.LISTEN_ACK)
            self.send_reset_for(dst, src, seg, now)
            return
        if not flags & SYN:
            self.count(Count.LISTEN_NO_SYN)
            return
        # A SYN proves nothing about its source, so it is never refused for its source's share: spoofed SYNs
        # naming a victim would lock the victim out (about 64 every 75 s did, when half-open entries counted).
        # A source that already holds its share of verified connections gets a cookie instead of state; the
        # share is checked again when a handshake completes (`_cookie_ack`, `_arrived`), refused with a RST.
        source_full = self._source_full(src)
        if source_full or listener.half_open >= listener.backlog or len(self.half_open) >= cfg.max_half_open:
            if cfg.syn_cookies:
                self._send_cookie(now, src, dst, seg, listener)
            else:
                self.count(Count.PER_SOURCE_LIMIT if source_full else Count.BACKLOG_FULL)
            return
        if not self._room():
            return
        iss = self.isn.isn(now, dst, seg.dst_port, src, seg.src_port)
        conn = self._register(Connection.passive_open(self, next(self._ids), dst, src, seg, iss, now),
                              verified=False)
        self.half_open.add(conn.id)
        listener.half_open += 1
        self.count(Count.SYN_RECEIVED)
        self._schedule(conn)

    def _send_cookie(self, now: float, src: bytes, dst: bytes, seg: Segment, listener: Listener) -> None:
        """A stateless SYN-ACK. The cookie carries the peer's MSS (rounded down to the table) for our sending;
        the MSS option is our own, what we can receive, as in any SYN-ACK. Within the cookie budget: per 4-tuple
        and layer-wide with a per-second size nobody outside can know (netstack/tcp/replylimit.py says why)."""
        refused = self._cookie_budget.allow(now, dst, seg.dst_port, src, seg.src_port)
        if refused is not None:
            self.count(refused)
            return
        cfg = self.config
        opts = seg.options
        peer_mss = opts.mss if opts.mss is not None else cfg.default_peer_mss_for(src)
        cookie, mss = self.isn.make_cookie(now, dst, seg.dst_port, src, seg.src_port, seg.seq, peer_mss)
        local_mss = self.local_mss_for(dst)
        options = build_options(mss=local_mss)
        if cfg.timestamps and opts.ts_val is not None:
            # Window scaling and timestamps survive the cookie (Linux's way): the peer's window scale rides
            # in the low bits of our TSval, which its ACK echoes; ours follows from the configuration.
            peer_wscale = opts.wscale if cfg.window_scaling else None
            ours = window_shift(cookie_receive_buffer(cfg, mss, True, local_mss)) if peer_wscale is not None \
                else None
            options = build_options(mss=local_mss, wscale=ours,
                                    ts=(cookie_tsval(now, cookie, peer_wscale), opts.ts_val))
        out = build_segment(dst, src, seg.dst_port, seg.src_port, cookie, (seg.seq + 1) & MASK, SYN | ACK,
                            self._cookie_window(), options)
        listener.cookie_sent = now
        self.count(Count.SYN_COOKIE_SENT)
        self.transmit(dst, src, out)

    def _cookie_window(self) -> int:
        """The window a cookie SYN-ACK advertises, and so what the connection it makes starts from."""
        return min(self.config.rcv_buffer, 0xFFFF)

    def _cookie_ack(self, now: float, src: bytes, dst: bytes, seg: Segment) -> bool:
        peer_isn = (seg.seq - 1) & MASK
        cookie = (seg.ack - 1) & MASK
        mss = self.isn.check_cookie(now, dst, seg.dst_port, src, seg.src_port, peer_isn, cookie)
        if mss is None:
            return False
        key = (src, seg.src_port, dst, seg.dst_port)
        if self._cookie_used(now, key, cookie):
            return False
        if self._source_full(src):
            # A proven source over its share: told at once (a RST), not left to retry; nothing remembered.
            self.count(Count.PER_SOURCE_LIMIT_RESET)
            self.send_reset_for(dst, src, seg, now)
            return True
        if not self._room():
            return True  # refused, and nothing remembered: the peer may try again once there is room
        self.count(Count.SYN_COOKIE_ACCEPTED)
        conn = self._register(Connection.cookie_open(self, next(self._ids), dst, src, seg, mss, self._cookie_window(),
                                                     now))
        self._remember_cookie(now, key, cookie)
        self._arrived(now, conn, seg)
        return True

    def _arrived(self, now: float, conn: Connection, seg: Segment) -> None:
        half_open = conn.id in self.half_open
        try:
            conn.segment_arrived(now, seg)
            if half_open and conn.id not in self.half_open:
                self._verified(now, conn)
        finally:
            self._schedule(conn)  # even after a bug in the arrival: no connection is left without its timers

    def _verified(self, now: float, conn: Connection) -> None:
        """A half-open entry's handshake just completed (`half_open_done` counted it against its source): the
        source's share is checked now that the source is proven. Over it, the connection is reset before the
        user hears of it (its Accepted is taken back by `destroy`), counted."""
        if conn.id not in self.by_id or conn.id in self.time_wait_ids:
            return
        if self.per_source[source_key(conn.remote)] > self.config.max_per_source:
            self.count(Count.PER_SOURCE_LIMIT_RESET)
            conn.send_rst(now)
            self.destroy(conn, Cause.ABORT, None, notify=False)

    def _cookie_used(self, now: float, key: Key, cookie: int) -> bool:
        """A cookie makes one connection. Once that connection is gone (reset, aborted, done), the peer's old
        ACK still carries a cookie that checks out for up to `COOKIE_LIFETIME`, and any segment with it (the
        client sending more data on what it takes for the same connection) would bring the connection back
        to life: the listener would serve a peer whose connection it had reset. So a cookie that made a
        connection is remembered (`_remember_cookie`), by 4-tuple, until it expires; True if this one is such.
        Expired entries go first."""
        used = self._cookies_used
        for old_key, (_cookie, expiry) in list(itertools.islice(used.items(), 4)):
            if expiry > now:
                break
            del used[old_key]
        previous = used.get(key)
        if previous is not None and previous[0] == cookie and previous[1] > now:
            self.count(Count.SYN_COOKIE_REUSED)
            return True
        return False

    def _remember_cookie(self, now: float, key: Key, cookie: int) -> None:
        """Once the cookie has made its connection. The memory is bounded: past `max_cookies_remembered` the
        oldest (a flood of handshakes completed by real peers, each a connection we admitted) is forgotten,
        counted."""
        used = self._cookies_used
        used.pop(key, None)
        if len(used) >= self.config.max_cookies_remembered:
            del used[next(iter(used))]
            self.count(Count.SYN_COOKIE_FORGOTTEN)
        used[key] = (cookie, now + COOKIE_LIFETIME)

    def _icmp_error(self, now: float, icmp_type: int, icmp_code: int, quoted: bytes,
                    next_hop_mtu: int | None) -> None:
        """RFC 5927: act only on an error that quotes one of our connections with a sequence number we
        have sent and not yet seen acknowledged; anything else is a blind attack or stale. The type and code
        are read as ICMP or ICMPv6 by the family of the quote (so of the connection it names), never by the
        type alone: the numberings overlap."""
        quote = icmp.parse_quote(quoted)
        if isinstance(quote, Count):
            self.count(quote)
            return
        key, seq = quote
        conn = self.connections.get(key)
        if conn is None:
            self.count(Count.ICMP_NO_CONNECTION)
            return
        if not seq_in(seq, conn.snd_una, max(1, (conn.snd_max - conn.snd_una) & MASK)):
            self.count(Count.ICMP_SEQ_OUT_OF_WINDOW)
            return
        ipv6 = family.is_ipv6(conn.local)
        classify = icmp.classify6 if ipv6 else icmp.classify
        kind = classify(icmp_type, icmp_code, connecting=conn.state == State.SYN_SENT,
                        hard_errors=self.config.icmp_hard_errors)
        if kind is icmp.Kind.FRAG_NEEDED:
            if ipv6:
                self._packet_too_big(now, conn, next_hop_mtu)
            else:
                self._frag_needed(now, conn, next_hop_mtu)
        elif kind is icmp.Kind.REFUSED or kind is icmp.Kind.UNREACHABLE:
            self.count(Count.ICMP_HARD_ERROR)
            self.destroy(conn, Cause.ABORT, "refused" if kind is icmp.Kind.REFUSED else "unreachable")
        elif kind is icmp.Kind.SOFT:
            self.count(Count.ICMP_SOFT_ERROR)
            conn.soft_error("unreachable")
        else:
            self.count(Count.ICMP_IGNORED)

    def _frag_needed(self, now: float, conn: Connection, next_hop_mtu: int | None) -> None:
        """IPv4 path MTU discovery (`_packet_too_big` is IPv6's). RFC 1191 with the floor every stack keeps
        (RFC 8201 §5.2's point, Linux's min_pmtu 552): a next-hop MTU below `min_path_mtu` is taken as the
        floor, and the segments to that destination go without DF from then on, so routers fragment them.
        Taking 68 at its word made 28-byte segments (the per-segment cost of a tiny MSS is what an attacker
        forging the ICMP wants), and as they still had DF, a path really that small dropped them all: a black
        hole."""
        if next_hop_mtu is None or next_hop_mtu < icmp.MIN_MTU:
            self.count(Count.ICMP_FRAG_NEEDED_NO_MTU)
            return
        floor = self.config.min_path_mtu
        if next_hop_mtu < floor:
            next_hop_mtu = floor
            if conn.id not in self._fragmenting:
                self.count(Count.PMTU_FLOOR)
                self._fragmenting[conn.id] = conn.remote
                self.fragmentable = frozenset(self._fragmenting.values())
        if conn.path_mtu_reduced(now, next_hop_mtu):
            self.count(Count.PMTU_REDUCED)
            self._schedule(conn)

    def _packet_too_big(self, now: float, conn: Connection, next_hop_mtu: int | None) -> None:
        """IPv6 path MTU discovery (RFC 8201). No IPv6 link is smaller than 1280 bytes, so a packet too big
        that says less is discarded (§4: the path is never taken below the minimum link MTU), counted: it is
        a forgery or a broken router, and honouring it would only shrink our segments. There is no IPv4-style
        fallback of clearing DF (`fragmentable`): over IPv6 only the source fragments, and 1280 always fits."""
        if next_hop_mtu is None:
            self.count(Count.ICMP_FRAG_NEEDED_NO_MTU)
            return
        if next_hop_mtu < family.IPV6_MIN_MTU:
            self.count(Count.ICMP6_PTB_BELOW_MINIMUM)
            return
        if conn.path_mtu_reduced(now, next_hop_mtu):
            self.count(Count.PMTU_REDUCED)
            self._schedule(conn)

    # ------------------------------------------------------------------ user API

    def listen(self, port: int, backlog: int = 128) -> None:
        if not 0 < port < 65536:
            raise TcpError(f"bad port {port}")
        if port in self.listeners:
            raise TcpError(f"port {port} already listening")
        if len(self.listeners) >= self.config.max_listeners:
            raise TcpError("listener limit reached")
        self.listeners[port] = Listener(port, max(1, min(backlog, self.config.max_backlog)))

    def unlisten(self, port: int) -> None:
        self.listeners.pop(port, None)

    def connect(self, now: float, local: bytes, remote: bytes, remote_port: int, local_port: int = 0) -> int:
        """Open a connection from `local` to `remote`, both IPv4 or both IPv6 (else AddressError)."""
        if not family.pair_ok(local, remote):
            raise AddressError("local and remote addresses must both be IPv4 (4 bytes) or both IPv6 (16 bytes)")
        if family.is_ipv6(local) and not (is_unicast_host(local) and is_unicast_host(remote)):
            raise AddressError("an IPv6 connection joins two unicast host addresses")
        if not 0 < remote_port < 65536:
            raise TcpError("bad address")
        if len(self.by_id) >= self.config.max_connections and not self._admit(remote):
            raise TcpError("connection limit reached")
        if local_port == 0:
            local_port = self._ephemeral_port(now, local, remote, remote_port)
        elif (remote, remote_port, local, local_port) in self.connections:
            raise TcpError("address in use")
        iss = self.isn.isn(now, local, local_port, remote, remote_port)
        conn = self._register(Connection.active_open(self, next(self._ids), local, local_port, remote, remote_port,
                                                     iss, now))
        self._schedule(conn)
        return conn.id

    def _ephemeral_port(self, now: float, local: bytes, remote: bytes, remote_port: int) -> int:
        """RFC 6056 algorithm 3: a keyed-hash offset per destination plus a counter."""
        offset = self.isn.isn(0.0, local, 0, remote, remote_port)
        for _ in range(EPHEMERAL_COUNT):
            self._port_counter += 1
            port = EPHEMERAL_LOW + (offset + self._port_counter) % EPHEMERAL_COUNT
            if (remote, remote_port, local, port) not in self.connections and port not in self.listeners:
                return port
        raise TcpError("no ephemeral port free")

    def _conn(self, conn_id: int) -> Connection:
        conn = self.by_id.get(conn_id)
        if conn is None:
            raise TcpError(f"no connection {conn_id}")
        return conn

    def send(self, now: float, conn_id: int, data: bytes | bytearray | memoryview) -> int:
        """Queue data; returns how much fitted in the send buffer (a `Writable` event follows when more fits)."""
        conn = self._conn(conn_id)
        if conn.send_buffer.fin_queued or conn.state not in (State.ESTABLISHED, State.CLOSE_WAIT, State.SYN_SENT,
                                                 State.SYN_RECEIVED):
            raise TcpError("connection not writable")
        taken = conn.user_send(now, data)
        self._schedule(conn)
        return taken

    def receive(self, now: float, conn_id: int, max_bytes: int = 1 << 20) -> bytes:
        conn = self._conn(conn_id)
        data = conn.user_receive(now, max_bytes)
        self._schedule(conn)
        return data

    def readable_bytes(self, conn_id: int) -> int:
        conn = self.by_id.get(conn_id)
        return len(conn.rcvbuf) if conn is not None else 0

    def send_buffered(self, conn_id: int) -> int:
        """Bytes handed to `send` and not yet acknowledged by the peer."""
        conn = self.by_id.get(conn_id)
        return len(conn.send_buffer) if conn is not None else 0

    def pause_reading(self, conn_id: int) -> None:
        self._conn(conn_id).pause_reading()

    def resume_reading(self, conn_id: int) -> None:
        self._conn(conn_id).resume_reading()

    def shutdown(self, now: float, conn_id: int) -> None:
        conn = self._conn(conn_id)
        try:
            conn.user_shutdown(now)
        except IllegalTransitionError as exc:
            self.internal_error("TCP shutdown failed", exc)
        self._schedule(conn)

    def close(self, now: float, conn_id: int) -> None:
        """Orderly close: the FIN follows buffered data; the connection lingers in the stack until done."""
        conn = self.by_id.get(conn_id)
        if conn is None:
            return
        try:
            conn.user_close(now)
        except IllegalTransitionError as exc:
            self.internal_error("TCP close failed", exc)
        self._schedule(conn)

    def abort(self, now: float, conn_id: int) -> None:
        """Drop the connection at once, telling the peer with a RST when it is synchronized."""
        conn = self.by_id.get(conn_id)
        if conn is None:
            return
        if conn.state not in (State.SYN_SENT, State.TIME_WAIT, State.CLOSED):
            conn.send_rst(now)
        self.count(Count.ABORTED)
        self.destroy(conn, Cause.ABORT, "aborted", notify=False)

    def state_of(self, conn_id: int) -> State:
        conn = self.by_id.get(conn_id)
        return conn.state if conn is not None else State.CLOSED

    def addresses(self, conn_id: int) -> tuple[tuple[bytes, int], tuple[bytes, int]]:
        """((local address, port), (remote address, port))."""
        conn = self._conn(conn_id)
        return (conn.local, conn.local_port), (conn.remote, conn.remote_port)

    def connection(self, conn_id: int) -> Connection | None:
        """The connection object, for introspection by tests and statistics."""
        return self.by_id.get(conn_id)


__all__ = ["Listener", "TcpError", "TcpLayer"]
