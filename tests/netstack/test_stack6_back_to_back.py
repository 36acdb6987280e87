"""Two whole Stacks with real TcpLayers back to back over IPv6 (static and SLAAC) and over both families at once.

Every segment is framed, resolved by neighbour discovery, checksummed over the IPv6 pseudo-header and parsed on
the other side; the wire (netstack.link.memory.Channel) loses, duplicates and reorders whole Ethernet frames,
ND messages included. Approach as in test_back_to_back.py (sim.Pair's hosts, sim.establish, sim.transfer).
"""

from __future__ import annotations

import hashlib
import random

import pytest

from netstack.config import StaticIp, StaticIp6, UseSlaac
from netstack.link.memory import Channel, Impairment
from netstack.reasons import Drop
from netstack.stack import Stack, StackConfig
from netstack.tcp import events as ev
from tests.netstack.builders6 import PREFIX, prefix_option, ra_frame
from tests.netstack.tcp.sim import A_ADDR, B_ADDR, Pair, establish, transfer

A_MAC = bytes.fromhex("020000000a0a")
B_MAC = bytes.fromhex("020000000b0b")
A6 = PREFIX[:15] + b"\x0a"
B6 = PREFIX[:15] + b"\x0b"
PORT = 443
HOSTILE = Impairment(loss=0.10, duplicate=0.10, reorder=0.10, delay=0.005, reorder_delay=0.012)


class Network6(Pair):
    def __init__(self, impairment: Impairment, seed: int, *, slaac: bool) -> None:
        super().__init__()
        rng = random.Random(seed)
        self.host_a = self._host(A_MAC, A_ADDR, None if slaac else StaticIp6(A6, 64), self.a, seed)
        self.host_b = self._host(B_MAC, B_ADDR, None if slaac else StaticIp6(B6, 64), self.b, seed + 1)
        self.to_a = Channel(impairment, rng)
        self.to_b = Channel(impairment, rng)

    @staticmethod
    def _host(mac: bytes, v4: bytes, v6: StaticIp6 | None, tcp: object, seed: int) -> Stack:
        config = StackConfig(mac, StaticIp(v4, 24), ipv6=v6 if v6 is not None else UseSlaac(),
                             ipv6_secret=bytes([seed]) * 32)
        stack = Stack(config, tcp, rng=random.Random(seed))  # type: ignore[arg-type]
        stack.start(0.0)
        return stack

    def flush(self) -> None:
        for frame in self.host_a.take_frames(self.now):
            self.to_b.put(self.now, frame)
        for frame in self.host_b.take_frames(self.now):
            self.to_a.put(self.now, frame)
        self.events["a"] += self.a.take_events()
        self.events["b"] += self.b.take_events()

    def step(self, limit: float) -> bool:
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

    def settle(self, until: float) -> None:
        """Run the wire and the timers (DAD, solicitations) until `until`, with no TCP running."""
        while self.step(until):
            pass
        self.now = until

    def global_address(self, stack: Stack) -> bytes:
        assert stack.ipv6 is not None
        found = [a for a, _ in stack.ipv6.addresses.addresses() if a[:8] == PREFIX[:8]]
        assert len(found) == 1
        return found[0]


def _check_clean(net: Network6) -> None:
    for stack in (net.host_a, net.host_b):
        counts = stack.stats()
        assert counts.get("internal-error", 0) == 0
        assert counts.get("tcp-bad-checksum", 0) == 0
        assert counts.get(Drop.ICMPV6_BAD_CHECKSUM.value, 0) == 0
        assert counts["ipv6-rx-packets"] > 100


def _close(net: Network6, *pairs: tuple[int, int]) -> None:
    for client, server in pairs:
        net.a.close(net.now, client)
        net.b.close(net.now, server)
    while net.step(net.now + 300.0):
        pass
    assert not net.a.by_id
    assert not net.b.by_id
    for layer in (net.a, net.b):
        assert (layer.budgets.rcv_held, layer.budgets.ooo_held, layer.budgets.snd_held) == (0, 0, 0)


@pytest.mark.parametrize("slaac", [False, True], ids=["static", "slaac"])
def test_a_megabyte_each_way_over_ipv6_under_loss_reordering_and_duplication(slaac: bool) -> None:
    net = Network6(HOSTILE, 5, slaac=slaac)
    net.settle(3.0)
    if slaac:
        for stack in (net.host_a, net.host_b):  # from a router that is not on the wire: on-link prefix only
            stack.frame_received(net.now, ra_frame(prefix_option(PREFIX), lifetime=0))
        net.settle(8.0)
        a6, b6 = net.global_address(net.host_a), net.global_address(net.host_b)
    else:
        a6, b6 = A6, B6
    client, server = establish(net, PORT, a_addr=a6, b_addr=b6)
    up = random.Random(1).randbytes(1_000_000)
    got = transfer(net, "a", client, server, up)
    assert hashlib.sha256(got).digest() == hashlib.sha256(up).digest()
    down = random.Random(2).randbytes(1_000_000)
    assert transfer(net, "b", server, client, down) == down
    lost = net.to_a.counters.as_dict().get("link-lost", 0) + net.to_b.counters.as_dict().get("link-lost", 0)
    assert lost > 100
    tcp = net.a.stats + net.b.stats
    assert tcp["out-of-order"] > 0
    assert tcp["internal-error"] == 0
    _check_clean(net)
    assert net.host_a.ipv6 is not None
    assert net.host_a.ipv6.neighbours.entries[b6].mac == B_MAC
    _close(net, (client, server))


def test_dual_stack_both_families_at_once() -> None:
    net = Network6(HOSTILE, 9, slaac=False)
    net.settle(3.0)
    client6, server6 = establish(net, PORT, a_addr=A6, b_addr=B6)
    client4 = net.a.connect(net.now, A_ADDR, B_ADDR, PORT)
    net.run_until(net.now + 30, lambda: any(isinstance(e, ev.Accepted) for e in net.events["b"])
                  and any(isinstance(e, ev.Connected) for e in net.events["a"]))
    accepted = [e for e in net.take("b") if isinstance(e, ev.Accepted)]
    assert len(accepted) == 1
    assert any(isinstance(e, ev.Connected) and e.conn == client4 for e in net.take("a"))
    server4 = accepted[0].conn
    up6 = random.Random(3).randbytes(300_000)
    up4 = random.Random(4).randbytes(300_000)
    assert transfer(net, "a", client6, server6, up6) == up6
    assert transfer(net, "b", server4, client4, up4) == up4  # the IPv6 connection is still open meanwhile
    assert net.a.connection(client6) is not None
    _check_clean(net)
    _close(net, (client6, server6), (client4, server4))
