"""What the three engine targets share: building the engine the appliance would build, playing an input
against it, checking the appliance's view of a completed handshake, and recording seed conversations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from appliance.validation import PeerRejectedError
from fuzz import chunks
from fuzz.errors import PropertyViolationError, require
from fuzz.fixtures import BootFixture, boot
from fuzz.sources import NOW, Stream, now
from fuzz.tls_keys import Engine, leaf_spki
from fuzz.tls_peer import HANDSHAKE, KINDS, ScriptedPeer
from fuzz.tls_script import RealPeer, Recorder
from tls import x509
from tls.client import ClientConnection
from tls.config import ClientAuth, ClientAuthMode, ClientConfig, ServerConfig
from tls.constants import TLS12, HandshakeType
from tls.events import HandshakeComplete
from tls.messages import ClientHello, frame, serialize_client_hello
from tls.server import ServerConnection

PEER_RANDOM = Stream(b"pinata-fuzz-real-peer")
"""The real peer's randomness when recording seeds: its own stream, so the target engine draws exactly what it
draws at replay."""


def as_server(engine: object) -> ServerConnection:
    if not isinstance(engine, ServerConnection):
        raise TypeError(f"expected our server engine, got {type(engine).__name__}")
    return engine


def as_client(engine: object) -> ClientConnection:
    if not isinstance(engine, ClientConnection):
        raise TypeError(f"expected our client engine, got {type(engine).__name__}")
    return engine


def play(engine: Engine, authenticated: Callable[[HandshakeComplete], None], data: bytes) -> None:
    peer = ScriptedPeer(engine, boot().keys, authenticated)
    for kind, body in chunks.split(data, KINDS):
        peer.deliver(kind, body)


def vault_accepts(fixture: BootFixture, event: HandshakeComplete, purpose: x509.Purpose,
                  holders: frozenset[bytes]) -> None:
    """The check the vault makes before releasing the secret, made here independently of the engine: the chain
    ends at the boot CA and is fit for `purpose`, and its leaf is one whose key the CA's leaves hold (the
    peer proved possession of it in CertificateVerify, so no other key could have got this far)."""
    require(event.peer_validated, "handshake completed without a validated peer chain")
    try:
        fixture.validator(event.peer_chain, purpose, NOW)
    except PeerRejectedError as refused:
        raise PropertyViolationError(f"handshake completed with a chain the vault refuses: {refused}") from refused
    require(leaf_spki(event.peer_chain) in holders, "handshake completed for a key none of the CA's leaves has")


def record(engine: Engine, authenticated: Callable[[HandshakeComplete], None], peer: RealPeer,
           finale: Callable[[Recorder], None]) -> bytes:
    """A seed: the conversation of `engine` with the real `peer`, then `finale`'s extra steps."""
    recorder = Recorder(ScriptedPeer(engine, boot().keys, authenticated), peer)
    recorder.run()
    finale(recorder)
    return chunks.join(recorder.script)


def client_peer(*, versions: tuple[int, ...] = (), certificate: bool = True, suites: tuple[int, ...] = (),
                key_share_groups: tuple[int, ...] | None = None) -> ClientConnection:
    """A real client (our engine) for recording server seeds; empty tuples keep the defaults."""
    fixture = boot()
    PEER_RANDOM.reset()
    identity = fixture.pki.client
    config = ClientConfig(random=PEER_RANDOM, time=now, anchors=(fixture.pki.ca_der,),
                          chain=(identity.cert_der,) if certificate else (),
                          key=identity.key if certificate else None)
    config = replace(config, versions=versions or config.versions, suites=suites or config.suites,
                     key_share_groups=config.key_share_groups if key_share_groups is None else key_share_groups)
    return ClientConnection(config)


def server_peer(*, versions: tuple[int, ...] = (), web: bool = False, client_auth: bool = False,
                groups: tuple[int, ...] = ()) -> ServerConnection:
    """A real server (our engine) for recording client seeds; `groups` other than the client's share's makes
    it ask for another (HelloRetryRequest)."""
    fixture = boot()
    PEER_RANDOM.reset()
    identity = fixture.pki.web if web else fixture.pki.server
    auth = ClientAuth(ClientAuthMode.REQUIRED, (fixture.pki.ca_der,)) if client_auth else None
    config = ServerConfig(chain=(identity.cert_der,), key=identity.key, random=PEER_RANDOM, time=now,
                          client_auth=auth)
    return ServerConnection(replace(config, versions=versions or config.versions, groups=groups or config.groups))


def client_finale(recorder: Recorder) -> None:
    """After the handshake, a client peer sends a request, updates its keys (TLS 1.3) or asks to renegotiate
    (TLS 1.2, refused with a warning), and closes."""
    peer = as_client(recorder.peer)
    if not (peer.handshake_complete and recorder.scripted.complete) or peer.closed:
        return
    recorder.after(lambda p: p.send_application_data(b"GET / HTTP/1.1\r\nHost: pinata.local\r\n\r\n"))
    if peer.version == TLS12:
        hello = ClientHello(TLS12, bytes(32), b"", (0xC02B,), b"\x00", ())
        recorder.play((HANDSHAKE, frame(HandshakeType.CLIENT_HELLO, serialize_client_hello(hello))))
    else:
        recorder.after(lambda p: as_client(p).key_update())
    recorder.after(lambda p: p.close())
