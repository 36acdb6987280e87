from __future__ import annotations

import asyncio
import random

import pytest

from netstack.link.memory import Channel, Impairment, memory_link_pair
from netstack.reasons import Drop
from tests.virtual_time import run


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
    def deliver(seed: int) -> list[bytes]:
        channel = Channel(Impairment(loss=0.1, duplicate=0.1, reorder=0.1, reorder_delay=0.05), random.Random(seed))
        for i in range(1000):
            channel.put(i * 0.001, i.to_bytes(2, "big"))
        return channel.take_due(100.0)

    delivered = deliver(1)
    assert delivered == deliver(1)
    assert delivered != deliver(2)
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


class Sequence(random.Random):
    """A "random" source that returns the given values in turn: a test decides which frame is held back."""

    def __init__(self, *values: float) -> None:
        super().__init__(0)
        self._values = list(values)

    def random(self) -> float:
        return self._values.pop(0)


def test_negative_delay_is_refused() -> None:
    with pytest.raises(ValueError, match="delays"):
        Impairment(delay=-0.1)
    with pytest.raises(ValueError, match="delays"):
        Impairment(reorder_delay=-1.0)


def test_asyncio_pair_delivers_batches_both_ways() -> None:
    async def main() -> tuple[list[list[bytes]], list[list[bytes]], dict[str, int]]:
        a, b = memory_link_pair(b"\x02" * 6, b"\x04" * 6)
        assert (a.mac, b.mac, a.mtu) == (b"\x02" * 6, b"\x04" * 6, 1500)
        got_a: list[list[bytes]] = []
        got_b: list[list[bytes]] = []
        both = asyncio.Event()

        def on_a(batch: list[bytes]) -> None:
            got_a.append(batch)
            if got_b:
                both.set()

        def on_b(batch: list[bytes]) -> None:
            got_b.append(batch)
            if got_a:
                both.set()

        a.start(on_a)
        b.start(on_b)
        a.send(b"one")
        a.send(b"two")
        b.send(b"three")
        await asyncio.wait_for(both.wait(), 10)
        a.close()
        a.send(b"after close")
        b.send(b"to a closed end")
        await asyncio.sleep(1.0)  # virtual: anything still to come would have arrived
        return got_a, got_b, a.stats()

    got_a, got_b, stats_a = run(main())
    assert got_b == [[b"one", b"two"]]
    assert got_a == [[b"three"]]
    assert stats_a[Drop.LINK_TX_ERROR.value] == 1  # the send after close, counted, not delivered


def test_frames_arrive_after_the_wire_delay_and_a_held_back_frame_is_overtaken() -> None:
    async def main() -> list[tuple[float, list[bytes]]]:
        loop = asyncio.get_running_loop()
        # The first frame is held back by 1 s (0.0 < reorder), the second is not (0.9 >= reorder).
        a, b = memory_link_pair(b"\x02" * 6, b"\x04" * 6, Impairment(delay=0.1, reorder=0.5, reorder_delay=1.0),
                                rng=Sequence(0.0, 0.9))
        arrivals: list[tuple[float, list[bytes]]] = []
        done = asyncio.Event()

        def on_b(batch: list[bytes]) -> None:
            arrivals.append((loop.time(), batch))
            if len(arrivals) == 2:
                done.set()

        a.start(lambda batch: None)
        b.start(on_b)
        start = loop.time()
        a.send(b"held")
        a.send(b"prompt")  # due earlier than the pending delivery: that delivery is moved forward
        await asyncio.wait_for(done.wait(), 10)
        return [(round(at - start, 9), batch) for at, batch in arrivals]

    assert run(main()) == [(0.1, [b"prompt"]), (1.1, [b"held"])]


def test_a_closed_end_receives_nothing_still_in_flight() -> None:
    async def main() -> list[list[bytes]]:
        a, b = memory_link_pair(b"\x02" * 6, b"\x04" * 6, Impairment(delay=0.5))
        got_b: list[list[bytes]] = []
        a.start(lambda batch: None)
        b.start(got_b.append)
        a.send(b"in flight")
        b.close()  # its pending delivery is cancelled
        await asyncio.sleep(2.0)
        return got_b

    assert run(main()) == []


def test_frames_sent_before_the_peer_starts_wait_for_the_next_send() -> None:
    """The wire schedules a delivery only on an end that has started; what was queued before goes out with
    the next frame, in order."""

    async def main() -> list[list[bytes]]:
        a, b = memory_link_pair(b"\x02" * 6, b"\x04" * 6)
        got_b: list[list[bytes]] = []
        arrived = asyncio.Event()

        def on_b(batch: list[bytes]) -> None:
            got_b.append(batch)
            arrived.set()

        a.start(lambda batch: None)
        a.send(b"early")
        b.start(on_b)
        await asyncio.sleep(1.0)
        assert got_b == []
        a.send(b"late")
        await asyncio.wait_for(arrived.wait(), 10)
        return got_b

    assert run(main()) == [[b"early", b"late"]]
