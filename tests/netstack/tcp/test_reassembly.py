"""The reassembly queue on its own: order, duplicates, FIN, partial delivery, wrap-around."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from netstack.tcp.config import TcpConfig
from netstack.tcp.reassembly import NO_REASSEMBLY, Reassembly
from netstack.tcp.segment import ACK, FIN
from netstack.tcp.seq import MASK
from tests.netstack.tcp.raw import RawPeer


class Sink:
    """A receive buffer with `room` bytes of space."""

    def __init__(self, room: int = 1 << 30) -> None:
        self.data = bytearray()
        self.room = room

    def take(self, data: bytes) -> int:
        chunk = data[: self.room - len(self.data)]
        self.data += chunk
        return len(chunk)


def test_segments_are_delivered_in_order_once_the_hole_is_filled() -> None:
    queue = Reassembly()
    queue.add(120, b"c" * 10, False, 100)
    queue.add(110, b"b" * 10, False, 100)
    assert (len(queue), queue.bytes, queue.charge(100)) == (2, 20, 220)
    sink = Sink()
    assert queue.drain(100, sink.take) == (100, False, False)  # the hole at 100 is still open
    assert len(queue) == 2
    assert queue.drain(110, sink.take) == (130, True, False)
    assert bytes(sink.data) == b"b" * 10 + b"c" * 10
    assert (len(queue), queue.bytes) == (0, 0)


def test_overlap_and_duplicates() -> None:
    queue = Reassembly()
    queue.add(105, b"0123456789", False, 100)
    assert queue.gaps(105, 10) == []
    assert queue.gaps(105, 4) == []
    assert queue.gaps(105, 11) == [(10, 11)]
    assert queue.gaps(100, 20) == [(0, 5), (15, 20)]
    assert queue.gaps(106, 1) == []
    queue.add(200, b"x", False, 100)
    sink = Sink()
    # The stream already reached 108: the first 3 bytes are duplicates and skipped.
    assert queue.drain(108, sink.take) == (115, True, False)
    assert bytes(sink.data) == b"3456789"
    assert queue.segments == [(200, b"x", False)]
    assert queue.bytes == 1


def test_wholly_old_segments_go_and_a_fin_is_reached() -> None:
    queue = Reassembly()
    queue.add(100, b"old", False, 90)
    queue.add(103, b"", True, 90)  # a bare FIN right after the old bytes
    sink = Sink()
    assert queue.drain(103, sink.take) == (103, True, True)
    assert sink.data == b""
    assert len(queue) == 0


def test_a_fin_is_reached_only_if_everything_before_it_fitted() -> None:
    queue = Reassembly()
    queue.add(100, b"abcdef", True, 100)
    sink = Sink(room=4)
    assert queue.drain(100, sink.take) == (104, True, False)
    assert sink.data == b"abcd"
    queue.add(100, b"abcdef", True, 100)
    assert queue.drain(104, Sink().take) == (106, True, True)


def test_drain_takes_nothing_queued_beyond_a_fin() -> None:
    """The queue on its own does not refuse text beyond a queued FIN (`ReceiveSide` does, as data-beyond-fin),
    so `drain` stops at the FIN itself: the stream ends there (RFC 9293 §3.10.7.4), and what lay beyond goes."""
    queue = Reassembly()
    queue.add(110, b"abc", True, 100)
    queue.add(113, b"xyz", False, 100)
    queue.add(120, b"late", False, 100)
    sink = Sink()
    assert queue.drain(100, sink.take) == (100, False, False)   # the hole at 100 is still open
    queue.add(100, b"0123456789", False, 100)
    assert queue.drain(100, sink.take) == (113, True, True)
    assert bytes(sink.data) == b"0123456789abc"
    assert (len(queue), queue.bytes) == (0, 0)


def test_sequence_numbers_wrap() -> None:
    queue = Reassembly()
    start = MASK - 2  # three bytes before the wrap
    queue.add(1, b"yz", False, start)
    queue.add(start, b"abc", False, start)
    queue.add(0, b"x", False, start)
    sink = Sink()
    assert queue.drain(start, sink.take) == (3, True, False)
    assert sink.data == b"abcxyz"


def test_clear() -> None:
    queue = Reassembly()
    queue.add(5, b"abc", True, 0)
    queue.clear()
    assert (queue.segments, queue.bytes) == ([], 0)


@given(st.lists(st.tuples(st.integers(0, 60), st.integers(1, 20)), max_size=12), st.integers(0, MASK))
def test_any_arrival_order_rebuilds_the_stream(pieces: list[tuple[int, int]], base: int) -> None:
    """Whatever pieces of a stream arrive out of order, draining yields exactly the bytes they cover that
    continue it, and the byte count always matches what is queued."""
    stream = bytes(range(100))
    queue = Reassembly()
    for offset, length in pieces:
        if offset > 0:  # offset 0 would be in order, not queued
            queue.add((base + offset) & MASK, stream[offset:offset + length], False, base)
        assert queue.bytes == sum(len(data) for _seq, data, _fin in queue.segments)
    sink = Sink()
    sink.data += stream[:1]
    rcv_nxt, _changed, fin = queue.drain((base + 1) & MASK, sink.take)
    covered = 1
    while any(offset <= covered < offset + length for offset, length in pieces if offset > 0):
        covered = max(offset + length for offset, length in pieces if 0 < offset <= covered < offset + length)
    covered = min(covered, len(stream))
    assert bytes(sink.data) == stream[:covered]
    assert rcv_nxt == (base + covered) & MASK
    assert not fin
    assert queue.bytes == sum(len(data) for _seq, data, _fin in queue.segments)


def test_connections_share_the_empty_queue_until_they_need_one() -> None:
    peer = RawPeer()
    conn_id, iss = peer.accept()
    conn = peer.layer.connection(conn_id)
    assert conn is not None
    assert conn.reassembly is NO_REASSEMBLY
    peer.inject(ACK, 1011, iss + 1, b"later")          # ten bytes missing before it
    assert conn.reassembly is not NO_REASSEMBLY
    assert conn.reassembly.segments == [(1011, b"later", False)]
    peer.inject(ACK, 1001, iss + 1, b"0123456789")     # the hole is filled: the queue drains
    assert peer.layer.receive(peer.now, conn_id) == b"0123456789later"
    peer.inject(ACK, 1030, iss + 1, b"x")              # another gap; a FIN before it is refused (fin-conflict)
    peer.inject(ACK | FIN, 1016, iss + 1)
    assert conn.reassembly is not NO_REASSEMBLY
    assert peer.layer.stats["fin-conflict"] == 1
    peer.inject(ACK | FIN, 1031, iss + 1)              # the FIN after it is queued, then the gap is filled
    peer.inject(ACK, 1016, iss + 1, b"y" * 14)
    assert peer.layer.receive(peer.now, conn_id) == b"y" * 14 + b"x"
    assert conn.reassembly.segments == []
    assert (NO_REASSEMBLY.segments, NO_REASSEMBLY.bytes) == ([], 0)
    assert peer.layer.budgets.ooo_held == 0


def test_the_first_copy_of_a_byte_wins_in_the_queue() -> None:
    """Issue 15: a whole-range overlap kept the first copy but a partial one let later bytes win. Both
    shapes, either side of the queued copy, now keep the first."""
    queue = Reassembly()
    assert queue.add(110, b"AAAAAAAAAA", False, 100) == 10                   # 110..120
    assert queue.add(110, b"bbbbbbbbbb", False, 100) == 0                    # whole range: a duplicate
    assert queue.add(105, b"cccccccccc", False, 100) == 5                    # 105..115, head overlap
    assert queue.add(115, b"dddddddddd", False, 100) == 5                    # 115..125, tail overlap
    assert queue.add(104, b"e" * 30, True, 100) == 10                        # covers everything
    sink = Sink()
    assert queue.drain(104, sink.take) == (134, True, True)
    assert bytes(sink.data) == b"e" + b"ccccc" + b"A" * 10 + b"ddddd" + b"e" * 9
    assert queue.bytes == 0


def test_in_order_text_yields_to_queued_text() -> None:
    """The same rule when the later copy is the in-order one: queued bytes were there first."""
    peer = RawPeer(port=80)
    conn_id, iss = peer.accept(peer_isn=1000)
    peer.inject(ACK, 1011, iss + 1, b"QQQQQ")                  # 1011..1016 queued
    peer.inject(ACK, 1021, iss + 1, b"RRRRR")                  # 1021..1026 queued
    peer.inject(ACK, 1001, iss + 1, b"n" * 30)                 # 1001..1031 in order, over both
    assert peer.layer.receive(peer.now, conn_id) == b"n" * 10 + b"QQQQQ" + b"n" * 5 + b"RRRRR" + b"n" * 5
    conn = peer.layer.connection(conn_id)
    assert conn is not None
    assert conn.rcv_nxt == 1031
    assert peer.layer.budgets.ooo_held == 0


def test_partial_overlap_in_the_queue_keeps_the_first_copy_through_a_connection() -> None:
    peer = RawPeer(port=80)
    conn_id, iss = peer.accept(peer_isn=1000)
    peer.inject(ACK, 1011, iss + 1, b"FIRST")                  # 1011..1016
    peer.inject(ACK, 1009, iss + 1, b"later")                  # 1009..1014: overlaps its head
    peer.inject(ACK, 1001, iss + 1, b"01234567")               # fills the hole up to 1009
    assert peer.layer.receive(peer.now, conn_id) == b"01234567" + b"la" + b"FIRST"
    assert peer.layer.budgets.ooo_held == 0


def test_the_entry_limit_counts_the_pieces_an_overlapping_segment_becomes() -> None:
    """A segment over queued ones is queued as the pieces between them; the per-connection entry limit
    counts those pieces, so overlaps cannot grow the queue past it."""
    peer = RawPeer(TcpConfig(ooo_max_segments=3), port=80)
    conn_id, iss = peer.accept(peer_isn=1000)
    peer.inject(ACK, 1011, iss + 1, b"a" * 5)                 # 1011..1016
    peer.inject(ACK, 1021, iss + 1, b"b" * 5)                 # 1021..1026
    peer.inject(ACK, 1006, iss + 1, b"c" * 30)                # three pieces: 2 + 3 > 3
    conn = peer.layer.connection(conn_id)
    assert conn is not None
    assert len(conn.reassembly) == 2
    assert peer.layer.stats["ooo-queue-full"] == 1
    peer.inject(ACK, 1008, iss + 1, b"d" * 5)                 # 1008..1013: one piece, fits
    assert len(conn.reassembly) == 3
