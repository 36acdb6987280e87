"""A closed receive window in both directions at once: the sender keeps to the right edge the peer advertised,
its ACKs stay acceptable to a peer whose window is closed, and a zero-window probe's acknowledgement counts.

Why these together: each was a way for acknowledgements to stop reaching a peer whose window had closed. Two of
our stacks echoing a bulk transfer (tests/tls/test_aio.py's adapter test over a lossy link) then deadlocked:
the echoing side could not read because its own sends were stuck, and its sends were stuck because it threw
away every acknowledgement the other side sent: the pure ACKs were numbered beyond its closed window (the
sender had slid its right edge, or probed), and the window probes' ACKs were ignored with their octet.
"""

from __future__ import annotations

import random

import pytest

from netstack.tcp.config import TcpConfig
from netstack.tcp.segment import ACK
from tests.netstack.tcp.raw import RawPeer
from tests.netstack.tcp.sim import Pair, Wire, establish


def test_an_ack_that_may_not_update_the_window_keeps_its_right_edge() -> None:
    """The stall's trigger: the peer retransmits an old segment of its own (SEG.SEQ below SND.WL1, so RFC 9293
    forbids taking its window) whose ACK covers everything we sent into a small window, and whose window is
    closed. SND.UNA moves up; the right edge we may send to must not move with it."""
    peer = RawPeer(TcpConfig(keepalive=False))
    conn, iss = peer.accept()
    # The peer sent 100 bytes at 1001 that we never got, then a window of 712 bytes numbered after them.
    peer.inject(ACK, 1101, iss + 1, window=712)
    peer.layer.send(peer.now, conn, bytes(4000))
    (first,) = peer.out()
    assert (first.seq, len(first.payload)) == (iss + 1, 712)  # exactly the window
    edge = iss + 1 + 712
    # Its retransmission of the lost 100 bytes acknowledges ours, with the window now closed.
    peer.inject(ACK, 1001, edge, b"x" * 100, window=0)
    sent = peer.out()
    assert [s for s in sent if s.payload] == []              # nothing beyond the edge it advertised
    peer.advance(0.2)                                        # the delayed ACK of its 100 bytes
    sent += peer.out()
    assert sent
    assert all(s.seq == edge and s.ack == 1101 for s in sent)  # ...and ACKs a closed window accepts
    (probe,) = peer.next_output(limit=100.0)                            # the window stays closed: probe it
    assert (probe.seq, len(probe.payload)) == (edge, 1)


def test_acks_stay_inside_a_closed_window_while_probing() -> None:
    """A zero-window probe sends a byte beyond the peer's window, which the peer drops; an ACK numbered after
    that byte would be dropped too (RFC 9293 §3.10.7.4 accepts only SEG.SEQ = RCV.NXT on a zero window), so
    what we acknowledge of the peer's own data must keep to the edge."""
    peer = RawPeer(TcpConfig(keepalive=False, delayed_ack_segments=1))
    conn, iss = peer.accept()
    peer.inject(ACK, 1001, iss + 1, window=0)
    peer.layer.send(peer.now, conn, b"data waiting")
    assert peer.out() == []
    (probe,) = peer.next_output(limit=100.0)
    assert (probe.seq, len(probe.payload)) == (iss + 1, 1)
    peer.inject(ACK, 1001, iss + 1, b"reply", window=0)     # the peer dropped the probe and still sends
    (ack,) = peer.out()
    assert not ack.payload
    assert (ack.seq, ack.ack) == (iss + 1, 1006)
    peer.inject(ACK, 1006, iss + 1, window=65535)           # the window opens: what follows the probe goes
    data = b"".join(bytes(s.payload) for s in peer.out())
    assert b"data waiting".endswith(data)
    assert data.endswith(b"ata waiting")


def test_a_zero_window_probe_delivers_its_acknowledgement() -> None:
    """RFC 9293 §3.10.7.4: with RCV.WND zero no segment is acceptable, "but special allowance should be made to
    accept valid ACKs, URGs, and RSTs". A probe at RCV.NXT carries the peer's acknowledgement of our data; its
    octet is dropped and answered, its ACK is taken."""
    peer = RawPeer(TcpConfig(keepalive=False, rcv_buffer=2920))
    conn, iss = peer.accept(mss=1460)
    peer.inject(ACK, 1001, iss + 1, bytes(1460))
    peer.inject(ACK, 2461, iss + 1, bytes(1460))           # our buffer is full and nobody reads it
    (full,) = peer.out()
    assert (full.ack, full.window) == (3921, 0)
    peer.layer.send(peer.now, conn, b"hello")
    (hello,) = peer.out()
    assert bytes(hello.payload) == b"hello"
    peer.inject(ACK, 3921, iss + 6, b"z")                    # its probe acknowledges our hello
    assert peer.layer.send_buffered(conn) == 0
    assert peer.layer.readable_bytes(conn) == 2920            # its octet is not taken
    (answer,) = peer.out()
    assert (answer.seq, answer.ack, answer.window, len(answer.payload)) == (iss + 6, 3921, 0, 0)
    assert peer.layer.stats["zero-window-probe-received"] == 1


def _echo(seed: int, size: int = 1 << 20, limit: float = 300.0) -> bytes:
    """A writes `size` bytes to B and reads what comes back; B echoes, reading only once its last write has been
    taken whole, as an asyncio echo server does by awaiting drain(). So B's window closes whenever its sends
    are held up, while A goes on sending and acknowledging: the adapter test's traffic, without asyncio."""
    pair = Pair(Wire(seed=seed, delay=0.001, loss=0.02, reorder=0.02))
    a, b = establish(pair)
    data = random.Random(seed).randbytes(size)
    sent = 0
    echoing = bytearray()
    echoed = bytearray()

    def pump() -> None:
        nonlocal sent
        while sent < size and (taken := pair.a.send(pair.now, a, memoryview(data)[sent:sent + 65536])):
            sent += taken
        if not echoing:
            echoing.extend(pair.b.receive(pair.now, b, 65536))
        if echoing:
            del echoing[:pair.b.send(pair.now, b, echoing)]
        while chunk := pair.a.receive(pair.now, a):
            echoed.extend(chunk)

    pump()
    while len(echoed) < size and pair.step(limit):
        pump()
    return bytes(echoed)


# Before the fix the echo deadlocked on seeds 1, 3, 23, 25 and 29 of these; with only the right-edge part of
# it on 3, 10, 23 and 29; with only the zero-window probe part on 29.
@pytest.mark.parametrize("seed", range(32))
def test_an_echo_whose_reads_wait_for_its_writes_does_not_deadlock(seed: int) -> None:
    echoed = _echo(seed)
    assert len(echoed) == 1 << 20  # short: the exchange stopped (the deadlock), not a corruption
    assert echoed == random.Random(seed).randbytes(1 << 20)


def small_window_transfer(window: int, total: int) -> tuple[bytes, RawPeer]:
    """A peer whose SYN offered 64 KiB and whose window then stays at `window` (below half of that, the sender
    SWS threshold): it loses our first segment, then acknowledges each one it gets with the same window."""
    peer = RawPeer()
    cid, iss = peer.accept(1000)
    peer.inject(ACK, 1001, iss + 1, window=window)
    peer.layer.send(peer.now, cid, bytes(range(256)) * (total // 256))
    (lost,) = peer.out()
    assert len(lost.payload) == window
    got = b""
    while len(got) < total and peer.now < 600:
        for seg in peer.out() or peer.next_output(limit=600):
            if seg.payload and seg.seq == iss + 1 + len(got):
                got += bytes(seg.payload)
        peer.inject(ACK, 1001, iss + 1 + len(got), window=window)
    assert peer.layer.connection(cid) is not None
    return got, peer


@pytest.mark.parametrize("window", [1, 100])
def test_a_lost_segment_in_a_window_below_the_sws_threshold_is_resent(window: int) -> None:
    """Sender SWS avoidance held back less than half the largest window the peer ever offered while data was
    in flight, and it held back the timeout's resend of that data too: the lost segment was never sent again,
    and the connection died of the keepalive timeout (195 s). RFC 9293 §3.8.6.2.1 delays new data only."""
    total = 2560
    got, peer = small_window_transfer(window, total)
    assert got == bytes(range(256)) * (total // 256)
    assert peer.layer.stats["keepalive-timeout"] == 0
