"""The DHCP client against a real server (dnsmasq) on a TAP device in a namespace this test creates.

Proves by running: DISCOVER/OFFER/REQUEST/ACK with a third-party server, the server's timers are honoured,
and the leased address answers the kernel's pings. (Renewal and rebinding are tested with virtual time in
tests/netstack/dhcp/test_client.py: dnsmasq does not send a T1 below 60 s, too long to wait for here.)
"""

from __future__ import annotations

import asyncio
import random
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from adapters.stack_driver import Driver
from netstack.config import UseDhcp
from netstack.dhcp.client import DhcpState
from netstack.link.tap import TapLink
from netstack.stack import Stack, StackConfig
from tests.netstack import netns

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(not netns.available(), reason="needs root, netns and /dev/net/tun"),
    pytest.mark.skipif(shutil.which("dnsmasq") is None, reason="needs dnsmasq (Debian package dnsmasq-base)"),
]

STACK_MAC = bytes.fromhex("02504e000003")


def test_lease_from_dnsmasq_then_ping(tmp_path: Path) -> None:
    with netns.namespace() as ns:
        tap_name = f"ptap{secrets.token_hex(3)}"
        link = netns.run_in(ns, lambda: TapLink(tap_name, STACK_MAC))
        try:
            netns.ip(ns, "addr", "add", "10.78.0.1/24", "dev", tap_name)
            netns.ip(ns, "link", "set", tap_name, "up")
            server = subprocess.Popen(
                ["ip", "netns", "exec", ns, "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=0",
                 "--user=root", "--no-ping", f"--interface={tap_name}", "--bind-interfaces", "--no-resolv",
                 "--no-hosts", "--dhcp-range=10.78.0.50,10.78.0.60,255.255.255.0,2m",
                 "--dhcp-option=option:router,10.78.0.1", "--dhcp-option=59,100",
                 f"--dhcp-leasefile={tmp_path / 'leases'}", f"--pid-file={tmp_path / 'pid'}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )  # fmt: skip
            try:
                deadline = time.monotonic() + 5.0
                while not (tmp_path / "leases").exists() and time.monotonic() < deadline:  # dnsmasq is up
                    time.sleep(0.02)
                _run(ns, link)
            finally:
                server.terminate()
                server.wait(5)
            assert "02:50:4e:00:00:03" in (tmp_path / "leases").read_text()
        finally:
            link.close()


def _run(ns: str, link: TapLink) -> None:
    stack = Stack(StackConfig(STACK_MAC, UseDhcp()), None, rng=random.Random(secrets.randbits(64)))

    async def main() -> None:
        driver = Driver(link, stack)
        driver.start()
        try:
            while stack.address is None:
                await asyncio.sleep(0.05)
            interface = stack.interface
            assert interface is not None
            address = socket.inet_ntoa(interface.address)
            assert address.startswith("10.78.0.")
            assert 50 <= interface.address[3] <= 60
            assert interface.prefix_len == 24
            assert interface.gateway == bytes([10, 78, 0, 1])
            raw = netns.run_in(ns, lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
            raw.setblocking(False)
            assert await netns.ping(raw, address, 9, 1, b"leased") == b"leased"
            raw.close()
            dhcp = stack.dhcp
            assert dhcp is not None
            lease = dhcp.lease
            assert lease is not None
            assert lease.lease_time == 120.0
            assert lease.t2 == 100.0  # the server's rebinding time, not the 7/8 default (105 s)
            assert lease.server_id == bytes([10, 78, 0, 1])
            assert dhcp.state is DhcpState.BOUND
        finally:
            driver.close()

    asyncio.run(asyncio.wait_for(main(), 30.0))
