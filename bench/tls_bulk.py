"""Bulk TLS 1.3 throughput, both directions, TLS_AES_256_GCM_SHA384 on both sides (OpenSSL's default choice;
Python 3.11 cannot pick TLS 1.3 suites, so ours is set to match): our engines against each other versus two
stdlib `ssl` objects (MemoryBIO) against each other, in memory, same payload, interleaved rounds.

In memory so that the figure is the TLS layer's own cost (record framing, AEAD, buffer handling), not
the kernel's or asyncio's, which are the same for both.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import Figure
from bench.timing import interleaved_rates
from bench.tls_handshake import _pki
from tls.cli import load_chain, load_key
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
    return figures
