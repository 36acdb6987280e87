"""Bulk TLS 1.3 throughput, both directions, TLS_AES_256_GCM_SHA384 on both sides (OpenSSL's default choice;
Python 3.11 cannot pick TLS 1.3 suites, so ours is set to match).

Two settings, each measured side by side with the stdlib `ssl` in the same run:
- in memory (`*_MB_per_s`): our engines against each other versus two `ssl` MemoryBIO objects; the TLS
  layer's own cost (record framing, AEAD, buffer handling), nothing else.
- over loopback TCP in one asyncio loop (`socket_*`): our `adapters.tls_stream` adapter on both ends versus asyncio's
  own `ssl` transports on both ends; what an application sees, event loop and kernel included.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from adapters.tls_cli import load_chain, load_key
from adapters.tls_stream import open_connection, stream_protocol_factory
from bench.harness import Figure
from bench.timing import interleaved_rates
from bench.tls_handshake import _pki
from tls.client import ClientConnection
from tls.config import ClientConfig, ServerConfig
from tls.constants import CipherSuite
from tls.events import ApplicationData
from tls.server import ServerConnection

CHUNK = 256 * 1024
"""Bytes handed to the sender per call, as an application writing a large buffer would."""


def _now() -> datetime:
    return datetime.now(UTC)


def _ours(ca: str, chain: str, key: str) -> tuple[ClientConnection, ServerConnection]:
    server = ServerConnection(ServerConfig(chain=load_chain(chain), key=load_key(key), random=os.urandom, time=_now,
                                           suites=(CipherSuite.TLS_AES_256_GCM_SHA384,)))
    client = ClientConnection(ClientConfig(random=os.urandom, time=_now, anchors=load_chain(ca),
                                           server_name="localhost"))
    for _ in range(5):  # (an empty receive_data would mean end of stream)
        if to_server := client.data_to_send():
            server.receive_data(to_server)
        if to_client := server.data_to_send():
            client.receive_data(to_client)
    assert client.handshake_complete
    assert server.handshake_complete
    return client, server


def _ssl_pair(ca: str, chain: str, key: str) -> tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO,
                                                      ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO]:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(chain, key)
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(ca)
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname="localhost")
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for obj in (client, server):
            with contextlib.suppress(ssl.SSLWantReadError):
                obj.do_handshake()
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    return client, c_in, c_out, server, s_in, s_out


def _drain_ssl(obj: ssl.SSLObject) -> int:
    total = 0
    while True:
        try:
            data = obj.read(65536)
        except ssl.SSLWantReadError:
            return total
        total += len(data)


def _ours_transfer(sender: ClientConnection | ServerConnection, receiver: ClientConnection | ServerConnection,
                   payload: bytes) -> Callable[[], None]:
    def transfer() -> None:
        sender.send_application_data(payload)
        receiver.receive_data(sender.data_to_send())
        got = sum(len(e.data) for e in receiver.events() if isinstance(e, ApplicationData))
        assert got == len(payload)

    return transfer


def _ssl_transfer(sender: ssl.SSLObject, sender_out: ssl.MemoryBIO, receiver: ssl.SSLObject,
                  receiver_in: ssl.MemoryBIO, payload: bytes) -> Callable[[], None]:
    def transfer() -> None:
        sender.write(payload)
        receiver_in.write(sender_out.read())
        assert _drain_ssl(receiver) == len(payload)

    return transfer


SOCKET_CHUNK = 1 << 20


async def _sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Upload target: read the announced number of bytes, answer one byte."""
    total = int((await reader.readexactly(12)).decode())
    while total:
        total -= len(await reader.read(min(total, 1 << 20)))
    writer.write(b"!")
    await writer.drain()
    writer.close()


async def _source(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Download source: send the announced number of bytes."""
    total = int((await reader.readexactly(12)).decode())
    block = bytes(SOCKET_CHUNK)
    while total:
        writer.write(block[: min(total, SOCKET_CHUNK)])
        total -= min(total, SOCKET_CHUNK)
        await writer.drain()
    writer.close()


Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _transfer(connect: Callable[[], Awaitable[Streams]], total: int, upload: bool) -> float:
    """Seconds to move `total` bytes once connected (handshake excluded)."""
    reader, writer = await connect()
    started = time.perf_counter()
    writer.write(b"%012d" % total)
    if upload:
        block = bytes(SOCKET_CHUNK)
        left = total
        while left:
            writer.write(block[: min(left, SOCKET_CHUNK)])
            left -= min(left, SOCKET_CHUNK)
            await writer.drain()
        await reader.readexactly(1)
    else:
        left = total
        while left:
            data = await reader.read(1 << 20)
            if not data:
                raise RuntimeError("download ended early")
            left -= len(data)
    elapsed = time.perf_counter() - started
    writer.close()
    return elapsed


async def _socket_rates(ca: str, chain: str, key: str, total: int, rounds: int) -> dict[str, tuple[float, float]]:
    loop = asyncio.get_running_loop()
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(chain, key)
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(ca)
    server_config = ServerConfig(chain=load_chain(chain), key=load_key(key), random=os.urandom, time=_now,
                                 suites=(CipherSuite.TLS_AES_256_GCM_SHA384,))
    client_config = ClientConfig(random=os.urandom, time=_now, anchors=load_chain(ca), server_name="localhost")
    results: dict[str, tuple[float, float]] = {}
    for name, handler, upload in (("socket_upload_MB_per_s", _sink, True),
                                  ("socket_download_MB_per_s", _source, False)):
        ours_server = await loop.create_server(
            stream_protocol_factory(lambda: ServerConnection(server_config), handler, handshake_timeout=10),
            "127.0.0.1", 0)
        ref_server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=server_ctx)
        ours_port = ours_server.sockets[0].getsockname()[1]
        ref_port = ref_server.sockets[0].getsockname()[1]

        async def ours(port: int = ours_port) -> Streams:
            reader, writer, _ = await open_connection("127.0.0.1", port, ClientConnection(client_config),
                                                      handshake_timeout=10, limit=1 << 20)
            return reader, writer

        async def ref(port: int = ref_port) -> Streams:
            return await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx, server_hostname="localhost",
                                                 limit=1 << 20)

        best_ours = best_ref = 0.0
        for _ in range(rounds):
            best_ours = max(best_ours, total / await _transfer(ours, total, upload) / 1e6)
            best_ref = max(best_ref, total / await _transfer(ref, total, upload) / 1e6)
        results[name] = (best_ours, best_ref)
        ours_server.close()
        ref_server.close()
    return results


def run(quick: bool) -> dict[str, Figure]:
    seconds = 0.6 if quick else 6.0
    payload = os.urandom(CHUNK)
    with tempfile.TemporaryDirectory() as tmp:
        ca, chain, key = _pki(Path(tmp))
        client, server = _ours(ca, chain, key)
        s_client, c_in, c_out, s_server, s_in, s_out = _ssl_pair(ca, chain, key)
        _drain_ssl(s_client)  # session tickets
        figures = {}
        for name, ours, ref in (
            ("client_to_server_MB_per_s", _ours_transfer(client, server, payload),
             _ssl_transfer(s_client, c_out, s_server, s_in, payload)),
            ("server_to_client_MB_per_s", _ours_transfer(server, client, payload),
             _ssl_transfer(s_server, s_out, s_client, c_in, payload)),
        ):
            ours_rate, ref_rate = interleaved_rates(ours, ref, seconds=seconds)
            figures[name] = Figure(ours_rate * CHUNK / 1e6, "MB/s", ref_rate * CHUNK / 1e6)
        total, rounds = (8 << 20, 2) if quick else (64 << 20, 4)
        for name, (ours_mb, ref_mb) in asyncio.run(_socket_rates(ca, chain, key, total, rounds)).items():
            figures[name] = Figure(ours_mb, "MB/s", ref_mb)
    return figures
