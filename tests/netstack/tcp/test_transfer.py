"""Two stacks back to back on a virtual clock (mirage-tcpip style): bulk data must arrive intact, over IPv4 and
over IPv6 (16-byte addresses: the MSS is the MTU minus 60, and the checksum covers the IPv6 pseudo-header)."""

from __future__ import annotations

import hashlib
import random

import pytest

from netstack.tcp import events as ev
from netstack.tcp.config import TcpConfig
from netstack.tcp.segment import SYN, Segment, parse_segment
from netstack.tcp.state import State
from tests.netstack.tcp.sim import A_ADDR, A_ADDR6, B_ADDR, B_ADDR6, Pair, Wire, establish, transfer

ADDRESSES = {"ipv4": (A_ADDR, B_ADDR), "ipv6": (A_ADDR6, B_ADDR6)}
FAMILIES = pytest.mark.parametrize("family", ["ipv4", "ipv6"])


def establish_over(pair: Pair, family: str) -> tuple[int, int]:
    a_addr, b_addr = ADDRESSES[family]
    return establish(pair, a_addr=a_addr, b_addr=b_addr)


def payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def sent6(pair: Pair, direction: str) -> list[Segment]:
    """What one side sent, parsed with the IPv6 addresses: a checksum over anything else fails here."""
    src, dst = (A_ADDR6, B_ADDR6) if direction == "a->b" else (B_ADDR6, A_ADDR6)
    return [parse_segment(src, dst, memoryview(seg)) for _, d, seg in pair.tap if d == direction]


@FAMILIES
def test_clean_bulk_both_directions(family: str) -> None:
    size = {"ipv4": 3_000_000, "ipv6": 1_000_000}[family]
    pair = Pair()
    client, server = establish_over(pair, family)
    up = payload(size, 1)
    assert transfer(pair, "a", client, server, up) == up
    down = payload(size, 2)
    assert transfer(pair, "b", server, client, down) == down
    if family == "ipv4":
        assert pair.a.stats["fast-retransmit"] == 0
        assert pair.a.stats["internal-error"] == pair.b.stats["internal-error"] == 0
    else:
        biggest = max(len(seg.payload) for seg in sent6(pair, "a->b"))
        assert biggest == 1440 - 12                                         # full-sized, never above the MSS
        assert pair.a.stats["bad-checksum"] == pair.b.stats["bad-checksum"] == 0


@pytest.mark.parametrize(("family", "seed"), [("ipv4", 1), ("ipv4", 2), ("ipv4", 3), ("ipv6", 1), ("ipv6", 2)])
def test_bulk_under_loss_reordering_duplication(family: str, seed: int) -> None:
    up_size, down_size, min_dropped = {"ipv4": (2_000_000, 2_000_000, 100), "ipv6": (1_000_000, 500_000, 50)}[family]
    wire = Wire(seed=seed, loss=0.10, duplicate=0.10, reorder=0.10)
    pair = Pair(wire)
    client, server = establish_over(pair, family)
    up = payload(up_size, seed)
    got = transfer(pair, "a", client, server, up)
    assert hashlib.sha256(got).digest() == hashlib.sha256(up).digest()
    down = payload(down_size, seed + 100)
    got = transfer(pair, "b", server, client, down)
    assert got == down
    assert wire.dropped > min_dropped
    # recovery used both fast retransmit and timeouts, and the receiver really saw disorder
    stats = pair.a.stats + pair.b.stats
    assert stats["fast-retransmit"] > 0
    assert stats["out-of-order"] > 0
    if family == "ipv6":
        assert stats["duplicate-segment"] > 0
    assert stats["internal-error"] == 0


def test_bulk_without_options_and_small_windows() -> None:
    """No window scaling, no timestamps, tiny buffers: RTT is timed per segment and the window bounds flight."""
    config = TcpConfig(window_scaling=False, timestamps=False, rcv_buffer=8192, snd_buffer=8192)
    pair = Pair(Wire(seed=9, loss=0.05, reorder=0.05), config, config)
    client, server = establish(pair)
    conn = pair.a.connection(client)
    assert conn is not None
    assert not conn.ts_enabled
    assert not conn.wscale_ok
    data = payload(300_000, 9)
    assert transfer(pair, "a", client, server, data) == data
    assert conn.rtt.srtt > 0  # RTT sampled without timestamps


@FAMILIES
def test_orderly_close_reaches_time_wait_then_closed(family: str) -> None:
    pair = Pair()
    client, server = establish_over(pair, family)
    pair.a.close(pair.now, client)
    pair.run_until(pair.now + 1)
    if family == "ipv4":
        assert pair.a.state_of(client) == State.FIN_WAIT_2
    assert pair.b.state_of(server) == State.CLOSE_WAIT
    assert ev.PeerClosed(server) in pair.take("b")
    pair.b.close(pair.now, server)
    pair.run_until(pair.now + 1)
    assert pair.a.state_of(client) == State.TIME_WAIT
    assert pair.b.state_of(server) == State.CLOSED
    if family == "ipv6":
        assert pair.a.per_source == pair.b.per_source == {}               # TIME-WAIT gave its source back
    msl = pair.a.config.msl
    pair.run_until(pair.now + 2 * msl - 2)
    if family == "ipv4":
        assert pair.a.state_of(client) == State.TIME_WAIT
    pair.run_until(pair.now + 3)
    assert pair.a.state_of(client) == State.CLOSED
    if family == "ipv4":
        assert ev.Closed(client, None) in pair.take("a")
    else:
        assert not pair.a.by_id
        assert not pair.b.by_id


def test_reading_pauses_the_sender() -> None:
    """A receiver that does not read closes its window; the sender persists and resumes when it reads."""
    config = TcpConfig(rcv_buffer=16384)
    pair = Pair(config_a=config, config_b=config)
    client, server = establish(pair)
    data = payload(100_000, 5)
    sent = pair.a.send(pair.now, client, data)
    pair.run_until(pair.now + 30)
    assert pair.b.readable_bytes(server) <= 16384 + 1460
    assert pair.a.stats["window-probe"] > 0
    received = bytearray()
    while len(received) < sent:
        received += pair.b.receive(pair.now, server)
        pair.run_until(pair.now + 5)
    assert bytes(received) == data[:sent]


def test_handshake_over_ipv6_advertises_mtu_minus_60() -> None:
    pair = Pair()
    client, server = establish_over(pair, "ipv6")
    assert pair.a.addresses(client) == ((A_ADDR6, pair.a.addresses(client)[0][1]), (B_ADDR6, 80))
    assert pair.b.addresses(server)[0] == (B_ADDR6, 80)
    syns = [seg for seg in sent6(pair, "a->b") + sent6(pair, "b->a") if seg.flags & SYN]
    assert [s.options.mss for s in syns] == [1440, 1440]                    # SYN and SYN-ACK: 1500 - 60
    conn = pair.a.connection(client)
    assert conn is not None
    assert conn.mss == 1440 - 12                                            # timestamps agreed
    assert pair.a.stats["internal-error"] == pair.b.stats["internal-error"] == 0


def test_both_families_side_by_side_on_one_layer() -> None:
    """One listener takes both; the IPv4 connection keeps its 1460 and the IPv6 one its 1440."""
    pair = Pair(config_a=TcpConfig(timestamps=False), config_b=TcpConfig(timestamps=False))
    c4, s4 = establish(pair)
    pair.b.unlisten(80)
    c6, s6 = establish_over(pair, "ipv6")
    for layer, conn, mss in ((pair.a, c4, 1460), (pair.b, s4, 1460), (pair.a, c6, 1440), (pair.b, s6, 1440)):
        tcb = layer.connection(conn)
        assert tcb is not None
        assert tcb.mss == tcb.rcv_mss == mss
    data = payload(200_000, 7)
    assert transfer(pair, "a", c4, s4, data) == data
    assert transfer(pair, "a", c6, s6, data) == data
    assert pair.a.addresses(c4)[1] == (B_ADDR, 80)
    assert pair.a.addresses(c6)[1] == (B_ADDR6, 80)
    assert A_ADDR != A_ADDR6
