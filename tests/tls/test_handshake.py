"""Our client against our server in memory: every suite, group and signature key, with and without client
certificates, both versions; byte-split delivery; KeyUpdate, padding, close_notify."""

from __future__ import annotations

from typing import Any

import pytest

from tests.tls.pki import client_config, server_config
from tests.tls.pump import pump
from tls.client import ClientConnection
from tls.config import NO_VALIDATION_FOR_TESTS, ClientAuthMode
from tls.constants import TLS12, TLS13, CipherSuite, NamedGroup
from tls.errors import StateError
from tls.events import AlertReceived, ApplicationData, Closed, Event, HandshakeComplete
from tls.server import ServerConnection
from tls.suites import SUITES


def complete(events: list[Event]) -> HandshakeComplete:
    done = [e for e in events if isinstance(e, HandshakeComplete)]
    assert len(done) == 1, events
    return done[0]


def connect(server_kwargs: dict[str, Any] | None = None, client_kwargs: dict[str, Any] | None = None,
            chunk: int | None = None) -> tuple[ClientConnection, ServerConnection, HandshakeComplete,
                                                HandshakeComplete]:
    s = ServerConnection(server_config(**(server_kwargs or {})))
    c = ClientConnection(client_config(**(client_kwargs or {})))
    client_events, server_events = pump(c, s, chunk=chunk)
    return c, s, complete(client_events), complete(server_events)


def exchange(c: ClientConnection, s: ServerConnection, payload: bytes) -> None:
    c.send_application_data(payload)
    s.receive_data(c.data_to_send())
    got = b"".join(e.data for e in s.events() if isinstance(e, ApplicationData))
    assert got == payload
    s.send_application_data(payload[::-1])
    c.receive_data(s.data_to_send())
    assert b"".join(e.data for e in c.events() if isinstance(e, ApplicationData)) == payload[::-1]


TLS13_SUITES = [code for code, info in SUITES.items() if info.version == TLS13]


def with_client_certificate(client_kind: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Extra (server, client) settings: a required client certificate of `client_kind`, or none asked for."""
    if client_kind is None:
        return {}, {}
    return {"client_auth": ClientAuthMode.REQUIRED}, {"cert_kind": client_kind}


def assert_client_authenticated(server_done: HandshakeComplete, client_kind: str | None) -> None:
    if client_kind is None:
        assert server_done.peer_chain == ()
        assert not server_done.peer_validated
    else:
        assert len(server_done.peer_chain) == 1
        assert server_done.peer_validated


@pytest.mark.parametrize("client_kind", [None, "p256", "p384", "ed25519", "rsa"])
@pytest.mark.parametrize("suite", TLS13_SUITES)
@pytest.mark.parametrize("group", [NamedGroup.X25519, NamedGroup.SECP256R1, NamedGroup.SECP384R1])
@pytest.mark.parametrize("kind", ["p256", "p384", "ed25519", "rsa"])
def test_tls13_matrix(suite: int, group: int, kind: str, client_kind: str | None) -> None:
    server_auth, client_auth = with_client_certificate(client_kind)
    c, s, client_done, server_done = connect({"kind": kind, "suites": (suite,), **server_auth},
                                             {"key_share_groups": (group,), **client_auth})
    assert client_done.version == server_done.version == "TLSv1.3"
    assert client_done.cipher_suite == server_done.cipher_suite == CipherSuite(suite).name
    assert client_done.group == NamedGroup(group).name.lower()
    assert client_done.peer_validated
    assert len(client_done.peer_chain) == 2
    assert_client_authenticated(server_done, client_kind)
    exchange(c, s, b"x" * 100)


@pytest.mark.parametrize("client_kind", ["p256", "p384", "ed25519", "rsa"])
@pytest.mark.parametrize("versions", [(TLS13,), (TLS12,)])
def test_client_certificates(client_kind: str, versions: tuple[int, ...]) -> None:
    c, s, client_done, server_done = connect({"client_auth": ClientAuthMode.REQUIRED},
                                             {"cert_kind": client_kind, "versions": versions})
    assert server_done.peer_validated
    assert len(server_done.peer_chain) == 1
    assert client_done.version == ("TLSv1.3" if versions == (TLS13,) else "TLSv1.2")
    exchange(c, s, b"secret please")


def test_optional_client_auth_without_a_certificate() -> None:
    for versions in ((TLS13,), (TLS12,)):
        _, _, _, server_done = connect({"client_auth": ClientAuthMode.OPTIONAL}, {"versions": versions})
        assert server_done.peer_chain == ()
        assert not server_done.peer_validated


TLS12_SUITES = [code for code, info in SUITES.items() if info.version == TLS12]


@pytest.mark.parametrize("client_kind", [None, "p256", "rsa"])
@pytest.mark.parametrize("suite", TLS12_SUITES)
@pytest.mark.parametrize("group", [NamedGroup.X25519, NamedGroup.SECP256R1, NamedGroup.SECP384R1])
def test_tls12_matrix(suite: int, group: int, client_kind: str | None) -> None:
    kind = "rsa" if SUITES[suite].auth == "rsa" else "p256"
    server_auth, client_auth = with_client_certificate(client_kind)
    c, s, client_done, server_done = connect({"kind": kind, "suites": (suite,), "groups": (group,), **server_auth},
                                             {"versions": (TLS12,), **client_auth})
    assert client_done.version == "TLSv1.2"
    assert server_done.cipher_suite == CipherSuite(suite).name
    assert server_done.group == NamedGroup(group).name.lower()
    assert_client_authenticated(server_done, client_kind)
    exchange(c, s, b"y" * 40000)


@pytest.mark.parametrize("kind", ["p384", "ed25519"])
def test_tls12_other_server_keys(kind: str) -> None:
    _, _, client_done, _ = connect({"kind": kind}, {"versions": (TLS12,)})
    assert client_done.cipher_suite.startswith("TLS_ECDHE_ECDSA")


def test_version_negotiation_prefers_tls13() -> None:
    _, _, done, _ = connect()
    assert done.version == "TLSv1.3"
    _, _, done, _ = connect({"versions": (TLS12,)})
    assert done.version == "TLSv1.2"
    _, _, done, _ = connect({}, {"versions": (TLS12,)})
    assert done.version == "TLSv1.2"


def test_hello_retry_request() -> None:
    c, s, client_done, server_done = connect({"groups": (NamedGroup.SECP384R1,)})
    assert client_done.group == server_done.group == "secp384r1"
    exchange(c, s, b"after retry")


@pytest.mark.parametrize("chunk", [1, 7, 100])
@pytest.mark.parametrize("versions", [(TLS13,), (TLS12,)])
def test_byte_split_delivery(chunk: int, versions: tuple[int, ...]) -> None:
    c, s, _, _ = connect({"client_auth": ClientAuthMode.REQUIRED, "groups": (NamedGroup.SECP256R1,)},
                         {"cert_kind": "p256", "versions": versions}, chunk=chunk)
    c.send_application_data(b"split me")
    data = c.data_to_send()
    for i in range(len(data)):
        s.receive_data(data[i : i + 1])
    assert b"".join(e.data for e in s.events() if isinstance(e, ApplicationData)) == b"split me"


def test_key_update_both_directions() -> None:
    c, s, _, _ = connect()
    for _ in range(3):
        c.key_update(request_peer=True)
        s.receive_data(c.data_to_send())
        assert s.events() == []
        c.receive_data(s.data_to_send())  # the server's answering KeyUpdate
        assert c.events() == []
        exchange(c, s, b"after key update")
    s.key_update(request_peer=False)
    c.receive_data(s.data_to_send())
    assert c.data_to_send() == b""
    exchange(c, s, b"after one-sided update")


def test_key_update_needs_tls13() -> None:
    c, _, _, _ = connect({"versions": (TLS12,)})
    with pytest.raises(StateError):
        c.key_update()


def test_large_transfer_is_fragmented_into_max_records() -> None:
    c, s, _, _ = connect()
    payload = bytes(range(256)) * 4096  # 1 MiB
    c.send_application_data(payload)
    wire = c.data_to_send()
    assert len(wire) == len(payload) + (len(payload) // 2**14) * (5 + 1 + 16)
    s.receive_data(wire)
    assert b"".join(e.data for e in s.events() if isinstance(e, ApplicationData)) == payload


def test_padding_hides_lengths() -> None:
    c, s, _, _ = connect({"padding": 256}, {"padding": 256})
    for size in (1, 10, 200):
        c.send_application_data(b"z" * size)
        wire = c.data_to_send()
        assert len(wire) == 5 + 256 + 16
        s.receive_data(wire)
        assert [e.data for e in s.events() if isinstance(e, ApplicationData)] == [b"z" * size]


def test_close_notify_both_ways() -> None:
    c, s, _, _ = connect()
    c.close()
    s.receive_data(c.data_to_send())
    events = s.events()
    assert isinstance(events[0], AlertReceived)
    assert events[0].description == 0
    assert events[-1] == Closed(clean=True)
    c.receive_data(s.data_to_send())
    assert c.events()[-1] == Closed(clean=True)
    with pytest.raises(StateError):
        c.send_application_data(b"too late")


def test_eof_without_close_notify_is_unclean() -> None:
    _, s, _, _ = connect()
    s.receive_data(b"")
    assert s.events() == [Closed(clean=False)]


def test_send_before_handshake_is_a_state_error() -> None:
    c = ClientConnection(client_config())
    with pytest.raises(StateError):
        c.send_application_data(b"early")


def test_sni_reaches_the_server() -> None:
    _, _, _, server_done = connect()
    assert server_done.server_name == "localhost"
    _, _, _, server_done = connect({}, {"server_name": None, "anchors": NO_VALIDATION_FOR_TESTS})
    assert server_done.server_name is None


def test_no_validation_when_client_has_no_anchors() -> None:
    _, _, client_done, _ = connect({}, {"anchors": NO_VALIDATION_FOR_TESTS, "server_name": None})
    assert not client_done.peer_validated
    assert client_done.peer_chain


def test_new_session_ticket_is_accepted_and_dropped() -> None:
    from tls.messages import NewSessionTicket, serialize_new_session_ticket

    c, s, _, _ = connect()
    s._queue_handshake(4, serialize_new_session_ticket(NewSessionTicket(60, 1, b"n", b"t", ())), False)
    s._flush_handshake()
    c.receive_data(s.data_to_send())
    assert c.events() == []
    exchange(c, s, b"still fine")
