"""The asyncio driver over an in-memory link pair: two real stacks talking, plus timer scheduling.

Every test runs on a virtual clock (tests/virtual_time.py) and waits for what it checks to happen (an event, a
frame), never for a stretch of wall-clock time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from adapters.stack_driver import Driver
from netstack.link.memory import memory_link_pair
from netstack.reasons import Drop
from netstack.stack import Stack
from tests.netstack.builders import PEER, PEER_MAC, US, make_stack
from tests.netstack.test_stack import FakeTcp
from tests.virtual_time import run

# Loop iterations a test lets pass after an event to see that nothing else follows: a timer re-armed in the
# past (a spinning timer) would fire once per iteration.
SETTLE_ITERATIONS = 20


async def settle() -> None:
    for _ in range(SETTLE_ITERATIONS):
        await asyncio.sleep(0)


def pair() -> tuple[Driver, Driver]:
    us = make_stack("10.0.0.2/24")
    peer = make_stack("10.0.0.1/24", mac=PEER_MAC)
    link_us, link_peer = memory_link_pair(us.mac, peer.mac)
    return Driver(link_us, us), Driver(link_peer, peer)


def driven_stack(on_frames: Callable[[list[bytes]], None] = lambda frames: None) -> tuple[FakeTcp, Stack, Driver]:
    """Our stack with a FakeTcp (whose deadline and output a test sets) over an in-memory link whose far end
    hands each batch of frames to `on_frames`, and its Driver, not started."""
    tcp = FakeTcp()
    us = make_stack("10.0.0.2/24", tcp=tcp)
    link_us, link_peer = memory_link_pair(us.mac, bytes.fromhex("020000000009"))
    link_peer.start(on_frames)
    return tcp, us, Driver(link_us, us)


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

    assert run(main()) == [b"echo:hello"]


def test_after_io_runs_after_each_batch_and_timer_fires_at_the_deadline() -> None:
    async def main() -> tuple[int, list[float], float, list[float]]:
        loop = asyncio.get_running_loop()
        tcp, _, driver = driven_stack()
        calls = 0
        fired = asyncio.Event()

        def after() -> None:
            nonlocal calls
            calls += 1
            if tcp.expired:
                fired.set()

        driver.after_io.append(after)
        driver.start()
        deadline = loop.time() + 0.05
        tcp.deadline = deadline
        driver.kick()  # the application changed TCP state: the driver must re-arm its single timer
        await asyncio.wait_for(fired.wait(), 10)
        expired_then = list(tcp.expired)
        await settle()  # a spinning timer would show up as more expiries
        await asyncio.sleep(30)  # virtual: nothing is due in the next 30 s, so nothing fires
        driver.close()
        return calls, tcp.expired, deadline, expired_then

    calls, expired, deadline, expired_then = run(main())
    assert calls >= 1
    assert expired_then == [deadline]  # on the virtual clock the timer runs exactly at its deadline
    assert expired == [deadline]


def test_timer_rearms_for_a_later_deadline_and_not_for_the_same_one() -> None:
    """kick() re-arms only when the deadline changed; an earlier deadline replaces a later one."""

    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        tcp, _, driver = driven_stack()
        driver.start()
        start = loop.time()
        tcp.deadline = start + 5.0
        driver.kick()
        driver.kick()  # same deadline: still one timer
        tcp.deadline = start + 1.0  # earlier: replaces the 5 s timer
        driver.kick()
        await asyncio.sleep(2.0)
        first = list(tcp.expired)
        await asyncio.sleep(10.0)
        driver.close()
        return [t - start for t in first + tcp.expired[len(first):]]

    assert run(main()) == [1.0]


def test_kick_flushes_tcp_output() -> None:
    async def main() -> list[list[bytes]]:
        seen: list[list[bytes]] = []
        arrived = asyncio.Event()

        def frames(batch: list[bytes]) -> None:
            seen.append(batch)
            arrived.set()

        tcp, _, driver = driven_stack(frames)
        driver.start()
        await settle()  # whatever starting the interface sent has arrived (the wire has no delay)
        seen.clear()
        arrived.clear()
        tcp.outgoing = [(US, PEER, b"segment")]
        driver.kick()
        await asyncio.wait_for(arrived.wait(), 10)
        await settle()
        driver.close()
        return seen

    (batch,) = run(main())
    assert len(batch) == 1  # the segment waits for ARP: what goes out is the request for the peer
    assert batch[0][12:14] == b"\x08\x06"
    assert batch[0][38:42] == PEER  # ARP target protocol address: who the segment is for


def test_closed_driver_ignores_frames_and_kicks() -> None:
    async def main() -> tuple[int, list[list[bytes]]]:
        seen: list[list[bytes]] = []
        tcp, us, driver = driven_stack(seen.append)
        driver.start()
        await settle()
        seen.clear()
        driver.close()
        tcp.outgoing = [(US, PEER, b"segment")]
        driver.kick()
        driver._frames_received([b"\x00" * 60])
        await settle()
        return us.rx_frames, seen

    rx, seen = run(main())
    assert rx == 0
    assert seen == []


def test_a_failing_callback_is_counted_and_the_driver_keeps_going() -> None:
    """An exception in a loop callback would be logged by asyncio without a count and would skip the flush
    and the timer re-arm; the driver counts it as the stack's internal error and carries on."""

    async def main() -> tuple[int, list[float], list[list[bytes]]]:
        loop = asyncio.get_running_loop()
        seen: list[list[bytes]] = []
        tcp, us, driver = driven_stack(seen.append)
        fired = asyncio.Event()

        def write() -> None:  # what a socket callback does: queue output for the flush after the callbacks
            tcp.outgoing = [(US, PEER, b"segment")]

        def broken() -> None:
            raise RuntimeError("a protocol callback failed")

        def after() -> None:
            if tcp.expired:
                fired.set()

        driver.after_io += [write, broken, after]
        driver.start()
        tcp.deadline = loop.time() + 1.0
        driver.kick()
        await asyncio.wait_for(fired.wait(), 10)
        await settle()
        driver.close()
        return us.counters[Drop.INTERNAL_ERROR], tcp.expired, seen

    errors, expired, seen = run(main())
    assert errors == 1  # once: the timer round; start() itself runs no after-I/O callbacks
    assert expired == [1.0]
    assert [frame[12:14] for batch in seen for frame in batch] == [b"\x08\x06"]  # the ARP request for PEER
