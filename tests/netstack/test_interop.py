"""The stack on a TAP device against the Linux kernel in a namespace this test creates and deletes.

Proves by running: the kernel resolves us by ARP and we resolve it, kernel pings get replies, UDP to a closed
port makes the kernel's socket see ECONNREFUSED (our ICMP port unreachable), and crafted attack frames (scapy)
are dropped and counted while the stack keeps answering.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from adapters.stack_driver import Driver
from netstack.config import parse_static
from netstack.link.tap import TapLink
from netstack.reasons import Drop
from netstack.stack import Stack, StackConfig
from tests.netstack import netns

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not netns.available(), reason="needs root, netns and /dev/net/tun")]

STACK_MAC = bytes.fromhex("02504e000002")
KERNEL_IP = "10.77.0.1"
STACK_IP = "10.77.0.2"


@dataclass
class Rig:
    ns: str
    tap_name: str
    drivers: list[Driver] = field(default_factory=list)

    def start(self) -> Driver:
        """Open the TAP inside the namespace, give the kernel side an address, and run our stack on it."""
        link = netns.run_in(self.ns, lambda: TapLink(self.tap_name, STACK_MAC))
        netns.ip(self.ns, "addr", "add", f"{KERNEL_IP}/24", "dev", self.tap_name)
        netns.ip(self.ns, "link", "set", self.tap_name, "up")
        driver = Driver(link, Stack(StackConfig(STACK_MAC, parse_static(f"{STACK_IP}/24")), None))
        self.drivers.append(driver)
        driver.start()
        return driver

    def socket(self, kind: int, proto: int = 0) -> socket.socket:
        sock = netns.run_in(self.ns, lambda: socket.socket(socket.AF_INET, kind, proto))
        sock.setblocking(False)
        return sock

    def close(self) -> None:
        for driver in self.drivers:
            driver.close()
        self.drivers.clear()


@pytest.fixture
def rig() -> Iterator[Rig]:
    with netns.namespace() as ns:
        r = Rig(ns, f"ptap{secrets.token_hex(3)}")
        try:
            yield r
        finally:
            r.close()


def test_kernel_pings_the_stack_and_arp_works_both_ways(rig: Rig) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        driver = rig.start()
        # we resolve the kernel: a datagram from our stack to a kernel UDP socket needs our ARP request answered
        listener = rig.socket(socket.SOCK_DGRAM)
        listener.bind((KERNEL_IP, 40000))
        driver.stack.udp_send(driver.now(), socket.inet_aton(KERNEL_IP), 5555, 40000, b"from the stack")
        driver.kick()
        data, (src, sport) = await asyncio.wait_for(loop.sock_recvfrom(listener, 100), 3.0)
        assert (data, src, sport) == (b"from the stack", STACK_IP, 5555)
        # the kernel resolves us and we answer its pings, including one that needs fragmentation both ways
        raw = rig.socket(socket.SOCK_RAW, socket.IPPROTO_ICMP)
        for seq in range(3):
            assert await netns.ping(raw, STACK_IP, 0x4242, seq, bytes([seq]) * 56) == bytes([seq]) * 56
        big = bytes(range(256)) * 16
        assert await netns.ping(raw, STACK_IP, 0x4242, 99, big) == big
        neighbours = netns.ip(rig.ns, "neigh", "show", STACK_IP)
        assert "02:50:4e:00:00:02" in neighbours
        assert driver.stack.neighbours.lookup(socket.inet_aton(KERNEL_IP), driver.now()) is not None
        listener.close()
        raw.close()

    asyncio.run(main())


def test_udp_to_a_closed_port_is_refused(rig: Rig) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        driver = rig.start()
        sock = rig.socket(socket.SOCK_DGRAM)
        sock.connect((STACK_IP, 9))
        await loop.sock_sendall(sock, b"anyone there?")
        with pytest.raises(ConnectionRefusedError):
            await asyncio.wait_for(loop.sock_recv(sock, 100), 3.0)
        assert driver.stack.counters[Drop.UDP_PORT_CLOSED] == 1
        sock.close()

    asyncio.run(main())


def test_crafted_attacks_are_dropped_and_counted(rig: Rig) -> None:
    from scapy.layers.inet import ICMP, IP, TCP, IPOption_LSRR, fragment
    from scapy.layers.l2 import ARP, Ether
    from scapy.packet import Raw

    async def main() -> None:
        loop = asyncio.get_running_loop()
        driver = rig.start()
        raw = rig.socket(socket.SOCK_RAW, socket.IPPROTO_ICMP)
        assert await netns.ping(raw, STACK_IP, 7, 0, b"before") == b"before"  # also makes the kernel learn our MAC
        kernel_mac = netns.ip(rig.ns, "link", "show", rig.tap_name).split("link/ether ")[1].split()[0]
        wire = netns.run_in(rig.ns, lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3)))
        wire.bind((rig.tap_name, 0))
        eth = Ether(src=kernel_mac, dst="02:50:4e:00:00:02")
        attacker = "10.77.0.66"

        def echo(ident: int, payload: bytes) -> IP:
            return IP(src=attacker, dst=STACK_IP, id=ident) / ICMP(id=ident, seq=1) / Raw(payload)

        frames = []
        # overlapping fragments (RFC 5722): the second rewrites bytes of the first
        first, second = fragment(echo(1001, bytes(64)), fragsize=32)[:2]  # type: ignore[no-untyped-call]
        overlap = IP(bytes(second))
        overlap.frag = 2  # starts at byte 16, inside the first fragment
        del overlap.chksum  # recomputed when serialised
        frames += [first, overlap]
        # teardrop: second fragment inside the first and ending before it
        tear = fragment(echo(1002, bytes(48)), fragsize=24)  # type: ignore[no-untyped-call]
        tail = IP(bytes(tear[1]))
        tail.frag, tail.flags = 1, 0
        del tail.chksum
        frames += [tear[0], tail]
        # ping of death: 65536+ bytes of ICMP in fragments
        frames += fragment(echo(1003, bytes(65600 - 28)), fragsize=1480)  # type: ignore[no-untyped-call]
        # LAND: a SYN from our own address to our own address
        frames.append(IP(src=STACK_IP, dst=STACK_IP) / TCP(sport=80, dport=80, flags="S"))
        # loose source route and a malformed option length
        frames.append(IP(src=attacker, dst=STACK_IP, options=[IPOption_LSRR(routers=["10.77.0.9"])]) / ICMP())
        frames.append(IP(src=attacker, dst=STACK_IP, options=[b"\x07\x28\x04\x00"]) / ICMP())
        # bad IP checksum and an echo to the broadcast address
        frames.append(IP(src=attacker, dst=STACK_IP, chksum=0x1234) / ICMP())
        datagrams = [bytes(eth / f) for f in frames]
        datagrams.append(bytes(Ether(src=kernel_mac, dst="ff:ff:ff:ff:ff:ff") / IP(src=attacker, dst="10.77.0.255")
                               / ICMP()))  # fmt: skip
        # ARP: an unsolicited reply for a host we never talked to, and a claim on our own address
        datagrams.append(bytes(Ether(src="02:66:66:66:66:66", dst="02:50:4e:00:00:02")
                               / ARP(op=2, hwsrc="02:66:66:66:66:66", psrc="10.77.0.99", pdst=KERNEL_IP)))
        datagrams.append(bytes(Ether(src="02:66:66:66:66:66", dst="ff:ff:ff:ff:ff:ff")
                               / ARP(op=2, hwsrc="02:66:66:66:66:66", psrc=STACK_IP, pdst=STACK_IP)))  # fmt: skip
        for frame in datagrams:
            await loop.run_in_executor(None, wire.send, frame)
        assert await netns.ping(raw, STACK_IP, 7, 1, b"after") == b"after"  # still alive, still answering
        await asyncio.sleep(0.1)
        counters = driver.stack.counters
        assert counters[Drop.FRAG_OVERLAP] == 2  # the overlap and the teardrop
        assert counters[Drop.IPV4_OVERSIZE] >= 1
        assert counters[Drop.IPV4_LAND] == 1
        assert counters[Drop.IPV4_SOURCE_ROUTE] == 1
        assert counters[Drop.IPV4_BAD_OPTIONS] == 1
        assert counters[Drop.IPV4_BAD_CHECKSUM] == 1
        assert counters[Drop.ICMP_ECHO_BROADCAST] == 1
        assert counters[Drop.ARP_ADDRESS_CONFLICT] == 1
        assert driver.stack.neighbours.lookup(socket.inet_aton("10.77.0.99"), driver.now()) is None
        # nothing was ever answered to the attacker's address
        assert driver.stack.neighbours.lookup(socket.inet_aton(attacker), driver.now()) is None
        assert driver.stack.stats()["reassembly-datagrams"] <= 1  # only the never-completed ping of death remains
        wire.close()
        raw.close()

    asyncio.run(main())
