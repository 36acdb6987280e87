"""Two stacks back to back on a virtual clock (mirage-tcpip style): bulk data must arrive intact."""

from __future__ import annotations

import hashlib
import random

import pytest

from netstack.tcp import events as ev
from netstack.tcp.config import TcpConfig
from netstack.tcp.state import State
from tests.netstack.tcp.sim import Pair, Wire, establish, transfer


def payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def test_clean_bulk_both_directions() -> None:
    pair = Pair()
    client, server = establish(pair)
    up = payload(3_000_000, 1)
    assert transfer(pair, "a", client, server, up) == up
    down = payload(3_000_000, 2)
    assert transfer(pair, "b", server, client, down) == down
    assert pair.a.stats["fast-retransmit"] == 0
    assert pair.a.stats["internal-error"] == pair.b.stats["internal-error"] == 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bulk_under_loss_reordering_duplication(seed: int) -> None:
    wire = Wire(seed=seed, loss=0.10, duplicate=0.10, reorder=0.10)
    pair = Pair(wire)
    client, server = establish(pair)
    up = payload(2_000_000, seed)
    got = transfer(pair, "a", client, server, up)
    assert hashlib.sha256(got).digest() == hashlib.sha256(up).digest()
    down = payload(2_000_000, seed + 100)
    got = transfer(pair, "b", server, client, down)
    assert got == down
    assert wire.dropped > 100
    # recovery used both fast retransmit and timeouts, and the receiver really saw disorder
    stats = pair.a.stats + pair.b.stats
    assert stats["fast-retransmit"] > 0
    assert stats["out-of-order"] > 0
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


def test_orderly_close_reaches_time_wait_then_closed() -> None:
    pair = Pair()
    client, server = establish(pair)
    pair.a.close(pair.now, client)
    pair.run_until(pair.now + 1)
    assert pair.a.state_of(client) == State.FIN_WAIT_2
    assert pair.b.state_of(server) == State.CLOSE_WAIT
    assert ev.PeerClosed(server) in pair.take("b")
    pair.b.close(pair.now, server)
    pair.run_until(pair.now + 1)
    assert pair.a.state_of(client) == State.TIME_WAIT
    assert pair.b.state_of(server) == State.CLOSED
    msl = pair.a.config.msl
    pair.run_until(pair.now + 2 * msl - 2)
    assert pair.a.state_of(client) == State.TIME_WAIT
    pair.run_until(pair.now + 3)
    assert pair.a.state_of(client) == State.CLOSED
    assert ev.Closed(client, None) in pair.take("a")


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
