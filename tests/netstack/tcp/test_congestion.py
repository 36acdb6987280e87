"""RFC 5681 slow start and fast retransmit/recovery with RFC 6582 NewReno partial acknowledgements."""

from __future__ import annotations

from netstack.tcp.config import TcpConfig
from netstack.tcp.congestion import NewReno
from netstack.tcp.connection import Connection
from netstack.tcp.segment import ACK
from tests.netstack.tcp.raw import RawPeer

MSS = 1460


def recovering(conn: Connection) -> bool:
    """Read through a call: mypy would otherwise keep the narrowing of an earlier assert."""
    return conn.congestion.in_recovery


def sender() -> tuple[RawPeer, Connection, int]:
    peer = RawPeer(TcpConfig(timestamps=False, window_scaling=False, snd_buffer=1 << 20))
    conn_id, iss = peer.accept(mss=MSS)
    conn = peer.layer.connection(conn_id)
    assert conn is not None
    peer.layer.send(peer.now, conn_id, bytes(200 * MSS))
    return peer, conn, iss


def test_initial_window_and_slow_start() -> None:
    peer, conn, iss = sender()
    first = peer.out()
    assert [len(s.payload) for s in first] == [MSS] * 10          # IW10 (RFC 6928)
    assert [s.seq - iss - 1 for s in first] == [i * MSS for i in range(10)]
    peer.inject(ACK, 1001, iss + 1 + 2 * MSS)                      # one ACK for two segments
    assert conn.congestion.cwnd == 11 * MSS                                   # slow start: + min(acked, SMSS)
    sent = peer.out()
    assert len(sent) == 3                                          # two freed + one from growth
    assert sent[0].seq == iss + 1 + 10 * MSS


def test_fast_retransmit_and_newreno_recovery() -> None:
    peer, conn, iss = sender()
    peer.out()
    una = iss + 1
    for _ in range(2):
        peer.inject(ACK, 1001, una)
    assert peer.out() == []                                        # two duplicates: nothing yet
    peer.inject(ACK, 1001, una)
    (retransmission,) = peer.out()                                 # third: fast retransmit
    assert retransmission.seq == una
    flight = 10 * MSS
    assert conn.congestion.ssthresh == flight // 2
    assert conn.congestion.cwnd == conn.congestion.ssthresh + 3 * MSS
    assert recovering(conn)
    recover = conn.congestion.recover
    # further duplicates inflate the window and clock out new data
    peer.inject(ACK, 1001, una)
    assert conn.congestion.cwnd == conn.congestion.ssthresh + 4 * MSS
    # partial ACK (the retransmission filled one hole, the next one is lost too): retransmit it at once
    peer.out()
    peer.inject(ACK, 1001, una + 3 * MSS)
    partial = peer.out()
    assert partial[0].seq == una + 3 * MSS
    assert recovering(conn)
    # full ACK up to `recover`: leave recovery with cwnd deflated to ssthresh at most
    peer.inject(ACK, 1001, recover)
    assert not recovering(conn)
    assert conn.congestion.cwnd <= conn.congestion.ssthresh
    assert peer.layer.stats["fast-retransmit"] == 1
    assert peer.layer.stats["partial-ack-retransmit"] == 1


def test_timeout_collapses_window_to_one_segment() -> None:
    peer, conn, iss = sender()
    peer.out()
    peer.advance(1.01)                                              # RTO (1 s initial)
    (again,) = peer.out()
    assert again.seq == iss + 1
    assert conn.congestion.cwnd == MSS                                         # loss window (RFC 5681 §3.1)
    assert conn.congestion.ssthresh == 5 * MSS
    peer.inject(ACK, 1001, iss + 1 + MSS)
    assert len(peer.out()) == 2                                     # slow start again from one segment


def test_fast_retransmit_resends_only_what_was_sent() -> None:
    """The segment at SND.UNA went out short (the peer's window allowed 500 bytes) while more data waits:
    its retransmission repeats those 500 bytes and nothing beyond the window the peer advertised."""
    peer = RawPeer(TcpConfig(timestamps=False, window_scaling=False))
    conn_id, iss = peer.accept(mss=MSS)
    una = iss + 1
    peer.inject(ACK, 1001, una, window=500)
    peer.layer.send(peer.now, conn_id, bytes(4 * MSS))
    (first,) = peer.out()
    assert (first.seq, len(first.payload)) == (una, 500)
    for _ in range(3):
        peer.inject(ACK, 1001, una, window=500)
    (retransmission,) = peer.out()
    assert peer.layer.stats["fast-retransmit"] == 1
    assert (retransmission.seq, len(retransmission.payload)) == (una, 500)


# ---------------------------------------------------------------- NewReno on its own

CC_MSS = 1000


def new_reno(**config: int) -> tuple[NewReno, TcpConfig]:
    cfg = TcpConfig(**config)  # type: ignore[arg-type]
    cc = NewReno(iss=0)
    cc.start(CC_MSS, cfg)
    return cc, cfg


def test_third_duplicate_ack_starts_fast_recovery_and_later_ones_inflate() -> None:
    cc, cfg = new_reno()
    assert cc.cwnd == 10 * CC_MSS
    flight = 8 * CC_MSS
    assert not cc.duplicate_ack(1, 1, 1 + flight, CC_MSS, cfg)
    assert not cc.duplicate_ack(1, 1, 1 + flight, CC_MSS, cfg)
    assert cc.duplicate_ack(1, 1, 1 + flight, CC_MSS, cfg)
    assert (cc.in_recovery, cc.recover, cc.ssthresh, cc.cwnd) == (True, 1 + flight, flight // 2, 7 * CC_MSS)
    assert not cc.duplicate_ack(1, 1, 1 + flight, CC_MSS, cfg)
    assert cc.cwnd == 8 * CC_MSS


def test_duplicate_acks_below_recover_do_not_start_a_second_recovery() -> None:
    """RFC 6582 §3.2 step 2: after a timeout set `recover`, duplicate ACKs for older data are not a new loss."""
    cc, cfg = new_reno()
    cc.timeout(True, 100, 5000, CC_MSS)
    assert cc.recover == 5000
    for _ in range(3):
        assert not cc.duplicate_ack(2000, 2000, 6000, CC_MSS, cfg)
    assert not cc.in_recovery


def test_partial_then_full_acknowledgement() -> None:
    cc, cfg = new_reno()
    for _ in range(3):
        cc.duplicate_ack(0, 0, 10 * CC_MSS, CC_MSS, cfg)
    assert cc.cwnd == 8 * CC_MSS
    assert cc.new_ack(2 * CC_MSS, 2 * CC_MSS, 2 * CC_MSS, 10 * CC_MSS, CC_MSS, cfg)  # partial: resend the next hole
    assert cc.cwnd == 7 * CC_MSS
    assert cc.in_recovery
    assert not cc.new_ack(10 * CC_MSS, 8 * CC_MSS, 10 * CC_MSS, 10 * CC_MSS, CC_MSS, cfg)  # full: deflate
    assert (cc.in_recovery, cc.dupacks, cc.cwnd) == (False, 0, 2 * CC_MSS)


def test_slow_start_then_congestion_avoidance_within_the_cap() -> None:
    cc, cfg = new_reno(snd_buffer=20 * CC_MSS)
    cc.ssthresh = 12 * CC_MSS
    cc.new_ack(0, 5 * CC_MSS, 0, 0, CC_MSS, cfg)
    assert cc.cwnd == 11 * CC_MSS                        # slow start: + min(acked, MSS)
    cc.new_ack(0, CC_MSS, 0, 0, CC_MSS, cfg)
    cc.new_ack(0, CC_MSS, 0, 0, CC_MSS, cfg)
    assert cc.cwnd == 12 * CC_MSS + CC_MSS // 12        # then about one MSS per window
    cc.cwnd = 30 * CC_MSS
    cc.new_ack(0, CC_MSS, 0, 0, CC_MSS, cfg)
    assert cc.cwnd == 24 * CC_MSS                        # never above the send buffer plus four segments


def test_only_the_first_timeout_halves_ssthresh() -> None:
    cc, _cfg = new_reno()
    cc.timeout(True, 0, 8 * CC_MSS, CC_MSS)
    assert (cc.ssthresh, cc.cwnd) == (4 * CC_MSS, CC_MSS)
    cc.timeout(False, 0, 2 * CC_MSS, CC_MSS)
    assert cc.ssthresh == 4 * CC_MSS
