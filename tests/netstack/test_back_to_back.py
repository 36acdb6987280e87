"""Two whole stacks (Ethernet, ARP and neighbour discovery, IPv4 and IPv6, TCP) back to back over the in-memory
wire, on a virtual clock: over IPv4, over IPv6 (static and SLAAC), and over both families at once.

Unlike tests/netstack/tcp/sim.py, which joins two TcpLayers directly, every segment here is framed, resolved
through ARP or neighbour discovery, checksummed at the IP layer (over the IPv6 pseudo-header for IPv6) and
parsed again on the other side, and the wire (netstack.link.memory.Channel) loses, duplicates and reorders whole
Ethernet frames, ARP and ND messages included.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

import pytest

from netstack.config import StaticIp, StaticIp6, UseSlaac
from netstack.link.memory import Channel, Impairment
from netstack.reasons import Drop
from netstack.stack import Stack, StackConfig
from netstack.tcp import events as ev
from netstack.tcp.layer import TcpLayer
from tests.netstack.builders import make_stack
from tests.netstack.builders6 import PREFIX, prefix_option, ra_frame
from tests.netstack.tcp.sim import A_ADDR, B_ADDR, Pair, establish, transfer

A_MAC = bytes.fromhex("020000000a0a")
B_MAC = bytes.fromhex("020000000b0b")
A6 = PREFIX[:15] + b"\x0a"
B6 = PREFIX[:15] + b"\x0b"
PORT = 443
HOSTILE = Impairment(loss=0.10, duplicate=0.10, reorder=0.10, delay=0.005, reorder_delay=0.012)

HostFactory = Callable[[TcpLayer], Stack]


class Network(Pair):
    """sim.Pair's hosts A and B, each a whole Stack around its TcpLayer (built by `host_a` and `host_b`), on one
    impaired Ethernet wire: sim.establish and sim.transfer drive it; only how frames travel differs (flush and
    step)."""

    def __init__(self, impairment: Impairment, seed: int, host_a: HostFactory, host_b: HostFactory) -> None:
        super().__init__()
        rng = random.Random(seed)
        self.host_a = host_a(self.a)
        self.host_b = host_b(self.b)
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


def network4(impairment: Impairment, seed: int) -> Network:
    """IPv4 only as make_stack builds it (its announcement taken)."""
    return Network(impairment, seed, lambda tcp: make_stack("10.0.0.1/24", tcp=tcp, mac=A_MAC),
                   lambda tcp: make_stack("10.0.0.2/24", tcp=tcp, mac=B_MAC))


def network6(impairment: Impairment, seed: int, *, slaac: bool) -> Network:
    """Both families, IPv6 static or from SLAAC; what the hosts send as they start (DAD, solicitations) goes on
    the wire."""

    def host(mac: bytes, v4: bytes, v6: StaticIp6 | None, host_seed: int) -> HostFactory:
        def build(tcp: TcpLayer) -> Stack:
            config = StackConfig(mac, StaticIp(v4, 24), ipv6=v6 if v6 is not None else UseSlaac(),
                                 ipv6_secret=bytes([host_seed]) * 32)
            stack = Stack(config, tcp, rng=random.Random(host_seed))
            stack.start(0.0)
            return stack

        return build

    return Network(impairment, seed, host(A_MAC, A_ADDR, None if slaac else StaticIp6(A6, 64), seed),
                   host(B_MAC, B_ADDR, None if slaac else StaticIp6(B6, 64), seed + 1))


def bulk_each_way(net: Network, client: int, server: int, up: bytes, down: bytes) -> None:
    """`up` from A to B, then `down` back, over the hostile wire; both arrive intact, the wire really lost
    frames, and TCP recovered through its own machinery."""
    got = transfer(net, "a", client, server, up)
    assert hashlib.sha256(got).digest() == hashlib.sha256(up).digest()
    assert transfer(net, "b", server, client, down) == down
    lost = net.to_a.counters.as_dict().get("link-lost", 0) + net.to_b.counters.as_dict().get("link-lost", 0)
    assert lost > 100
    tcp = net.a.stats + net.b.stats
    assert tcp["out-of-order"] > 0
    assert tcp["internal-error"] == 0


def close_and_release(net: Network, *pairs: tuple[int, int]) -> None:
    """Both sides close; everything is released on both hosts."""
    for client, server in pairs:
        net.a.close(net.now, client)
        net.b.close(net.now, server)
    while net.step(net.now + 300.0):
        pass
    assert not net.a.by_id
    assert not net.b.by_id
    for layer in (net.a, net.b):
        assert (layer.budgets.rcv_held, layer.budgets.ooo_held, layer.budgets.snd_held) == (0, 0, 0)


def check_clean6(net: Network) -> None:
    for stack in (net.host_a, net.host_b):
        counts = stack.stats()
        assert counts.get("internal-error", 0) == 0
        assert counts.get("tcp-bad-checksum", 0) == 0
        assert counts.get(Drop.ICMPV6_BAD_CHECKSUM.value, 0) == 0
        assert counts["ipv6-rx-packets"] > 100


@pytest.mark.parametrize("seed", [1, 2])
def test_megabytes_through_two_whole_stacks_under_loss_reordering_and_duplication(seed: int) -> None:
    net = network4(HOSTILE, seed)
    client, server = establish(net, PORT)
    bulk_each_way(net, client, server, random.Random(seed).randbytes(1_200_000),
                  random.Random(seed + 50).randbytes(1_000_000))
    tcp = net.a.stats + net.b.stats
    assert tcp["fast-retransmit"] > 0
    assert tcp["duplicate-segment"] > 0
    for stack, peer in ((net.host_a, B_ADDR), (net.host_b, A_ADDR)):
        counts = stack.stats()
        assert counts.get("internal-error", 0) == 0
        assert counts.get("ipv4-bad-checksum", 0) == 0  # the wire corrupts nothing; this checks our framing
        assert stack.neighbours.lookup(peer, net.now) is not None
    close_and_release(net, (client, server))


@pytest.mark.parametrize("slaac", [False, True], ids=["static", "slaac"])
def test_a_megabyte_each_way_over_ipv6_under_loss_reordering_and_duplication(slaac: bool) -> None:
    net = network6(HOSTILE, 5, slaac=slaac)
    net.settle(3.0)
    if slaac:
        for stack in (net.host_a, net.host_b):  # from a router that is not on the wire: on-link prefix only
            stack.frame_received(net.now, ra_frame(prefix_option(PREFIX), lifetime=0))
        net.settle(8.0)
        a6, b6 = net.global_address(net.host_a), net.global_address(net.host_b)
    else:
        a6, b6 = A6, B6
    client, server = establish(net, PORT, a_addr=a6, b_addr=b6)
    bulk_each_way(net, client, server, random.Random(1).randbytes(1_000_000), random.Random(2).randbytes(1_000_000))
    check_clean6(net)
    assert net.host_a.ipv6 is not None
    assert net.host_a.ipv6.neighbours.entries[b6].mac == B_MAC
    close_and_release(net, (client, server))


def test_dual_stack_both_families_at_once() -> None:
    net = network6(HOSTILE, 9, slaac=False)
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
    check_clean6(net)
    close_and_release(net, (client6, server6), (client4, server4))
