"""In-memory links for tests: a pure impaired channel (virtual time) and an asyncio link pair built on it.

Why a pure Channel: back-to-back stack tests run with a virtual clock, so loss, duplication and reordering
must come from a seeded random and the delivery times must be values, not sleeps.
"""

from __future__ import annotations

import asyncio
import heapq
import random
from dataclasses import dataclass

from netstack.limits import MEMORY_LINK_QUEUE_FRAMES
from netstack.link.base import FrameHandler
from netstack.reasons import Counters, Drop


@dataclass(frozen=True, slots=True)
class Impairment:
    """Per-frame probabilities and delays of one direction of the wire."""

    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0  # probability that a frame is held back by reorder_delay (later frames overtake it)
    delay: float = 0.0  # one-way latency of every frame, seconds
    reorder_delay: float = 0.01

    def __post_init__(self) -> None:
        for p in (self.loss, self.duplicate, self.reorder):
            if not 0.0 <= p <= 1.0:
                raise ValueError("probabilities are between 0 and 1")
        if self.delay < 0 or self.reorder_delay < 0:
            raise ValueError("delays are not negative")


PERFECT = Impairment()


class Channel:
    """One direction of a wire: put(now, frame), later take_due(now). Bounded like a NIC ring."""

    __slots__ = ("_capacity", "_heap", "_impairment", "_rng", "_seq", "counters")

    def __init__(
        self, impairment: Impairment = PERFECT, rng: random.Random | None = None,
        capacity: int = MEMORY_LINK_QUEUE_FRAMES,
    ) -> None:  # fmt: skip
        self._impairment = impairment
        self._rng = rng if rng is not None else random.Random(0)  # noqa: S311 (test impairment, reproducible)
        self._capacity = capacity
        self._heap: list[tuple[float, int, bytes]] = []
        self._seq = 0
        self.counters = Counters()

    def __len__(self) -> int:
        return len(self._heap)

    def put(self, now: float, frame: bytes) -> None:
        imp = self._impairment
        if imp.loss and self._rng.random() < imp.loss:
            self.counters.add(Drop.LINK_LOST)
            return
        copies = 2 if imp.duplicate and self._rng.random() < imp.duplicate else 1
        for _ in range(copies):
            if len(self._heap) >= self._capacity:
                self.counters.add(Drop.LINK_QUEUE_FULL)
                return
            at = now + imp.delay
            if imp.reorder and self._rng.random() < imp.reorder:
                at += imp.reorder_delay
            self._seq += 1
            heapq.heappush(self._heap, (at, self._seq, frame))

    def take_due(self, now: float) -> list[bytes]:
        due = []
        while self._heap and self._heap[0][0] <= now:
            due.append(heapq.heappop(self._heap)[2])
        return due

    def next_deadline(self) -> float | None:
        return self._heap[0][0] if self._heap else None


class MemoryLink:
    """One end of an asyncio in-memory wire; create both ends with memory_link_pair."""

    def __init__(self, mac: bytes, outgoing: Channel, mtu: int = 1500) -> None:
        self._mac = mac
        self._mtu = mtu
        self._outgoing = outgoing
        self._peer: MemoryLink | None = None
        self._on_frames: FrameHandler | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._delivery: asyncio.TimerHandle | None = None
        self._delivery_at: float | None = None
        self._closed = False

    @property
    def mac(self) -> bytes:
        return self._mac

    @property
    def mtu(self) -> int:
        return self._mtu

    def start(self, on_frames: FrameHandler) -> None:
        self._loop = asyncio.get_running_loop()
        self._on_frames = on_frames

    def send(self, frame: bytes) -> None:
        if self._closed or self._peer is None or self._loop is None:
            self._outgoing.counters.add(Drop.LINK_TX_ERROR)
            return
        self._outgoing.put(self._loop.time(), frame)
        self._peer._schedule(self._outgoing)

    def _schedule(self, channel: Channel) -> None:
        deadline = channel.next_deadline()
        if deadline is None or self._loop is None:
            return
        if self._delivery is not None and self._delivery_at is not None and self._delivery_at <= deadline:
            return
        if self._delivery is not None:
            self._delivery.cancel()
        self._delivery_at = deadline
        self._delivery = self._loop.call_at(deadline, self._deliver, channel)

    def _deliver(self, channel: Channel) -> None:
        self._delivery = None
        self._delivery_at = None
        if self._loop is None:
            return
        frames = channel.take_due(self._loop.time())
        if frames and self._on_frames is not None and not self._closed:
            self._on_frames(frames)
        self._schedule(channel)

    def close(self) -> None:
        self._closed = True
        if self._delivery is not None:
            self._delivery.cancel()
            self._delivery = None

    def stats(self) -> dict[str, int]:
        return self._outgoing.counters.as_dict()


def memory_link_pair(
    mac_a: bytes, mac_b: bytes, impairment: Impairment = PERFECT, rng: random.Random | None = None, mtu: int = 1500
) -> tuple[MemoryLink, MemoryLink]:
    """Two connected ends; each direction has its own channel with the same impairment (and one shared rng)."""
    rng = rng if rng is not None else random.Random(0)  # noqa: S311 (test impairment, reproducible)
    a = MemoryLink(mac_a, Channel(impairment, rng), mtu)
    b = MemoryLink(mac_b, Channel(impairment, rng), mtu)
    a._peer = b
    b._peer = a
    return a, b
