"""The TLS server engine as port 443 runs it (the web identity, no client authentication), fed whole client
flights by the scripted peer (fuzz/tls_peer.py). Both versions; a completed handshake has no peer chain."""

from __future__ import annotations

from dataclasses import replace

from fuzz import chunks
from fuzz.errors import require
from fuzz.fixtures import boot
from fuzz.tls_peer import HANDSHAKE, KINDS, RAW
from fuzz.tls_target import as_server, client_finale, client_peer, play, record
from tls.constants import TLS12, CipherSuite, ContentType, ExtensionType, HandshakeType
from tls.events import HandshakeComplete
from tls.messages import frame, parse_client_hello, serialize_client_hello
from tls.record import plaintext_record
from tls.server import ServerConnection


def new_engine() -> ServerConnection:
    fixture = boot()
    fixture.random.reset()
    return as_server(fixture.factory.server(fixture.pki.web, require_client_cert=False))


def authenticated(event: HandshakeComplete) -> None:
    require(event.peer_chain == () and not event.peer_validated, "a peer chain on a port that asks for none")


def fuzz_one(data: bytes) -> None:
    play(new_engine(), authenticated, data)


def _with_early_data(script: bytes) -> bytes:
    """A recorded TLS 1.3 script whose ClientHello also offers 0-RTT, followed by an early data record: the
    server refuses 0-RTT and skips it (RFC 8446 §4.2.10). The rest still completes: the scripted peer seals,
    signs and finishes over whatever transcript the engine holds."""
    steps = list(chunks.split(script, KINDS))
    hello = parse_client_hello(steps[0][1][4:])
    offered = replace(hello, extensions=(*hello.extensions, (ExtensionType.EARLY_DATA, b"")))
    steps[0] = (HANDSHAKE, frame(HandshakeType.CLIENT_HELLO, serialize_client_hello(offered)))
    steps.insert(1, (RAW, plaintext_record(ContentType.APPLICATION_DATA, bytes(range(40)))))
    return chunks.join(steps)


def seeds() -> dict[str, bytes]:
    def conversation(**options: object) -> bytes:
        return record(new_engine(), authenticated, client_peer(certificate=False, **options),  # type: ignore[arg-type]
                      client_finale)

    return {
        "tls13": conversation(),
        "tls13-early-data": _with_early_data(conversation()),
        "tls12": conversation(versions=(TLS12,)),
        "tls13-chacha": conversation(suites=(CipherSuite.TLS_CHACHA20_POLY1305_SHA256,)),
        "tls12-rsa": conversation(versions=(TLS12,), suites=(CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,)),
        "tls13-hello-retry": conversation(key_share_groups=()),
    }
