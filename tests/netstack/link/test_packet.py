"""AF_PACKET link (the backend used inside the VM image) on a veth pair in a namespace this test creates."""

from __future__ import annotations

import asyncio
import socket

import pytest

from adapters.stack_driver import Driver
from netstack.config import parse_static
from netstack.limits import LINK_READ_BATCH
from netstack.link.packet import PacketLink
from netstack.stack import Stack, StackConfig
from tests.netstack import netns

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not netns.available(), reason="needs root and netns")]


@pytest.mark.parametrize("own_mac", [None, bytes.fromhex("02504e0000aa")], ids=["nic-mac", "promiscuous"])
def test_kernel_pings_the_stack_over_af_packet(own_mac: bytes | None) -> None:
    with netns.namespace() as ns:
        netns.ip(ns, "link", "add", "va", "type", "veth", "peer", "name", "vb")
        netns.ip(ns, "addr", "add", "10.77.0.1/24", "dev", "va")
        netns.ip(ns, "link", "set", "va", "up")
        link = netns.run_in(ns, lambda: PacketLink("vb", own_mac))  # also brings vb up
        nic_mac = bytes.fromhex(netns.ip(ns, "link", "show", "vb").split("link/ether ")[1].split()[0].replace(":", ""))
        assert link.mac == (own_mac or nic_mac)
        assert link.mtu == 1500
        stack = Stack(StackConfig(link.mac, parse_static("10.77.0.2/24")), None)
        raw = netns.run_in(ns, lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
        raw.setblocking(False)

        async def main() -> bytes:
            driver = Driver(link, stack)
            driver.start()
            try:
                return await netns.ping(raw, "10.77.0.2", 0x77, 1, b"over af_packet")
            finally:
                driver.close()

        try:
            assert asyncio.run(main()) == b"over af_packet"
        finally:
            raw.close()
        assert "UP" in netns.ip(ns, "link", "show", "vb")
        assert stack.stats()["tx-frames"] >= 2  # the announcement and the reply


def test_missing_interface_raises_and_leaks_nothing() -> None:
    with netns.namespace() as ns, pytest.raises(OSError, match="No such device"):
        netns.run_in(ns, lambda: PacketLink("nosuchif0"))


def test_loopback_batches_and_closing() -> None:
    """On a namespace's own loopback (already up, so it is left as it is): what we send comes back once, not
    twice (our outgoing copy is filtered), in batches of at most LINK_READ_BATCH frames; a link that never
    started closes, and closing again is harmless."""
    with netns.namespace() as ns:
        link = netns.run_in(ns, lambda: PacketLink("lo"))
        assert link.mac == bytes(6)
        sent = [bytes(6) + bytes(6) + b"\x88\xb5" + i.to_bytes(2, "big") * 30 for i in range(LINK_READ_BATCH + 6)]

        async def main() -> list[list[bytes]]:
            batches: list[list[bytes]] = []
            done = asyncio.Event()

            def received(frames: list[bytes]) -> None:
                batches.append(frames)
                if sum(map(len, batches)) >= len(sent):
                    done.set()

            for frame in sent:  # queued on the socket before the reader exists: the first batch is full
                link.send(frame)
            link.start(received)
            await asyncio.wait_for(done.wait(), 10)
            link.close()
            return batches

        batches = asyncio.run(main())
        assert [len(b) for b in batches] == [LINK_READ_BATCH, 6]
        assert [f for b in batches for f in b] == sent
        assert not any(link.stats().values())  # nothing dropped, nothing failed
        idle = netns.run_in(ns, lambda: PacketLink("lo"))
        idle.close()  # never started: no reader to remove
        idle.close()


@pytest.mark.parametrize(("own_mac", "flag"), [(None, "allmulti 1"), (bytes.fromhex("02504e0000aa"), "promiscuity 1")],
                         ids=["nic-mac", "promiscuous"])
def test_the_nic_takes_multicast_while_the_link_is_open(own_mac: bytes | None, flag: str) -> None:
    """IPv6 neighbour discovery arrives on multicast groups the NIC would otherwise filter out (the image's
    kernel joins none): the link asks for every group (or for everything, with a MAC of its own)."""
    with netns.namespace() as ns:
        netns.ip(ns, "link", "add", "va", "type", "veth", "peer", "name", "vb")
        link = netns.run_in(ns, lambda: PacketLink("vb", own_mac))
        try:
            assert flag in netns.ip(ns, "-d", "link", "show", "vb")  # the NIC's counts of who asked
        finally:
            link.close()
        assert flag not in netns.ip(ns, "-d", "link", "show", "vb")
