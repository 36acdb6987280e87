"""Two whole stacks (Ethernet, ARP, IPv4, TCP) back to back over the in-memory wire, on a virtual clock.

Unlike tests/netstack/tcp/sim.py, which joins two TcpLayers directly, every segment here is framed, resolved
through ARP, checksummed at the IP layer and parsed again on the other side, and the wire
(netstack.link.memory.Channel) loses, duplicates and reorders whole Ethernet frames, ARP included.
"""

from __future__ import annotations

import hashlib
import random

import pytest

from netstack.link.memory import Channel, Impairment
from netstack.stack import Stack
from netstack.tcp import events as ev
from netstack.tcp.layer import TcpLayer
from tests.netstack.builders import make_stack

A_MAC = bytes.fromhex("020000000a0a")
B_MAC = bytes.fromhex("020000000b0b")
A_IP = bytes([10, 0, 0, 1])
B_IP = bytes([10, 0, 0, 2])
PORT = 443


class Network:
    """Host A and host B on one impaired wire; `run_until` advances virtual time event by event."""

    def __init__(self, impairment: Impairment, seed: int) -> None:
        rng = random.Random(seed)
        self.tcp_a = TcpLayer(b"a" * 32)
        self.tcp_b = TcpLayer(b"b" * 32)
        self.a: Stack = make_stack("10.0.0.1/24", tcp=self.tcp_a, mac=A_MAC)
        self.b: Stack = make_stack("10.0.0.2/24", tcp=self.tcp_b, mac=B_MAC)
        self.to_a = Channel(impairment, rng)
        self.to_b = Channel(impairment, rng)
        self.now = 0.0
        self.events: dict[str, list[ev.Event]] = {"a": [], "b": []}

    def _flush(self) -> None:
        for frame in self.a.take_frames(self.now):
            self.to_b.put(self.now, frame)
        for frame in self.b.take_frames(self.now):
            self.to_a.put(self.now, frame)
        self.events["a"] += self.tcp_a.take_events()
        self.events["b"] += self.tcp_b.take_events()

    def step(self, limit: float) -> bool:
        """Deliver the next frames or fire the next timers; False when nothing is due before `limit`."""
        self._flush()
        deadlines = [d for d in (self.to_a.next_deadline(), self.to_b.next_deadline(), self.a.next_deadline(),
                                 self.b.next_deadline()) if d is not None]
        if not deadlines or min(deadlines) > limit:
            self.now = max(self.now, limit)
            return False
        self.now = max(self.now, min(deadlines))
        for frame in self.to_b.take_due(self.now):
            self.b.frame_received(self.now, frame)
        for frame in self.to_a.take_due(self.now):
            self.a.frame_received(self.now, frame)
        for stack in (self.a, self.b):
            deadline = stack.next_deadline()
            if deadline is not None and deadline <= self.now:
                stack.timers_expired(self.now)
        self._flush()
        return True

    def connect(self) -> tuple[int, int]:
        """A connects to B's listener; returns (A's connection id, B's connection id)."""
        self.tcp_b.listen(PORT)
        client = self.tcp_a.connect(self.now, A_IP, B_IP, PORT)
        while not any(isinstance(e, ev.Accepted) for e in self.events["b"]) or \
                ev.Connected(client) not in self.events["a"]:
            assert self.step(self.now + 120.0), "handshake stalled"
        (accepted,) = [e for e in self.events["b"] if isinstance(e, ev.Accepted)]
        return client, accepted.conn

    def transfer(self, sender: TcpLayer, sender_conn: int, receiver: TcpLayer, receiver_conn: int,
                 data: bytes) -> bytes:
        """Send everything then FIN; return what the receiver read before its end of stream."""
        offset = 0
        received = bytearray()
        shut = False
        peer_side = "b" if receiver is self.tcp_b else "a"
        while True:
            while offset < len(data):
                taken = sender.send(self.now, sender_conn, memoryview(data)[offset:offset + 65536])
                if not taken:
                    break
                offset += taken
            if offset == len(data) and not shut:
                sender.shutdown(self.now, sender_conn)
                shut = True
            while chunk := receiver.receive(self.now, receiver_conn):
                received += chunk
            if ev.PeerClosed(receiver_conn) in self.events[peer_side]:
                return bytes(received)
            assert self.step(self.now + 600.0), f"transfer stalled at {len(received)} of {len(data)} bytes"


@pytest.mark.parametrize("seed", [1, 2])
def test_megabytes_through_two_whole_stacks_under_loss_reordering_and_duplication(seed: int) -> None:
    impairment = Impairment(loss=0.10, duplicate=0.10, reorder=0.10, delay=0.005, reorder_delay=0.012)
    net = Network(impairment, seed)
    client, server = net.connect()
    up = random.Random(seed).randbytes(1_200_000)
    got = net.transfer(net.tcp_a, client, net.tcp_b, server, up)
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(up).hexdigest()
    down = random.Random(seed + 50).randbytes(1_000_000)
    assert net.transfer(net.tcp_b, server, net.tcp_a, client, down) == down

    # the wire really was hostile, and both stacks recovered through their own machinery
    lost = net.to_a.counters.as_dict().get("link-lost", 0) + net.to_b.counters.as_dict().get("link-lost", 0)
    assert lost > 100
    tcp = net.tcp_a.stats + net.tcp_b.stats
    assert tcp["out-of-order"] > 0
    assert tcp["fast-retransmit"] > 0
    assert tcp["duplicate-segment"] > 0
    assert tcp["internal-error"] == 0
    for stack in (net.a, net.b):
        counts = stack.stats()
        assert counts.get("internal-error", 0) == 0
        assert counts.get("ipv4-bad-checksum", 0) == 0  # the wire corrupts nothing; this checks our framing
        assert stack.neighbours.lookup(B_IP if stack is net.a else A_IP, net.now) is not None

    # both sides close; everything is released on both hosts
    net.tcp_a.close(net.now, client)
    net.tcp_b.close(net.now, server)
    net.step(net.now + 300.0)
    while net.step(net.now + 300.0):
        pass
    assert not net.tcp_a.by_id
    assert not net.tcp_b.by_id
    for layer in (net.tcp_a, net.tcp_b):
        assert (layer.rcv_held, layer.ooo_held, layer.snd_held) == (0, 0, 0)
