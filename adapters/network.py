"""The whole userspace stack behind one asyncio-shaped object: `net = await start_network(link, config)`.

Composition only: a TcpLayer (pure) under a Stack (pure) under a Driver (asyncio), with TcpSockets turning TCP
events into Transport/Protocol callbacks. The randomness the pure layers need (the ISN/cookie secret, DHCP
transaction ids) is drawn here, from the OS, and passed in.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from adapters.stack_driver import Driver
from adapters.tcp_sockets import ProtocolFactory, TcpServer, TcpSockets, TcpTransport
from netstack.addresses import ip_to_text
from netstack.config import StaticIp, UseDhcp
from netstack.limits import DEFAULT_STACK_LIMITS, StackLimits
from netstack.link.base import Link
from netstack.stack import Stack, StackConfig
from netstack.tcp.config import TcpConfig
from netstack.tcp.layer import TcpLayer

StreamHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None] | None]
STREAM_LIMIT = 64 * 1024


@dataclass(frozen=True)
class NetworkConfig:
    addressing: StaticIp | UseDhcp
    tcp: TcpConfig = field(default_factory=TcpConfig)
    stack: StackLimits = DEFAULT_STACK_LIMITS


def _parse_address(address: str | bytes) -> bytes:
    if isinstance(address, bytes):
        if len(address) != 4:
            raise ValueError("IPv4 addresses are 4 bytes")
        return address
    parts = address.split(".")
    if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
        raise ValueError(f"not an IPv4 address: {address!r}")
    return bytes(int(p) for p in parts)


class Network:
    """A running interface: TCP servers and clients over our own stack."""

    def __init__(self, link: Link, stack: Stack, tcp: TcpLayer, driver: Driver, sockets: TcpSockets) -> None:
        self.link = link
        self.stack = stack
        self.tcp = tcp
        self.driver = driver
        self.sockets = sockets

    @property
    def address(self) -> bytes | None:
        return self.stack.address

    async def wait_address(self, timeout: float = 30.0) -> bytes:
        """Our IPv4 address, waiting for DHCP if need be."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.stack.address is None:
            if loop.time() > deadline:
                raise TimeoutError("no IPv4 address (DHCP did not complete)")
            await asyncio.sleep(0.05)
        return self.stack.address

    async def start_server(self, port: int, protocol_factory: ProtocolFactory, backlog: int = 128) -> TcpServer:
        return self.sockets.listen(port, protocol_factory, backlog)

    async def open_connection(self, address: str | bytes, port: int,
                              protocol_factory: ProtocolFactory) -> tuple[TcpTransport, asyncio.BaseProtocol]:
        local = await self.wait_address()
        return await self.sockets.connect(local, _parse_address(address), port, protocol_factory)

    async def start_stream_server(self, port: int, handler: StreamHandler, backlog: int = 128) -> TcpServer:
        """Like asyncio.start_server: `handler(reader, writer)` per accepted connection."""
        loop = asyncio.get_running_loop()

        def factory() -> asyncio.StreamReaderProtocol:
            reader = asyncio.StreamReader(limit=STREAM_LIMIT, loop=loop)
            return asyncio.StreamReaderProtocol(reader, handler, loop=loop)

        return await self.start_server(port, factory, backlog)

    async def open_stream(self, address: str | bytes, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Like asyncio.open_connection."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=STREAM_LIMIT, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        transport, _ = await self.open_connection(address, port, lambda: protocol)
        return reader, asyncio.StreamWriter(transport, protocol, reader, loop)

    def stats(self) -> dict[str, int]:
        out = dict(self.stack.stats())
        out.update({f"tcp-{k}": v for k, v in self.tcp.stats.items()})
        out["tcp-connections"] = len(self.tcp.by_id)
        out["tcp-half-open"] = len(self.tcp.half_open)
        out["tcp-time-wait"] = self.tcp.time_wait
        return out

    def describe(self) -> str:
        address = self.stack.address
        return f"{ip_to_text(address) if address else 'unconfigured'} mtu {self.stack.mtu}"

    def close(self) -> None:
        self.driver.close()


async def start_network(link: Link, config: NetworkConfig,
                        random_bytes: Callable[[int], bytes] = os.urandom) -> Network:
    """Compose and start the stack on `link` (call from inside the running loop). `random_bytes`: the
    caller's randomness source (the appliance passes its one source down; tests may seed one)."""
    loop = asyncio.get_running_loop()
    tcp_config = dataclasses.replace(config.tcp, mtu=link.mtu)
    tcp = TcpLayer(random_bytes(32), tcp_config)
    rng = random.Random(random_bytes(16))  # noqa: S311 (DHCP transaction ids and IP ids, not secrets)
    stack_config = StackConfig(mac=link.mac, addressing=config.addressing, mtu=link.mtu, limits=config.stack)
    stack = Stack(stack_config, tcp, rng=rng)
    driver = Driver(link, stack, loop)
    sockets = TcpSockets(tcp, driver, loop)
    driver.start()
    return Network(link, stack, tcp, driver, sockets)
