"""AF_PACKET link (the backend used inside the VM image) on a veth pair in a namespace this test creates."""

from __future__ import annotations

import asyncio
import socket

import pytest

from adapters.stack_driver import Driver
from netstack.config import parse_static
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
