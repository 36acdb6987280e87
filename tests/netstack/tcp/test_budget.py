"""The layer-wide memory budgets: what all peers together can make the stack hold (TcpConfig docstring)."""

from __future__ import annotations

import gc
import random
import tracemalloc
from dataclasses import replace

from netstack.tcp import events as ev
from netstack.tcp.config import CONNECTION_OBJECT_BYTES, TcpConfig
from netstack.tcp.connection import Connection
from netstack.tcp.layer import TcpLayer
from netstack.tcp.segment import ACK, FIN, RST, SYN, build_options
from netstack.tcp.state import State
from tests.netstack.tcp.raw import RawPeer

PEER_ISN = 1000
SEGMENT = 1000


def ooo_charge(layer: TcpLayer) -> int:
    overhead = layer.config.ooo_entry_overhead
    return sum(c.reassembly.bytes + len(c.reassembly.segments) * overhead for c in layer.by_id.values())


def open_many(peer: RawPeer, count: int) -> list[tuple[int, int, int]]:
    """`count` established connections from one host: (connection id, peer port, our ISS)."""
    opened = []
    for port in range(20000, 20000 + count):
        peer.peer_port = port
        conn, iss = peer.accept(PEER_ISN)
        opened.append((conn, port, iss))
    peer.out()
    return opened


def live(peer: RawPeer, conn: int) -> Connection:
    c = peer.layer.connection(conn)
    assert c is not None
    return c


def test_out_of_order_queues_of_all_connections_stay_within_the_budget() -> None:
    # 20 connections could queue 20 * 8 * 1000 bytes each on their own; the budget allows about a quarter.
    config = TcpConfig(ooo_budget=40_000, timestamps=False, max_per_source=32)
    peer = RawPeer(config)
    opened = open_many(peer, 20)
    for conn, port, iss in opened:
        for i in range(8):  # a hole at PEER_ISN + 1, then segments beyond it
            peer.inject(ACK, PEER_ISN + 1 + (i + 1) * SEGMENT, iss + 1, b"o" * SEGMENT, src_port=port)
            assert peer.layer.budgets.ooo_held <= config.ooo_budget
        assert len(live(peer, conn).reassembly.segments) <= 8
    assert peer.layer.budgets.ooo_held == ooo_charge(peer.layer)
    assert peer.layer.budgets.ooo_held > config.ooo_budget - SEGMENT - config.ooo_entry_overhead  # it did fill up
    assert peer.layer.stats["ooo-budget-exhausted"] == 20 * 8 - peer.layer.stats["out-of-order"]
    assert peer.layer.stats["ooo-budget-exhausted"] > 100
    # Every dropped segment was answered with a duplicate ACK, so the senders know what is missing.
    acks = peer.out()
    assert len(acks) == 20 * 8
    assert all(seg.ack == PEER_ISN + 1 for seg in acks)


def test_a_transfer_completes_after_others_exhausted_the_budget_and_the_budget_comes_back() -> None:
    config = TcpConfig(ooo_budget=20_000, timestamps=False, max_per_source=32)
    peer = RawPeer(config)
    flooders = open_many(peer, 10)
    for _conn, port, iss in flooders:
        for i in range(8):
            peer.inject(ACK, PEER_ISN + 1 + (i + 1) * SEGMENT, iss + 1, b"x" * SEGMENT, src_port=port)
    assert peer.layer.stats["ooo-budget-exhausted"] > 0
    peer.out()

    # An in-order transfer does not need the out-of-order budget and still goes through, every byte.
    peer.peer_port = 30000
    conn, iss = peer.accept(PEER_ISN)
    data = bytes(range(256)) * 200
    received = bytearray()
    for off in range(0, len(data), SEGMENT):
        peer.inject(ACK, PEER_ISN + 1 + off, iss + 1, data[off:off + SEGMENT])
        received += peer.layer.receive(peer.now, conn)
    peer.inject(FIN | ACK, PEER_ISN + 1 + len(data), iss + 1)
    assert bytes(received) == data
    assert ev.PeerClosed(conn) in peer.layer.take_events()
    assert peer.out()[-1].ack == PEER_ISN + 1 + len(data) + 1

    # Filling one flooder's hole drains its queue into the receive buffer and returns its share.
    first_conn, first_port, first_iss = flooders[0]
    queued = len(live(peer, first_conn).reassembly.segments)
    assert queued > 0
    before = peer.layer.budgets.ooo_held
    peer.inject(ACK, PEER_ISN + 1, first_iss + 1, b"h" * SEGMENT, src_port=first_port)
    assert not live(peer, first_conn).reassembly.segments
    assert peer.layer.budgets.ooo_held == before - queued * (SEGMENT + config.ooo_entry_overhead)
    assert peer.layer.readable_bytes(first_conn) == (queued + 1) * SEGMENT

    # Closing and aborting give everything back: a new connection can queue out-of-order data again.
    for flooder, _port, _iss in flooders[1:]:
        peer.layer.abort(peer.now, flooder)
    peer.layer.close(peer.now, first_conn)
    peer.out()
    assert peer.layer.budgets.ooo_held == 0
    assert peer.layer.budgets.rcv_held == peer.layer.readable_bytes(conn) == 0
    exhausted = peer.layer.stats["ooo-budget-exhausted"]
    peer.peer_port = 30001
    late, late_iss = peer.accept(PEER_ISN)
    peer.inject(ACK, PEER_ISN + 1 + SEGMENT, late_iss + 1, b"l" * SEGMENT)
    assert len(live(peer, late).reassembly.segments) == 1
    assert peer.layer.stats["ooo-budget-exhausted"] == exhausted


def test_after_close_nothing_is_held_and_new_data_is_refused() -> None:
    """Unread data makes the close a RST (RFC 9293 SHLD-2); with only out-of-order data (never acknowledged)
    the close is a FIN, and the buffers are given back either way."""
    peer = RawPeer(TcpConfig(timestamps=False))
    conn, iss = peer.accept(PEER_ISN)
    peer.inject(ACK, PEER_ISN + 1 + 2000, iss + 1, b"q" * SEGMENT)      # queued beyond a hole
    assert peer.layer.budgets.ooo_held > 0
    peer.out()
    peer.layer.close(peer.now, conn)
    c = live(peer, conn)                                                # FIN_WAIT_1
    assert (c.reassembly.segments, c.reassembly.bytes, len(c.rcvbuf)) == ([], 0, 0)
    assert (peer.layer.budgets.rcv_held, peer.layer.budgets.ooo_held) == (0, 0)
    assert [s.flags & FIN for s in peer.out()] == [FIN]
    peer.inject(ACK, PEER_ISN + 1 + 3000, iss + 1, b"q" * SEGMENT)
    (rst,) = peer.out()
    assert rst.flags & RST
    assert peer.layer.connection(conn) is None
    assert peer.layer.stats["data-after-close"] == 1
    assert (peer.layer.budgets.rcv_held, peer.layer.budgets.ooo_held) == (0, 0)



def test_paused_readers_share_the_receive_budget_and_others_keep_a_window() -> None:
    config = TcpConfig(rcv_budget=30_000, rcv_guaranteed=4096, timestamps=False, window_scaling=False,
                       max_per_source=32)
    peer = RawPeer(config)
    opened = open_many(peer, 6)
    for conn, port, iss in opened:
        peer.layer.pause_reading(conn)
        for off in range(0, 20_000, SEGMENT):
            peer.inject(ACK, PEER_ISN + 1 + off, iss + 1, b"p" * SEGMENT, src_port=port)
    held = [peer.layer.readable_bytes(conn) for conn, _port, _iss in opened]
    assert peer.layer.budgets.rcv_held == sum(held)
    assert sum(held) <= config.rcv_budget + len(opened) * config.rcv_guaranteed
    assert held[0] == 20_000                                   # the first ones got their full share
    assert all(h >= config.rcv_guaranteed for h in held)       # the last ones still got the guarantee
    assert held[-1] < 20_000
    assert peer.layer.stats["rcv-budget-exhausted"] > 0
    last_conn, last_port, last_iss = opened[-1]
    # What did not fit is not acknowledged (the peer must send it again), and the peer hears so at once.
    peer.out()
    dropped = peer.layer.stats["rcv-budget-exhausted"]
    peer.inject(ACK, PEER_ISN + 1 + held[-1], last_iss + 1, b"p" * SEGMENT, src_port=last_port)
    (ack,) = peer.out()
    assert ack.ack == PEER_ISN + 1 + held[-1]
    assert peer.layer.stats["rcv-budget-exhausted"] == dropped + 1

    # Reading frees the budget: the data dropped before arrives in full when the peer sends it again.
    drained = sum(len(peer.layer.receive(peer.now, conn)) for conn, _port, _iss in opened[:3])
    assert drained == sum(held[:3])
    assert peer.layer.budgets.rcv_held == sum(held[3:])
    peer.inject(ACK, PEER_ISN + 1 + held[-1], last_iss + 1, b"p" * (20_000 - held[-1]), src_port=last_port)
    assert peer.layer.readable_bytes(last_conn) == 20_000
    assert peer.layer.budgets.rcv_held == sum(held[3:-1]) + 20_000


def test_send_buffers_share_the_send_budget_and_acknowledgements_give_it_back() -> None:
    config = TcpConfig(snd_budget=30_000, snd_guaranteed=2920, timestamps=False, max_per_source=32)
    peer = RawPeer(config)
    opened = open_many(peer, 4)
    taken = [peer.layer.send(peer.now, conn, b"s" * 20_000) for conn, _port, _iss in opened]
    assert taken == [20_000, 10_000, 2920, 2920]       # the budget, then each connection's guarantee
    assert peer.layer.budgets.snd_held == sum(taken) == sum(peer.layer.send_buffered(c) for c, _p, _i in opened)
    assert peer.layer.stats["snd-budget-exhausted"] == 3
    peer.out()
    peer.layer.take_events()

    # The peer acknowledges the second connection's data: its share comes back and it is told to write.
    conn, port, iss = opened[1]
    peer.inject(ACK, PEER_ISN + 1, iss + 1 + 10_000, src_port=port)
    assert peer.layer.budgets.snd_held == sum(taken) - 10_000
    assert ev.Writable(conn) in peer.layer.take_events()
    others = 20_000 + 2920 + 2920
    assert peer.layer.send(peer.now, conn, b"s" * 20_000) == config.snd_budget - others  # what is left of it
    assert peer.layer.budgets.snd_held == config.snd_budget

    # Aborting gives everything back.
    for c, _port, _iss in opened:
        peer.layer.abort(peer.now, c)
    assert peer.layer.budgets.snd_held == 0


IMAGE_MEMORY = 128 << 20  # image/: the MicroVM's RAM


def test_the_default_worst_case_fits_the_image_and_a_flood_cannot_fill_the_table() -> None:
    config = TcpConfig()
    assert config.worst_case_bytes() <= IMAGE_MEMORY * 2 // 5
    # the former 4096 connections did not fit: the sum is what limits max_connections
    assert replace(config, max_connections=4096).worst_case_bytes() > IMAGE_MEMORY * 2 // 5
    assert config.max_connections >= 4 * config.max_half_open


def test_a_connection_s_objects_stay_under_the_ceiling_the_worst_case_assumes() -> None:
    count = 300
    peer = RawPeer(TcpConfig(max_per_source=count + 10))
    open_many(peer, 4)  # warm up caches and interned objects
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for port in range(30000, 30000 + count):
            peer.peer_port = port
            peer.accept(PEER_ISN)
        peer.out()
        gc.collect()
        per_connection = (tracemalloc.get_traced_memory()[0] - before) / count
    finally:
        tracemalloc.stop()
    assert 0 < per_connection <= CONNECTION_OBJECT_BYTES


def test_a_spoofed_syn_flood_leaves_the_default_table_room_for_a_client() -> None:
    """With the defaults, half-open entries (the only ones spoofed SYNs create) stop at max_half_open, far below
    max_connections, and SYN cookies answer the rest: a real client still gets in."""
    peer = RawPeer()
    config = peer.layer.config
    for port in (80, 81, 82):
        peer.layer.listen(port, backlog=config.max_backlog)
    rng = random.Random(3)
    for i in range(3000):
        source = bytes([10, 77, rng.randrange(256), rng.randrange(1, 255)])
        peer.port = 80 + i % 3
        peer.inject(SYN, rng.getrandbits(32), options=build_options(mss=1460), src=source,
                    src_port=rng.randrange(1024, 65535))
    peer.out()
    assert len(peer.layer.half_open) == len(peer.layer.by_id) == config.max_half_open
    assert peer.layer.stats["syn-cookie-sent"] > 2000
    assert peer.layer.stats["connection-limit"] == 0
    peer.port = 80
    conn, _iss = peer.accept(PEER_ISN)
    assert peer.layer.stats["syn-cookie-accepted"] == 1
    assert peer.layer.state_of(conn) == State.ESTABLISHED
