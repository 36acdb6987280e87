"""The TLS server engine as port 10000 runs it (the server identity, a client certificate required), fed whole
client flights by the scripted peer. Both versions, with and without a certificate. A completed handshake must
carry a chain the vault accepts (the boot CA, clientAuth) for the key of the CA's client leaf."""

from __future__ import annotations

from fuzz.fixtures import boot
from fuzz.tls_target import as_server, client_finale, client_peer, play, record, vault_accepts
from tls import x509
from tls.constants import TLS12
from tls.events import HandshakeComplete
from tls.server import ServerConnection


def new_engine() -> ServerConnection:
    fixture = boot()
    fixture.random.reset()
    return as_server(fixture.factory.server(fixture.pki.server, require_client_cert=True))


def authenticated(event: HandshakeComplete) -> None:
    fixture = boot()
    vault_accepts(fixture, event, x509.Purpose.CLIENT_AUTH, frozenset({fixture.client_spki}))


def fuzz_one(data: bytes) -> None:
    play(new_engine(), authenticated, data)


def seeds() -> dict[str, bytes]:
    def conversation(**options: object) -> bytes:
        return record(new_engine(), authenticated, client_peer(**options), client_finale)  # type: ignore[arg-type]

    return {
        "tls13-client-cert": conversation(),
        "tls12-client-cert": conversation(versions=(TLS12,)),
        "tls13-no-cert": conversation(certificate=False),
        "tls12-no-cert": conversation(versions=(TLS12,), certificate=False),
    }
