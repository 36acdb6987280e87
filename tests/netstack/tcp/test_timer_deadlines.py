"""The deadline arithmetic of `Timers`, and how a connection combines it."""

from __future__ import annotations

from netstack.tcp.config import TcpConfig
from netstack.tcp.state import State
from netstack.tcp.timers import INF, Timers
from tests.netstack.tcp.raw import RawPeer

CONFIG = TcpConfig(idle_timeout=900.0, keepalive_idle=120.0, keepalive_interval=15.0)


def test_idle_and_keepalive_clocks() -> None:
    timers = Timers(now=10.0)
    assert timers.idle_deadline(CONFIG) == 910.0
    assert timers.keepalive_deadline(CONFIG) == 130.0
    timers.keepalive_sent = 2
    assert timers.keepalive_deadline(CONFIG) == 160.0
    assert (timers.rtx, timers.delack, timers.persist, timers.phase) == (INF, INF, INF, INF)


def test_a_connection_wakes_for_its_earliest_timer_and_its_limits() -> None:
    peer = RawPeer(CONFIG)
    conn_id, _iss = peer.accept()
    conn = peer.layer.connection(conn_id)
    assert conn is not None
    assert conn.deadline() == 120.0          # established and idle: the first keepalive probe
    conn.timers.delack = 0.2
    assert conn.deadline() == 0.2
    conn.timers.delack = INF
    peer.inject(0x11, 1001, conn.snd_nxt)   # the peer closes (FIN|ACK): CLOSE-WAIT still sends keepalives
    assert peer.layer.state_of(conn_id) == State.CLOSE_WAIT
    peer.layer.close(peer.now, conn_id)      # LAST-ACK: the FIN's retransmission timer, the idle limit
    assert peer.layer.state_of(conn_id) == State.LAST_ACK
    assert conn.deadline() == conn.timers.rtx < 900.0


def test_keepalive_switched_off_in_the_configuration() -> None:
    peer = RawPeer(TcpConfig(keepalive=False, idle_timeout=50.0))
    conn_id, _iss = peer.accept()
    conn = peer.layer.connection(conn_id)
    assert conn is not None
    assert conn.deadline() == 50.0
