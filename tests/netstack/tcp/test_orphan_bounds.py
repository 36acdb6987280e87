"""A peer cannot hold a connection whose data it never takes (netstack/tcp/connection.py): acknowledging
zero-window probe bytes one at a time is not progress for `persist_timeout`, and an orphan (the application
closed) stays in FIN-WAIT-1, CLOSING or LAST-ACK for at most `orphan_timeout`, however it drips. Readers that
really read are left alone. Virtual time only (RawPeer's clock)."""

from __future__ import annotations

from netstack.tcp import events as ev
from netstack.tcp.config import TcpConfig
from netstack.tcp.segment import ACK, FIN, SYN, build_options
from netstack.tcp.state import State
from tests.netstack.tcp.raw import THEM, US, RawPeer

PEER_ISN = 1000


def _accepted(peer: RawPeer, *, window: int) -> tuple[int, int]:
    """A passive open whose SYN and third ACK advertise `window`: (connection id, our ISS)."""
    peer.layer.listen(peer.port)
    peer.inject(SYN, PEER_ISN, window=window, options=build_options(mss=1460))
    (syn_ack,) = peer.out()
    peer.inject(ACK, PEER_ISN + 1, syn_ack.seq + 1, window=window)
    (accepted,) = [e for e in peer.layer.take_events() if isinstance(e, ev.Accepted)]
    return accepted.conn, syn_ack.seq


def _drip(peer: RawPeer, conn: int, iss: int, *, seq: int, until: float, every: float = 200.0,
          window: int = 0) -> int:
    """Answer everything we send (probes, keepalives, 1-byte segments), but acknowledge only one more byte every
    `every` seconds, the window staying at `window`; stop at `until` or when the connection is gone. Returns
    the bytes acknowledged."""
    acked = 0
    last = peer.now
    while peer.now < until and peer.layer.connection(conn) is not None:
        deadline = peer.layer.next_deadline()
        assert deadline is not None
        peer.now = max(peer.now, min(deadline, until))
        peer.layer.timers_expired(peer.now)
        sent = peer.out()
        if sent:
            if peer.now - last >= every:
                acked += 1
                last = peer.now
            peer.inject(ACK, seq, iss + 1 + acked, window=window)
            peer.out()
    return acked


def test_acking_one_probe_byte_at_a_time_does_not_hold_a_zero_window_forever() -> None:
    """ESTABLISHED (the application still holds it), the peer's window shut: ACKs of single probe bytes with the
    window still 0 do not restart `persist_timeout`, so the connection ends, counted as `persist-timeout`."""
    peer = RawPeer(TcpConfig(persist_timeout=300.0))
    conn, iss = _accepted(peer, window=0)
    peer.layer.send(peer.now, conn, b"R" * 20000)
    assert peer.out() == []
    acked = _drip(peer, conn, iss, seq=PEER_ISN + 1, until=800.0)
    assert acked >= 1                                   # the peer did take probe bytes
    assert peer.layer.connection(conn) is None
    assert peer.now <= 300.0 + peer.layer.config.persist_max + 1
    assert peer.layer.stats["persist-timeout"] == 1
    assert ev.Closed(conn, "timeout") in peer.layer.take_events()


def test_an_orphan_held_by_a_zero_window_drip_ends_within_the_orphan_bound() -> None:
    """The audit's case: the application wrote, closed, the peer FINs with its window at 0 and then acknowledges
    a probe byte every 200 s. With `persist_timeout` out of the way, `orphan_timeout` ends the CLOSING orphan."""
    peer = RawPeer(TcpConfig(persist_timeout=1e9, orphan_timeout=300.0))
    conn, iss = _accepted(peer, window=0)
    peer.layer.send(peer.now, conn, b"R" * 20000)
    peer.layer.close(peer.now, conn)
    peer.inject(ACK | FIN, PEER_ISN + 1, iss + 1, window=0)
    peer.out()
    assert peer.layer.state_of(conn) == State.CLOSING
    _drip(peer, conn, iss, seq=PEER_ISN + 2, until=2000.0)
    assert peer.layer.connection(conn) is None
    assert peer.now <= 300.0 + 1
    assert peer.layer.stats["orphan-timeout"] == 1
    assert peer.layer.stats["persist-timeout"] == 0
    assert not peer.layer.per_source
    assert peer.layer.budgets.snd_held == 0


def test_an_orphan_held_through_a_one_byte_window_ends_within_the_orphan_bound() -> None:
    """LAST-ACK, the peer's window 1 byte: each of its ACKs is real progress (no persist involved at all), but an
    orphan's whole stay is bounded."""
    peer = RawPeer(TcpConfig(orphan_timeout=300.0))
    conn, iss = _accepted(peer, window=1)
    peer.inject(ACK | FIN, PEER_ISN + 1, iss + 1, window=1)
    peer.out()
    peer.layer.send(peer.now, conn, b"R" * 20000)
    peer.layer.close(peer.now, conn)
    assert peer.layer.state_of(conn) == State.LAST_ACK
    peer.out()
    acked = _drip(peer, conn, iss, seq=PEER_ISN + 2, until=2000.0, every=20.0, window=1)
    assert acked >= 5
    assert peer.layer.connection(conn) is None
    assert peer.now <= 300.0 + 1
    assert peer.layer.stats["orphan-timeout"] == 1


def test_an_orphan_closed_during_a_simultaneous_open_gets_the_bound_too() -> None:
    """A close in SYN-RECEIVED reaches FIN-WAIT-1 only when the handshake completes; the bound starts there.
    (Retransmission limits are set out of reach so that only the orphan bound can end it.)"""
    peer = RawPeer(TcpConfig(orphan_timeout=300.0, user_timeout=1e9, data_retries=1000, keepalive=False),
                   port=50000, peer_port=443)
    conn = peer.layer.connect(peer.now, US, THEM, 443, local_port=50000)
    (syn,) = peer.out()
    peer.port, peer.peer_port = 50000, 443
    peer.inject(SYN, 5000, options=build_options(mss=1460))
    peer.out()
    assert peer.layer.state_of(conn) == State.SYN_RECEIVED
    peer.layer.close(peer.now, conn)
    peer.inject(ACK, 5001, syn.seq + 1)
    assert peer.layer.state_of(conn) == State.FIN_WAIT_1
    peer.advance(299)
    assert peer.layer.state_of(conn) == State.FIN_WAIT_1
    peer.advance(2)
    assert peer.layer.connection(conn) is None
    assert peer.layer.stats["orphan-timeout"] == 1


def test_a_slow_reader_that_opens_its_window_is_not_given_up() -> None:
    """Negative: the window opens (a little) every 200 s and shuts again; every opening restarts
    `persist_timeout`, so a reader far slower than the limit but really reading keeps its connection."""
    peer = RawPeer(TcpConfig(persist_timeout=300.0, keepalive=False))
    conn, iss = _accepted(peer, window=0)
    peer.layer.send(peer.now, conn, b"R" * 200_000)
    received = 0
    for _ in range(10):                                 # 2000 s, much longer than persist_timeout
        peer.advance(200)
        assert any(len(s.payload) == 1 for s in peer.out())  # probing
        received += 1                                   # the reader takes the probe's byte and opens up
        peer.inject(ACK, PEER_ISN + 1, iss + 1 + received, window=4 * 1460)
        for s in peer.out():
            assert s.seq == (iss + 1 + received) & 0xFFFFFFFF
            received += len(s.payload)
        peer.inject(ACK, PEER_ISN + 1, iss + 1 + received, window=0)
        peer.out()
        assert peer.layer.state_of(conn) == State.ESTABLISHED
    assert received >= 10 * 3 * 1460
    assert peer.layer.stats["persist-timeout"] == 0


def test_an_orphan_whose_peer_reads_closes_in_order() -> None:
    """Negative: an orphan whose peer takes everything ends by the ACK of its FIN, not by the bound."""
    peer = RawPeer(TcpConfig(orphan_timeout=300.0))
    conn, iss = _accepted(peer, window=65535)
    peer.inject(ACK | FIN, PEER_ISN + 1, iss + 1)
    peer.out()
    peer.layer.send(peer.now, conn, b"R" * 3000)
    peer.layer.close(peer.now, conn)
    out = peer.out()
    assert out[-1].flags & FIN
    peer.advance(100)
    peer.inject(ACK, PEER_ISN + 2, iss + 1 + 3000 + 1)
    assert peer.layer.connection(conn) is None
    peer.advance(1000)
    assert peer.layer.stats["orphan-timeout"] == 0


def test_a_connection_only_shut_down_is_no_orphan() -> None:
    """Negative: SHUT_WR leaves the application holding the connection, so the orphan bound does not apply to a
    FIN-WAIT-1 that drips through a 1-byte window; the application decides how long to wait."""
    peer = RawPeer(TcpConfig(orphan_timeout=300.0, keepalive=False))
    conn, iss = _accepted(peer, window=1)
    peer.layer.send(peer.now, conn, b"R" * 20000)
    peer.layer.shutdown(peer.now, conn)
    peer.out()
    assert peer.layer.state_of(conn) == State.FIN_WAIT_1
    _drip(peer, conn, iss, seq=PEER_ISN + 1, until=800.0, every=20.0, window=1)
    assert peer.layer.state_of(conn) == State.FIN_WAIT_1
    assert peer.layer.stats["orphan-timeout"] == 0
