"""Retransmission timing (RFC 6298), delayed ACK, keepalive, idle and user timeouts, TIME_WAIT."""

from __future__ import annotations

import itertools

import pytest

from netstack.tcp import events as ev
from netstack.tcp.config import TcpConfig
from netstack.tcp.segment import ACK, CWR, ECE, FIN, RST, SYN, build_options
from netstack.tcp.state import State
from tests.netstack.tcp.raw import THEM, US, RawPeer


def syn_times(peer: RawPeer, until: float) -> list[float]:
    times: list[float] = []
    while peer.now < until:
        deadline = peer.layer.next_deadline()
        if deadline is None or deadline > until:
            break
        peer.now = deadline
        peer.layer.timers_expired(peer.now)
        times.extend(peer.now for seg in peer.out() if seg.flags & SYN)
    return times


def test_syn_retransmission_backoff_doubles_from_one_second() -> None:
    peer = RawPeer(TcpConfig(syn_retries=4, connect_timeout=1000))
    conn = peer.layer.connect(0.0, US, THEM, 80)
    (first,) = peer.out()
    assert first.flags == SYN
    times = syn_times(peer, 100.0)
    # RFC 6298 §2.1 initial RTO 1 s, §5.5 doubling on each expiry
    assert times == pytest.approx([1.0, 3.0, 7.0, 15.0])
    assert peer.layer.state_of(conn) == State.CLOSED
    assert ev.Closed(conn, "timeout") in peer.layer.take_events()


def test_connect_timeout_bounds_syn_sent() -> None:
    peer = RawPeer(TcpConfig(connect_timeout=5.0))
    conn = peer.layer.connect(0.0, US, THEM, 80)
    peer.advance(4.9)
    assert peer.layer.state_of(conn) == State.SYN_SENT
    peer.advance(0.2)
    assert ev.Closed(conn, "timeout") in peer.layer.take_events()


def established_without_timestamps(peer: RawPeer) -> tuple[int, int]:
    conn, iss = peer.accept()
    connection = peer.layer.connection(conn)
    assert connection is not None
    assert not connection.ts_enabled
    return conn, iss


def test_data_rto_follows_measured_rtt_and_karn() -> None:
    peer = RawPeer(TcpConfig(timestamps=False, rto_min=0.2))
    conn, iss = established_without_timestamps(peer)
    c = peer.layer.connection(conn)
    assert c is not None
    # One timed segment, acknowledged after 0.3 s: SRTT = 0.3, RTTVAR = 0.15, RTO = 0.3 + 4 * 0.15 = 0.9
    peer.layer.send(peer.now, conn, b"x" * 100)
    (_seg,) = peer.out()
    peer.advance(0.3)
    peer.inject(ACK, 1001, iss + 101)
    assert c.rtt.srtt == pytest.approx(0.3)
    assert c.rtt.rttvar == pytest.approx(0.15)
    assert c.rtt.rto == pytest.approx(0.9)
    # Now lose a segment: retransmissions at RTO, then 2*RTO (backoff)
    peer.layer.send(peer.now, conn, b"y" * 100)
    sent_at = peer.now
    assert len(peer.out()) == 1
    times = []
    for _ in range(2):
        out = peer.next_output()
        assert [s.seq for s in out] == [iss + 101]
        times.append(peer.now - sent_at)
    assert times == pytest.approx([0.9, 0.9 + 1.8])
    # Karn: the ACK of a retransmitted segment gives no RTT sample, and the backed-off RTO is kept
    peer.advance(0.05)
    peer.inject(ACK, 1001, iss + 201)
    assert c.rtt.srtt == pytest.approx(0.3)
    assert c.rtt.rto == pytest.approx(3.6)
    # ...until new data is timed again (RFC 6298 §5.7 would allow collapsing; the sample fixes it)
    peer.layer.send(peer.now, conn, b"z" * 100)
    peer.out()
    peer.advance(0.3)
    peer.inject(ACK, 1001, iss + 301)
    assert c.rtt.rto == pytest.approx(max(0.2, c.rtt.srtt + 4 * c.rtt.rttvar))
    assert c.rtt.rto < 1.0


def test_rto_floor_is_one_second_by_default() -> None:
    peer = RawPeer(TcpConfig(timestamps=False))
    conn, iss = established_without_timestamps(peer)
    peer.layer.send(peer.now, conn, b"x" * 10)
    peer.out()
    peer.advance(0.01)
    peer.inject(ACK, 1001, iss + 11)
    c = peer.layer.connection(conn)
    assert c is not None
    assert c.rtt.rto == pytest.approx(1.0)


def test_delayed_ack_and_every_second_segment() -> None:
    peer = RawPeer(TcpConfig(delayed_ack=0.1))
    _conn, iss = peer.accept()
    peer.inject(ACK, 1001, iss + 1, b"a" * 1460)
    assert peer.out() == []                       # first full segment: ACK delayed
    peer.inject(ACK, 2461, iss + 1, b"b" * 1460)
    (ack,) = peer.out()                           # second: ACK now
    assert ack.ack == 3921
    peer.inject(ACK, 3921, iss + 1, b"c" * 10)
    assert peer.out() == []
    peer.advance(0.11)
    (late,) = peer.out()
    assert late.ack == 3931


def test_keepalive_probes_then_drops_dead_peer() -> None:
    config = TcpConfig(keepalive_idle=10, keepalive_interval=2, keepalive_probes=3, idle_timeout=1000)
    peer = RawPeer(config)
    conn, iss = peer.accept()
    peer.advance(9.9)
    assert peer.out() == []
    peer.advance(0.2)
    (probe,) = peer.out()
    assert probe.seq == iss  # SND.NXT - 1 elicits an ACK (RFC 9293 §3.8.4)
    assert probe.flags == ACK
    assert len(probe.payload) == 0
    peer.inject(ACK, 1001, iss + 1)             # peer alive: timer restarts
    peer.advance(9.0)
    assert peer.out() == []
    peer.advance(1.2 + 2 * 2)
    assert len([s for s in peer.out() if s.flags == ACK]) == 3
    peer.advance(2.1)
    (rst,) = peer.out()
    assert rst.flags & RST
    assert ev.Closed(conn, "timeout") in peer.layer.take_events()


def test_idle_timeout_aborts() -> None:
    peer = RawPeer(TcpConfig(idle_timeout=30, keepalive=False))
    conn, _ = peer.accept()
    peer.advance(29)
    assert peer.layer.state_of(conn) == State.ESTABLISHED
    peer.advance(2)
    assert peer.layer.state_of(conn) == State.CLOSED
    assert ev.Closed(conn, "idle") in peer.layer.take_events()
    assert peer.layer.stats["idle-timeout"] == 1


def test_user_timeout_aborts_unacknowledged_data() -> None:
    peer = RawPeer(TcpConfig(user_timeout=20, data_retries=100, keepalive=False))
    conn, _ = peer.accept()
    peer.layer.send(peer.now, conn, b"never acknowledged")
    peer.advance(19)
    assert peer.layer.state_of(conn) == State.ESTABLISHED
    peer.advance(40)
    assert peer.layer.state_of(conn) == State.CLOSED
    assert ev.Closed(conn, "timeout") in peer.layer.take_events()


def test_zero_window_probing_backs_off_and_survives() -> None:
    peer = RawPeer(TcpConfig(keepalive=False, user_timeout=1000))
    conn, iss = peer.accept()
    peer.inject(ACK, 1001, iss + 1, window=0)
    peer.layer.send(peer.now, conn, b"data waiting")
    assert peer.out() == []                      # nothing fits a zero window
    probe_times = []
    for _ in range(4):
        out = peer.next_output()
        assert len(out[0].payload) == 1          # one byte beyond the window
        probe_times.append(peer.now)
        peer.inject(ACK, 1001, iss + 1, window=0)
    gaps = [b - a for a, b in itertools.pairwise(probe_times)]
    assert len(probe_times) >= 3
    assert all(later > earlier for earlier, later in itertools.pairwise(gaps))
    assert peer.layer.state_of(conn) == State.ESTABLISHED
    peer.inject(ACK, 1001, iss + 1, window=65535)  # window opens: everything goes
    out = peer.out()
    assert b"".join(bytes(s.payload) for s in out).endswith(b"ata waiting")


def test_time_wait_lasts_two_msl_and_reacks_fin() -> None:
    peer = RawPeer(TcpConfig(msl=5))
    conn, iss = peer.accept()
    peer.layer.close(peer.now, conn)
    (fin,) = peer.out()
    assert fin.flags & FIN
    peer.inject(FIN | ACK, 1001, iss + 2)
    (ack,) = peer.out()
    assert ack.ack == 1002
    assert peer.layer.state_of(conn) == State.TIME_WAIT
    peer.advance(6)
    peer.inject(FIN | ACK, 1001, iss + 2)        # retransmitted FIN: ACK again, restart 2*MSL
    (again,) = peer.out()
    assert again.ack == 1002
    peer.advance(9)
    assert peer.layer.state_of(conn) == State.TIME_WAIT
    peer.advance(1.5)
    assert peer.layer.state_of(conn) == State.CLOSED


@pytest.mark.parametrize("challenge_rst", [True, False], ids=["rfc5961", "rfc793"])
@pytest.mark.parametrize(("flags", "seq"), [
    (RST, 1002),                # exactly RCV.NXT: RFC 9293 would close; RFC 1337 keeps waiting
    (RST | ACK, 1002),
    (RST, 1002 + 100),          # in window, not exact: no challenge ACK either
    (RST, 1001),                # left of the window
    (RST, 1002 + 10_000_000),   # far outside
], ids=["exact", "exact-ack", "in-window", "outside-left", "outside-right"])
def test_time_wait_ignores_every_rst(challenge_rst: bool, flags: int, seq: int) -> None:
    """RFC 1337 fix F1: no RST ends TIME-WAIT early, so 2*MSL still protects the next incarnation."""
    peer = RawPeer(TcpConfig(msl=5, challenge_rst=challenge_rst))
    conn, iss = peer.accept()
    peer.layer.close(peer.now, conn)
    peer.out()
    peer.inject(FIN | ACK, 1001, iss + 2)
    peer.out()
    peer.layer.take_events()
    assert peer.layer.state_of(conn) == State.TIME_WAIT
    peer.advance(1)
    peer.inject(flags, seq, iss + 2)
    assert peer.out() == []
    assert peer.layer.take_events() == []
    assert peer.layer.state_of(conn) == State.TIME_WAIT
    assert peer.layer.stats["time-wait-rst-ignored"] == 1
    assert peer.layer.stats["rst-accepted"] == 0
    peer.inject(FIN | ACK, 1001, iss + 2)          # the entry still works: a repeated FIN is acknowledged
    (again,) = peer.out()
    assert (again.flags, again.ack) == (ACK, 1002)
    peer.advance(2 * 5 + 0.5)
    assert peer.layer.state_of(conn) == State.CLOSED


def _in_time_wait(peer: RawPeer, *, timestamps: bool) -> tuple[int, int]:
    """A passive connection that we closed first (as the appliance does after a response), now in TIME-WAIT;
    with timestamps the peer's last TSval was 5000."""
    peer.layer.listen(peer.port)
    options = build_options(mss=1460, ts=(4000, 0) if timestamps else None)
    peer.inject(SYN, 1000, options=options)
    (syn_ack,) = peer.out()
    iss = syn_ack.seq
    assert (syn_ack.options.ts_val is not None) == timestamps
    ts = build_options(ts=(5000, syn_ack.options.ts_val or 0)) if timestamps else b""
    peer.inject(ACK, 1001, iss + 1, options=ts)
    (accepted,) = [e for e in peer.layer.take_events() if isinstance(e, ev.Accepted)]
    conn = accepted.conn
    peer.layer.close(peer.now, conn)
    peer.out()
    peer.inject(FIN | ACK, 1001, iss + 2, options=ts)
    peer.out()
    peer.layer.take_events()
    assert peer.layer.state_of(conn) == State.TIME_WAIT
    return conn, iss


@pytest.mark.parametrize("syn", [SYN, SYN | ECE | CWR], ids=["plain", "ecn-setup"])
def test_a_syn_with_a_newer_timestamp_reopens_time_wait(syn: int) -> None:
    """RFC 6191: a client reusing its port at once (as Linux does under load) gets a new connection, not a
    challenge ACK whose RST we would ignore (RFC 1337), which left it unable to connect for 2*MSL."""
    peer = RawPeer(TcpConfig(msl=30))
    old, _ = _in_time_wait(peer, timestamps=True)
    peer.advance(0.5)
    peer.inject(syn, 7, options=build_options(mss=1460, ts=(5001, 0)))  # any ISN: the timestamp decides
    (syn_ack,) = peer.out()
    assert syn_ack.flags == SYN | ACK
    assert syn_ack.ack == 8
    assert peer.layer.stats["time-wait-reopened"] == 1
    assert peer.layer.state_of(old) == State.CLOSED
    peer.inject(ACK, 8, syn_ack.seq + 1, options=build_options(ts=(5002, syn_ack.options.ts_val or 0)))
    accepted = [e for e in peer.layer.take_events() if isinstance(e, ev.Accepted)]
    assert len(accepted) == 1
    assert accepted[0].conn != old
    assert peer.layer.time_wait == 0


@pytest.mark.parametrize(("timestamps", "ts_val", "seq"), [
    (True, 5000, 500_000),    # the same TSval: possibly an old duplicate
    (True, 4000, 500_000),    # an older one
    (True, None, 500_000),    # the old connection used timestamps, this SYN has none
    (False, None, 500_000),   # no timestamps at all: RFC 9293 does not reopen on the ISN alone (BSD does)
    (False, None, 1002),
], ids=["same-ts", "older-ts", "ts-missing", "isn-beyond", "isn-at-rcv-nxt"])
def test_other_syns_do_not_reopen_time_wait(timestamps: bool, ts_val: int | None, seq: int) -> None:
    """They get RFC 5961's challenge ACK and the TIME-WAIT entry stays."""
    peer = RawPeer(TcpConfig(msl=30))
    old, _ = _in_time_wait(peer, timestamps=timestamps)
    peer.inject(SYN, seq, options=build_options(mss=1460, ts=(ts_val, 0) if ts_val is not None else None))
    (challenge,) = peer.out()
    assert challenge.flags == ACK
    assert challenge.ack == 1002
    assert peer.layer.state_of(old) == State.TIME_WAIT
    assert peer.layer.stats["time-wait-reopened"] == 0


def test_time_wait_is_kept_when_nothing_listens_any_more() -> None:
    peer = RawPeer(TcpConfig(msl=30))
    old, _ = _in_time_wait(peer, timestamps=True)
    peer.layer.unlisten(peer.port)
    peer.inject(SYN, 500_000, options=build_options(mss=1460, ts=(9000, 0)))
    assert peer.layer.state_of(old) == State.TIME_WAIT
    assert peer.layer.stats["time-wait-reopened"] == 0
