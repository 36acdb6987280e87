"""Hostile input: SYN floods, per-source and global limits, odd flag combinations, ICMP checks, fuzzing."""

from __future__ import annotations

import random
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.tcp import events as ev
from netstack.tcp.config import TcpConfig
from netstack.tcp.segment import ACK, FIN, PSH, RST, SYN, URG, Segment, build_options, build_segment
from netstack.tcp.state import State
from tests.netstack.tcp.raw import THEM, US, RawPeer
from tests.netstack.tcp.sim import A_ADDR, B_ADDR, Pair, transfer


def flood(pair: Pair, count: int, seed: int = 7) -> None:
    """Spoofed SYNs from many addresses straight into B: nobody will ever answer B's SYN-ACKs."""
    rng = random.Random(seed)
    for _ in range(count):
        src = bytes([198, 18, rng.randrange(256), rng.randrange(1, 255)])
        seg = build_segment(src, B_ADDR, rng.randrange(1024, 65535), 80, rng.getrandbits(32), 0, SYN, 1024,
                            build_options(mss=1460))
        pair.b.segment_received(pair.now, src, B_ADDR, memoryview(seg))
    pair.b.take_outgoing()  # the SYN-ACKs go to addresses that do not exist


def test_syn_flood_does_not_stop_a_legitimate_client() -> None:
    config = TcpConfig(max_half_open=32, max_backlog=16)
    pair = Pair(config_b=config)
    pair.b.listen(80, backlog=16)
    flood(pair, 2000)
    assert len(pair.b.half_open) <= 32
    assert len(pair.b.by_id) <= 32
    assert pair.b.stats["syn-cookie-sent"] > 1900
    client = pair.a.connect(pair.now, A_ADDR, B_ADDR, 80)
    pair.run_until(pair.now + 5)
    assert ev.Connected(client) in pair.take("a")
    accepted = [e for e in pair.take("b") if isinstance(e, ev.Accepted)]
    assert len(accepted) == 1
    assert pair.b.stats["syn-cookie-accepted"] == 1
    data = b"through the flood" * 4000
    assert transfer(pair, "a", client, accepted[0].conn, data) == data


def test_forged_cookie_ack_is_refused() -> None:
    peer = RawPeer(TcpConfig(max_backlog=1))
    peer.layer.listen(80, backlog=1)
    peer.inject(SYN, 100, options=build_options(mss=1460), src_port=1111)      # fills the backlog
    peer.inject(SYN, 200, options=build_options(mss=1460))                     # answered with a cookie
    cookie_syn_ack = peer.out()[-1]
    assert peer.layer.stats["syn-cookie-sent"] == 1
    peer.inject(ACK, 201, cookie_syn_ack.seq + 2)                              # wrong cookie
    (rst,) = peer.out()
    assert rst.flags == RST
    assert peer.layer.stats["syn-cookie-accepted"] == 0
    peer.inject(ACK, 202, cookie_syn_ack.seq + 1)                              # right cookie, wrong ISN
    assert peer.out()[0].flags == RST
    peer.inject(ACK, 201, cookie_syn_ack.seq + 1)                              # the genuine answer
    assert peer.layer.stats["syn-cookie-accepted"] == 1
    assert any(isinstance(e, ev.Accepted) for e in peer.layer.take_events())


def test_data_on_the_segment_that_completes_a_cookie_handshake_is_received() -> None:
    """Under a flood the client's bare ACK may be lost; its first data segment (which carries the same ACK)
    then completes the cookie handshake and must be taken within the window the cookie SYN-ACK advertised,
    not dropped as out of window (which, retransmission after retransmission, stalled the client)."""
    peer = RawPeer(TcpConfig(max_backlog=1))
    peer.layer.listen(80, backlog=1)
    peer.inject(SYN, 100, options=build_options(mss=1460), src_port=1111)      # fills the backlog
    peer.inject(SYN, 200, options=build_options(mss=1460))                     # answered with a cookie
    cookie_syn_ack = peer.out()[-1]
    request = b"GET / HTTP/1.1\r\n\r\n"
    peer.inject(ACK | PSH, 201, cookie_syn_ack.seq + 1, request)              # the bare ACK was lost
    assert peer.layer.stats["syn-cookie-accepted"] == 1
    assert peer.layer.stats["out-of-window"] == 0
    (accepted,) = [e for e in peer.layer.take_events() if isinstance(e, ev.Accepted)]
    assert peer.layer.receive(peer.now, accepted.conn) == request
    peer.advance(1)
    assert any(seg.ack == 201 + len(request) for seg in peer.out())


def test_cookie_expires_after_two_periods() -> None:
    peer = RawPeer(TcpConfig(max_backlog=1))
    peer.layer.listen(80, backlog=1)
    peer.inject(SYN, 100, options=build_options(mss=1460), src_port=1111)
    peer.inject(SYN, 200, options=build_options(mss=1460))
    cookie = peer.out()[-1].seq
    peer.advance(200)
    peer.inject(ACK, 201, cookie + 1)
    assert peer.layer.stats["syn-cookie-accepted"] == 0


def handshake(peer: RawPeer, port: int, *, src: bytes | None = None, isn: int = 5) -> list[Segment]:
    """A whole passive handshake from (`src`, `port`): the SYN, then an ACK of whatever SYN-ACK (state or
    cookie) answered it; returns what the layer sent after the ACK."""
    peer.inject(SYN, isn, options=build_options(mss=1460), src=src, src_port=port)
    syn_acks = [seg for seg in peer.out() if seg.flags == SYN | ACK]
    if not syn_acks:
        return []
    peer.inject(ACK, isn + 1, syn_acks[-1].seq + 1, src=src, src_port=port)
    return peer.out()


def test_per_source_limit() -> None:
    """Verified connections count per source: past the share, a handshake from that source is refused (with
    cookies off, its SYN is dropped); another source is fine."""
    peer = RawPeer(TcpConfig(max_per_source=3, syn_cookies=False))
    peer.layer.listen(80)
    for port in range(1000, 1010):
        handshake(peer, port)
    assert len(peer.layer.by_id) == 3
    assert peer.layer.stats["per-source-limit"] == 7
    handshake(peer, 1000, src=bytes([10, 9, 9, 9]))                                # another source is fine
    assert len(peer.layer.by_id) == 4


def test_global_connection_limit() -> None:
    peer = RawPeer(TcpConfig(max_connections=5, max_per_source=100))
    peer.layer.listen(80)
    for port in range(1000, 1020):
        peer.inject(SYN, 5, options=build_options(mss=1460), src_port=port)
    assert len(peer.layer.by_id) == 5
    assert peer.layer.stats["connection-limit"] == 15


def test_backlog_full_without_cookies_drops() -> None:
    peer = RawPeer(TcpConfig(syn_cookies=False))
    peer.layer.listen(80, backlog=2)
    for port in range(1000, 1005):
        peer.inject(SYN, 5, options=build_options(mss=1460), src_port=port)
    assert len(peer.layer.half_open) == 2
    assert peer.layer.stats["backlog-full"] == 3


def test_half_open_connections_time_out() -> None:
    peer = RawPeer(TcpConfig(syn_retries=2))
    peer.layer.listen(80)
    peer.inject(SYN, 5, options=build_options(mss=1460))
    peer.advance(60)
    assert not peer.layer.by_id
    assert not peer.layer.half_open
    assert peer.layer.stats["syn-retries-exceeded"] == 1


def test_flag_combinations_are_counted_and_dropped() -> None:
    peer = RawPeer()
    peer.layer.listen(80)
    peer.inject(SYN | FIN, 1)
    peer.inject(FIN | PSH | URG, 1)                                   # Christmas tree
    peer.inject(0, 1)                                                 # null scan
    peer.inject(SYN | RST, 1)
    peer.inject(SYN, 1, src=US, src_port=80)                          # LAND: from ourselves to ourselves
    peer.inject(SYN, 1, src_port=0)
    assert peer.out() == []
    assert not peer.layer.by_id
    stats = peer.layer.stats
    assert (stats["syn-fin"], stats["xmas"], stats["null-flags"], stats["syn-rst"], stats["land"],
            stats["port-zero"]) == (1, 1, 1, 1, 1, 1)


def test_syn_ack_to_listener_is_dropped() -> None:
    peer = RawPeer()
    peer.layer.listen(80)
    peer.inject(SYN | ACK, 1, 99)
    assert peer.out() == []
    assert peer.layer.stats["listen-syn-ack"] == 1


def test_out_of_order_queue_is_bounded() -> None:
    peer = RawPeer(TcpConfig(ooo_max_segments=8, ooo_max_bytes=4000, timestamps=False))
    conn, iss = peer.accept()
    for i in range(50):
        peer.inject(ACK, 1001 + 2000 + i * 300, iss + 1, b"z" * 100)
    c = peer.layer.connection(conn)
    assert c is not None
    assert len(c.reassembly.segments) <= 8
    assert c.reassembly.bytes <= 4000
    assert peer.layer.stats["ooo-queue-full"] > 0
    assert peer.layer.stats["out-of-order"] == 8


def test_data_beyond_window_is_trimmed() -> None:
    peer = RawPeer(TcpConfig(rcv_buffer=2920, timestamps=False, window_scaling=False))
    conn, iss = peer.accept()
    peer.inject(ACK, 1001, iss + 1, b"q" * 10_000)
    assert peer.layer.readable_bytes(conn) == 2920
    assert peer.layer.stats["data-beyond-window"] == 1


def quoted(src: bytes, dst: bytes, sport: int, dport: int, seq: int) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 60, 0, 0, 64, 6, 0, src, dst)
    return header + struct.pack("!HHI", sport, dport, seq)


def test_icmp_frag_needed_lowers_mss_only_for_a_matching_sequence() -> None:
    peer = RawPeer(TcpConfig(timestamps=False))
    conn, iss = peer.accept()
    c = peer.layer.connection(conn)
    assert c is not None
    peer.layer.send(peer.now, conn, b"m" * 5000)
    peer.out()
    # RFC 5927: a sequence number outside SND.UNA..SND.NXT is a blind attack
    peer.layer.icmp_error_received(peer.now, 3, 4, quoted(US, THEM, 80, 40000, iss + 100_000), 576)
    assert c.mss == 1460
    assert peer.layer.stats["icmp-seq-out-of-window"] == 1
    # a quote of somebody else's connection is ignored
    peer.layer.icmp_error_received(peer.now, 3, 4, quoted(US, THEM, 80, 40001, iss + 1), 576)
    assert peer.layer.stats["icmp-no-connection"] == 1
    # the real thing: MSS follows the next-hop MTU and the first segment goes out again, smaller
    peer.layer.icmp_error_received(peer.now, 3, 4, quoted(US, THEM, 80, 40000, iss + 1), 576)
    assert c.mss == 536
    (again,) = peer.out()
    assert again.seq == iss + 1
    assert len(again.payload) == 536
    # garbage quotes never raise
    for junk in (b"", b"\x45" * 10, b"\x60" + b"\x00" * 40, quoted(US, THEM, 80, 40000, 0)[:24]):
        peer.layer.icmp_error_received(peer.now, 3, 4, junk, None)
    assert peer.layer.stats["internal-error"] == 0


def test_icmp_hard_errors_abort_connect_only_when_enabled_and_in_sequence() -> None:
    peer = RawPeer()
    conn = peer.layer.connect(0.0, US, THEM, 443, local_port=5555)
    syn = peer.out()[0]
    peer.layer.icmp_error_received(0.1, 3, 3, quoted(US, THEM, 5555, 443, syn.seq + 1), None)   # not our SYN
    peer.layer.icmp_error_received(0.1, 3, 1, quoted(US, THEM, 5555, 443, syn.seq), None)       # soft: host unr.
    assert peer.layer.state_of(conn) == State.SYN_SENT
    peer.layer.icmp_error_received(0.1, 3, 3, quoted(US, THEM, 5555, 443, syn.seq), None)       # port unreachable
    assert ev.Closed(conn, "refused") in peer.layer.take_events()
    lenient = RawPeer(TcpConfig(icmp_hard_errors=False))
    conn = lenient.layer.connect(0.0, US, THEM, 443, local_port=5555)
    syn = lenient.out()[0]
    lenient.layer.icmp_error_received(0.1, 3, 3, quoted(US, THEM, 5555, 443, syn.seq), None)
    assert lenient.layer.state_of(conn) == State.SYN_SENT


def test_icmp_errors_stay_soft_once_established() -> None:
    peer = RawPeer(TcpConfig(timestamps=False))
    conn, iss = peer.accept()
    peer.layer.send(peer.now, conn, b"d" * 100)
    peer.layer.icmp_error_received(peer.now, 3, 3, quoted(US, THEM, 80, 40000, iss + 1), None)
    assert peer.layer.state_of(conn) == State.ESTABLISHED
    assert peer.layer.stats["icmp-soft-error"] == 1


segments = st.tuples(
    st.integers(0, 255), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 65535),
    st.binary(max_size=64), st.sampled_from([b"", build_options(mss=1), build_options(wscale=14),
                                            build_options(ts=(0, 0)), b"\x02\x04\xff\xff"]),
)


@given(st.lists(segments, max_size=25), st.booleans())
@settings(max_examples=200, deadline=None)
def test_fuzzed_segments_never_raise_or_grow(batch: list[tuple[int, int, int, int, bytes, bytes]],
                                             near: bool) -> None:
    peer = RawPeer(TcpConfig(ooo_max_segments=4, ooo_max_bytes=256, rcv_buffer=4096))
    conn, iss = peer.accept()
    peer.layer.send(peer.now, conn, b"w" * 5000)  # so that fuzzed ACKs acknowledge (and miscount) something
    for flags, raw_seq, raw_ack, window, payload, options in batch:
        seq, ack = raw_seq, raw_ack
        if near:  # aim near the live sequence space so the interesting paths run
            seq = 1001 + raw_seq % 8192 - 4096
            ack = iss + raw_ack % 16384 - 4096
        peer.inject(flags, seq, ack, payload, window=window, options=options)
        peer.advance(0.05)
    assert peer.layer.stats["internal-error"] == 0
    c = peer.layer.connection(conn)
    if c is not None:
        assert len(c.rcvbuf) <= c.rcv_buf_size
        assert c.reassembly.bytes <= 256
        assert len(c.reassembly.segments) <= 4
        assert c.state != State.CLOSED
        assert peer.layer.budgets.rcv_held == len(c.rcvbuf)
        assert peer.layer.budgets.snd_held == len(c.send_buffer.data)
        overhead = peer.layer.config.ooo_entry_overhead
        assert peer.layer.budgets.ooo_held == c.reassembly.bytes + len(c.reassembly.segments) * overhead
    else:  # gone: the application was told, and nothing it held is still charged to the layer
        assert any(isinstance(e, ev.Closed) and e.conn == conn for e in peer.layer.take_events())
        assert (peer.layer.budgets.rcv_held, peer.layer.budgets.ooo_held, peer.layer.budgets.snd_held) == (0, 0, 0)


def test_time_wait_does_not_lock_out_a_source_and_is_recycled_at_the_limit() -> None:
    peer = RawPeer(TcpConfig(max_per_source=2, max_connections=3, timestamps=False))
    peer.layer.listen(80)
    for port in range(2000, 2006):
        # full connection; the server closes first and keeps TIME_WAIT
        peer.peer_port = port
        conn, iss = peer.accept(peer_isn=5000)
        peer.layer.close(peer.now, conn)
        peer.inject(FIN | ACK, 5001, iss + 2)
        assert peer.layer.state_of(conn) == State.TIME_WAIT
        peer.out()
    assert peer.layer.stats["per-source-limit"] == 0
    assert peer.layer.time_wait == 3
    assert peer.layer.stats["time-wait-recycled"] == 3
    assert len(peer.layer.by_id) == 3


def test_timer_heap_stays_proportional_to_live_connections() -> None:
    peer = RawPeer(TcpConfig(max_per_source=10_000, max_connections=10_000))
    peer.layer.listen(80)
    for port in range(1, 3001):
        peer.inject(SYN, 5, options=build_options(mss=1460), src_port=port)
        peer.out()
        conn = next(iter(peer.layer.by_id))
        peer.layer.abort(peer.now, conn)
    assert len(peer.layer._heap) <= 4 * len(peer.layer.by_id) + 1024
    assert peer.layer.stats["timer-heap-compacted"] > 0


def test_syn_cookies_are_rate_limited_and_counted() -> None:
    peer = RawPeer(TcpConfig(max_half_open=1, max_backlog=1, syn_cookie_rate_limit=10, max_per_source=1000))
    peer.layer.listen(80)
    peer.inject(SYN, 1, options=build_options(mss=1460), src_port=999)   # fills the one half-open slot
    peer.out()
    for port in range(2000, 2050):                                        # a flood within one instant
        peer.inject(SYN, port, options=build_options(mss=1460), src_port=port)
    replies = peer.out()
    assert 5 <= len(replies) <= 10                                       # this second's size: [limit/2, limit]
    assert all(seg.flags == SYN | ACK for seg in replies)
    assert peer.layer.stats["syn-cookie-sent"] == len(replies)
    assert peer.layer.stats["syn-cookie-rate-limited"] == 50 - len(replies)
    peer.advance(1.0)                                                     # the budget comes back each second
    peer.out()                                                            # (the half-open SYN-ACK again)
    peer.inject(SYN, 7, options=build_options(mss=1460), src_port=3000)
    (cookie,) = peer.out()
    peer.inject(ACK, 8, cookie.seq + 1, src_port=3000)                    # and the cookie still works
    assert any(isinstance(e, ev.Accepted) for e in peer.layer.take_events())
    assert peer.layer.stats["syn-cookie-accepted"] == 1


def test_outgoing_and_event_queues_are_bounded_when_nobody_drains_them() -> None:
    peer = RawPeer(TcpConfig(max_outgoing=5, max_events=3, max_per_source=100, rst_rate_limit_per_source=100))
    for port in range(2000, 2010):                                        # ten segments to a closed port
        peer.inject(ACK, 1, 1, src_port=port)
    assert len(peer.out()) == 5
    assert peer.layer.stats["tx-queue-full"] == 5
    peer.inject(ACK, 1, 1, src_port=2010)                                 # drained: room again
    assert len(peer.out()) == 1
    peer.layer.listen(80)
    for port in range(3000, 3005):                                        # five accepted connections
        peer.inject(SYN, 100, options=build_options(mss=1460), src_port=port)
        (syn_ack,) = peer.out()
        peer.inject(ACK, 101, syn_ack.seq + 1, src_port=port)
    assert len(peer.layer.take_events()) == 3
    assert peer.layer.stats["event-queue-full"] == 2
    assert len(peer.layer.by_id) == 5
    # a connection's own output obeys the same bound: an initial window of ten segments, five fit
    conn = next(iter(peer.layer.by_id))
    peer.layer.send(peer.now, conn, b"d" * 20_000)
    assert len(peer.out()) == 5
    assert peer.layer.stats["tx-queue-full"] == 10


# -- spoofed SYNs and the per-source share (audit #4) -------------------------------------------------------


def spoof_syns(peer: RawPeer, count: int, first_port: int = 20000) -> None:
    """SYNs claiming to come from the peer's address, whose SYN-ACKs nobody will ever answer."""
    for i in range(count):
        peer.inject(SYN, 7777, options=build_options(mss=1460), src_port=first_port + i)
    peer.out()


def accepted(peer: RawPeer) -> list[int]:
    return [e.conn for e in peer.layer.take_events() if isinstance(e, ev.Accepted)]


def test_spoofed_syns_do_not_lock_their_source_out() -> None:
    """A source's share of connections (64) used to count half-open entries, so 64 spoofed SYNs naming a
    victim every 75 s locked it out: its own SYN was dropped. Half-open entries prove no source and no longer
    count; the victim's real handshake completes."""
    peer = RawPeer()
    peer.layer.listen(80)
    spoof_syns(peer, 64)
    assert len(peer.layer.half_open) == 64
    assert peer.layer.per_source == {}
    peer.advance(70)
    peer.out()
    handshake(peer, 55555, isn=1234)
    assert len(accepted(peer)) == 1
    assert peer.layer.stats["per-source-limit"] == 0
    assert peer.layer.per_source == {THEM: 1}


def test_spoofed_syns_do_not_make_the_victims_cookie_ack_refused() -> None:
    """The spoofed SYNs fill the half-open table, so the victim's SYN is answered with a cookie; its valid
    cookie ACK makes a connection (it was refused silently while the spoofed entries counted per source)."""
    peer = RawPeer(TcpConfig(max_half_open=64))
    peer.layer.listen(80)
    spoof_syns(peer, 64)
    handshake(peer, 55555, isn=1234)
    assert peer.layer.stats["syn-cookie-sent"] == 1
    assert peer.layer.stats["syn-cookie-accepted"] == 1
    assert len(accepted(peer)) == 1


def test_half_open_entries_stay_bounded_by_max_half_open() -> None:
    """Not counting per source, one source's SYNs still fill no more than the half-open table: cookies answer
    the rest, and no entry is counted against its share."""
    peer = RawPeer(TcpConfig(max_half_open=8, max_per_source=4))
    peer.layer.listen(80)
    spoof_syns(peer, 20)
    assert len(peer.layer.half_open) == 8
    assert len(peer.layer.by_id) == 8
    assert peer.layer.stats["syn-cookie-sent"] == 12
    assert peer.layer.per_source == {}
    peer.advance(100)                                                      # connect_timeout: all gone
    assert not peer.layer.by_id
    assert peer.layer.per_source == {}


def test_a_source_at_its_share_gets_a_cookie_then_a_reset() -> None:
    """A source holding its share of verified connections: its SYN is answered with a cookie (no state), and
    the handshake it completes is refused with a RST, counted; nothing reaches the user, and another source
    is unaffected."""
    peer = RawPeer(TcpConfig(max_per_source=2))
    peer.layer.listen(80)
    for port in (1000, 1001):
        handshake(peer, port)
    assert len(accepted(peer)) == 2
    (refused,) = handshake(peer, 1002)
    assert refused.flags == RST
    assert peer.layer.stats["syn-cookie-sent"] == 1
    assert peer.layer.stats["per-source-limit-reset"] == 1
    assert peer.layer.stats["syn-cookie-accepted"] == 0
    assert len(peer.layer.by_id) == 2
    assert accepted(peer) == []
    peer.inject(SYN, 9, options=build_options(mss=1460), src_port=1003)
    (cookie,) = peer.out()
    peer.inject(ACK, 10, cookie.seq + 1, src_port=1003)
    (rst,) = peer.out()
    assert rst.flags == RST
    assert rst.seq == cookie.seq + 1
    handshake(peer, 1000, src=bytes([10, 9, 9, 9]))
    assert len(accepted(peer)) == 1


def test_half_open_entries_completing_over_the_share_are_reset() -> None:
    """Half-open entries from one source are all admitted; when their handshakes complete, the ones beyond the
    source's share are reset before the user hears of them, counted, and the share is given back exactly."""
    peer = RawPeer(TcpConfig(max_per_source=2))
    peer.layer.listen(80)
    syn_acks = []
    for port in (1000, 1001, 1002):
        peer.inject(SYN, 5, options=build_options(mss=1460), src_port=port)
        (syn_ack,) = peer.out()
        syn_acks.append(syn_ack)
    assert len(peer.layer.half_open) == 3
    assert peer.layer.per_source == {}
    for port, syn_ack in zip((1000, 1001, 1002), syn_acks, strict=True):
        peer.inject(ACK, 6, syn_ack.seq + 1, src_port=port)
    replies = peer.out()
    assert [seg.flags & RST for seg in replies] == [RST]
    assert replies[0].dst_port == 1002
    assert peer.layer.stats["per-source-limit-reset"] == 1
    assert len(accepted(peer)) == 2
    assert len(peer.layer.by_id) == 2
    assert peer.layer.per_source == {THEM: 2}
    assert not peer.layer.half_open
    for conn in list(peer.layer.by_id):
        peer.layer.abort(peer.now, conn)
    assert peer.layer.per_source == {}


def test_per_source_refusal_without_cookies_is_counted_at_the_syn() -> None:
    """With cookies off, a SYN from a source at its share is dropped and counted; half-open entries from the
    same source, below the share, are not."""
    peer = RawPeer(TcpConfig(max_per_source=1, syn_cookies=False))
    peer.layer.listen(80)
    spoof_syns(peer, 5)
    assert len(peer.layer.half_open) == 5
    assert peer.layer.stats["per-source-limit"] == 0
    handshake(peer, 1000)
    assert len(accepted(peer)) == 1
    peer.inject(SYN, 5, options=build_options(mss=1460), src_port=1001)
    assert peer.out() == []
    assert peer.layer.stats["per-source-limit"] == 1
