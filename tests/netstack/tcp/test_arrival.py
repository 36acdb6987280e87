"""Segment arrival (netstack/tcp/arrival.py): which unacceptable segments still have their ACK processed, when
TS.Recent is recorded (RFC 7323 §4.3), and the throttle on replies anyone who knows the 4-tuple can elicit."""

from __future__ import annotations

from netstack.tcp import events as ev
from netstack.tcp.config import TcpConfig
from netstack.tcp.connection import Connection
from netstack.tcp.segment import ACK, PSH, SYN, build_options
from tests.netstack.tcp.raw import RawPeer

PEER_ISN = 1000


def timestamped(config: TcpConfig | None = None) -> tuple[RawPeer, int, Connection, int, int]:
    """A passive connection with window scaling and timestamps: (peer, id, connection, our ISS, our TSval)."""
    peer = RawPeer(config)
    peer.layer.listen(80)
    peer.inject(SYN, PEER_ISN, options=build_options(mss=1460, wscale=7, ts=(5000, 0)))
    (syn_ack,) = peer.out()
    ours = syn_ack.options.ts_val
    assert ours is not None
    peer.inject(ACK, PEER_ISN + 1, syn_ack.seq + 1, options=build_options(ts=(5001, ours)))
    (accepted,) = [e for e in peer.layer.take_events() if isinstance(e, ev.Accepted)]
    conn = peer.layer.connection(accepted.conn)
    assert conn is not None
    return peer, accepted.conn, conn, syn_ack.seq, ours


def test_a_blind_old_segment_cannot_poison_ts_recent() -> None:
    """Audit #2: an ACK with any SEQ in the half behind RCV.NXT and a huge TSval overwrote TS.Recent, after
    which PAWS dropped every segment of the real peer."""
    peer, conn_id, conn, iss, ours = timestamped()
    peer.inject(ACK, PEER_ISN + 1, iss + 1, b"hello", options=build_options(ts=(5002, ours)))
    assert peer.layer.receive(peer.now, conn_id) == b"hello"
    peer.out()
    peer.inject(ACK, PEER_ISN + 1 - 0x40000000, iss + 1, options=build_options(ts=(5002 + 0x7FFFFF00, 0)))
    assert conn.ts_recent == 5002
    assert (peer.layer.stats["old-segment"], peer.layer.stats["out-of-window"]) == (1, 0)   # counted once
    (answer,) = peer.out()                                  # RFC 9293 §3.10.7.4: ACK, and drop
    assert answer.flags == ACK
    assert answer.ack == PEER_ISN + 6
    peer.inject(ACK | PSH, PEER_ISN + 6, iss + 1, b"world", options=build_options(ts=(5003, ours)))
    assert peer.layer.receive(peer.now, conn_id) == b"world"
    assert peer.layer.stats["paws"] == 0
    assert conn.ts_recent == 5003


def test_a_blind_old_segment_cannot_acknowledge_data_in_flight() -> None:
    """Audit #3: the old segment's ACK discarded bytes the peer never received from the send buffer."""
    peer = RawPeer()
    conn_id, iss = peer.accept(PEER_ISN)
    conn = peer.layer.connection(conn_id)
    assert conn is not None
    peer.layer.send(peer.now, conn_id, b"S" * 4000)
    assert len(peer.out()) == 3
    peer.inject(ACK, PEER_ISN + 1 - 123456789, iss + 1 + 3000)
    assert conn.snd_una == iss + 1
    assert len(conn.send_buffer) == 4000
    assert peer.layer.stats["old-segment"] == 1
    for _ in range(4):                                      # the real peer lost all but the first segment
        peer.inject(ACK, PEER_ISN + 1, iss + 1 + 1460)
    assert peer.layer.stats["fast-retransmit"] == 1
    assert [(s.seq - iss - 1, len(s.payload)) for s in peer.out()][-1] == (1460, 1460)


def test_old_segments_within_a_window_still_count_for_their_ack() -> None:
    """Negative: a keepalive probe at RCV.NXT - 1 and a duplicate from within the window are old but not too
    old: their ACK is processed (BSD's rule) and they are answered."""
    peer = RawPeer()
    conn_id, iss = peer.accept(PEER_ISN)
    conn = peer.layer.connection(conn_id)
    assert conn is not None
    peer.inject(ACK, PEER_ISN + 1, iss + 1, b"x" * 1000)
    peer.layer.send(peer.now, conn_id, b"S" * 2000)
    peer.out()
    peer.inject(ACK, PEER_ISN, iss + 1 + 500)               # keepalive-shaped, carrying news
    assert conn.snd_una == iss + 1 + 500
    peer.inject(ACK, PEER_ISN + 1, iss + 1 + 1000, b"x" * 1000)  # a retransmitted duplicate
    assert conn.snd_una == iss + 1 + 1000
    assert peer.layer.stats["old-segment"] == 0
    assert all(s.ack == PEER_ISN + 1001 for s in peer.out())


def test_ts_recent_comes_only_from_a_segment_at_or_before_last_ack_sent() -> None:
    """RFC 7323 §4.3 (2): TS.Recent takes the TSval of a segment that starts at or before Last.ACK.sent (the
    number our latest ACK carried). While our ACK is delayed, the next in-window segment starts beyond it and
    records nothing, so our ACK echoes the TSval of the earliest segment it acknowledges; a segment the ACK
    check drops (ACK of unsent data) records nothing either."""
    peer, _conn_id, conn, iss, ours = timestamped()
    peer.inject(ACK, PEER_ISN + 1, iss + 1 + 10**6, options=build_options(ts=(6000, ours)))
    assert peer.layer.stats["ack-unsent-data"] == 1
    assert conn.ts_recent == 5001
    peer.out()
    assert conn.last_ack_sent == PEER_ISN + 1
    peer.inject(ACK | PSH, PEER_ISN + 1, iss + 1, b"a" * 100, options=build_options(ts=(6001, ours)))
    assert conn.ts_recent == 6001                           # at Last.ACK.sent
    assert peer.out() == []                                 # our ACK is delayed: Last.ACK.sent stays behind
    peer.inject(ACK | PSH, PEER_ISN + 101, iss + 1, b"b" * 100, options=build_options(ts=(6002, ours)))
    assert conn.ts_recent == 6001                           # in the window, but beyond Last.ACK.sent
    (ack,) = peer.out()
    assert (ack.ack, ack.options.ts_ecr) == (PEER_ISN + 201, 6001)
    assert conn.last_ack_sent == PEER_ISN + 201
    peer.inject(ACK | PSH, PEER_ISN + 201, iss + 1, b"c", options=build_options(ts=(6003, ours)))
    assert conn.ts_recent == 6003                           # at Last.ACK.sent again


def test_a_zero_window_probe_at_rcv_nxt_records_its_tsval() -> None:
    """RFC 7323 §4.3: a zero-window probe exactly at RCV.NXT (= Last.ACK.sent, our ACK that shut the window)
    fails the window test only because the window is zero; its TSval is recorded, and our answer echoes it,
    so the peer's RTT sample from its probes is right."""
    peer, conn_id, conn, iss, ours = timestamped(TcpConfig(keepalive=False, rcv_buffer=2920))
    peer.inject(ACK, PEER_ISN + 1, iss + 1, bytes(1460), options=build_options(ts=(5002, ours)))
    peer.inject(ACK, PEER_ISN + 1461, iss + 1, bytes(1460), options=build_options(ts=(5003, ours)))
    (full,) = peer.out()                                    # nobody reads: our window is shut
    assert (full.ack, full.window) == (PEER_ISN + 2921, 0)
    assert conn.ts_recent == 5002
    peer.inject(ACK, PEER_ISN + 2921, iss + 1, b"z", options=build_options(ts=(5010, ours)))
    assert peer.layer.stats["zero-window-probe-received"] == 1
    assert conn.ts_recent == 5010
    (answer,) = peer.out()
    assert (answer.ack, answer.window, answer.options.ts_ecr) == (PEER_ISN + 2921, 0, 5010)
    assert peer.layer.readable_bytes(conn_id) == 2920


def test_an_old_duplicate_within_the_window_does_not_record_its_tsval() -> None:
    """RFC 7323 §5.3 R2 before R3: a segment that fails the window test records nothing, even one old by less
    than a window (not too old to have its ACK processed) and at or before Last.ACK.sent. Recording it let a
    blind attacker whose SEQ fell within a window behind RCV.NXT poison PAWS with a huge TSval (audit #2's
    residual case)."""
    peer, conn_id, conn, iss, ours = timestamped()
    peer.inject(ACK | PSH, PEER_ISN + 1, iss + 1, b"x" * 1000, options=build_options(ts=(5002, ours)))
    assert peer.layer.receive(peer.now, conn_id) == b"x" * 1000
    peer.advance(1.0)
    peer.out()
    peer.inject(ACK, PEER_ISN + 1 + 990, iss + 1, b"x" * 5, options=build_options(ts=(5002 + 0x40000000, ours)))
    assert conn.ts_recent == 5002
    assert (peer.layer.stats["old-segment"], peer.layer.stats["out-of-window"]) == (0, 1)  # not too old: ACK taken
    (answer,) = peer.out()
    assert (answer.ack, answer.options.ts_ecr) == (PEER_ISN + 1001, 5002)
    peer.inject(ACK | PSH, PEER_ISN + 1001, iss + 1, b"world", options=build_options(ts=(5003, ours)))
    assert peer.layer.receive(peer.now, conn_id) == b"world"
    assert peer.layer.stats["paws"] == 0
    assert conn.ts_recent == 5003


def test_replies_to_out_of_window_and_paws_failed_segments_are_throttled() -> None:
    """Audit #9: each unacceptable segment drew an ACK; now at most `oow_reply_limit` a second per
    connection, the rest counted, and a new second brings a new budget."""
    peer, _conn_id, _conn, iss, ours = timestamped(TcpConfig(oow_reply_limit=3))
    peer.out()
    for _ in range(5):                                      # beyond the window
        peer.inject(ACK, PEER_ISN + 1 + 10**8, iss + 1, b"z", options=build_options(ts=(5001, ours)))
    assert len(peer.out()) == 3
    assert peer.layer.stats["oow-reply-rate-limited"] == 2
    peer.advance(1.0)
    peer.out()
    for _ in range(5):                                      # PAWS-failed
        peer.inject(ACK, PEER_ISN + 1, iss + 1, b"z", options=build_options(ts=(4000, ours)))
    assert len(peer.out()) == 3
    assert peer.layer.stats["paws"] == 5
    assert peer.layer.stats["oow-reply-rate-limited"] == 4


def test_duplicate_syns_to_a_half_open_entry_get_throttled_syn_acks() -> None:
    """Audit #9: every copy of the SYN drew a SYN-ACK, bypassing the cookie backscatter cap."""
    peer = RawPeer(TcpConfig(oow_reply_limit=2))
    peer.layer.listen(80)
    peer.inject(SYN, PEER_ISN, options=build_options(mss=1460))
    assert len(peer.out()) == 1
    for _ in range(100):
        peer.inject(SYN, PEER_ISN, options=build_options(mss=1460))
    assert [s.flags for s in peer.out()] == [SYN | ACK] * 2
    assert peer.layer.stats["syn-retransmitted"] == 100
    assert peer.layer.stats["oow-reply-rate-limited"] == 98
    peer.advance(1.0)
    peer.out()
    peer.inject(SYN, PEER_ISN, options=build_options(mss=1460))   # negative: a real retransmission later
    assert [s.flags for s in peer.out()] == [SYN | ACK]
