"""Two stacks back to back over IPv6 (16-byte addresses): handshake, bulk data under loss, reordering and
duplication, and close, as test_transfer and test_states do over IPv4."""

from __future__ import annotations

import random

import pytest

from netstack.tcp import events as ev
from netstack.tcp.config import TcpConfig
from netstack.tcp.segment import SYN, Segment, parse_segment
from netstack.tcp.state import State
from tests.netstack.tcp.sim import A_ADDR, A_ADDR6, B_ADDR, B_ADDR6, Pair, Wire, establish, transfer


def establish6(pair: Pair) -> tuple[int, int]:
    return establish(pair, a_addr=A_ADDR6, b_addr=B_ADDR6)


def payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def sent(pair: Pair, direction: str) -> list[Segment]:
    """What one side sent, parsed with the IPv6 addresses: a checksum over anything else fails here."""
    src, dst = (A_ADDR6, B_ADDR6) if direction == "a->b" else (B_ADDR6, A_ADDR6)
    return [parse_segment(src, dst, memoryview(seg)) for _, d, seg in pair.tap if d == direction]


def test_handshake_over_ipv6_advertises_mtu_minus_60() -> None:
    pair = Pair()
    client, server = establish6(pair)
    assert pair.a.addresses(client) == ((A_ADDR6, pair.a.addresses(client)[0][1]), (B_ADDR6, 80))
    assert pair.b.addresses(server)[0] == (B_ADDR6, 80)
    syns = [seg for seg in sent(pair, "a->b") + sent(pair, "b->a") if seg.flags & SYN]
    assert [s.options.mss for s in syns] == [1440, 1440]                    # SYN and SYN-ACK: 1500 - 60
    conn = pair.a.connection(client)
    assert conn is not None
    assert conn.mss == 1440 - 12                                            # timestamps agreed
    assert pair.a.stats["internal-error"] == pair.b.stats["internal-error"] == 0


def test_clean_bulk_both_directions_over_ipv6() -> None:
    pair = Pair()
    client, server = establish6(pair)
    up = payload(1_000_000, 1)
    assert transfer(pair, "a", client, server, up) == up
    down = payload(1_000_000, 2)
    assert transfer(pair, "b", server, client, down) == down
    biggest = max(len(seg.payload) for seg in sent(pair, "a->b"))
    assert biggest == 1440 - 12                                             # full-sized, never above the MSS
    assert pair.a.stats["bad-checksum"] == pair.b.stats["bad-checksum"] == 0


@pytest.mark.parametrize("seed", [1, 2])
def test_bulk_under_loss_reordering_duplication_over_ipv6(seed: int) -> None:
    wire = Wire(seed=seed, loss=0.10, duplicate=0.10, reorder=0.10)
    pair = Pair(wire)
    client, server = establish6(pair)
    up = payload(1_000_000, seed)
    assert transfer(pair, "a", client, server, up) == up
    down = payload(500_000, seed + 100)
    assert transfer(pair, "b", server, client, down) == down
    assert wire.dropped > 50
    stats = pair.a.stats + pair.b.stats
    assert stats["fast-retransmit"] > 0
    assert stats["out-of-order"] > 0
    assert stats["duplicate-segment"] > 0
    assert stats["internal-error"] == 0


def test_close_over_ipv6() -> None:
    pair = Pair()
    client, server = establish6(pair)
    pair.a.close(pair.now, client)
    pair.run_until(pair.now + 1)
    assert pair.b.state_of(server) == State.CLOSE_WAIT
    assert ev.PeerClosed(server) in pair.take("b")
    pair.b.close(pair.now, server)
    pair.run_until(pair.now + 1)
    assert pair.a.state_of(client) == State.TIME_WAIT
    assert pair.b.state_of(server) == State.CLOSED
    assert pair.a.per_source == pair.b.per_source == {}                   # TIME-WAIT gave its source back
    pair.run_until(pair.now + 2 * pair.a.config.msl + 1)
    assert pair.a.state_of(client) == State.CLOSED
    assert not pair.a.by_id
    assert not pair.b.by_id


def test_both_families_side_by_side_on_one_layer() -> None:
    """One listener takes both; the IPv4 connection keeps its 1460 and the IPv6 one its 1440."""
    pair = Pair(config_a=TcpConfig(timestamps=False), config_b=TcpConfig(timestamps=False))
    c4, s4 = establish(pair)
    pair.b.unlisten(80)
    c6, s6 = establish6(pair)
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
