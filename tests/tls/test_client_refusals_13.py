"""What a TLS 1.3 client refuses from a server: HelloRetryRequests that break RFC 8446 §4.1.4, a ServerHello
that does not fit the retry or our shares, and server flights (built from the codecs and protected with the
keys the client's state holds) that carry what does not belong there."""

from __future__ import annotations

import os
from typing import Any

import pytest

from outcomes.category import Category
from tests.tls.flights import server_flight_13
from tests.tls.pki import client_config, server_config
from tests.tls.refusal import assert_refused, failure_of
from tls.alerts import AlertDescription
from tls.client import ClientConnection
from tls.client_states import AwaitServerHello, AwaitServerHello2
from tls.config import ClientAuthMode
from tls.constants import HRR_RANDOM, TLS12, TLS13, CipherSuite, ExtensionType, HandshakeType, NamedGroup
from tls.extensions import Extensions, serialize_extensions, serialize_server_share
from tls.groups import KeyShare
from tls.messages import (
    Certificate13,
    CertificateRequest13,
    ServerHello,
    frame,
    serialize_certificate13,
    serialize_certificate_request13,
    serialize_server_hello,
)
from tls.record import plaintext_record
from tls.server import ServerConnection

SUITE13 = CipherSuite.TLS_AES_128_GCM_SHA256
VERSIONS13 = (ExtensionType.SUPPORTED_VERSIONS, TLS13.to_bytes(2, "big"))


def client(**kwargs: Any) -> ClientConnection:
    c = ClientConnection(client_config(**kwargs))
    c.data_to_send()
    return c


def session_id(c: ClientConnection) -> bytes:
    state = c.state
    assert isinstance(state, AwaitServerHello | AwaitServerHello2)
    return state.offer.hello.session_id


def hello13(c: ClientConnection, extensions: Extensions, *, random: bytes | None = None, suite: int = SUITE13,
            sid: bytes | None = None) -> bytes:
    sh = ServerHello(TLS12, random or os.urandom(32), session_id(c) if sid is None else sid, suite, 0,
                     (VERSIONS13, *extensions))
    return plaintext_record(22, frame(HandshakeType.SERVER_HELLO, serialize_server_hello(sh)))


def hrr(c: ClientConnection, extensions: Extensions, **kwargs: object) -> bytes:
    return hello13(c, extensions, random=HRR_RANDOM, **kwargs)  # type: ignore[arg-type]


def group_ext(group: int) -> tuple[int, bytes]:
    return ExtensionType.KEY_SHARE, group.to_bytes(2, "big")


def p256_share() -> tuple[int, bytes]:
    share = KeyShare(NamedGroup.SECP256R1, os.urandom(64))
    return ExtensionType.KEY_SHARE, serialize_server_share(NamedGroup.SECP256R1, share.public)


def x25519_share() -> tuple[int, bytes]:
    share = KeyShare(NamedGroup.X25519, os.urandom(32))
    return ExtensionType.KEY_SHARE, serialize_server_share(NamedGroup.X25519, share.public)


def retried(c: ClientConnection) -> ClientConnection:
    """The client after a valid HelloRetryRequest asking for secp256r1."""
    c.receive_data(hrr(c, (group_ext(NamedGroup.SECP256R1),)))
    assert c.events() == []
    assert isinstance(c.state, AwaitServerHello2)
    c.data_to_send()
    return c


def test_a_valid_hello_retry_request_is_answered_with_the_requested_share_only() -> None:
    c = retried(client())
    state = c.state
    assert isinstance(state, AwaitServerHello2)
    assert list(state.offer.shares) == [NamedGroup.SECP256R1]


def test_hello_retry_request_with_a_cookie_is_echoed() -> None:
    c = client()
    cookie = b"\x00\x04ck!e"
    c.receive_data(hrr(c, ((ExtensionType.COOKIE, cookie),)))
    assert c.events() == []
    state = c.state
    assert isinstance(state, AwaitServerHello2)
    assert (ExtensionType.COOKIE, cookie) in state.offer.hello.extensions
    assert list(state.offer.shares) == [NamedGroup.X25519]  # no group asked for: the first share again


def test_second_hello_retry_request_is_unexpected() -> None:
    c = retried(client())
    assert_refused(c, hrr(c, (group_ext(NamedGroup.SECP384R1),)), AlertDescription.UNEXPECTED_MESSAGE,
                   Category.UNEXPECTED_MESSAGE)


def test_hello_retry_request_without_supported_versions_is_refused() -> None:
    c = client()
    sh = ServerHello(TLS12, HRR_RANDOM, session_id(c), CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, 0,
                     ((ExtensionType.RENEGOTIATION_INFO, b"\x00"), (ExtensionType.EXTENDED_MASTER_SECRET, b"")))
    assert_refused(c, plaintext_record(22, frame(2, serialize_server_hello(sh))),
                   AlertDescription.UNEXPECTED_MESSAGE, Category.UNEXPECTED_MESSAGE)


def test_tls12_server_hello_after_a_retry_is_refused() -> None:
    c = retried(client())
    sh = ServerHello(TLS12, os.urandom(32), session_id(c), CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, 0,
                     ((ExtensionType.RENEGOTIATION_INFO, b"\x00"), (ExtensionType.EXTENDED_MASTER_SECRET, b"")))
    assert_refused(c, plaintext_record(22, frame(2, serialize_server_hello(sh))),
                   AlertDescription.ILLEGAL_PARAMETER, Category.ILLEGAL_PARAMETER)


@pytest.mark.parametrize(("extensions", "sid"), [
    ((group_ext(NamedGroup.SECP256R1),), b"\x01" * 32),  # does not echo our session id
    ((), None),  # would change nothing: no group, no cookie
    ((group_ext(NamedGroup.X25519),), None),  # asks for the share we already sent
    ((group_ext(0x0A0A),), None),  # asks for a group we did not offer
])
def test_malformed_hello_retry_requests(extensions: Extensions, sid: bytes | None) -> None:
    c = client()
    assert_refused(c, hrr(c, extensions, sid=sid), AlertDescription.ILLEGAL_PARAMETER, Category.ILLEGAL_PARAMETER)


def test_server_hello_changing_the_retry_suite() -> None:
    c = retried(client())
    assert_refused(c, hello13(c, (p256_share(),), suite=CipherSuite.TLS_AES_256_GCM_SHA384),
                   AlertDescription.ILLEGAL_PARAMETER, Category.ILLEGAL_PARAMETER)


def test_server_hello_with_the_share_of_a_group_we_dropped_after_the_retry() -> None:
    c = retried(client())
    assert_refused(c, hello13(c, (x25519_share(),)), AlertDescription.ILLEGAL_PARAMETER, Category.ILLEGAL_PARAMETER)


def test_tls13_server_hello_without_a_key_share() -> None:
    c = client()
    assert_refused(c, hello13(c, ()), AlertDescription.MISSING_EXTENSION, Category.MISSING_EXTENSION)


def test_tls13_server_hello_not_echoing_our_session_id() -> None:
    c = client()
    assert_refused(c, hello13(c, (x25519_share(),), sid=b""), AlertDescription.ILLEGAL_PARAMETER,
                   Category.ILLEGAL_PARAMETER)


def test_server_choosing_a_tls12_suite_in_tls13() -> None:
    c = client()
    assert_refused(c, hello13(c, (x25519_share(),), suite=CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
                   AlertDescription.ILLEGAL_PARAMETER, Category.ILLEGAL_PARAMETER)


# ---- the server's protected flight ---------------------------------------------------------------------------


def flight_refused(position: int, message: bytes, alert: AlertDescription, category: Category, *,
                   client_auth: ClientAuthMode | None = None) -> None:
    """A real server flight with the message at `position` replaced: the client refuses it."""
    c = ClientConnection(client_config())
    flight = server_flight_13(c, _server(client_auth))
    messages = list(flight.messages)
    messages[position] = message
    c.receive_data(flight.seal(messages))
    failure = failure_of(c.events())
    assert (failure.alert, failure.category) == (alert, category), failure


def _server(client_auth: ClientAuthMode | None) -> ServerConnection:
    return ServerConnection(server_config(client_auth=client_auth))


@pytest.mark.parametrize("ext_type", [ExtensionType.KEY_SHARE, ExtensionType.SUPPORTED_VERSIONS,
                                      ExtensionType.EXTENDED_MASTER_SECRET])
def test_encrypted_extensions_with_a_hello_only_extension(ext_type: int) -> None:
    ee = frame(HandshakeType.ENCRYPTED_EXTENSIONS, serialize_extensions(((ext_type, b""),)))
    flight_refused(0, ee, AlertDescription.ILLEGAL_PARAMETER, Category.ILLEGAL_PARAMETER)


def test_encrypted_extensions_with_an_extension_we_did_not_offer() -> None:
    ee = frame(HandshakeType.ENCRYPTED_EXTENSIONS, serialize_extensions(((ExtensionType.HEARTBEAT, b"\x01"),)))
    flight_refused(0, ee, AlertDescription.UNSUPPORTED_EXTENSION, Category.UNSOLICITED_EXTENSION)


def test_certificate_request_without_signature_algorithms() -> None:
    request = CertificateRequest13(b"", ((ExtensionType.SIGNATURE_ALGORITHMS_CERT, b"\x00\x02\x04\x03"),))
    flight_refused(1, frame(HandshakeType.CERTIFICATE_REQUEST, serialize_certificate_request13(request)),
                   AlertDescription.MISSING_EXTENSION, Category.MISSING_EXTENSION,
                   client_auth=ClientAuthMode.OPTIONAL)


def test_server_certificate_with_a_request_context() -> None:
    certificate = Certificate13(b"\x01", ((b"\x30\x00", ()),))
    flight_refused(1, frame(HandshakeType.CERTIFICATE, serialize_certificate13(certificate)),
                   AlertDescription.ILLEGAL_PARAMETER, Category.ILLEGAL_PARAMETER)


def test_empty_server_certificate() -> None:
    """RFC 8446 §4.4.2.4: an empty server Certificate is a decode_error."""
    certificate = Certificate13(b"", ())
    flight_refused(1, frame(HandshakeType.CERTIFICATE, serialize_certificate13(certificate)),
                   AlertDescription.DECODE_ERROR, Category.NO_SERVER_CERTIFICATE)


def test_server_certificate_that_does_not_parse() -> None:
    certificate = Certificate13(b"", ((b"\x30\x03\x02\x01\x01", ()),))
    flight_refused(1, frame(HandshakeType.CERTIFICATE, serialize_certificate13(certificate)),
                   AlertDescription.DECODE_ERROR, Category.DECODE_ERROR)


@pytest.mark.parametrize(("legacy_version", "selected"), [(0x0301, TLS13), (TLS12, TLS12), (TLS12, 0x7F1C)])
def test_supported_versions_in_server_hello_must_select_tls13_over_a_tls12_legacy_version(
        legacy_version: int, selected: int) -> None:
    c = client()
    sh = ServerHello(legacy_version, os.urandom(32), session_id(c), SUITE13, 0,
                     ((ExtensionType.SUPPORTED_VERSIONS, selected.to_bytes(2, "big")), x25519_share()))
    assert_refused(c, plaintext_record(22, frame(2, serialize_server_hello(sh))),
                   AlertDescription.ILLEGAL_PARAMETER, Category.ILLEGAL_PARAMETER)
