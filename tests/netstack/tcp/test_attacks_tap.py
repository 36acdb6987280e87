"""Attacks on our TCP over a TAP device, frames crafted with scapy and injected from the kernel side.

The namespace holds the kernel end of the TAP; an AF_PACKET socket bound to it writes the crafted Ethernet
frames, which arrive at our stack exactly as an attacker's would. Legitimate traffic comes from the kernel's
own TCP in the same namespace.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from adapters.network import Network, NetworkConfig, start_network
from netstack.config import parse_static
from netstack.link.tap import TapLink
from netstack.reasons import Drop
from netstack.tcp.config import TcpConfig
from netstack.tcp.connection import Connection
from tests.netstack import netns

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not netns.available(), reason="needs root, netns and /dev/net/tun")]

STACK_MAC = bytes.fromhex("02504e000004")
KERNEL_IP = "10.81.0.1"
STACK_IP = "10.81.0.2"
PORT = 5001
ETH_P_ALL = 0x0003


@dataclass
class Rig:
    ns: str
    tap: str
    net: Network
    kernel_mac: str
    raw: socket.socket

    def inject(self, packet: object) -> None:
        from scapy.layers.l2 import Ether

        frame = Ether(src=self.kernel_mac, dst=STACK_MAC.hex(":")) / packet
        self.raw.send(bytes(frame))

    def kernel_socket(self) -> socket.socket:
        sock = netns.run_in(self.ns, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        sock.setblocking(False)
        return sock

    def server_connection(self, kernel_port: int) -> Connection:
        for conn in self.net.tcp.connections.values():
            if conn.remote_port == kernel_port and conn.local_port == PORT:
                return conn
        raise AssertionError("no such connection")


@pytest.fixture
def ns() -> Iterator[str]:
    with netns.namespace("patk") as name:
        yield name


async def rig_up(ns: str, tcp: TcpConfig | None = None) -> Rig:
    tap = f"patk{secrets.token_hex(3)}"
    link = netns.run_in(ns, lambda: TapLink(tap, STACK_MAC))
    netns.ip(ns, "addr", "add", f"{KERNEL_IP}/24", "dev", tap)
    netns.ip(ns, "link", "set", tap, "up")
    kernel_mac = netns.ip(ns, "-o", "link", "show", tap).split("link/ether ")[1].split()[0]

    def raw_socket() -> socket.socket:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        sock.bind((tap, 0))
        return sock

    raw = netns.run_in(ns, raw_socket)
    net = await start_network(link, NetworkConfig(parse_static(f"{STACK_IP}/24"), tcp or TcpConfig()))
    return Rig(ns, tap, net, kernel_mac, raw)


class Echo(asyncio.Protocol):
    lost: list[BaseException | None]

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        Echo.lost.append(exc)


async def settle(seconds: float = 0.2) -> None:
    await asyncio.sleep(seconds)


async def echo_round(loop: asyncio.AbstractEventLoop, sock: socket.socket, message: bytes) -> bytes:
    await loop.sock_sendall(sock, message)
    got = b""
    while len(got) < len(message):
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), 5)
        if not chunk:
            break
        got += chunk
    return got


def test_rst_and_syn_injection_in_and_out_of_window(ns: str) -> None:
    from scapy.layers.inet import IP, TCP

    async def main() -> None:
        loop = asyncio.get_running_loop()
        rig = await rig_up(ns)
        Echo.lost = []
        await rig.net.start_server(PORT, Echo)
        sock = rig.kernel_socket()
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (STACK_IP, PORT)), 5)
            kport = sock.getsockname()[1]
            assert await echo_round(loop, sock, b"before") == b"before"
            conn = rig.server_connection(kport)
            stats = rig.net.tcp.stats
            base = IP(src=KERNEL_IP, dst=STACK_IP)

            def segment(flags: str, seq: int) -> object:
                return base / TCP(sport=kport, dport=PORT, flags=flags, seq=seq % 2**32, ack=conn.snd_nxt)

            rig.inject(segment("R", conn.rcv_nxt + 1000))            # in window, not exact: challenge ACK
            rig.inject(segment("R", conn.rcv_nxt + 50_000_000))      # far outside: ignored
            rig.inject(segment("S", conn.rcv_nxt + 10))              # SYN in a synchronized state: challenge
            await settle()
            assert stats["rst-challenge-ack"] == 1
            assert stats["rst-out-of-window"] == 1
            assert stats["syn-challenge-ack"] == 1
            assert await echo_round(loop, sock, b"still alive") == b"still alive"
            rig.inject(segment("R", conn.rcv_nxt))                   # exact: the connection is reset
            await settle()
            assert stats["rst-accepted"] == 1
            assert len(Echo.lost) == 1
            assert isinstance(Echo.lost[0], ConnectionResetError)
        finally:
            sock.close()
            rig.raw.close()
            rig.net.close()

    asyncio.run(main())


def test_syn_flood_and_malformed_options_while_a_client_connects(ns: str) -> None:
    from scapy.layers.inet import IP, TCP

    async def main() -> None:
        loop = asyncio.get_running_loop()
        rig = await rig_up(ns, TcpConfig(max_half_open=64, max_backlog=32))
        Echo.lost = []
        await rig.net.start_server(PORT, Echo)
        rng = random.Random(5)
        try:
            for i in range(1500):
                # On-link spoofed sources (the stack has no gateway: one off-link is never answered, below).
                src = f"10.81.0.{rng.randrange(3, 255)}"
                rig.inject(IP(src=src, dst=STACK_IP) / TCP(sport=rng.randrange(1024, 65535), dport=PORT, flags="S",
                                                            seq=rng.getrandbits(32), options=[("MSS", 1460)]))
                if i % 100 == 0:
                    await asyncio.sleep(0)
            # malformed option lengths, a SYN+FIN, a Christmas tree and a LAND packet
            rig.inject(IP(src=KERNEL_IP, dst=STACK_IP) / TCP(sport=999, dport=PORT, flags="S",
                                                               options=[(2, b"\x05")]))
            rig.inject(IP(src=KERNEL_IP, dst=STACK_IP) / TCP(sport=998, dport=PORT, flags="SF"))
            rig.inject(IP(src=KERNEL_IP, dst=STACK_IP) / TCP(sport=997, dport=PORT, flags="FPU"))
            rig.inject(IP(src=STACK_IP, dst=STACK_IP) / TCP(sport=PORT, dport=PORT, flags="S"))
            rig.inject(IP(src="10.82.0.9", dst=STACK_IP) / TCP(sport=996, dport=PORT, flags="S"))
            await settle(0.3)
            sock = rig.kernel_socket()
            try:
                await asyncio.wait_for(loop.sock_connect(sock, (STACK_IP, PORT)), 5)
                assert await echo_round(loop, sock, b"legitimate") == b"legitimate"
            finally:
                sock.close()
            stats = rig.net.tcp.stats
            assert len(rig.net.tcp.half_open) <= 64
            assert stats["syn-cookie-sent"] > 1000
            assert stats["option-length"] + stats["option-truncated"] >= 1
            assert stats["syn-fin"] == 1
            assert stats["xmas"] == 1
            assert stats["internal-error"] == 0
            assert rig.net.stack.counters[Drop.TCP_NO_ROUTE_BACK] == 1
        finally:
            rig.raw.close()
            rig.net.close()

    asyncio.run(main())


def test_a_thousand_concurrent_connections(ns: str) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        rig = await rig_up(ns, TcpConfig(max_per_source=1200, max_half_open=1200, max_backlog=128))
        Echo.lost = []
        await rig.net.start_server(PORT, Echo)
        socks = [rig.kernel_socket() for _ in range(1000)]
        try:
            for start in range(0, 1000, 100):
                await asyncio.gather(*(asyncio.wait_for(loop.sock_connect(s, (STACK_IP, PORT)), 20)
                                       for s in socks[start:start + 100]))
            replies = await asyncio.gather(*(echo_round(loop, s, b"n%d" % i) for i, s in enumerate(socks)))
            assert replies == [b"n%d" % i for i in range(1000)]
            assert len(rig.net.tcp.by_id) >= 1000
        finally:
            for s in socks:
                s.close()
        await settle(0.5)
        rig.raw.close()
        rig.net.close()

    asyncio.run(main())


def test_zero_window_peer_then_drain(ns: str) -> None:
    payload = random.Random(8).randbytes(4_000_000)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        rig = await rig_up(ns, TcpConfig(persist_min=0.2))

        class Pusher(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                assert isinstance(transport, asyncio.Transport)
                transport.write(payload)
                transport.close()

        await rig.net.start_server(PORT, Pusher)
        sock = netns.run_in(rig.ns, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (STACK_IP, PORT)), 5)
            await asyncio.sleep(2.0)                    # not reading: the kernel's window closes
            assert rig.net.tcp.stats["window-probe"] > 0
            got = bytearray()
            while True:
                chunk = await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), 20)
                if not chunk:
                    break
                got += chunk
            assert bytes(got) == payload
        finally:
            sock.close()
            rig.raw.close()
            rig.net.close()

    asyncio.run(main())
