"""Every refusal a client makes on what a server sends in its hello flight, with the alert (on the wire) and the
failure category. Hand-made ServerHellos where the refusal happens before any key exists; a real server with
one message rewritten where the refusal needs the handshake keys."""

from __future__ import annotations

import os
from typing import Any

import pytest

from outcomes.category import Category
from tests.tls.flights import server_flight_13
from tests.tls.pki import client_config, server_config
from tests.tls.refusal import assert_refused, failure_of
from tls.alerts import AlertDescription, AlertLevel
from tls.client import ClientConnection
from tls.config import ClientAuthMode
from tls.constants import DOWNGRADE_TLS11, DOWNGRADE_TLS12, TLS12, TLS13, CipherSuite, ExtensionType, HandshakeType
from tls.events import AlertReceived, HandshakeComplete
from tls.extensions import Extensions, serialize_extensions
from tls.messages import (
    CertificateRequest13,
    ServerHello,
    frame,
    serialize_certificate_request13,
    serialize_server_hello,
)
from tls.record import plaintext_record
from tls.server import ServerConnection

EMS_AND_RENEGOTIATION: Extensions = ((ExtensionType.RENEGOTIATION_INFO, b"\x00"),
                                     (ExtensionType.EXTENDED_MASTER_SECRET, b""))
SUITE12 = CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256


def server_hello(*, legacy_version: int = TLS12, random: bytes | None = None, compression: int = 0,
                 extensions: Extensions = EMS_AND_RENEGOTIATION, suite: int = SUITE12) -> bytes:
    """A TLS 1.2 ServerHello record (by default one a 1.2-capable client would accept)."""
    sh = ServerHello(legacy_version, random or os.urandom(32), b"", suite, compression, extensions)
    return plaintext_record(22, frame(2, serialize_server_hello(sh)))


def client(**kwargs: Any) -> ClientConnection:
    c = ClientConnection(client_config(**kwargs))
    c.data_to_send()
    return c


def test_a_valid_tls12_server_hello_is_taken() -> None:
    """The baseline the refusals below vary from."""
    c = client(versions=(TLS12,))
    c.receive_data(server_hello())
    assert c.events() == []
    assert c.version == TLS12


@pytest.mark.parametrize("versions", [(TLS13, TLS12), (TLS12,)])
def test_server_hello_choosing_compression(versions: tuple[int, ...]) -> None:
    assert_refused(client(versions=versions), server_hello(compression=1), AlertDescription.ILLEGAL_PARAMETER,
                   Category.COMPRESSION)


@pytest.mark.parametrize(("version", "category"), [
    (0x0300, Category.SSLV3), (0x0301, Category.OLD_TLS_VERSION), (0x0302, Category.OLD_TLS_VERSION)])
@pytest.mark.parametrize("versions", [(TLS13, TLS12), (TLS12,)])
def test_server_hello_choosing_an_old_version(version: int, category: Category, versions: tuple[int, ...]) -> None:
    assert_refused(client(versions=versions), server_hello(legacy_version=version),
                   AlertDescription.PROTOCOL_VERSION, category)


def test_tls12_server_hello_to_a_tls13_only_client() -> None:
    """RFC 8446 §4.1.3: a version the client did not offer is protocol_version, not a malformed hello."""
    assert_refused(client(versions=(TLS13,)), server_hello(extensions=()), AlertDescription.PROTOCOL_VERSION,
                   Category.OLD_TLS_VERSION)


def test_sslv3_legacy_version_selecting_tls13_is_refused() -> None:
    """RFC 8446 Appendix D.5: ServerHello.legacy_version 0x0300 is protocol_version, whatever supported_versions
    selects (it used to be illegal_parameter, the TLS 1.3 check's alert for any legacy_version but 0x0303)."""
    selected = ((ExtensionType.SUPPORTED_VERSIONS, TLS13.to_bytes(2, "big")),)
    assert_refused(client(), server_hello(legacy_version=0x0300, extensions=selected),
                   AlertDescription.PROTOCOL_VERSION, Category.SSLV3)


def test_tls13_legacy_version_without_supported_versions() -> None:
    """TLS 1.3 is only ever chosen through supported_versions; 0x0304 in legacy_version is a malformed hello."""
    assert_refused(client(), server_hello(legacy_version=TLS13), AlertDescription.ILLEGAL_PARAMETER,
                   Category.ILLEGAL_PARAMETER)


@pytest.mark.parametrize("sentinel", [DOWNGRADE_TLS12, DOWNGRADE_TLS11])
def test_downgrade_sentinels(sentinel: bytes) -> None:
    """A 1.3-capable client refuses a TLS 1.2 ServerHello whose random ends in either RFC 8446 §4.1.3 sentinel."""
    assert_refused(client(), server_hello(random=os.urandom(24) + sentinel), AlertDescription.ILLEGAL_PARAMETER,
                   Category.DOWNGRADE_SENTINEL)


def test_duplicate_extension_in_server_hello() -> None:
    twice = (*EMS_AND_RENEGOTIATION, (ExtensionType.EXTENDED_MASTER_SECRET, b""))
    assert_refused(client(versions=(TLS12,)), server_hello(extensions=twice), AlertDescription.ILLEGAL_PARAMETER,
                   Category.DUPLICATE_EXTENSION)


def test_extension_not_offered_in_server_hello() -> None:
    extra = (*EMS_AND_RENEGOTIATION, (ExtensionType.HEARTBEAT, b"\x01"))
    assert_refused(client(versions=(TLS12,)), server_hello(extensions=extra),
                   AlertDescription.UNSUPPORTED_EXTENSION, Category.UNSOLICITED_EXTENSION)


def test_ccs_before_server_hello() -> None:
    assert_refused(client(), plaintext_record(20, b"\x01"), AlertDescription.UNEXPECTED_MESSAGE,
                   Category.UNEXPECTED_MESSAGE)


def test_tls12_early_change_cipher_spec() -> None:
    """CVE-2014-0224's shape: a ChangeCipherSpec right after the ServerHello, before any key is agreed."""
    s = ServerConnection(server_config())
    c = ClientConnection(client_config(versions=(TLS12,)))
    s.receive_data(c.data_to_send())
    flight = s.data_to_send()
    messages = flight[5:]
    sh_end = 4 + int.from_bytes(messages[1:4], "big")
    assert messages[0] == 2
    assert_refused(c, plaintext_record(22, messages[:sh_end]) + plaintext_record(20, b"\x01"),
                   AlertDescription.UNEXPECTED_MESSAGE, Category.UNEXPECTED_MESSAGE)


def test_tls12_change_cipher_spec_before_server_hello_done() -> None:
    """A ChangeCipherSpec after ServerKeyExchange but before ServerHelloDone, when no pending keys exist yet."""
    s = ServerConnection(server_config())
    c = ClientConnection(client_config(versions=(TLS12,)))
    s.receive_data(c.data_to_send())
    messages = s.data_to_send()[5:]
    cut = 0
    for _ in range(3):  # ServerHello, Certificate, ServerKeyExchange
        cut += 4 + int.from_bytes(messages[cut + 1 : cut + 4], "big")
    assert messages[cut] == 14  # ServerHelloDone follows
    assert_refused(c, plaintext_record(22, messages[:cut]) + plaintext_record(20, b"\x01"),
                   AlertDescription.UNEXPECTED_MESSAGE, Category.UNEXPECTED_MESSAGE)


def _refused_in_flight(client_events: list[Any], server_events: list[Any], alert: int, category: Category) -> None:
    """The client refuses a protected server message: its failure, and the server reading the alert."""
    failure = failure_of(client_events)
    assert (failure.alert, failure.category) == (alert, category), failure
    assert AlertReceived(AlertLevel.FATAL, alert) in server_events
    assert not any(isinstance(e, HandshakeComplete) for e in client_events + server_events)


def _server_flight_edited(position: int, message: bytes, *, client_auth: ClientAuthMode | None = None,
                          **client_kwargs: Any) -> tuple[list[Any], list[Any]]:
    """A real TLS 1.3 server flight with its message at `position` replaced; (client, server) events."""
    c = ClientConnection(client_config(**client_kwargs))
    s = ServerConnection(server_config(client_auth=client_auth))
    flight = server_flight_13(c, s)
    messages = list(flight.messages)
    messages[position] = message
    c.receive_data(flight.seal(messages))
    s.receive_data(c.data_to_send())
    return c.events(), s.events()


def test_duplicate_extension_in_encrypted_extensions() -> None:
    twice = (ExtensionType.SERVER_NAME, b""), (ExtensionType.SERVER_NAME, b"")
    client_events, server_events = _server_flight_edited(0, frame(HandshakeType.ENCRYPTED_EXTENSIONS,
                                                                  serialize_extensions(twice)))
    _refused_in_flight(client_events, server_events, AlertDescription.ILLEGAL_PARAMETER,
                       Category.DUPLICATE_EXTENSION)


def test_certificate_request_with_a_context_during_the_handshake() -> None:
    """RFC 8446 §4.3.2: certificate_request_context is empty unless the request is post-handshake."""
    request = CertificateRequest13(b"\x07", ((ExtensionType.SIGNATURE_ALGORITHMS, b"\x00\x02\x04\x03"),))
    client_events, server_events = _server_flight_edited(
        1, frame(HandshakeType.CERTIFICATE_REQUEST, serialize_certificate_request13(request)),
        client_auth=ClientAuthMode.OPTIONAL, cert_kind="p256")
    _refused_in_flight(client_events, server_events, AlertDescription.ILLEGAL_PARAMETER, Category.ILLEGAL_PARAMETER)

