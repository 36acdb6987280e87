"""TCP benchmarks: bulk throughput, connection rate and memory per idle connection.

- `bulk_layers`: bytes/s through two TcpLayers wired back to back in memory (pure protocol cost: segment
  building, checksums, parsing, ACK clocking), against the kernel's TCP over 127.0.0.1 in the same run.
- `bulk_stack`: the same through the whole composed stack (Ethernet, ARP, IPv4, TCP, asyncio Transports) over
  the in-memory link pair, against the same kernel figure.
- `connections`: handshakes + orderly closes per second between two TcpLayers, against kernel loopback
  connect/accept/close.
- `bulk_tap_receive` / `bulk_tap_send` (root with network namespaces only): the kernel's TCP in a namespace
  sends to our server over a TAP device, and our client sends to a kernel sink, against kernel-to-kernel TCP
  over a veth pair between two namespaces, measured in the same run.
- `bulk_tap6_receive` / `bulk_tap6_send`: the same over IPv6 (a static fd00:79::/64 address on each side),
  judged against the IPv4 TAP figure of the same direction in the same run (the issue asks for at least 0.9x).
  The families alternate, best of three each, so a burst of load on the shared machine does not land on one
  family only.
- `idle_connection_memory`: bytes of Python heap (tracemalloc) per established idle connection on the
  accepting side, against the issue's 10 KB target.
"""

from __future__ import annotations

import asyncio
import gc
import random
import secrets
import socket
import subprocess
import threading
import time
import tracemalloc
from dataclasses import dataclass

from adapters.network import NetworkConfig, start_network
from bench import lab
from bench.harness import Figure
from bench.lab import ip, namespace, run_in
from netstack.addresses6 import ip6_from_text
from netstack.config import NoIpv6, StaticIp6, parse_static
from netstack.link.memory import memory_link_pair
from netstack.link.tap import TapLink
from netstack.tcp import events as ev
from netstack.tcp.config import TcpConfig
from netstack.tcp.layer import TcpLayer

A = bytes([10, 0, 0, 1])
B = bytes([10, 0, 0, 2])
MEMORY_TARGET = 10 * 1024


class _Wire:
    """Zero-latency, lossless delivery between two layers, with a virtual clock that moves only for timers."""

    def __init__(self, config: TcpConfig | None = None) -> None:
        self.a = TcpLayer(b"a" * 32, config)
        self.b = TcpLayer(b"b" * 32, config)
        self.now = 0.0

    def pump(self) -> bool:
        moved = False
        for src_layer, dst_layer in ((self.a, self.b), (self.b, self.a)):
            out = src_layer.take_outgoing()
            for src, dst, segment in out:
                dst_layer.segment_received(self.now, src, dst, memoryview(segment))
            moved = moved or bool(out)
        return moved

    def settle(self) -> None:
        while self.pump():
            pass

    def establish(self, port: int = 80) -> tuple[int, int]:
        if port not in self.b.listeners:
            self.b.listen(port)
        client = self.a.connect(self.now, A, B, port)
        self.settle()
        server = next(e.conn for e in self.b.take_events() if isinstance(e, ev.Accepted))
        self.a.take_events()
        return client, server


class _Sink(asyncio.Protocol):
    """Counts the bytes it receives and sets `done` once `total` have arrived."""

    def __init__(self, total: int, done: asyncio.Event) -> None:
        self._total = total
        self._done = done
        self._count = 0

    def data_received(self, data: bytes) -> None:
        self._count += len(data)
        if self._count >= self._total:
            self._done.set()


def bulk_layers(total: int) -> float:
    wire = _Wire()
    client, server = wire.establish()
    chunk = bytes(65536)
    sent = received = 0
    started = time.perf_counter()
    while received < total:
        if sent < total:
            sent += wire.a.send(wire.now, client, chunk[: min(len(chunk), total - sent)])
        wire.pump()
        received += len(wire.b.receive(wire.now, server))
        wire.now += 0.0001
        if wire.a.next_deadline() is not None:
            wire.a.timers_expired(wire.now)
            wire.b.timers_expired(wire.now)
    return total / (time.perf_counter() - started)


def bulk_stack(total: int) -> float:
    async def main() -> float:
        link_a, link_b = memory_link_pair(bytes.fromhex("020000000001"), bytes.fromhex("020000000002"))
        a = await start_network(link_a, NetworkConfig(parse_static("10.9.0.1/24")))
        b = await start_network(link_b, NetworkConfig(parse_static("10.9.0.2/24")))
        done = asyncio.Event()
        await b.start_server(9, lambda: _Sink(total, done))
        transport, _ = await a.open_connection("10.9.0.2", 9, asyncio.Protocol)
        started = time.perf_counter()
        transport.write(bytes(total))
        await asyncio.wait_for(done.wait(), 120)
        elapsed = time.perf_counter() - started
        transport.close()
        a.close()
        b.close()
        return total / elapsed

    return asyncio.run(main())


def bulk_kernel(total: int) -> float:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    received = 0

    def sink() -> None:
        nonlocal received
        conn, _ = listener.accept()
        with conn:
            while True:
                data = conn.recv(262144)
                if not data:
                    break
                received += len(data)

    thread = threading.Thread(target=sink)
    thread.start()
    chunk = bytes(65536)
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as client:
        sent = 0
        while sent < total:
            client.sendall(chunk[: min(len(chunk), total - sent)])
            sent += min(len(chunk), total - sent)
    thread.join()
    elapsed = time.perf_counter() - started
    listener.close()
    assert received == total
    return total / elapsed


def connections_layers(count: int) -> float:
    wire = _Wire(TcpConfig(msl=0.001, max_per_source=count + 10, max_connections=count * 4))
    started = time.perf_counter()
    for _ in range(count):
        client, server = wire.establish()
        wire.a.close(wire.now, client)
        wire.b.close(wire.now, server)
        wire.settle()
        wire.now += 0.01
        wire.a.timers_expired(wire.now)
        wire.b.timers_expired(wire.now)
        wire.a.take_events()
        wire.b.take_events()
    return count / (time.perf_counter() - started)


def connections_kernel(count: int) -> float:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    address = listener.getsockname()
    started = time.perf_counter()
    for _ in range(count):
        client = socket.create_connection(address)
        server, _ = listener.accept()
        client.close()
        server.close()
    elapsed = time.perf_counter() - started
    listener.close()
    return count / elapsed


def idle_connection_memory(count: int) -> float:
    wire = _Wire(TcpConfig(max_per_source=count + 10, max_connections=count + 10))
    wire.b.listen(80)
    for _ in range(4):  # warm up caches and interned objects
        wire.establish()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(count):
        wire.a.connect(wire.now, A, B, 80)
        wire.settle()
    wire.b.take_events()
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    server_side = sum(stat.size_diff for stat in after.compare_to(before, "filename")
                      if "netstack/tcp" in str(stat.traceback))
    total = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    # Both layers live in this process; attribute half of what was allocated to each side.
    per_side = max(server_side, total) / 2
    return per_side / count


@dataclass(frozen=True, slots=True)
class _TapFamily:
    """The addresses one family's TAP figures use: the kernel's side in the namespace and ours on the TAP."""

    family: socket.AddressFamily
    kernel: str
    ours: str
    prefix_len: int


TAP4 = _TapFamily(socket.AF_INET, "10.79.0.1", "10.79.0.2", 24)
TAP6 = _TapFamily(socket.AF_INET6, "fd00:79::1", "fd00:79::2", 64)
TAP_MAC = bytes.fromhex("02504e0000b1")
IPV6_READY_TIMEOUT = 10.0


def _config(family: _TapFamily) -> NetworkConfig:
    """Our end of the TAP: always the IPv4 address (the stack needs one), and the IPv6 one for TAP6."""
    v4 = parse_static(f"{TAP4.ours}/{TAP4.prefix_len}")
    if family is TAP6:
        return NetworkConfig(v4, ipv6=StaticIp6(ip6_from_text(family.ours), family.prefix_len))
    return NetworkConfig(v4, ipv6=NoIpv6())


def bulk_tap(total: int, *, send: bool, family: _TapFamily = TAP4) -> float:
    """Bytes/s between the kernel (in a namespace) and our stack on a TAP device; `send`: we are the sender.

    The namespace, and with it the TAP device, is deleted on the way out whatever happened: our TAP file
    descriptor and every kernel socket made inside the namespace are closed first, since an open one would
    keep the namespace alive after `ip netns del`.
    """
    ipv6 = family.family == socket.AF_INET6
    with namespace("pbench") as ns:
        tap = f"pb{secrets.token_hex(3)}"
        link = run_in(ns, lambda: TapLink(tap, TAP_MAC))
        sockets: list[socket.socket] = []
        try:
            ip(ns, "addr", "add", f"{family.kernel}/{family.prefix_len}", "dev", tap, *(["nodad"] if ipv6 else []))
            ip(ns, "link", "set", tap, "up")

            async def main() -> float:
                loop = asyncio.get_running_loop()
                net = await start_network(link, _config(family))
                try:
                    if ipv6:  # duplicate address detection must pass before the address is used
                        await net.wait_source(ip6_from_text(family.kernel), IPV6_READY_TIMEOUT)
                    kernel = run_in(ns, lambda: socket.socket(family.family, socket.SOCK_STREAM))
                    sockets.append(kernel)
                    kernel.setblocking(False)
                    if send:
                        kernel.bind((family.kernel, 7001))
                        kernel.listen(1)
                        accept = loop.create_task(loop.sock_accept(kernel))
                        transport, _ = await net.open_connection(family.kernel, 7001, asyncio.Protocol)
                        conn, _ = await accept
                        sockets.append(conn)
                        conn.setblocking(False)
                        started = time.perf_counter()
                        transport.write(bytes(total))
                        count = 0
                        while count < total:
                            count += len(await loop.sock_recv(conn, 1 << 20))
                        elapsed = time.perf_counter() - started
                        transport.abort()
                    else:
                        done = asyncio.Event()
                        await net.start_server(7002, lambda: _Sink(total, done))
                        await loop.sock_connect(kernel, (family.ours, 7002))
                        started = time.perf_counter()
                        await loop.sock_sendall(kernel, bytes(total))
                        await asyncio.wait_for(done.wait(), 300)
                        elapsed = time.perf_counter() - started
                    return total / elapsed
                finally:
                    net.close()

            return asyncio.run(main())
        finally:
            for sock in sockets:
                sock.close()
            link.close()


def bulk_veth(total: int) -> float:
    """Kernel TCP between two namespaces joined by a veth pair: the reference for the TAP figures."""
    with namespace("pbench") as left, namespace("pbench") as right:
        subprocess.run(["ip", "link", "add", "pbv0", "netns", left, "type", "veth", "peer", "name", "pbv1",
                        "netns", right], check=True)
        ip(left, "addr", "add", "10.80.0.1/24", "dev", "pbv0")
        ip(right, "addr", "add", "10.80.0.2/24", "dev", "pbv1")
        ip(left, "link", "set", "pbv0", "up")
        ip(right, "link", "set", "pbv1", "up")
        listener = run_in(right, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        listener.bind(("10.80.0.2", 7003))
        listener.listen(1)
        received = 0

        def sink() -> None:
            nonlocal received
            conn, _ = listener.accept()
            with conn:
                while data := conn.recv(1 << 20):
                    received += len(data)

        thread = threading.Thread(target=sink)
        thread.start()
        client = run_in(left, lambda: socket.create_connection(("10.80.0.2", 7003)))
        chunk = bytes(1 << 20)
        started = time.perf_counter()
        sent = 0
        while sent < total:
            n = min(len(chunk), total - sent)
            client.sendall(chunk[:n])
            sent += n
        client.close()
        thread.join()
        elapsed = time.perf_counter() - started
        listener.close()
        return received / elapsed


def run(quick: bool) -> dict[str, Figure]:
    random.seed(1)
    size = 4_000_000 if quick else 64_000_000
    stack_size = 2_000_000 if quick else 32_000_000
    kernel = max(bulk_kernel(size) for _ in range(1 if quick else 3))
    ours = max(bulk_layers(size) for _ in range(1 if quick else 3))
    stack = bulk_stack(stack_size)
    conn_count = 200 if quick else 3000
    conns_ours = connections_layers(conn_count)
    conns_kernel = connections_kernel(conn_count)
    memory = idle_connection_memory(200 if quick else 2000)
    figures: dict[str, Figure] = {}
    if lab.available():
        tap_size = 4_000_000 if quick else 64_000_000
        veth = bulk_veth(tap_size * 4)
        tap: dict[tuple[bool, _TapFamily], float] = {}
        for _ in range(1 if quick else 3):
            for send in (False, True):
                for family in (TAP4, TAP6):
                    speed = bulk_tap(tap_size, send=send, family=family)
                    tap[send, family] = max(tap.get((send, family), 0.0), speed)
        figures["bulk_tap_receive"] = Figure(tap[False, TAP4] / 1e6, "MB/s", veth / 1e6)
        figures["bulk_tap_send"] = Figure(tap[True, TAP4] / 1e6, "MB/s", veth / 1e6)
        figures["bulk_tap6_receive"] = Figure(tap[False, TAP6] / 1e6, "MB/s", tap[False, TAP4] / 1e6)
        figures["bulk_tap6_send"] = Figure(tap[True, TAP6] / 1e6, "MB/s", tap[True, TAP4] / 1e6)
    return figures | {
        "bulk_layers": Figure(ours / 1e6, "MB/s", kernel / 1e6),
        "bulk_stack_memory_link": Figure(stack / 1e6, "MB/s", kernel / 1e6),
        "connections": Figure(conns_ours, "conn/s", conns_kernel),
        "idle_connection_memory": Figure(memory, "bytes", MEMORY_TARGET),
    }
