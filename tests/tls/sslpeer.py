"""Python's `ssl` (OpenSSL) as an in-memory reference peer, through MemoryBIO."""

from __future__ import annotations

import ssl
import tempfile
from pathlib import Path

from tests.tls.pki import Issued, ca
from tls.client import ClientConnection
from tls.events import Event
from tls.server import ServerConnection


def write_pem(directory: Path, name: str, data: bytes) -> str:
    path = directory / name
    path.write_bytes(data)
    return str(path)


def server_context(leaf: Issued, *, client_ca: bool = False, version: ssl.TLSVersion | None = None,
                   groups: str | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        context.load_cert_chain(write_pem(d, "c.pem", leaf.pem + ca().pem), write_pem(d, "k.pem", leaf.key_pem))
        if client_ca:
            context.load_verify_locations(write_pem(d, "ca.pem", ca().pem))
            context.verify_mode = ssl.CERT_REQUIRED
    if version is not None:
        context.minimum_version = context.maximum_version = version
    if groups is not None:
        context.set_ecdh_curve(groups)
    return context


def client_context(*, leaf: Issued | None = None, version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=ca().pem.decode())
    if leaf is not None:
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            context.load_cert_chain(write_pem(d, "c.pem", leaf.pem), write_pem(d, "k.pem", leaf.key_pem))
    if version is not None:
        context.minimum_version = context.maximum_version = version
    return context


class SslPeer:
    def __init__(self, context: ssl.SSLContext, server_side: bool, server_hostname: str | None = None) -> None:
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.obj = context.wrap_bio(self.incoming, self.outgoing, server_side=server_side,
                                    server_hostname=server_hostname)
        self.done = False
        self.error: ssl.SSLError | None = None
        self.received = bytearray()

    def step(self, data: bytes) -> bytes:
        if data:
            self.incoming.write(data)
        try:
            if not self.done:
                self.obj.do_handshake()
                self.done = True
            while True:
                chunk = self.obj.read(65536)
                if not chunk:
                    break
                self.received += chunk
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            pass
        except ssl.SSLError as err:
            self.error = err
        return self.outgoing.read()


def run(engine: ClientConnection | ServerConnection, peer: SslPeer, rounds: int = 30) -> list[Event]:
    """Exchange bytes until quiet; the engine's events are returned."""
    events: list[Event] = []
    for _ in range(rounds):
        from_engine = engine.data_to_send()
        to_engine = peer.step(from_engine)
        if to_engine:
            engine.receive_data(to_engine)
        events += engine.events()
        if not from_engine and not to_engine:
            break
    return events
