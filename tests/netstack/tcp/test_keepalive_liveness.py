"""Only an acceptable segment shows the peer alive (netstack/tcp/send.py `_process_ack`): segments on the
4-tuple that are then dropped (out of window, PAWS-failed, acknowledging unsent data) must not postpone
keepalive's dead-peer detection. Virtual time only."""

from __future__ import annotations

import struct

import pytest

from netstack.tcp import events as ev
from netstack.tcp.config import TcpConfig
from netstack.tcp.segment import ACK, SYN, build_options
from tests.netstack.tcp.raw import RawPeer

CONFIG = TcpConfig(keepalive_idle=120.0, keepalive_interval=15.0, keepalive_probes=5)
DEAD_BY = 120.0 + 5 * 15.0 + 1


def _ts(val: int, ecr: int) -> bytes:
    return bytes((1, 1, 8, 10)) + struct.pack("!II", val, ecr)


def _established(*, timestamps: bool) -> tuple[RawPeer, int, int, int]:
    """(peer, connection, our ISS, our first TSval or 0)."""
    peer = RawPeer(CONFIG)
    peer.layer.listen(80)
    peer.inject(SYN, 1000, options=build_options(mss=1460, ts=(5000, 0) if timestamps else None))
    (syn_ack,) = peer.out()
    ours = syn_ack.options.ts_val or 0
    peer.inject(ACK, 1001, syn_ack.seq + 1, options=_ts(5001, ours) if timestamps else b"")
    (accepted,) = [e for e in peer.layer.take_events() if isinstance(e, ev.Accepted)]
    return peer, accepted.conn, syn_ack.seq, ours


@pytest.mark.parametrize("kind", ["out-of-window", "paws", "ack-unsent-data"])
def test_dropped_segments_do_not_keep_a_dead_peer_alive(kind: str) -> None:
    peer, conn, iss, ours = _established(timestamps=kind == "paws")
    while peer.layer.connection(conn) is not None and peer.now < 400:
        peer.advance(50)
        if kind == "out-of-window":
            peer.inject(ACK, 1001 + 0x40000000, iss + 1)
        elif kind == "paws":
            peer.inject(ACK, 1001, iss + 1, options=_ts(4000, ours))     # older than TS.Recent
        else:
            peer.inject(ACK, 1001, iss + 1000)                            # acknowledges data never sent
        peer.out()
    assert peer.layer.connection(conn) is None
    assert peer.now <= DEAD_BY + 50
    assert peer.layer.stats["keepalive-timeout"] == 1


def test_an_acceptable_segment_keeps_the_connection_alive() -> None:
    """Negative: the peer's own ACKs, as a live peer sends them, postpone keepalive probes and the timeout."""
    peer, conn, iss, _ours = _established(timestamps=False)
    for _ in range(8):
        peer.advance(100)
        peer.inject(ACK, 1001, iss + 1)
        assert peer.out() == []                                         # no keepalive probe was due
    assert peer.layer.connection(conn) is not None
    assert peer.layer.stats["keepalive-timeout"] == 0


def test_an_active_open_hears_the_peer_when_its_syn_ack_arrives() -> None:
    """SYN-SENT reaching ESTABLISHED is hearing from the peer (arrival.py): keepalive's idle time runs from the
    SYN-ACK, not from the connect, so a slow handshake does not bring the first probe early."""
    peer = RawPeer(CONFIG, port=6000, peer_port=5000)
    conn = peer.layer.connect(0.0, peer.us, peer.peer, 5000, local_port=6000)
    (syn,) = peer.out()
    peer.advance(20.0)                                      # SYN retransmitted at 1, 3, 7, 15 s
    peer.out()
    peer.inject(SYN | ACK, 7000, syn.seq + 1, options=build_options(mss=1460))
    assert ev.Connected(conn) in peer.layer.take_events()
    tcb = peer.layer.connection(conn)
    assert tcb is not None
    assert tcb.timers.last_heard == 20.0
    peer.out()
    (probe,) = peer.next_output()
    assert peer.now == 20.0 + CONFIG.keepalive_idle
    assert (probe.flags, probe.seq) == (ACK, syn.seq)
