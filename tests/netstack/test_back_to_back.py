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
from tests.netstack.builders import make_stack
from tests.netstack.tcp.sim import A_ADDR, B_ADDR, Pair, establish, transfer

A_MAC = bytes.fromhex("020000000a0a")
B_MAC = bytes.fromhex("020000000b0b")
PORT = 443


class Network(Pair):
    """sim.Pair's hosts A and B, each a whole Stack around its TcpLayer, on one impaired Ethernet wire:
    sim.establish and sim.transfer drive it; only how frames travel differs (flush and step)."""

    def __init__(self, impairment: Impairment, seed: int) -> None:
        super().__init__()
        rng = random.Random(seed)
        self.host_a: Stack = make_stack("10.0.0.1/24", tcp=self.a, mac=A_MAC)
        self.host_b: Stack = make_stack("10.0.0.2/24", tcp=self.b, mac=B_MAC)
        self.to_a = Channel(impairment, rng)
        self.to_b = Channel(impairment, rng)

    def flush(self) -> None:
        for frame in self.host_a.take_frames(self.now):
            self.to_b.put(self.now, frame)
        for frame in self.host_b.take_frames(self.now):
            self.to_a.put(self.now, frame)
        self.events["a"] += self.a.take_events()
        self.events["b"] += self.b.take_events()

    def step(self, limit: float) -> bool:
        """Deliver the next frames or fire the next timers; False when nothing is due before `limit`."""
        self.flush()
        deadlines = [d for d in (self.to_a.next_deadline(), self.to_b.next_deadline(), self.host_a.next_deadline(),
                                 self.host_b.next_deadline()) if d is not None]
        if not deadlines or min(deadlines) > limit:
            return False
        self.now = max(self.now, min(deadlines))
        for frame in self.to_b.take_due(self.now):
            self.host_b.frame_received(self.now, frame)
        for frame in self.to_a.take_due(self.now):
            self.host_a.frame_received(self.now, frame)
        for stack in (self.host_a, self.host_b):
            deadline = stack.next_deadline()
            if deadline is not None and deadline <= self.now:
                stack.timers_expired(self.now)
        self.flush()
        return True


@pytest.mark.parametrize("seed", [1, 2])
def test_megabytes_through_two_whole_stacks_under_loss_reordering_and_duplication(seed: int) -> None:
    impairment = Impairment(loss=0.10, duplicate=0.10, reorder=0.10, delay=0.005, reorder_delay=0.012)
    net = Network(impairment, seed)
    client, server = establish(net, PORT)
    up = random.Random(seed).randbytes(1_200_000)
    got = transfer(net, "a", client, server, up)
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(up).hexdigest()
    down = random.Random(seed + 50).randbytes(1_000_000)
    assert transfer(net, "b", server, client, down) == down

    # the wire really was hostile, and both stacks recovered through their own machinery
    lost = net.to_a.counters.as_dict().get("link-lost", 0) + net.to_b.counters.as_dict().get("link-lost", 0)
    assert lost > 100
    tcp = net.a.stats + net.b.stats
    assert tcp["out-of-order"] > 0
    assert tcp["fast-retransmit"] > 0
    assert tcp["duplicate-segment"] > 0
    assert tcp["internal-error"] == 0
    for stack, peer in ((net.host_a, B_ADDR), (net.host_b, A_ADDR)):
        counts = stack.stats()
        assert counts.get("internal-error", 0) == 0
        assert counts.get("ipv4-bad-checksum", 0) == 0  # the wire corrupts nothing; this checks our framing
        assert stack.neighbours.lookup(peer, net.now) is not None

    # both sides close; everything is released on both hosts
    net.a.close(net.now, client)
    net.b.close(net.now, server)
    while net.step(net.now + 300.0):
        pass
    assert not net.a.by_id
    assert not net.b.by_id
    for layer in (net.a, net.b):
        assert (layer.budgets.rcv_held, layer.budgets.ooo_held, layer.budgets.snd_held) == (0, 0, 0)
