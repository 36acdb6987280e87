"""Interop with Python's `ssl` (OpenSSL 3) in memory, both roles, both versions: client certificates,
HelloRetryRequest, KeyUpdate, multi-megabyte transfers, and OpenSSL's refusals of our mistakes."""

from __future__ import annotations

import contextlib
import ssl

import pytest

from outcomes.category import Category
from tests.tls.pki import client_config, client_leaf, server_config, server_leaf
from tests.tls.sslpeer import SslPeer, client_context, run, server_context
from tls.client import ClientConnection
from tls.config import ClientAuthMode
from tls.constants import TLS12, NamedGroup
from tls.events import ApplicationData, Closed, Event, HandshakeComplete, HandshakeFailed
from tls.server import ServerConnection

VERSIONS = [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2]


def _done(events: list[Event]) -> HandshakeComplete:
    done = [e for e in events if isinstance(e, HandshakeComplete)]
    assert len(done) == 1, events
    return done[0]


def _received(engine: ClientConnection | ServerConnection) -> bytes:
    return b"".join(e.data for e in engine.events() if isinstance(e, ApplicationData))


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("with_client_cert", [False, True])
@pytest.mark.parametrize("kind", ["p256", "p384", "rsa", "ed25519"])
def test_our_client_against_ssl_server(version: ssl.TLSVersion, with_client_cert: bool, kind: str) -> None:
    peer = SslPeer(server_context(server_leaf(kind), client_ca=with_client_cert, version=version), server_side=True)
    client = ClientConnection(client_config(cert_kind="rsa" if with_client_cert and kind == "rsa" else
                                            "p384" if with_client_cert else None))
    done = _done(run(client, peer))
    assert peer.error is None
    assert done.version == ("TLSv1.3" if version is ssl.TLSVersion.TLSv1_3 else "TLSv1.2")
    assert done.peer_validated
    if with_client_cert:
        assert peer.obj.getpeercert() is not None
    client.send_application_data(b"ping")
    peer.step(client.data_to_send())
    assert bytes(peer.received) == b"ping"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("with_client_cert", [False, True])
@pytest.mark.parametrize("kind", ["p256", "rsa", "ed25519"])
def test_ssl_client_against_our_server(version: ssl.TLSVersion, with_client_cert: bool, kind: str) -> None:
    peer = SslPeer(client_context(leaf=client_leaf() if with_client_cert else None, version=version),
                   server_side=False, server_hostname="localhost")
    server = ServerConnection(server_config(
        kind, client_auth=ClientAuthMode.REQUIRED if with_client_cert else None))
    server.receive_data(peer.step(b""))
    done = _done(server.events() + run(server, peer))
    assert peer.error is None
    assert peer.obj.version() == ("TLSv1.3" if version is ssl.TLSVersion.TLSv1_3 else "TLSv1.2")
    assert done.peer_validated == with_client_cert
    peer.obj.write(b"hello server")
    server.receive_data(peer.step(b""))
    assert _received(server) == b"hello server"


def test_hello_retry_request_from_ssl_server() -> None:
    peer = SslPeer(server_context(server_leaf(), groups="prime256v1"), server_side=True)
    client = ClientConnection(client_config())  # offers an X25519 share only
    done = _done(run(client, peer))
    assert done.group == "secp256r1"


def test_hello_retry_request_to_ssl_client() -> None:
    peer = SslPeer(client_context(), server_side=False, server_hostname="localhost")
    server = ServerConnection(server_config(groups=(NamedGroup.SECP384R1,)))
    server.receive_data(peer.step(b""))
    done = _done(server.events() + run(server, peer))
    assert done.group == "secp384r1"
    assert peer.error is None


@pytest.mark.parametrize("role", ["client", "server"])
def test_key_update_with_openssl(role: str) -> None:
    engine: ClientConnection | ServerConnection
    if role == "client":
        peer = SslPeer(server_context(server_leaf()), server_side=True)
        engine = ClientConnection(client_config())
        _done(run(engine, peer))
    else:
        peer = SslPeer(client_context(), server_side=False, server_hostname="localhost")
        engine = ServerConnection(server_config())
        engine.receive_data(peer.step(b""))
        _done(engine.events() + run(engine, peer))
    for round_ in range(3):
        engine.key_update(request_peer=True)
        engine.send_application_data(b"after update %d" % round_)
        reply = peer.step(engine.data_to_send())
        assert bytes(peer.received).endswith(b"after update %d" % round_)
        peer.obj.write(b"openssl under new keys %d" % round_)
        engine.receive_data(reply + peer.step(b""))
        assert _received(engine) == b"openssl under new keys %d" % round_


@pytest.mark.parametrize("version", VERSIONS)
def test_multi_megabyte_both_ways(version: ssl.TLSVersion) -> None:
    peer = SslPeer(server_context(server_leaf(), version=version), server_side=True)
    client = ClientConnection(client_config())
    _done(run(client, peer))
    payload = bytes(range(256)) * 16384  # 4 MiB
    client.send_application_data(payload)
    peer.step(client.data_to_send())
    assert bytes(peer.received) == payload
    peer.obj.write(payload[::-1])
    client.receive_data(peer.step(b""))
    assert _received(client) == payload[::-1]


@pytest.mark.parametrize("version", VERSIONS)
def test_multi_megabyte_both_ways_with_our_server(version: ssl.TLSVersion) -> None:
    """Our server under bulk data from an OpenSSL client and back, in TLS 1.2 as in 1.3."""
    peer = SslPeer(client_context(version=version), server_side=False, server_hostname="localhost")
    server = ServerConnection(server_config())
    server.receive_data(peer.step(b""))
    done = _done(server.events() + run(server, peer))
    assert done.version == ("TLSv1.3" if version is ssl.TLSVersion.TLSv1_3 else "TLSv1.2")
    payload = bytes(range(251)) * 16711  # just under 4 MiB, records of every offset
    view = memoryview(payload)
    for start in range(0, len(payload), 1 << 20):
        peer.obj.write(view[start : start + (1 << 20)])
        server.receive_data(peer.step(b""))
    assert _received(server) == payload
    server.send_application_data(payload[::-1])
    peer.step(server.data_to_send())
    assert bytes(peer.received) == payload[::-1]
    assert peer.error is None


def test_close_notify_with_openssl() -> None:
    peer = SslPeer(server_context(server_leaf()), server_side=True)
    client = ClientConnection(client_config())
    _done(run(client, peer))
    client.close()
    peer.step(client.data_to_send())
    with contextlib.suppress(ssl.SSLWantReadError):
        peer.obj.unwrap()
    client.receive_data(peer.outgoing.read())
    assert client.events()[-1] == Closed(clean=True)


def test_ssl_server_rejecting_our_missing_client_certificate() -> None:
    peer = SslPeer(server_context(server_leaf(), client_ca=True, version=ssl.TLSVersion.TLSv1_2), server_side=True)
    client = ClientConnection(client_config())
    events = run(client, peer)
    assert peer.error is not None
    assert any(getattr(e, "description", None) == 40 for e in events)  # handshake_failure from OpenSSL
    assert isinstance(events[-1], Closed)


def test_ssl_client_offering_only_tls12_to_tls13_only_server() -> None:
    peer = SslPeer(client_context(version=ssl.TLSVersion.TLSv1_2), server_side=False, server_hostname="localhost")
    server = ServerConnection(server_config(versions=(0x0304,)))
    server.receive_data(peer.step(b""))
    failures = [e for e in server.events() if isinstance(e, HandshakeFailed)]
    assert failures[0].category is Category.OLD_TLS_VERSION
    peer.step(server.data_to_send())
    assert peer.error is not None


def test_our_tls12_only_client_is_accepted_by_ssl() -> None:
    peer = SslPeer(server_context(server_leaf()), server_side=True)
    client = ClientConnection(client_config(versions=(TLS12,)))
    assert _done(run(client, peer)).version == "TLSv1.2"
