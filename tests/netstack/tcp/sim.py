"""Two TcpLayers wired back to back through a lossy, reordering, duplicating wire, on a virtual clock.

The wire is seeded, so a failure reproduces exactly. Each direction delays segments by `delay` seconds; loss,
duplication and reordering (an extra random delay) are drawn per segment.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from netstack.tcp import events as ev
from netstack.tcp.config import TcpConfig
from netstack.tcp.layer import TcpLayer

A_ADDR = bytes([10, 0, 0, 1])
B_ADDR = bytes([10, 0, 0, 2])
A_ADDR6 = bytes.fromhex("20010db8000000010000000000000001")  # 2001:db8:0:1::1
B_ADDR6 = bytes.fromhex("20010db8000000020000000000000002")  # 2001:db8:0:2::2


@dataclass
class Wire:
    seed: int = 1
    delay: float = 0.005
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    rng: random.Random = field(init=False)
    in_flight: list[tuple[float, int, str, bytes, bytes, bytes]] = field(default_factory=list)
    counter: int = 0
    sent: int = 0
    dropped: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def put(self, now: float, to: str, src: bytes, dst: bytes, segment: bytes) -> None:
        self.sent += 1
        if self.rng.random() < self.loss:
            self.dropped += 1
            return
        copies = 2 if self.rng.random() < self.duplicate else 1
        for _ in range(copies):
            extra = self.rng.uniform(0, 4 * self.delay) if self.rng.random() < self.reorder else 0.0
            self.counter += 1
            heapq.heappush(self.in_flight, (now + self.delay + extra, self.counter, to, src, dst, segment))


class Pair:
    """Host A and host B with a wire between; `run_until` advances virtual time, delivering and firing timers."""

    def __init__(self, wire: Wire | None = None, config_a: TcpConfig | None = None,
                 config_b: TcpConfig | None = None) -> None:
        self.now = 0.0
        self.wire = wire or Wire()
        self.a = TcpLayer(b"a" * 32, config_a)
        self.b = TcpLayer(b"b" * 32, config_b)
        self.events: dict[str, list[ev.Event]] = {"a": [], "b": []}
        self.tap: list[tuple[float, str, bytes]] = []  # (time, "a->b" / "b->a", segment) everything sent

    def layer(self, name: str) -> TcpLayer:
        return self.a if name == "a" else self.b

    def flush(self) -> None:
        for name, layer, other in (("a", self.a, "b"), ("b", self.b, "a")):
            for src, dst, segment in layer.take_outgoing():
                self.tap.append((self.now, f"{name}->{other}", segment))
                self.wire.put(self.now, other, src, dst, segment)
            self.events[name].extend(layer.take_events())

    def step(self, limit: float) -> bool:
        """Advance to the next delivery or timer not after `limit`; False when there is none."""
        self.flush()
        candidates = [t for t in (self.a.next_deadline(), self.b.next_deadline()) if t is not None]
        if self.wire.in_flight:
            candidates.append(self.wire.in_flight[0][0])
        if not candidates or min(candidates) > limit:
            return False
        self.now = max(self.now, min(candidates))
        while self.wire.in_flight and self.wire.in_flight[0][0] <= self.now:
            _, _, to, src, dst, segment = heapq.heappop(self.wire.in_flight)
            self.layer(to).segment_received(self.now, src, dst, memoryview(segment))
        for layer in (self.a, self.b):
            deadline = layer.next_deadline()
            if deadline is not None and deadline <= self.now:
                layer.timers_expired(self.now)
        self.flush()
        return True

    def run_until(self, limit: float, condition: object = None) -> None:
        while self.step(limit):
            if callable(condition) and condition():
                return
        self.now = max(self.now, limit)
        self.flush()

    def take(self, name: str) -> list[ev.Event]:
        out = self.events[name]
        self.events[name] = []
        return out


def establish(pair: Pair, port: int = 80, *, a_addr: bytes = A_ADDR, b_addr: bytes = B_ADDR) -> tuple[int, int]:
    """Listen on B, connect from A; returns (A's connection id, B's connection id)."""
    pair.b.listen(port)
    client = pair.a.connect(pair.now, a_addr, b_addr, port)
    pair.run_until(pair.now + 30, lambda: any(isinstance(e, ev.Accepted) for e in pair.events["b"])
                   and any(isinstance(e, ev.Connected) for e in pair.events["a"]))
    accepted = [e for e in pair.take("b") if isinstance(e, ev.Accepted)]
    assert any(isinstance(e, ev.Connected) and e.conn == client for e in pair.take("a"))
    assert len(accepted) == 1
    return client, accepted[0].conn


def transfer(pair: Pair, sender: str, sender_conn: int, receiver_conn: int, data: bytes, *,
             limit: float = 3600.0) -> bytes:
    """Push `data` through, reading as it arrives; returns what the receiver read (until the sender's FIN)."""
    send_layer = pair.layer(sender)
    recv_layer = pair.layer("b" if sender == "a" else "a")
    offset = 0
    received = bytearray()
    done = False

    def pump() -> bool:
        nonlocal offset, done
        while offset < len(data):
            taken = send_layer.send(pair.now, sender_conn, memoryview(data)[offset:offset + 65536])
            if not taken:
                break
            offset += taken
        if offset == len(data) and not done:
            send_layer.shutdown(pair.now, sender_conn)
            done = True
        while True:
            chunk = recv_layer.receive(pair.now, receiver_conn)
            if not chunk:
                break
            received.extend(chunk)
        return len(received) == len(data) and done

    pump()
    while pair.now < limit:
        if not pair.step(limit):
            break
        if pump():
            pair.flush()
            break
    return bytes(received)
