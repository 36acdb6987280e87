"""What a TLS 1.2 client refuses in a real server's flight edited through the codecs: a ServerKeyExchange
for a group or with a scheme we did not offer, and a suite whose authentication does not fit the leaf."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from outcomes.category import Category
from tests.tls.flights import edit_hello, split_messages, split_records
from tests.tls.pki import client_config, server_config
from tests.tls.refusal import assert_refused
from tls.alerts import AlertDescription
from tls.client import ClientConnection
from tls.constants import TLS12, CipherSuite, ExtensionType, HandshakeType, NamedGroup, SignatureScheme
from tls.messages import (
    ServerHello,
    ServerKeyExchange,
    frame,
    parse_server_hello,
    parse_server_key_exchange,
    serialize_server_hello,
    serialize_server_key_exchange,
)
from tls.record import plaintext_record
from tls.server import ServerConnection


def server_flight() -> tuple[ClientConnection, bytes]:
    c = ClientConnection(client_config(versions=(TLS12,)))
    s = ServerConnection(server_config())
    s.receive_data(c.data_to_send())
    return c, s.data_to_send()


def with_key_exchange(flight: bytes, change: Callable[[ServerKeyExchange], ServerKeyExchange]) -> bytes:
    messages = split_messages(b"".join(bytes(r.payload) for r in split_records(flight)))
    assert messages[2][0] == HandshakeType.SERVER_KEY_EXCHANGE
    ske = change(parse_server_key_exchange(messages[2][4:]))
    messages[2] = frame(HandshakeType.SERVER_KEY_EXCHANGE, serialize_server_key_exchange(ske))
    return plaintext_record(22, b"".join(messages))


@pytest.mark.parametrize("change", [
    lambda ske: replace(ske, group=NamedGroup.SECP521R1),  # a group we did not offer
    lambda ske: replace(ske, scheme=SignatureScheme.ECDSA_SHA1),  # a scheme we did not offer
], ids=["group", "scheme"])
def test_server_key_exchange_outside_our_offer(change: Callable[[ServerKeyExchange], ServerKeyExchange]) -> None:
    c, flight = server_flight()
    assert_refused(c, with_key_exchange(flight, change), AlertDescription.ILLEGAL_PARAMETER,
                   Category.ILLEGAL_PARAMETER)


def test_server_key_exchange_with_a_bad_signature() -> None:
    c, flight = server_flight()
    assert_refused(c, with_key_exchange(flight, lambda ske: replace(ske, signature=bytes(len(ske.signature)))),
                   AlertDescription.DECRYPT_ERROR, Category.BAD_SIGNATURE)


def test_suite_that_does_not_fit_the_certificate_key() -> None:
    """An ECDSA leaf under a TLS_ECDHE_RSA suite (both offered by the client)."""
    c, flight = server_flight()

    def to_rsa(sh: ServerHello) -> ServerHello:
        assert sh.cipher_suite == CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        return replace(sh, cipher_suite=CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)

    assert_refused(c, edit_hello(flight, parse_server_hello, serialize_server_hello, to_rsa),
                   AlertDescription.UNSUPPORTED_CERTIFICATE, Category.CERTIFICATE_KEY_MISMATCH)


def _with_server_hello_extension(flight: bytes, ext_type: int, body: bytes) -> bytes:
    def change(sh: ServerHello) -> ServerHello:
        assert ext_type in {t for t, _ in sh.extensions}
        return replace(sh, extensions=tuple((t, body if t == ext_type else b) for t, b in sh.extensions))
    return edit_hello(flight, parse_server_hello, serialize_server_hello, change)


@pytest.mark.parametrize(("ext_type", "body", "alert", "category"), [
    (ExtensionType.EC_POINT_FORMATS, b"", AlertDescription.DECODE_ERROR, Category.DECODE_ERROR),
    (ExtensionType.EC_POINT_FORMATS, b"\x00", AlertDescription.DECODE_ERROR, Category.DECODE_ERROR),  # empty list
    (ExtensionType.EC_POINT_FORMATS, b"\x02\x00", AlertDescription.DECODE_ERROR, Category.DECODE_ERROR),
    (ExtensionType.EC_POINT_FORMATS, b"\x01\x00\x00", AlertDescription.DECODE_ERROR, Category.DECODE_ERROR),
    (ExtensionType.EC_POINT_FORMATS, b"\x01\x01", AlertDescription.ILLEGAL_PARAMETER, Category.ILLEGAL_PARAMETER),
    (ExtensionType.EXTENDED_MASTER_SECRET, b"\x00", AlertDescription.DECODE_ERROR, Category.DECODE_ERROR),
])
def test_malformed_extension_bodies_in_a_tls12_server_hello(ext_type: int, body: bytes, alert: AlertDescription,
                                                             category: Category) -> None:
    """Issue 15: the client took a malformed ec_point_formats in a TLS 1.2 ServerHello."""
    c, flight = server_flight()
    assert_refused(c, _with_server_hello_extension(flight, ext_type, body), alert, category)
