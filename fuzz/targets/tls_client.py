"""The TLS client engine as ports 10001/10002 run it (the client identity, the server's chain validated against
the boot CA), fed whole server flights by the scripted peer. Both versions, with and without a certificate
request. A completed handshake must carry a chain the vault accepts (the boot CA, serverAuth) for the key of
one of the CA's server leaves."""

from __future__ import annotations

from fuzz.fixtures import boot
from fuzz.tls_peer import HANDSHAKE
from fuzz.tls_script import Recorder
from fuzz.tls_target import as_client, as_server, play, record, server_peer, vault_accepts
from tls import x509
from tls.client import ClientConnection
from tls.constants import TLS12, HandshakeType, NamedGroup
from tls.events import HandshakeComplete
from tls.messages import NewSessionTicket, frame, serialize_new_session_ticket


def new_engine() -> ClientConnection:
    fixture = boot()
    fixture.random.reset()
    return as_client(fixture.factory.client(fixture.pki.client))


def authenticated(event: HandshakeComplete) -> None:
    fixture = boot()
    vault_accepts(fixture, event, x509.Purpose.SERVER_AUTH, fixture.server_spkis)


def fuzz_one(data: bytes) -> None:
    play(new_engine(), authenticated, data)


def _finale(recorder: Recorder) -> None:
    """After the handshake, a server peer sends data, a session ticket and a KeyUpdate (TLS 1.3), and closes."""
    peer = as_server(recorder.peer)
    if not (peer.handshake_complete and recorder.scripted.complete) or peer.closed:
        return
    recorder.after(lambda p: p.send_application_data(b"hello from the scripted server"))
    if peer.version != TLS12:
        ticket = NewSessionTicket(7200, 1, b"\x00", b"ticket", ())
        recorder.play((HANDSHAKE, frame(HandshakeType.NEW_SESSION_TICKET, serialize_new_session_ticket(ticket))))
        recorder.after(lambda p: as_server(p).key_update())
    recorder.after(lambda p: p.close())


def seeds() -> dict[str, bytes]:
    def conversation(**options: bool | tuple[int, ...]) -> bytes:
        return record(new_engine(), authenticated, server_peer(**options), _finale)  # type: ignore[arg-type]

    return {
        "tls13": conversation(),
        "tls12": conversation(versions=(TLS12,)),
        "tls13-certificate-request": conversation(client_auth=True),
        "tls12-certificate-request": conversation(versions=(TLS12,), client_auth=True),
        "tls13-web": conversation(web=True),
        "tls13-hello-retry": conversation(groups=(NamedGroup.SECP256R1,)),
    }
