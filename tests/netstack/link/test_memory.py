from __future__ import annotations

import asyncio
import random

import pytest

from netstack.link.memory import Channel, Impairment, memory_link_pair
from netstack.reasons import Drop


def test_perfect_channel_delivers_in_order_after_the_delay() -> None:
    channel = Channel(Impairment(delay=0.5))
    for i in range(5):
        channel.put(float(i) * 0.1, bytes([i]))
    assert channel.next_deadline() == 0.5
    assert channel.take_due(0.49) == []
    assert channel.take_due(0.7) == [b"\x00", b"\x01", b"\x02"]
    assert channel.take_due(10.0) == [b"\x03", b"\x04"]
    assert channel.next_deadline() is None


def test_loss_duplication_and_reordering_follow_the_seed() -> None:
    def run(seed: int) -> list[bytes]:
        channel = Channel(Impairment(loss=0.1, duplicate=0.1, reorder=0.1, reorder_delay=0.05), random.Random(seed))
        for i in range(1000):
            channel.put(i * 0.001, i.to_bytes(2, "big"))
        return channel.take_due(100.0)

    delivered = run(1)
    assert delivered == run(1)
    assert delivered != run(2)
    numbers = [int.from_bytes(f, "big") for f in delivered]
    assert 50 < 1000 - len(set(numbers)) < 150  # about 10% lost
    assert 50 < len(numbers) - len(set(numbers)) < 150  # about 10% of the rest duplicated
    assert numbers != sorted(numbers)  # some overtaken


def test_channel_is_bounded() -> None:
    channel = Channel(capacity=3)
    for i in range(5):
        channel.put(0.0, bytes([i]))
    assert len(channel) == 3
    assert channel.counters[Drop.LINK_QUEUE_FULL] == 2


def test_invalid_impairment() -> None:
    with pytest.raises(ValueError, match="probabilities"):
        Impairment(loss=1.5)


def test_asyncio_pair_delivers_batches_both_ways() -> None:
    async def main() -> tuple[list[list[bytes]], list[list[bytes]]]:
        a, b = memory_link_pair(b"\x02" * 6, b"\x04" * 6)
        got_a: list[list[bytes]] = []
        got_b: list[list[bytes]] = []
        a.start(got_a.append)
        b.start(got_b.append)
        a.send(b"one")
        a.send(b"two")
        b.send(b"three")
        await asyncio.sleep(0.01)
        a.close()
        a.send(b"after close")
        await asyncio.sleep(0.01)
        return got_a, got_b

    got_a, got_b = asyncio.run(main())
    assert got_b == [[b"one", b"two"]]
    assert got_a == [[b"three"]]
