"""Our TCP over a TAP device against the Linux kernel's TCP, in a namespace the test creates and deletes.

Both directions of both roles: the kernel (Python sockets, and curl) connects to our listener, and our stack
connects to a kernel listener; megabytes go each way and are compared byte for byte.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import secrets
import socket
import subprocess
from collections.abc import Iterator

import pytest

from adapters.network import Network, NetworkConfig, start_network
from netstack.config import parse_static
from netstack.link.tap import TapLink
from tests.netstack import netns

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not netns.available(), reason="needs root, netns and /dev/net/tun")]

STACK_MAC = bytes.fromhex("02504e000003")
KERNEL_IP = "10.78.0.1"
STACK_IP = "10.78.0.2"
SIZE = 3_000_000


@pytest.fixture
def ns() -> Iterator[str]:
    with netns.namespace("ptcp") as name:
        yield name


async def bring_up(ns: str) -> Network:
    tap = f"ptcp{secrets.token_hex(3)}"
    link = netns.run_in(ns, lambda: TapLink(tap, STACK_MAC))
    netns.ip(ns, "addr", "add", f"{KERNEL_IP}/24", "dev", tap)
    netns.ip(ns, "link", "set", tap, "up")
    return await start_network(link, NetworkConfig(parse_static(f"{STACK_IP}/24")))


def kernel_socket(ns: str) -> socket.socket:
    sock = netns.run_in(ns, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    sock.setblocking(False)
    return sock


async def recv_all(loop: asyncio.AbstractEventLoop, sock: socket.socket, size: int) -> bytes:
    out = bytearray()
    while len(out) < size:
        chunk = await loop.sock_recv(sock, 262144)
        if not chunk:
            break
        out += chunk
    return bytes(out)


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

        await net.start_stream_server(5001, handle)
        client = kernel_socket(ns)
        try:
            await asyncio.wait_for(loop.sock_connect(client, (STACK_IP, 5001)), 5)
            sender = loop.create_task(loop.sock_sendall(client, up))
            got = await asyncio.wait_for(recv_all(loop, client, SIZE + 1), 60)
            await sender
        finally:
            client.close()
            net.close()
        assert received == [up]
        assert hashlib.sha256(got).digest() == hashlib.sha256(down).digest()

    asyncio.run(main())


def test_our_client_to_kernel_listener_both_directions(ns: str) -> None:
    up = random.Random(21).randbytes(SIZE)
    down = random.Random(22).randbytes(SIZE)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        net = await bring_up(ns)
        listener = kernel_socket(ns)
        listener.bind((KERNEL_IP, 6001))
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
            reader, writer = await asyncio.wait_for(net.open_stream(KERNEL_IP, 6001), 5)
            writer.write(up)
            await writer.drain()
            got = await asyncio.wait_for(reader.read(), 60)
            writer.close()
            kernel_got = await asyncio.wait_for(server_task, 10)
        finally:
            listener.close()
            net.close()
        assert hashlib.sha256(kernel_got).digest() == hashlib.sha256(up).digest()
        assert hashlib.sha256(got).digest() == hashlib.sha256(down).digest()
        assert net.tcp.stats["internal-error"] == 0

    asyncio.run(main())


def test_curl_fetches_from_our_server(ns: str) -> None:
    body = random.Random(31).randbytes(1_000_000)

    async def main() -> bytes:
        net = await bring_up(ns)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            await writer.drain()
            writer.close()

        await net.start_stream_server(80, handle)
        try:
            process = await asyncio.create_subprocess_exec(
                "ip", "netns", "exec", ns, "curl", "-s", "--max-time", "30", f"http://{STACK_IP}/",
                stdout=subprocess.PIPE)
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
        net = await bring_up(ns)
        served = 0

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal served
            await reader.readexactly(4)
            writer.write(b"pong")
            await writer.drain()
            writer.close()
            served += 1

        await net.start_stream_server(5002, handle)
        port = 0
        try:
            for _ in range(rounds):
                await asyncio.sleep(0.1)  # the kernel's old socket leaves LAST-ACK once we acknowledge its FIN
                client = kernel_socket(ns)
                client.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                client.bind((KERNEL_IP, port))
                port = client.getsockname()[1]
                try:
                    await asyncio.wait_for(loop.sock_connect(client, (STACK_IP, 5002)), 5)
                    await loop.sock_sendall(client, b"ping")
                    assert await asyncio.wait_for(recv_all(loop, client, 5), 5) == b"pong"
                finally:
                    client.close()
            await asyncio.sleep(0.2)
        finally:
            net.close()
        assert served == rounds
        assert net.tcp.stats["time-wait-reopened"] == rounds - 1
        assert net.tcp.stats["internal-error"] == 0

    asyncio.run(main())
