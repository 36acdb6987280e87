"""State machine corners: simultaneous open and close, refused connections, closed ports, half close."""

from __future__ import annotations

from netstack.tcp import events as ev
from netstack.tcp.segment import ACK, FIN, RST, SYN, build_options
from netstack.tcp.state import State
from tests.netstack.tcp.raw import THEM, US, RawPeer
from tests.netstack.tcp.sim import A_ADDR, B_ADDR, Pair, establish, transfer


def test_simultaneous_open_between_two_stacks() -> None:
    pair = Pair()
    a = pair.a.connect(0.0, A_ADDR, B_ADDR, 5000, local_port=6000)
    b = pair.b.connect(0.0, B_ADDR, A_ADDR, 6000, local_port=5000)
    pair.run_until(5.0)
    assert pair.a.state_of(a) == State.ESTABLISHED
    assert pair.b.state_of(b) == State.ESTABLISHED
    assert ev.Connected(a) in pair.take("a")
    assert ev.Connected(b) in pair.take("b")
    data = b"simultaneous" * 1000
    assert transfer(pair, "a", a, b, data) == data


def test_simultaneous_open_by_hand() -> None:
    peer = RawPeer(port=6000, peer_port=5000)
    conn = peer.layer.connect(0.0, US, THEM, 5000, local_port=6000)
    (syn,) = peer.out()
    peer.inject(SYN, 7000, options=build_options(mss=1460))
    (syn_ack,) = peer.out()
    assert syn_ack.flags == SYN | ACK
    assert syn_ack.seq == syn.seq
    assert syn_ack.ack == 7001
    assert peer.layer.state_of(conn) == State.SYN_RECEIVED
    peer.inject(SYN | ACK, 7000, syn.seq + 1)
    assert peer.layer.state_of(conn) == State.ESTABLISHED
    assert ev.Connected(conn) in peer.layer.take_events()


def test_data_a_simultaneous_open_carried_is_lost_if_the_user_closed_first() -> None:
    """SHLD-2 on the one path where text reaches a closed user during the handshake: the SYN's data, held
    until established, is answered with a RST, and processing stops there."""
    peer = RawPeer(port=6000, peer_port=5000)
    conn = peer.layer.connect(0.0, US, THEM, 5000, local_port=6000)
    (syn,) = peer.out()
    peer.inject(SYN, 7000, 0, b"early", options=build_options(mss=1460))
    peer.out()
    peer.layer.close(peer.now, conn)                    # in SYN-RECEIVED: the FIN waits for the handshake
    peer.inject(ACK, 7006, syn.seq + 1)
    assert peer.layer.connection(conn) is None
    assert peer.layer.stats["data-after-close"] == 1
    assert any(seg.flags & RST for seg in peer.out())


def test_simultaneous_close() -> None:
    pair = Pair()
    client, server = establish(pair)
    pair.a.close(pair.now, client)
    pair.b.close(pair.now, server)
    pair.flush()
    pair.run_until(pair.now + 1)
    assert pair.a.state_of(client) == State.TIME_WAIT
    assert pair.b.state_of(server) == State.TIME_WAIT
    pair.run_until(pair.now + 2 * pair.a.config.msl + 1)
    assert pair.a.state_of(client) == pair.b.state_of(server) == State.CLOSED


def test_connection_refused() -> None:
    pair = Pair()
    conn = pair.a.connect(0.0, A_ADDR, B_ADDR, 81)
    pair.run_until(1.0)
    assert ev.Closed(conn, "refused") in pair.take("a")
    assert pair.b.stats["closed-port"] == 1


def test_closed_port_answers_per_rfc() -> None:
    peer = RawPeer()
    peer.inject(ACK, 500, 777, b"xyz")
    (rst,) = peer.out()
    assert rst.flags == RST
    assert rst.seq == 777
    peer.inject(FIN, 500, 0, b"xyz")
    (rst2,) = peer.out()
    assert rst2.flags == RST | ACK
    assert rst2.seq == 0
    assert rst2.ack == 504
    peer.inject(RST, 500)
    assert peer.out() == []                              # never answer a RST


def test_half_close_keeps_receiving() -> None:
    pair = Pair()
    client, server = establish(pair)
    pair.a.shutdown(pair.now, client)
    pair.run_until(pair.now + 1)
    assert pair.b.state_of(server) == State.CLOSE_WAIT
    data = b"after half close" * 5000
    got = transfer(pair, "b", server, client, data)
    assert got == data
    assert pair.a.state_of(client) in (State.TIME_WAIT, State.CLOSED)


def test_abort_sends_rst_and_peer_sees_reset() -> None:
    pair = Pair()
    client, server = establish(pair)
    pair.a.abort(pair.now, client)
    pair.run_until(pair.now + 1)
    assert ev.Closed(server, "reset") in pair.take("b")
    assert pair.a.state_of(client) == State.CLOSED


def test_data_in_syn_ack_and_third_ack() -> None:
    """Data riding on the handshake's last ACK is delivered after Accepted."""
    peer = RawPeer()
    peer.layer.listen(80)
    peer.inject(SYN, 1000, options=build_options(mss=1460))
    (syn_ack,) = peer.out()
    peer.inject(ACK, 1001, syn_ack.seq + 1, b"GET / HTTP/1.0\r\n\r\n")
    events = peer.layer.take_events()
    assert isinstance(events[0], ev.Accepted)
    assert isinstance(events[1], ev.Readable)
    assert peer.layer.receive(peer.now, events[0].conn) == b"GET / HTTP/1.0\r\n\r\n"


def test_data_after_close_is_answered_with_a_reset() -> None:
    """RFC 9293 §3.6.1 SHLD-2: an application that closed reads no more, so new data is lost and the peer
    is told with a RST (it was acknowledged and discarded, and the peer believed it delivered)."""
    pair = Pair()
    client, server = establish(pair)
    pair.b.close(pair.now, server)
    pair.run_until(pair.now + 1)
    assert pair.b.state_of(server) == State.FIN_WAIT_2
    pair.a.send(pair.now, client, b"x" * 300_000)
    pair.run_until(pair.now + 10)
    assert pair.b.connection(server) is None
    assert pair.b.stats["data-after-close"] == 1
    assert ev.Closed(client, "reset") in pair.take("a")


def test_close_with_unread_data_sends_a_reset() -> None:
    """SHLD-2's other half: a close while received data is unread sends a RST, not a FIN."""
    pair = Pair()
    client, server = establish(pair)
    pair.a.send(pair.now, client, b"unread")
    pair.run_until(pair.now + 1)
    assert pair.b.readable_bytes(server) == 6
    pair.b.close(pair.now, server)
    pair.run_until(pair.now + 1)
    assert pair.b.connection(server) is None
    assert pair.b.stats["close-with-unread-data"] == 1
    assert ev.Closed(client, "reset") in pair.take("a")
    assert not any(e == ev.Closed(server, "aborted") for e in pair.take("b"))


def test_close_after_reading_everything_is_orderly_and_bounded() -> None:
    """A close with nothing unread is a FIN; the orphaned FIN-WAIT-2 ends after `fin_wait_2_timeout` even
    while the peer keeps the connection busy with bare ACKs (they do not restart it)."""
    pair = Pair()
    client, server = establish(pair)
    pair.a.send(pair.now, client, b"read")
    pair.run_until(pair.now + 1)
    assert pair.b.receive(pair.now, server) == b"read"
    pair.b.close(pair.now, server)
    pair.run_until(pair.now + 1)
    assert pair.b.state_of(server) == State.FIN_WAIT_2
    start = pair.now
    timeout = pair.b.config.fin_wait_2_timeout
    while pair.b.connection(server) is not None and pair.now < start + 2 * timeout:
        conn = pair.a.connection(client)
        assert conn is not None
        conn.send_ack(pair.now)
        pair.run_until(pair.now + 5)
    assert pair.b.connection(server) is None
    assert pair.now <= start + timeout + 5
    assert pair.b.stats["fin-wait-2-timeout"] == 1



def test_retransmitted_syn_gets_the_syn_ack_again() -> None:
    peer = RawPeer()
    peer.layer.listen(80)
    peer.inject(SYN, 1000, options=build_options(mss=1460))
    (first,) = peer.out()
    peer.inject(SYN, 1000, options=build_options(mss=1460))     # our SYN-ACK was lost
    (again,) = peer.out()
    assert again.flags == SYN | ACK
    assert (again.seq, again.ack) == (first.seq, 1001)
    assert len(peer.layer.by_id) == 1


def test_an_orphaned_fin_wait_1_held_by_a_closed_window_still_ends() -> None:
    """After close nothing the peer does keeps the connection forever: data is answered with a RST, FIN-WAIT-2
    has its timeout, and a FIN-WAIT-1 whose data the peer never takes (its window stays shut while it
    answers every probe) ends after `orphan_timeout` (or `persist_timeout`, whichever comes first)."""
    pair = Pair()
    client, server = establish(pair)
    pair.a.pause_reading(client)
    sent = 0
    while sent < 400_000:
        taken = pair.b.send(pair.now, server, b"y" * 65536)
        sent += taken
        pair.run_until(pair.now + 1)
        if not taken:
            break
    pair.b.close(pair.now, server)
    assert pair.b.state_of(server) == State.FIN_WAIT_1
    start = pair.now
    pair.run_until(start + pair.b.config.orphan_timeout + 120)
    assert pair.b.connection(server) is None
    stats = pair.b.stats
    assert stats["persist-timeout"] + stats["retransmit-timeout"] + stats["orphan-timeout"] == 1
