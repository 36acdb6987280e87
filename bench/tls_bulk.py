"""Bulk TLS 1.3 throughput, both directions, TLS_AES_256_GCM_SHA384 on both sides (OpenSSL's default choice;
Python 3.11 cannot pick TLS 1.3 suites, so ours is set to match).

Two settings, each measured side by side with the stdlib `ssl` in the same run:
- in memory (`*_MB_per_s`): our engines against each other versus two `ssl` MemoryBIO objects; the TLS
  layer's own cost (record framing, AEAD, buffer handling), nothing else.
- over loopback TCP in one asyncio loop (`socket_*`): our engines through `adapters.tls_channel` (the adapter the
  appliance's endpoints run) on both ends versus asyncio's own `ssl` streams on both ends; what an application
  sees, event loop and kernel included.
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
from typing import Protocol

from adapters.tls_channel import RefusedError, TlsChannel, connect_tls, start_tls
from adapters.tls_cli import load_chain, load_key
from appliance.config import DEFAULT_LIMITS
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
TIMEOUT = 30.0
LINGER_SECONDS, LINGER_BYTES = DEFAULT_LIMITS.linger_seconds, DEFAULT_LIMITS.linger_bytes  # the appliance's


class Duplex(Protocol):
    """What the transfer needs of either side: our TLS channel, or asyncio's ssl streams."""

    async def send(self, data: bytes) -> None: ...

    async def recv(self, timeout: float) -> bytes: ...

    async def close(self) -> None: ...


class SslStreams:
    """asyncio's ssl streams behind the Duplex interface (write then drain, as our channel's send does)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer

    async def send(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def recv(self, timeout: float) -> bytes:
        return await asyncio.wait_for(self._reader.read(SOCKET_CHUNK), timeout)

    async def close(self) -> None:
        self._writer.close()


async def _recv_at_least(side: Duplex, count: int) -> bytes:
    """At least `count` bytes (a channel returns what one read decrypted, which may be more)."""
    data = b""
    while len(data) < count:
        chunk = await side.recv(TIMEOUT)
        if not chunk:
            raise RuntimeError("the stream ended early")
        data += chunk
    return data


async def _serve(side: Duplex) -> None:
    """The far end: read the announced direction and size, then sink (answering one byte) or source."""
    request = await _recv_at_least(side, 13)
    upload, total = request[:1] == b"u", int(request[1:13].decode())
    if upload:
        total -= len(request) - 13  # upload bytes that came with the announcement
        while total > 0:
            total -= len(await side.recv(TIMEOUT))
        await side.send(b"!")
    else:
        block = bytes(SOCKET_CHUNK)
        while total:
            await side.send(block[: min(total, SOCKET_CHUNK)])
            total -= min(total, SOCKET_CHUNK)
    await side.close()


async def _transfer(connect: Callable[[], Awaitable[Duplex]], total: int, upload: bool) -> float:
    """Seconds to move `total` bytes once connected (handshake excluded)."""
    side = await connect()
    started = time.perf_counter()
    await side.send((b"u" if upload else b"d") + b"%012d" % total)
    if upload:
        block = bytes(SOCKET_CHUNK)
        left = total
        while left:
            await side.send(block[: min(left, SOCKET_CHUNK)])
            left -= min(left, SOCKET_CHUNK)
        await _recv_at_least(side, 1)
    else:
        left = total
        while left:
            data = await side.recv(TIMEOUT)
            if not data:
                raise RuntimeError("download ended early")
            left -= len(data)
    elapsed = time.perf_counter() - started
    await side.close()
    return elapsed


async def _socket_rates(ca: str, chain: str, key: str, total: int, rounds: int) -> dict[str, tuple[float, float]]:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(chain, key)
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(ca)
    server_config = ServerConfig(chain=load_chain(chain), key=load_key(key), random=os.urandom, time=_now,
                                 suites=(CipherSuite.TLS_AES_256_GCM_SHA384,))
    client_config = ClientConfig(random=os.urandom, time=_now, anchors=load_chain(ca), server_name="localhost")

    async def ours_connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(RefusedError):
            tls, _ = await start_tls(reader, writer, ServerConnection(server_config), read_chunk=SOCKET_CHUNK,
                                     send_timeout=TIMEOUT, handshake_timeout=TIMEOUT,
                                     linger_seconds=LINGER_SECONDS, linger_bytes=LINGER_BYTES)
            await _serve(tls)

    async def ref_connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _serve(SslStreams(reader, writer))

    ours_server = await asyncio.start_server(ours_connected, "127.0.0.1", 0, limit=SOCKET_CHUNK)
    ref_server = await asyncio.start_server(ref_connected, "127.0.0.1", 0, ssl=server_ctx, limit=SOCKET_CHUNK)
    ours_port = ours_server.sockets[0].getsockname()[1]
    ref_port = ref_server.sockets[0].getsockname()[1]

    async def ours() -> TlsChannel:
        tls, _ = await connect_tls("127.0.0.1", ours_port, ClientConnection(client_config), read_chunk=SOCKET_CHUNK,
                                   send_timeout=TIMEOUT, handshake_timeout=TIMEOUT,
                                   linger_seconds=LINGER_SECONDS, linger_bytes=LINGER_BYTES)
        return tls

    async def ref() -> SslStreams:
        return SslStreams(*await asyncio.open_connection("127.0.0.1", ref_port, ssl=client_ctx,
                                                         server_hostname="localhost", limit=SOCKET_CHUNK))

    results: dict[str, tuple[float, float]] = {}
    for name, upload in (("socket_upload_MB_per_s", True), ("socket_download_MB_per_s", False)):
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
