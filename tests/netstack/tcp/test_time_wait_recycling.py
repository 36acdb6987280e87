"""A full table recycles its oldest TIME-WAIT entry only for a SYN that really makes a TCB
(netstack/tcp/layer.py `_admit`, `_register`): not for one answered by a cookie, nor one refused later."""

from __future__ import annotations

from netstack.tcp.config import TcpConfig
from netstack.tcp.segment import ACK, FIN, SYN, build_options
from netstack.tcp.state import State
from tests.netstack.tcp.raw import RawPeer

OTHER = bytes([10, 0, 0, 3])


def _time_wait(peer: RawPeer) -> int:
    """A connection from the peer that we closed first, now in TIME-WAIT."""
    conn, iss = peer.accept(1000)
    peer.layer.close(peer.now, conn)
    peer.out()
    peer.inject(ACK | FIN, 1001, iss + 2)
    peer.out()
    assert peer.layer.state_of(conn) == State.TIME_WAIT
    return conn


def _full_table_with_time_wait(peer: RawPeer) -> int:
    """A table of three (`max_connections`): one TIME-WAIT entry and two half-open ones; then a third SYN."""
    tw = _time_wait(peer)
    for port in (20001, 20002):
        peer.inject(SYN, 7000, src=OTHER, src_port=port, options=build_options(mss=1460))
    peer.out()
    assert len(peer.layer.by_id) == 3
    peer.inject(SYN, 7000, src=OTHER, src_port=20003, options=build_options(mss=1460))
    return tw


def test_a_syn_answered_by_a_cookie_does_not_recycle_time_wait() -> None:
    peer = RawPeer(TcpConfig(max_connections=3, max_half_open=2))
    tw = _full_table_with_time_wait(peer)
    assert peer.layer.stats["syn-cookie-sent"] == 1
    assert peer.layer.stats["time-wait-recycled"] == 0
    assert peer.layer.state_of(tw) == State.TIME_WAIT


def test_a_syn_refused_per_source_does_not_recycle_time_wait() -> None:
    """Without cookies a SYN from a source at its share is refused (with them it gets a cookie: the test
    above): either way no TCB is made, so TIME-WAIT stays."""
    peer = RawPeer(TcpConfig(max_connections=2, max_per_source=1, syn_cookies=False))
    tw = _time_wait(peer)
    peer.inject(SYN, 2000, src=OTHER, src_port=30000, options=build_options(mss=1460))
    (syn_ack,) = peer.out()
    peer.inject(ACK, 2001, syn_ack.seq + 1, src=OTHER, src_port=30000)   # OTHER's one connection, established
    assert peer.layer.stats["syn-received"] == 2
    peer.inject(SYN, 9000, src=OTHER, src_port=30001, options=build_options(mss=1460))
    assert peer.out() == []
    assert peer.layer.stats["per-source-limit"] == 1
    assert peer.layer.stats["time-wait-recycled"] == 0
    assert peer.layer.state_of(tw) == State.TIME_WAIT


def test_a_syn_that_makes_a_connection_still_recycles_time_wait() -> None:
    """Negative: a full table whose SYN becomes a half-open TCB recycles the oldest TIME-WAIT entry for it."""
    peer = RawPeer(TcpConfig(max_connections=3, max_half_open=8))
    tw = _full_table_with_time_wait(peer)
    assert peer.layer.stats["time-wait-recycled"] == 1
    assert peer.layer.stats["syn-received"] == 4
    assert peer.layer.connection(tw) is None
    assert len(peer.layer.by_id) == 3
