"""Our TCP over IPv6 on a TAP device against the Linux kernel's TCP, in a namespace the test creates and deletes.

Both roles (a kernel client to our listener, our client to a kernel listener) with megabytes each way compared
by digest, the MSS both sides announce (MTU - 60), curl -6 fetching from a responder on our TCP, and path MTU
discovery: a Packet Too Big from the namespace quoting one of our segments makes the next ones shrink.

The pieces are composed here (TcpLayer, Stack with IPv6, Driver, TcpSockets) rather than by
adapters.network.start_network so that the link can be wrapped (`Tapped` records every TCP segment both ways,
which the MSS and path MTU checks read).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import secrets
import socket
import struct
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from adapters.stack_driver import Driver
from adapters.tcp_sockets import TcpSockets
from netstack.addresses6 import ip6_from_text
from netstack.config import StaticIp6, parse_static
from netstack.link.base import FrameHandler
from netstack.link.tap import TapLink
from netstack.reasons import Drop
from netstack.stack import Stack, StackConfig
from netstack.tcp.config import TcpConfig
from netstack.tcp.layer import TcpLayer
from tests.netstack import netns

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not netns.available(), reason="needs root, netns and /dev/net/tun")]

STACK_MAC = bytes.fromhex("02504e000063")
KERNEL_IP6 = "2001:db8:8::1"
STACK_IP6 = "2001:db8:8::2"
SIZE = 4_000_000
MTU = 1500


@dataclass(frozen=True, slots=True)
class Seen:
    """One TCP segment on the wire: its direction, IPv6 packet length, flags, sequence number, MSS option."""

    outgoing: bool
    packet_len: int
    flags: int
    seq: int
    mss: int | None
    packet: bytes


def tcp_of(frame: bytes, outgoing: bool) -> Seen | None:
    """A TCP segment straight after the IPv6 header (all this test sends or expects), else None."""
    if len(frame) < 14 + 40 + 20 or frame[12:14] != b"\x86\xdd" or frame[14 + 6] != 6:
        return None
    packet = frame[14:]
    tcp = packet[40:]
    mss = None
    options = tcp[20 : (tcp[12] >> 4) * 4]
    i = 0
    while i < len(options) and options[i] != 0:
        if options[i] == 1:
            i += 1
            continue
        if i + 1 >= len(options) or options[i + 1] < 2:
            break
        if options[i] == 2 and options[i + 1] == 4:
            mss = struct.unpack("!H", options[i + 2 : i + 4])[0]
        i += options[i + 1]
    return Seen(outgoing, len(packet), tcp[13], struct.unpack("!I", tcp[4:8])[0], mss, bytes(packet))


class Tapped:
    """The TAP link with every TCP segment recorded both ways (a capture, without tcpdump)."""

    def __init__(self, link: TapLink) -> None:
        self.link = link
        self.seen: list[Seen] = []
        self.on_send: Callable[[Seen], None] | None = None

    @property
    def mac(self) -> bytes:
        return self.link.mac

    @property
    def mtu(self) -> int:
        return self.link.mtu

    def start(self, on_frames: FrameHandler) -> None:
        def received(frames: list[bytes]) -> None:
            for frame in frames:
                seen = tcp_of(frame, False)
                if seen is not None and seen.flags & 0x02:
                    self.seen.append(seen)
            on_frames(frames)

        self.link.start(received)

    def send(self, frame: bytes) -> None:
        seen = tcp_of(frame, True)
        if seen is not None:
            if seen.flags & 0x02:
                self.seen.append(seen)
            if self.on_send is not None:
                self.on_send(seen)
        self.link.send(frame)

    def close(self) -> None:
        self.link.close()

    def stats(self) -> dict[str, int]:
        return self.link.stats()


@dataclass
class Net:
    ns: str
    tap: Tapped
    stack: Stack
    tcp: TcpLayer
    driver: Driver
    sockets: TcpSockets
    kernel_sockets: list[socket.socket] = field(default_factory=list)

    def kernel_socket(self) -> socket.socket:
        sock = netns.run_in(self.ns, lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
        sock.setblocking(False)
        self.kernel_sockets.append(sock)
        return sock

    async def open_stream(self, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=65536, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        transport, _ = await self.sockets.connect(ip6_from_text(STACK_IP6), ip6_from_text(KERNEL_IP6), port,
                                                  lambda: protocol)
        return reader, asyncio.StreamWriter(transport, protocol, reader, loop)

    def serve(self, port: int, handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], object]) -> None:
        loop = asyncio.get_running_loop()

        def factory() -> asyncio.StreamReaderProtocol:
            reader = asyncio.StreamReader(limit=65536, loop=loop)
            return asyncio.StreamReaderProtocol(reader, handler, loop=loop)  # type: ignore[arg-type]

        self.sockets.listen(port, factory)

    def close(self) -> None:
        for sock in self.kernel_sockets:
            sock.close()
        self.driver.close()


@pytest.fixture
def ns() -> Iterator[str]:
    with netns.namespace("ptcp6") as name:
        yield name


async def bring_up(ns: str) -> Net:
    """Our stack with a static global address on a TAP in `ns`, the kernel beside it; returns once our DAD is
    over (polled with a deadline)."""
    loop = asyncio.get_running_loop()
    name = f"p6tcp{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"], check=True)
    tap = Tapped(netns.run_in(ns, lambda: TapLink(name, STACK_MAC, MTU)))
    netns.ip(ns, "-6", "addr", "add", f"{KERNEL_IP6}/64", "dev", name, "nodad")
    netns.ip(ns, "link", "set", name, "up")
    tcp = TcpLayer(os.urandom(32), TcpConfig(mtu=MTU))
    config = StackConfig(STACK_MAC, parse_static("10.80.0.2/24"), mtu=MTU,
                         ipv6=StaticIp6(ip6_from_text(STACK_IP6), 64), ipv6_secret=os.urandom(32))
    stack = Stack(config, tcp, rng=random.Random(63))
    driver = Driver(tap, stack, loop)
    sockets = TcpSockets(tcp, driver, loop)
    driver.start()
    net = Net(ns, tap, stack, tcp, driver, sockets)
    ipv6 = stack.ipv6
    assert ipv6 is not None
    deadline = loop.time() + 5
    while not ipv6.addresses.assigned(ip6_from_text(STACK_IP6)):
        assert loop.time() < deadline, "our DAD never finished"
        await asyncio.sleep(0.02)
    return net


async def recv_all(loop: asyncio.AbstractEventLoop, sock: socket.socket, size: int) -> bytes:
    out = bytearray()
    while len(out) < size:
        chunk = await loop.sock_recv(sock, 262144)
        if not chunk:
            break
        out += chunk
    return bytes(out)


def syn_mss(net: Net) -> tuple[set[int | None], set[int | None]]:
    """The MSS options of the SYNs and SYN-ACKs we sent, and of those the kernel sent."""
    ours = {s.mss for s in net.tap.seen if s.outgoing and s.flags & 0x02}
    theirs = {s.mss for s in net.tap.seen if not s.outgoing and s.flags & 0x02}
    return ours, theirs


def test_kernel_client_to_our_server_both_directions(ns: str) -> None:
    up = random.Random(11).randbytes(SIZE)
    down = random.Random(12).randbytes(SIZE)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        net = await bring_up(ns)
        received: list[bytes] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            received.append(await reader.readexactly(SIZE))
            writer.write(down)
            await writer.drain()
            writer.close()

        net.serve(5001, handle)
        try:
            client = net.kernel_socket()
            await asyncio.wait_for(loop.sock_connect(client, (STACK_IP6, 5001)), 5)
            sender = loop.create_task(loop.sock_sendall(client, up))
            got = await asyncio.wait_for(recv_all(loop, client, SIZE + 1), 90)
            await sender
        finally:
            net.close()
        assert received == [up]
        assert hashlib.sha256(got).digest() == hashlib.sha256(down).digest()
        assert syn_mss(net) == ({MTU - 60}, {MTU - 60})
        assert net.tcp.stats["internal-error"] == 0
        assert net.stack.counters[Drop.INTERNAL_ERROR] == 0

    asyncio.run(main())


def test_our_client_to_kernel_listener_both_directions(ns: str) -> None:
    up = random.Random(21).randbytes(SIZE)
    down = random.Random(22).randbytes(SIZE)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        net = await bring_up(ns)
        listener = net.kernel_socket()
        listener.bind((KERNEL_IP6, 6001))
        listener.listen(4)
        try:
            async def kernel_side() -> bytes:
                conn, _ = await loop.sock_accept(listener)
                with conn:
                    conn.setblocking(False)
                    data = await recv_all(loop, conn, SIZE)
                    await loop.sock_sendall(conn, down)
                    conn.shutdown(socket.SHUT_WR)
                    await loop.sock_recv(conn, 1)
                return data

            server_task = loop.create_task(kernel_side())
            reader, writer = await asyncio.wait_for(net.open_stream(6001), 5)
            writer.write(up)
            await writer.drain()
            got = await asyncio.wait_for(reader.read(), 90)
            writer.close()
            kernel_got = await asyncio.wait_for(server_task, 10)
        finally:
            net.close()
        assert hashlib.sha256(kernel_got).digest() == hashlib.sha256(up).digest()
        assert hashlib.sha256(got).digest() == hashlib.sha256(down).digest()
        assert syn_mss(net) == ({MTU - 60}, {MTU - 60})
        assert net.tcp.stats["internal-error"] == 0
        assert net.stack.counters[Drop.INTERNAL_ERROR] == 0

    asyncio.run(main())


def test_curl_fetches_from_our_server_over_ipv6(ns: str) -> None:
    body = random.Random(31).randbytes(1_000_000)

    async def main() -> bytes:
        net = await bring_up(ns)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            await writer.drain()
            writer.close()

        net.serve(80, handle)
        try:
            process = await asyncio.create_subprocess_exec(
                "ip", "netns", "exec", ns, "curl", "-6", "-g", "-s", "--max-time", "30", f"http://[{STACK_IP6}]:80/",
                stdout=subprocess.PIPE)  # fmt: skip
            out, _ = await process.communicate()
            assert process.returncode == 0
            return out
        finally:
            net.close()

    if subprocess.run(["which", "curl"], capture_output=True, check=False).returncode != 0:
        pytest.skip("curl not installed")
    assert asyncio.run(main()) == body


def test_packet_too_big_from_the_path_shrinks_our_segments(ns: str) -> None:
    """RFC 8201: a Packet Too Big quoting a segment we sent and the peer has not acknowledged lowers the path
    MTU; what we send next fits 1280 bytes. The namespace sends it (scapy over a packet socket on the kernel
    side of the TAP) as a router on the path would, quoting the segment we just sent."""
    from scapy.layers.inet6 import ICMPv6PacketTooBig, IPv6
    from scapy.layers.l2 import Ether

    size = 1_000_000
    up = random.Random(41).randbytes(size)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        net = await bring_up(ns)
        listener = net.kernel_socket()
        listener.bind((KERNEL_IP6, 6002))
        listener.listen(1)
        wire_name = tap_name(ns)
        wire = netns.run_in(ns, lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3)))
        wire.bind((wire_name, 0))
        net.kernel_sockets.append(wire)
        mac = netns.ip(ns, "link", "show", wire_name).split("link/ether ")[1].split()[0]
        sizes_after: list[int] = []
        sent_at = [0]

        def watch(seen: Seen) -> None:
            if sent_at[0]:
                if seen.packet_len > 0 and len(seen.packet) > 40 + 32:
                    sizes_after.append(seen.packet_len)
                return
            if seen.packet_len == MTU and net.tcp.stats.get("pmtu-reduced", 0) == 0:
                ptb = Ether(src=mac, dst="02:50:4e:00:00:63") / IPv6(src=KERNEL_IP6, dst=STACK_IP6) \
                    / ICMPv6PacketTooBig(mtu=1280) / seen.packet[: 1280 - 48]
                wire.send(bytes(ptb))
                sent_at[0] = 1

        net.tap.on_send = watch
        try:
            async def kernel_side() -> bytes:
                conn, _ = await loop.sock_accept(listener)
                with conn:
                    conn.setblocking(False)
                    return await recv_all(loop, conn, size)

            server_task = loop.create_task(kernel_side())
            reader, writer = await asyncio.wait_for(net.open_stream(6002), 5)
            writer.write(up)
            await writer.drain()
            kernel_got = await asyncio.wait_for(server_task, 60)
            writer.close()
        finally:
            net.close()
        assert hashlib.sha256(kernel_got).digest() == hashlib.sha256(up).digest()
        assert sent_at[0] == 1
        late = sizes_after[len(sizes_after) // 2 :]
        assert late, sizes_after
        assert max(late) <= 1280, sorted(set(sizes_after))
        assert net.tcp.stats["internal-error"] == 0
        del reader

    asyncio.run(main())


def tap_name(ns: str) -> str:
    """The one p6tcp* interface in the namespace."""
    out = netns.ip(ns, "-o", "link", "show")
    return next(part.split(":")[1].strip().split("@")[0] for part in out.splitlines() if "p6tcp" in part)


def test_adapter_transport_names_an_ipv6_peer(ns: str) -> None:
    """An IPv6 peer is named as asyncio's own AF_INET6 transports name it: (host, port, flowinfo, scope_id)."""
    async def main() -> None:
        loop = asyncio.get_running_loop()
        net = await bring_up(ns)
        peers: list[object] = []

        def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peers.append(writer.get_extra_info("peername"))
            writer.close()

        net.serve(5003, handle)
        try:
            client = net.kernel_socket()
            await asyncio.wait_for(loop.sock_connect(client, (STACK_IP6, 5003)), 5)
            port = client.getsockname()[1]
            await asyncio.wait_for(loop.sock_recv(client, 1), 5)  # our close
        finally:
            net.close()
        assert peers == [(KERNEL_IP6, port, 0, 0)]
        assert net.tcp.stats["internal-error"] == 0

    asyncio.run(main())
