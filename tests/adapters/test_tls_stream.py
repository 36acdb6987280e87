"""The asyncio adapter over kernel sockets on loopback, against asyncio's own `ssl` streams, and over our own
netstack's transports on the in-memory link."""

from __future__ import annotations

import asyncio
import os
import ssl

import pytest

from adapters.tls_stream import HandshakeError, TLSProtocol, open_connection, stream_protocol_factory
from netstack.link.memory import Impairment
from outcomes.category import Category
from tests.netstack.builders import two_networks, until
from tests.tls.pki import client_config, client_leaf, server_config, server_leaf
from tests.tls.sslpeer import client_context, server_context
from tls.client import ClientConnection
from tls.config import ClientAuthMode
from tls.events import Closed, Event, HandshakeComplete, HandshakeFailed
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


class _PipeEnd:
    """A duck-typed transport (no asyncio.Transport base, as our netstack's): writes land in the peer
    protocol's data_received on the next loop iteration."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.peer: _PipeEnd | None = None
        self.protocol: asyncio.Protocol | None = None
        self._closing = False

    def write(self, data: bytes) -> None:
        peer = self.peer
        if not self._closing and peer is not None and peer.protocol is not None:
            self._loop.call_soon(peer.protocol.data_received, bytes(data))

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            for end in (self, self.peer):
                if end is not None and end.protocol is not None:
                    self._loop.call_soon(end.protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def is_closing(self) -> bool:
        return self._closing

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


def test_adapter_over_a_duck_typed_transport() -> None:
    received: list[bytes] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        a, b = _PipeEnd(loop), _PipeEnd(loop)
        a.peer, b.peer = b, a

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            received.append(await reader.readexactly(5))
            writer.write(b"world")

        server_protocol = stream_protocol_factory(lambda: ServerConnection(server_config()), serve,
                                                  handshake_timeout=5)()
        client_reader = asyncio.StreamReader()
        client_app = asyncio.StreamReaderProtocol(client_reader)
        client_protocol = TLSProtocol(ClientConnection(client_config()), client_app, handshake_timeout=5)
        a.protocol, b.protocol = client_protocol, server_protocol
        server_protocol.connection_made(b)  # type: ignore[arg-type]
        client_protocol.connection_made(a)  # type: ignore[arg-type]
        for _ in range(100):
            await asyncio.sleep(0)
            if client_protocol.handshake is not None:
                break
        assert client_protocol.handshake is not None
        writer = asyncio.StreamWriter(client_protocol._app_transport, client_app, client_reader, loop)
        writer.write(b"hello")
        assert await asyncio.wait_for(client_reader.readexactly(5), 5) == b"world"
        a.close()

    asyncio.run(main())
    assert received == [b"hello"]


def test_both_ends_over_our_netstack_on_the_in_memory_link() -> None:
    """The adapter over our own TCP's transports (duck-typed, no asyncio.Transport base), with loss and
    reordering on the link: mutual TLS 1.3, a megabyte each way, then a clean close_notify."""
    payload = os.urandom(2**20)
    events: list[Event] = []

    async def main() -> bytes:
        ours_a, ours_b = await two_networks(Impairment(loss=0.02, reorder=0.02))
        try:
            config = server_config(client_auth=ClientAuthMode.REQUIRED)
            await ours_b.start_server(443, stream_protocol_factory(
                lambda: ServerConnection(config), _echo, handshake_timeout=20, on_event=events.append))
            loop = asyncio.get_running_loop()
            connected: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = loop.create_future()
            app = asyncio.StreamReaderProtocol(asyncio.StreamReader(limit=2**16),
                                               lambda r, w: connected.set_result((r, w)))
            client = TLSProtocol(ClientConnection(client_config(cert_kind="p256")), app, handshake_timeout=20)
            await ours_a.open_connection("10.9.0.2", 443, lambda: client)
            reader, writer = await asyncio.wait_for(connected, 20)  # the app is connected once the handshake is
            assert client.handshake is not None
            assert client.handshake.version == "TLSv1.3"
            writer.write(payload)
            received = await asyncio.wait_for(reader.readexactly(len(payload)), 60)
            writer.close()  # our close_notify; the echo server answers with its own
            await until(lambda: any(isinstance(e, Closed) for e in events), 60)
            return received
        finally:
            ours_a.close()
            ours_b.close()

    assert asyncio.run(asyncio.wait_for(main(), 90)) == payload
    assert any(isinstance(e, HandshakeComplete) and e.peer_validated for e in events)
    assert [e.clean for e in events if isinstance(e, Closed)] == [True]
