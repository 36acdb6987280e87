"""The Network the appliance runs on: the kernel's sockets or our userspace stack, one small interface.

Both give asyncio Transports and Protocols, so the endpoints are written once, over asyncio streams,
and the benchmark can swap the stack underneath them (DESIGN.md, "appliance").
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from typing import Protocol

ProtocolFactory = Callable[[], asyncio.Protocol]


class Listener(Protocol):
    def close(self) -> None: ...


class Network(Protocol):
    name: str

    async def start_server(self, port: int, factory: ProtocolFactory) -> Listener: ...

    async def open_connection(
        self, host: str, port: int, factory: ProtocolFactory
    ) -> tuple[asyncio.BaseTransport, asyncio.Protocol]: ...

    async def close(self) -> None: ...


class KernelNetwork:
    """Plain asyncio over the host kernel's TCP/IP: for quick runs, tests and side-by-side benchmarks."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.name = f"kernel:{host}"
        self._servers: list[asyncio.Server] = []

    async def start_server(self, port: int, factory: ProtocolFactory) -> Listener:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(factory, self.host, port, reuse_address=True, backlog=128)
        self._servers.append(server)
        return server

    async def open_connection(
        self, host: str, port: int, factory: ProtocolFactory
    ) -> tuple[asyncio.BaseTransport, asyncio.Protocol]:
        loop = asyncio.get_running_loop()
        return await loop.create_connection(factory, host, port)

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()


class NetstackUnavailableError(RuntimeError):
    """`--net tap:` / `--net packet:` asked for the userspace stack, which this tree does not have yet."""


def userspace_network(spec: str) -> Network:
    """`tap:IF` or `packet:IF` over `netstack.api.start_network`; refuses clearly when it is missing."""
    kind, _, interface = spec.partition(":")
    if kind not in ("tap", "packet") or not interface:
        raise ValueError(f"--net {spec!r}: expected kernel, tap:IF or packet:IF")
    try:
        api = importlib.import_module("netstack.api")
    except ImportError as exc:
        raise NetstackUnavailableError(
            f"--net {spec}: the userspace network stack (netstack.api) is not in this build yet; use --net kernel"
        ) from exc
    start = getattr(api, "start_network", None)
    if start is None:
        raise NetstackUnavailableError(f"--net {spec}: netstack.api has no start_network yet; use --net kernel")
    raise NetstackUnavailableError(
        f"--net {spec}: netstack.api.start_network exists but the appliance is not wired to it yet; use --net kernel"
    )


async def open_stream(
    network: Network, host: str, port: int, limit: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """asyncio streams over any Network's transports (what asyncio.open_connection does for sockets)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    transport, protocol = await network.open_connection(
        host, port, lambda: asyncio.StreamReaderProtocol(reader, loop=loop)
    )
    assert isinstance(protocol, asyncio.StreamReaderProtocol)
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)  # type: ignore[arg-type]
    return reader, writer
