"""The asyncio adapter over kernel sockets on loopback, against asyncio's own `ssl` streams."""

from __future__ import annotations

import asyncio
import os
import ssl

import pytest

from tests.tls.pki import client_config, client_leaf, server_config, server_leaf
from tests.tls.sslpeer import client_context, server_context
from tls.aio import HandshakeError, TLSProtocol, open_connection, stream_protocol_factory
from tls.client import ClientConnection
from tls.config import ClientAuthMode
from tls.events import Event, HandshakeComplete, HandshakeFailed
from tls.failure import Category
from tls.server import ServerConnection

PAYLOAD = os.urandom(3 * 2**20)


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


def test_our_client_over_sockets_to_ssl_server() -> None:
    async def main() -> None:
        server = await asyncio.start_server(_echo, "127.0.0.1", 0,
                                            ssl=server_context(server_leaf(), client_ca=True))
        port = server.sockets[0].getsockname()[1]
        async with server:
            reader, writer, done = await open_connection(
                "127.0.0.1", port, ClientConnection(client_config(cert_kind="p256")), handshake_timeout=10)
            assert done.version == "TLSv1.3"
            writer.write(PAYLOAD)
            received = await asyncio.wait_for(reader.readexactly(len(PAYLOAD)), 30)
            assert received == PAYLOAD
            writer.close()

    asyncio.run(main())


def test_ssl_client_over_sockets_to_our_server() -> None:
    events: list[Event] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        config = server_config(client_auth=ClientAuthMode.REQUIRED)
        factory = stream_protocol_factory(lambda: ServerConnection(config), _echo, handshake_timeout=10,
                                          on_event=events.append)
        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client_context(leaf=client_leaf()), server_hostname="localhost")
            writer.write(PAYLOAD)
            received = await asyncio.wait_for(reader.readexactly(len(PAYLOAD)), 30)
            assert received == PAYLOAD
            writer.close()

    asyncio.run(main())
    assert any(isinstance(e, HandshakeComplete) and e.peer_validated for e in events)


def test_handshake_timeout_is_reported() -> None:
    events: list[Event] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        config = server_config()
        server = await loop.create_server(
            lambda: TLSProtocol(ServerConnection(config), asyncio.Protocol(), handshake_timeout=0.2,
                                on_event=events.append), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"\x16\x03\x01")  # a record header that never completes
            # close_notify, then end of stream
            assert await asyncio.wait_for(reader.read(), 5) == b"\x15\x03\x03\x00\x02\x01\x00"
            writer.close()

    asyncio.run(main())
    failures = [e for e in events if isinstance(e, HandshakeFailed)]
    assert [f.category for f in failures] == [Category.TIMEOUT]


def test_refused_handshake_raises_with_the_category() -> None:
    async def main() -> None:
        server = await asyncio.start_server(_echo, "127.0.0.1", 0,
                                            ssl=server_context(server_leaf(), version=ssl.TLSVersion.TLSv1_3))
        port = server.sockets[0].getsockname()[1]
        async with server:
            with pytest.raises(HandshakeError) as info:
                await open_connection("127.0.0.1", port, ClientConnection(client_config(server_name="wrong.example")),
                                      handshake_timeout=10)
            assert isinstance(info.value.event, HandshakeFailed)
            assert info.value.event.category is Category.NAME_MISMATCH

    asyncio.run(main())
