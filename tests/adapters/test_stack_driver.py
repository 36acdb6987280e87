"""The asyncio driver over an in-memory link pair: two real stacks talking, plus timer scheduling."""

from __future__ import annotations

import asyncio

from adapters.stack_driver import Driver
from netstack.link.memory import memory_link_pair
from tests.netstack.builders import PEER, PEER_MAC, US, make_stack
from tests.netstack.test_stack import FakeTcp


def pair() -> tuple[Driver, Driver]:
    us = make_stack("10.0.0.2/24")
    peer = make_stack("10.0.0.1/24", mac=PEER_MAC)
    link_us, link_peer = memory_link_pair(us.mac, peer.mac)
    return Driver(link_us, us), Driver(link_peer, peer)


def test_udp_round_trip_between_two_stacks_resolves_arp() -> None:
    async def main() -> list[bytes]:
        d_us, d_peer = pair()
        got: list[bytes] = []
        done = asyncio.Event()

        def echo(now: float, src: bytes, sport: int, dst: bytes, data: memoryview) -> None:
            d_peer.stack.udp_send(now, src, 7, sport, b"echo:" + bytes(data))

        def received(now: float, src: bytes, sport: int, dst: bytes, data: memoryview) -> None:
            got.append(bytes(data))
            done.set()

        d_peer.stack.udp_bind(7, echo)
        d_us.stack.udp_bind(5000, received)
        d_us.start()
        d_peer.start()
        d_us.stack.udp_send(d_us.now(), PEER, 5000, 7, b"hello")
        d_us.kick()
        await asyncio.wait_for(done.wait(), 5.0)
        assert d_us.stack.neighbours.lookup(PEER, d_us.now()) == d_peer.link.mac
        d_us.close()
        d_peer.close()
        return got

    assert asyncio.run(main()) == [b"echo:hello"]


def test_after_io_runs_after_each_batch_and_timer_fires_at_the_deadline() -> None:
    async def main() -> tuple[int, list[float], float]:
        loop = asyncio.get_running_loop()
        tcp = FakeTcp()
        us = make_stack("10.0.0.2/24", tcp=tcp)
        link_us, link_peer = memory_link_pair(us.mac, bytes.fromhex("020000000009"))
        driver = Driver(link_us, us)
        calls = 0

        def after() -> None:
            nonlocal calls
            calls += 1

        driver.after_io.append(after)
        driver.start()
        link_peer.start(lambda frames: None)
        deadline = loop.time() + 0.05
        tcp.deadline = deadline
        driver.kick()  # the application changed TCP state: the driver must re-arm its single timer
        while not tcp.expired:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # a spinning timer would show up as more expiries
        driver.close()
        return calls, tcp.expired, deadline

    calls, expired, deadline = asyncio.run(main())
    assert calls >= 1
    assert len(expired) == 1
    assert expired[0] >= deadline


def test_kick_flushes_tcp_output() -> None:
    async def main() -> list[list[bytes]]:
        tcp = FakeTcp()
        us = make_stack("10.0.0.2/24", tcp=tcp)
        link_us, link_peer = memory_link_pair(us.mac, bytes.fromhex("020000000009"))
        seen: list[list[bytes]] = []
        link_peer.start(seen.append)
        driver = Driver(link_us, us)
        driver.start()
        await asyncio.sleep(0.01)
        seen.clear()
        tcp.outgoing = [(US, PEER, b"segment")]
        driver.kick()
        await asyncio.sleep(0.01)
        driver.close()
        return seen

    (batch,) = asyncio.run(main())
    assert len(batch) == 1  # the segment waits for ARP: what goes out is the request for the peer
    assert batch[0][12:14] == b"\x08\x06"
