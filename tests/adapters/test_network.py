"""The composed stack (adapters.network.start_network) over an in-memory link pair: Protocols, streams, flow
control.

Every test runs on a virtual clock (tests/virtual_time.py): retransmission timers, the wire's delay and the
tests' own waits are virtual, so a result does not depend on how busy the machine is, and a wait that can
never end fails at once with its timeout instead of after it.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Awaitable, Callable

import pytest

from adapters.network import NetworkConfig, start_network
from netstack.config import UseDhcp
from netstack.link.memory import Impairment, memory_link_pair
from netstack.tcp.config import TcpConfig
from tests import virtual_time
from tests.netstack.builders import PEER_MAC, US_MAC, two_networks, until


def run(coro: Callable[[], Awaitable[None]]) -> None:
    virtual_time.run(asyncio.wait_for(coro(), 60))


class Collect(asyncio.Protocol):
    def __init__(self) -> None:
        self.data = bytearray()
        self.eof = asyncio.Event()
        self.lost: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.paused = 0
        self.resumed = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data

    def eof_received(self) -> bool:
        self.eof.set()
        return True

    def pause_writing(self) -> None:
        self.paused += 1

    def resume_writing(self) -> None:
        self.resumed += 1

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)


def test_protocol_echo_and_extra_info() -> None:
    async def main() -> None:
        a, b = await two_networks()
        server_side: list[Collect] = []

        def factory() -> Collect:
            proto = Collect()
            server_side.append(proto)
            return proto

        server = await b.start_server(7, factory)
        transport, client = await a.open_connection("10.9.0.2", 7, Collect)
        assert transport.get_extra_info("peername") == ("10.9.0.2", 7)
        assert transport.get_extra_info("sockname")[0] == "10.9.0.1"
        transport.write(b"hello ")
        transport.writelines([b"over ", b"our stack"])
        transport.write_eof()
        await until(lambda: server_side)
        await asyncio.wait_for(server_side[0].eof.wait(), 10)
        assert bytes(server_side[0].data) == b"hello over our stack"
        peer = server_side[0].transport
        assert peer is not None
        assert peer.get_extra_info("peername")[0] == "10.9.0.1"
        peer.write(b"bye")
        peer.close()
        assert peer.is_closing()
        assert isinstance(client, Collect)
        await asyncio.wait_for(client.eof.wait(), 10)
        assert bytes(client.data) == b"bye"
        transport.close()
        assert await asyncio.wait_for(client.lost, 10) is None
        server.close()
        await server.wait_closed()
        a.close()
        b.close()

    run(main)


def test_streams_bulk_both_ways_under_impairment() -> None:
    async def main() -> None:
        a, b = await two_networks(Impairment(loss=0.02, duplicate=0.02, reorder=0.02, delay=0.001))
        up = random.Random(1).randbytes(1_500_000)
        down = random.Random(2).randbytes(1_000_000)
        received: list[bytes] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            received.append(await reader.readexactly(len(up)))
            writer.write(down)
            await writer.drain()
            writer.close()

        await b.start_stream_server(8000, handle)
        reader, writer = await a.open_stream("10.9.0.2", 8000)
        writer.write(up)
        await writer.drain()
        got = await reader.read()  # until EOF
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(down).hexdigest()
        assert received == [up]
        writer.close()
        a.close()
        b.close()

    run(main)


def test_write_flow_control_and_pause_reading() -> None:
    async def main() -> None:
        a, b = await two_networks(tcp=TcpConfig(snd_buffer=16384, rcv_buffer=16384))
        servers: list[Collect] = []

        def factory() -> Collect:
            proto = Collect()
            servers.append(proto)
            return proto

        await b.start_server(9, factory)
        await asyncio.sleep(0)
        transport, client = await a.open_connection("10.9.0.2", 9, Collect)
        assert isinstance(client, Collect)
        await until(lambda: servers)
        server = servers[0]
        assert server.transport is not None
        server.transport.pause_reading()
        transport.set_write_buffer_limits(high=8192)
        transport.write(b"p" * 200_000)
        assert client.paused == 1
        assert transport.get_write_buffer_size() > 8192
        await asyncio.sleep(5.0)  # virtual: long enough for many retransmission timeouts and window probes
        # the reader is paused: its window closed, so almost everything still waits on the sending side
        assert len(server.data) == 0
        assert transport.get_write_buffer_size() > 100_000
        server.transport.resume_reading()
        await until(lambda: len(server.data) == 200_000)
        assert bytes(server.data) == b"p" * 200_000
        assert client.resumed == 1
        transport.abort()
        assert await asyncio.wait_for(client.lost, 5) is None
        lost = await asyncio.wait_for(server.lost, 5)
        assert isinstance(lost, ConnectionResetError)
        a.close()
        b.close()

    run(main)


def test_connection_refused_raises() -> None:
    async def main() -> None:
        a, b = await two_networks()
        with pytest.raises(ConnectionRefusedError):
            await a.open_connection("10.9.0.2", 4444, Collect)
        assert a.stats()["tcp-connections"] == 0
        a.close()
        b.close()

    run(main)


def test_writes_after_reset_or_close_are_dropped_and_after_eof_refused() -> None:
    """A peer's RST can land between an application's decision to write and the write itself; like asyncio's
    own transports, ours then drops the write instead of raising into the protocol."""

    async def main() -> None:
        a, b = await two_networks()
        server_side: list[Collect] = []

        def factory() -> Collect:
            server_side.append(Collect())
            return server_side[-1]

        await b.start_server(9, factory)
        transport, client = await a.open_connection("10.9.0.2", 9, Collect)
        await until(lambda: server_side and server_side[0].transport is not None)
        peer = server_side[0].transport
        assert peer is not None
        peer.abort()  # RST towards the client
        assert isinstance(client, Collect)
        assert isinstance(await asyncio.wait_for(client.lost, 10), ConnectionResetError)
        transport.write(b"after the reset")  # must not raise
        peer.write(b"after our own abort")  # must not raise either
        assert transport.is_closing()

        other, _ = await a.open_connection("10.9.0.2", 9, Collect)
        other.write_eof()
        with pytest.raises(RuntimeError, match="write_eof"):
            other.write(b"after eof")
        other.close()
        other.write(b"after close")  # dropped
        a.close()
        b.close()

    run(main)


def test_addresses_as_text_or_bytes_and_the_ones_refused() -> None:
    async def main() -> None:
        a, b = await two_networks()
        await b.start_server(7, Collect)
        assert a.address == bytes([10, 9, 0, 1])
        assert a.describe() == "10.9.0.1 mtu 1500"
        transport, _ = await a.open_connection(bytes([10, 9, 0, 2]), 7, Collect)
        assert transport.get_extra_info("peername") == ("10.9.0.2", 7)
        transport.close()
        for bad in (bytes([10, 9, 0]), "10.9.0", "10.9.0.256", "10.9.0.x", "10.9.0.2.1"):
            with pytest.raises(ValueError, match="IPv4"):
                await a.open_connection(bad, 7, Collect)
        a.close()
        b.close()

    run(main)


def test_without_a_dhcp_server_no_address_comes_and_connecting_times_out() -> None:
    async def main() -> None:
        link, peer = memory_link_pair(US_MAC, PEER_MAC)
        peer.start(lambda frames: None)  # a wire with nobody answering DHCP
        network = await start_network(link, NetworkConfig(UseDhcp()))
        assert network.address is None
        assert network.describe() == "unconfigured mtu 1500"
        with pytest.raises(TimeoutError, match="DHCP"):
            await network.wait_address(timeout=5.0)  # virtual time: seconds of DHCP retries, at once
        with pytest.raises(TimeoutError, match="DHCP"):
            await network.open_connection("10.9.0.2", 7, Collect)  # waits its default 30 s for an address
        assert network.stats()["tx-frames"] >= 2  # it did ask, more than once
        network.close()

    run(main)
