"""Our TCP over a TAP device against the Linux kernel's TCP, over IPv4 and IPv6, in a namespace the test creates
and deletes.

Both directions of both roles, for each family: the kernel (Python sockets, and curl) connects to our listener,
and our stack connects to a kernel listener; megabytes go each way and are compared byte for byte. Over IPv6
also the MSS both sides announce (MTU - 60), path MTU discovery (a Packet Too Big from the namespace quoting one
of our segments makes the next ones shrink) and how an IPv6 peer is named; over IPv4 a client reusing its port
while we hold TIME-WAIT.

The link is wrapped (`Tapped` records every IPv6 TCP SYN both ways, and lets a test watch what we send), which
the MSS and path MTU checks read; `start_network` composes the stack on it as it does on the bare link.
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

from adapters.network import Network, NetworkConfig, StreamHandler, start_network
from netstack.addresses6 import ip6_from_text
from netstack.config import StaticIp6, parse_static
from netstack.link.base import FrameHandler
from netstack.link.tap import TapLink
from netstack.reasons import Drop
from tests.netstack import netns

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not netns.available(), reason="needs root, netns and /dev/net/tun")]

STACK_MAC = bytes.fromhex("02504e000003")
MTU = 1500


@dataclass(frozen=True, slots=True)
class Family:
    """What differs between the IPv4 and IPv6 runs of the same test: addresses, and how big and slow the bulk
    transfers are allowed to be."""

    name: str
    af: socket.AddressFamily
    kernel_ip: str
    stack_ip: str
    size: int
    timeout: float
    url_host: str
    curl_flags: tuple[str, ...]


IPV4 = Family("ipv4", socket.AF_INET, "10.78.0.1", "10.78.0.2", 3_000_000, 60, "10.78.0.2", ())
IPV6 = Family("ipv6", socket.AF_INET6, "2001:db8:8::1", "2001:db8:8::2", 4_000_000, 90, "[2001:db8:8::2]:80",
              ("-6", "-g"))


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
    """A TCP segment straight after an IPv6 header (all the IPv6 tests send or expect), else None."""
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
    """The TAP link with every IPv6 TCP SYN recorded both ways (a capture, without tcpdump), and what we send
    shown to `on_send`."""

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
    """Our network on the TAP in `ns`, its capture, and the kernel sockets to close with it."""

    ns: str
    family: Family
    tap: Tapped
    network: Network
    kernel_sockets: list[socket.socket] = field(default_factory=list)

    def kernel_socket(self) -> socket.socket:
        sock = netns.run_in(self.ns, lambda: socket.socket(self.family.af, socket.SOCK_STREAM))
        sock.setblocking(False)
        self.kernel_sockets.append(sock)
        return sock

    async def serve(self, port: int, handler: StreamHandler) -> None:
        await self.network.start_stream_server(port, handler)

    async def open_stream(self, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await self.network.open_stream(self.family.kernel_ip, port)

    def close(self) -> None:
        for sock in self.kernel_sockets:
            sock.close()
        self.network.close()


@pytest.fixture
def ns() -> Iterator[str]:
    with netns.namespace("ptcp") as name:
        yield name


@pytest.fixture(params=[IPV4, IPV6], ids=lambda family: family.name)
def family(request: pytest.FixtureRequest) -> Family:
    chosen: Family = request.param
    return chosen


async def bring_up(ns: str, family: Family) -> Net:
    """Our stack with a static address of `family` on a TAP in `ns`, the kernel beside it; over IPv6 returns
    once our DAD is over (polled with a deadline), the kernel's own DAD switched off."""
    name = f"ptcp{secrets.token_hex(3)}"
    if family is IPV6:
        subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"], check=True)
    tap = Tapped(netns.run_in(ns, lambda: TapLink(name, STACK_MAC, MTU)))
    if family is IPV6:
        netns.ip(ns, "-6", "addr", "add", f"{family.kernel_ip}/64", "dev", name, "nodad")
        config = NetworkConfig(parse_static("10.80.0.2/24"), ipv6=StaticIp6(ip6_from_text(family.stack_ip), 64),
                               ipv6_secret=os.urandom(32))
    else:
        netns.ip(ns, "addr", "add", f"{family.kernel_ip}/24", "dev", name)
        config = NetworkConfig(parse_static(f"{family.stack_ip}/24"))
    netns.ip(ns, "link", "set", name, "up")
    net = Net(ns, family, tap, await start_network(tap, config))
    if family is IPV6:
        loop = asyncio.get_running_loop()
        ipv6 = net.network.stack.ipv6
        assert ipv6 is not None
        deadline = loop.time() + 5
        while not ipv6.addresses.assigned(ip6_from_text(family.stack_ip)):
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
    """The MSS options of the IPv6 SYNs and SYN-ACKs we sent, and of those the kernel sent."""
    ours = {s.mss for s in net.tap.seen if s.outgoing and s.flags & 0x02}
    theirs = {s.mss for s in net.tap.seen if not s.outgoing and s.flags & 0x02}
    return ours, theirs


def test_kernel_client_to_our_server_both_directions(ns: str, family: Family) -> None:
    size = family.size
    up = random.Random(11).randbytes(size)
    down = random.Random(12).randbytes(size)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        net = await bring_up(ns, family)
        received: list[bytes] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            received.append(await reader.readexactly(size))
            writer.write(down)
            await writer.drain()
            writer.close()

        await net.serve(5001, handle)
        try:
            client = net.kernel_socket()
            await asyncio.wait_for(loop.sock_connect(client, (family.stack_ip, 5001)), 5)
            sender = loop.create_task(loop.sock_sendall(client, up))
            got = await asyncio.wait_for(recv_all(loop, client, size + 1), family.timeout)
            await sender
        finally:
            net.close()
        assert received == [up]
        assert hashlib.sha256(got).digest() == hashlib.sha256(down).digest()
        if family is IPV6:
            assert syn_mss(net) == ({MTU - 60}, {MTU - 60})
            assert net.network.tcp.stats["internal-error"] == 0
            assert net.network.stack.counters[Drop.INTERNAL_ERROR] == 0

    asyncio.run(main())


def test_our_client_to_kernel_listener_both_directions(ns: str, family: Family) -> None:
    size = family.size
    up = random.Random(21).randbytes(size)
    down = random.Random(22).randbytes(size)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        net = await bring_up(ns, family)
        listener = net.kernel_socket()
        listener.bind((family.kernel_ip, 6001))
        listener.listen(4)
        try:
            async def kernel_side() -> bytes:
                conn, _ = await loop.sock_accept(listener)
                with conn:
                    conn.setblocking(False)
                    data = await recv_all(loop, conn, size)
                    await loop.sock_sendall(conn, down)
                    conn.shutdown(socket.SHUT_WR)
                    await loop.sock_recv(conn, 1)
                return data

            server_task = loop.create_task(kernel_side())
            reader, writer = await asyncio.wait_for(net.open_stream(6001), 5)
            writer.write(up)
            await writer.drain()
            got = await asyncio.wait_for(reader.read(), family.timeout)
            writer.close()
            kernel_got = await asyncio.wait_for(server_task, 10)
        finally:
            net.close()
        assert hashlib.sha256(kernel_got).digest() == hashlib.sha256(up).digest()
        assert hashlib.sha256(got).digest() == hashlib.sha256(down).digest()
        assert net.network.tcp.stats["internal-error"] == 0
        if family is IPV6:
            assert syn_mss(net) == ({MTU - 60}, {MTU - 60})
            assert net.network.stack.counters[Drop.INTERNAL_ERROR] == 0

    asyncio.run(main())


def test_curl_fetches_from_our_server(ns: str, family: Family) -> None:
    body = random.Random(31).randbytes(1_000_000)

    async def main() -> bytes:
        net = await bring_up(ns, family)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            await writer.drain()
            writer.close()

        await net.serve(80, handle)
        try:
            process = await asyncio.create_subprocess_exec(
                "ip", "netns", "exec", ns, "curl", *family.curl_flags, "-s", "--max-time", "30",
                f"http://{family.url_host}/", stdout=subprocess.PIPE)
            out, _ = await process.communicate()
            assert process.returncode == 0
            return out
        finally:
            net.close()

    if subprocess.run(["which", "curl"], capture_output=True, check=False).returncode != 0:
        pytest.skip("curl not installed")
    assert asyncio.run(main()) == body


def test_kernel_client_reconnects_from_the_same_port_while_we_hold_time_wait(ns: str) -> None:
    """Our server closes first, so each connection leaves a TIME-WAIT entry on our side; the kernel client
    then connects again from the very same port (SO_REUSEADDR), as a busy client reusing ports does. Each
    new SYN carries a newer timestamp, so it must open a new connection at once (RFC 6191), not draw
    challenge ACKs until 2*MSL has passed."""
    rounds = 20

    async def main() -> None:
        loop = asyncio.get_running_loop()
        net = await bring_up(ns, IPV4)
        served = 0

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal served
            await reader.readexactly(4)
            writer.write(b"pong")
            await writer.drain()
            writer.close()
            served += 1

        await net.serve(5002, handle)
        port = 0
        try:
            for _ in range(rounds):
                await asyncio.sleep(0.1)  # the kernel's old socket leaves LAST-ACK once we acknowledge its FIN
                client = net.kernel_socket()
                client.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                client.bind((IPV4.kernel_ip, port))
                port = client.getsockname()[1]
                try:
                    await asyncio.wait_for(loop.sock_connect(client, (IPV4.stack_ip, 5002)), 5)
                    await loop.sock_sendall(client, b"ping")
                    assert await asyncio.wait_for(recv_all(loop, client, 5), 5) == b"pong"
                finally:
                    client.close()
            await asyncio.sleep(0.2)
        finally:
            net.close()
        assert served == rounds
        assert net.network.tcp.stats["time-wait-reopened"] == rounds - 1
        assert net.network.tcp.stats["internal-error"] == 0

    asyncio.run(main())


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
        net = await bring_up(ns, IPV6)
        listener = net.kernel_socket()
        listener.bind((IPV6.kernel_ip, 6002))
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
            if seen.packet_len == MTU and net.network.tcp.stats.get("pmtu-reduced", 0) == 0:
                ptb = Ether(src=mac, dst=STACK_MAC.hex(":")) / IPv6(src=IPV6.kernel_ip, dst=IPV6.stack_ip) \
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
        assert net.network.tcp.stats["internal-error"] == 0
        del reader

    asyncio.run(main())


def tap_name(ns: str) -> str:
    """The one ptcp* interface in the namespace."""
    out = netns.ip(ns, "-o", "link", "show")
    return next(part.split(":")[1].strip().split("@")[0] for part in out.splitlines() if "ptcp" in part)


def test_adapter_transport_names_an_ipv6_peer(ns: str) -> None:
    """An IPv6 peer is named as asyncio's own AF_INET6 transports name it: (host, port, flowinfo, scope_id)."""
    async def main() -> None:
        loop = asyncio.get_running_loop()
        net = await bring_up(ns, IPV6)
        peers: list[object] = []

        def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peers.append(writer.get_extra_info("peername"))
            writer.close()

        await net.serve(5003, handle)
        try:
            client = net.kernel_socket()
            await asyncio.wait_for(loop.sock_connect(client, (IPV6.stack_ip, 5003)), 5)
            port = client.getsockname()[1]
            await asyncio.wait_for(loop.sock_recv(client, 1), 5)  # our close
        finally:
            net.close()
        assert peers == [(IPV6.kernel_ip, port, 0, 0)]
        assert net.network.tcp.stats["internal-error"] == 0

    asyncio.run(main())
