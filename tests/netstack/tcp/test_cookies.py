"""SYN cookies (issue 15): one connection per cookie, checked only while cookies are out, our own MSS."""

from __future__ import annotations

from netstack.tcp import events as ev
from netstack.tcp.config import TcpConfig
from netstack.tcp.segment import ACK, PSH, RST, SYN, Segment, build_options
from netstack.tcp.window import cookie_tsval, cookie_wscale, ts_clock
from tests.netstack.tcp.raw import THEM, US, RawPeer


def cookie_peer(**config: object) -> tuple[RawPeer, Segment]:
    """A listener whose backlog is full, and the cookie SYN-ACK it sent to a SYN with ISN 200 and MSS 536."""
    peer = RawPeer(TcpConfig(max_backlog=1, **config))  # type: ignore[arg-type]
    peer.layer.listen(80, backlog=1)
    peer.inject(SYN, 100, options=build_options(mss=1460), src_port=1111)     # fills the backlog
    peer.out()
    peer.inject(SYN, 200, options=build_options(mss=536))                     # answered with a cookie
    (syn_ack,) = peer.out()
    assert peer.layer.stats["syn-cookie-sent"] == 1
    return peer, syn_ack


def test_a_reset_cookie_connection_stays_dead() -> None:
    """The client's connection is reset; its next data segment, which carries the old ACK (the cookie + 1)
    and its first sequence number, checked out as a cookie again and the connection came back."""
    peer, syn_ack = cookie_peer()
    request = b"GET / HTTP/1.1\r\n\r\n"
    peer.inject(ACK | PSH, 201, syn_ack.seq + 1, request)
    (accepted,) = [e for e in peer.layer.take_events() if isinstance(e, ev.Accepted)]
    peer.layer.abort(peer.now, accepted.conn)                                  # we reset it
    assert any(seg.flags & RST for seg in peer.out())
    peer.advance(1)
    peer.inject(ACK | PSH, 201, syn_ack.seq + 1, request)                      # the client sends again
    assert peer.layer.stats["syn-cookie-accepted"] == 1
    assert peer.layer.stats["syn-cookie-reused"] == 1
    assert not peer.layer.by_id.keys() - {1}
    assert not [e for e in peer.layer.take_events() if isinstance(e, ev.Accepted)]
    (rst,) = [seg for seg in peer.out() if seg.dst_port == 40000]
    assert rst.flags == RST


def test_a_new_handshake_on_the_same_ports_gets_a_new_cookie() -> None:
    peer, syn_ack = cookie_peer()
    peer.inject(ACK, 201, syn_ack.seq + 1)
    (accepted,) = [e for e in peer.layer.take_events() if isinstance(e, ev.Accepted)]
    peer.inject(RST | ACK, 201, syn_ack.seq + 1)                               # the client resets it
    assert peer.layer.connection(accepted.conn) is None
    peer.inject(SYN, 90_000, options=build_options(mss=1460))                  # and connects again
    (second,) = peer.out()
    peer.inject(ACK, 90_001, second.seq + 1)
    assert peer.layer.stats["syn-cookie-accepted"] == 2


def test_cookie_acks_are_checked_only_while_cookies_are_out() -> None:
    """A listener that has sent no cookie lately refuses an ACK even if it carries a valid cookie (Linux's
    tcp_synq_no_recent_overflow): it costs no hash, and a guessed cookie has no chance at all."""
    peer = RawPeer()
    peer.layer.listen(80)
    cookie, _mss = peer.layer.isn.make_cookie(peer.now, US, 80, THEM, 40000, 200, 1460)
    peer.inject(ACK, 201, cookie + 1)
    assert peer.layer.stats["syn-cookie-accepted"] == 0
    assert peer.layer.stats["listen-ack"] == 1
    assert peer.out()[0].flags == RST


def test_the_cookie_syn_ack_advertises_our_own_mss() -> None:
    """The cookie encodes the peer's MSS (536 here) for our sending; the SYN-ACK's option is what we can
    receive, as in any SYN-ACK (it said 536, and the peer sent us small segments)."""
    peer, syn_ack = cookie_peer()
    assert syn_ack.options.mss == peer.layer.config.local_mss
    peer.inject(ACK, 201, syn_ack.seq + 1)
    (accepted,) = [e for e in peer.layer.take_events() if isinstance(e, ev.Accepted)]
    conn = peer.layer.connection(accepted.conn)
    assert conn is not None
    assert conn.mss == 536


def test_window_scaling_and_timestamps_survive_a_cookie() -> None:
    """Issue 15: the cookie SYN-ACK dropped window scaling and timestamps, so a connection made under a SYN
    flood was held to 64 KiB windows. The peer's window scale now rides in our TSval's low bits (Linux's
    way); its ACK echoes it, and the connection is rebuilt with both."""
    peer, _ = cookie_peer()
    peer.inject(SYN, 300, options=build_options(mss=1460, wscale=7, ts=(5000, 0)), src_port=2222)
    (syn_ack,) = peer.out()
    assert syn_ack.options.wscale is not None
    assert syn_ack.options.ts_val is not None
    assert syn_ack.options.ts_ecr == 5000
    assert syn_ack.options.ts_val & 0xF == 7
    peer.advance(0.5)
    peer.inject(ACK, 301, syn_ack.seq + 1, options=build_options(ts=(5001, syn_ack.options.ts_val)),
                src_port=2222, window=1000)
    (accepted,) = [e for e in peer.layer.take_events() if isinstance(e, ev.Accepted)]
    conn = peer.layer.connection(accepted.conn)
    assert conn is not None
    assert (conn.ts_enabled, conn.ts_recent) == (True, 5001)
    assert (conn.wscale_ok, conn.snd_wscale, conn.rcv_wscale) == (True, 7, syn_ack.options.wscale)
    assert conn.snd_wnd == 1000 << 7
    assert conn.mss == 1460 - 12
    # Our later TSvals never go below the SYN-ACK's (the peer's PAWS would drop them).
    peer.layer.send(peer.now, accepted.conn, b"x")
    data = [seg for seg in peer.out() if seg.payload]
    assert data
    ts_val = data[0].options.ts_val
    assert ts_val is not None
    assert (ts_val - syn_ack.options.ts_val) % 2**32 < 2**31


def test_a_cookie_without_timestamps_stays_unscaled() -> None:
    peer, _ = cookie_peer()
    peer.inject(SYN, 300, options=build_options(mss=1460, wscale=7), src_port=2222)
    (syn_ack,) = peer.out()
    assert (syn_ack.options.wscale, syn_ack.options.ts_val) == (None, None)
    peer.inject(ACK, 301, syn_ack.seq + 1, src_port=2222)
    (accepted,) = [e for e in peer.layer.take_events() if isinstance(e, ev.Accepted)]
    conn = peer.layer.connection(accepted.conn)
    assert conn is not None
    assert (conn.ts_enabled, conn.wscale_ok, conn.snd_wscale) == (False, False, 0)


def test_cookie_tsval_never_runs_ahead_of_the_clock() -> None:
    for now in (0.0, 0.001, 0.0155, 12.3456, 99999.999):
        for wscale in (None, 0, 7, 14):
            tsval = cookie_tsval(now, 0xDEADBEEF, wscale)
            assert cookie_wscale(tsval) == wscale
            assert 0 <= (ts_clock(now, 0xDEADBEEF) - tsval) % 2**32 < 16


def test_the_memory_of_used_cookies_is_bounded_and_expires() -> None:
    peer, syn_ack = cookie_peer(max_cookies_remembered=1)
    peer.inject(ACK, 201, syn_ack.seq + 1)                                    # remembered
    peer.inject(SYN, 500, options=build_options(mss=1460), src_port=3333)
    (second,) = [seg for seg in peer.out() if seg.dst_port == 3333]
    peer.inject(ACK, 501, second.seq + 1, src_port=3333)                      # the first is forgotten
    assert peer.layer.stats["syn-cookie-forgotten"] == 1
    assert peer.layer.stats["syn-cookie-accepted"] == 2
    peer.advance(200)                                                          # past every cookie's lifetime
    peer.inject(SYN, 600, options=build_options(mss=1460), src_port=1112)     # fills the backlog again
    peer.out()
    peer.inject(SYN, 700, options=build_options(mss=1460), src_port=4444)
    (third,) = [seg for seg in peer.out() if seg.dst_port == 4444]
    peer.inject(ACK, 701, third.seq + 1, src_port=4444)                       # the expired entry goes first
    assert peer.layer.stats["syn-cookie-forgotten"] == 1
    assert peer.layer.stats["syn-cookie-accepted"] == 3


def test_a_cookie_refused_for_want_of_room_is_not_remembered_as_used() -> None:
    """The table was full when the cookie's ACK came, so no connection was made; remembering the cookie
    anyway made the peer's next try (room made meanwhile) a 'reused' cookie, answered with a RST (found by
    review)."""
    peer, syn_ack = cookie_peer(max_connections=2)  # the half-open entry from port 1111 holds one
    peer.layer.listen(81)
    peer.port = 81
    peer.inject(SYN, 500, options=build_options(mss=1460), src_port=2222)      # ... and this one the other
    peer.port = 80
    peer.inject(ACK, 201, syn_ack.seq + 1)
    assert peer.layer.stats["connection-limit"] == 1
    assert not [e for e in peer.layer.take_events() if isinstance(e, ev.Accepted)]
    peer.inject(RST, 101, src_port=1111)                                      # room again
    peer.inject(ACK, 201, syn_ack.seq + 1)                                     # the same ACK, retried
    assert peer.layer.stats["syn-cookie-reused"] == 0
    assert peer.layer.stats["syn-cookie-accepted"] == 1
    assert [e for e in peer.layer.take_events() if isinstance(e, ev.Accepted)]
