"""Handshake message codecs: paired parse/serialize, byte-exact on RFC 8448's messages, trailing bytes and
truncation refused with decode_error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from outcomes.category import Category
from tests.tls import rfc8448 as vectors
from tls.alerts import AlertDescription
from tls.codec import vec16
from tls.constants import CipherSuite, ExtensionType, HandshakeType, NamedGroup
from tls.errors import ProtocolError
from tls.extensions import find, parse_client_shares, parse_client_versions, parse_server_name, parse_u16_list16
from tls.messages import (
    Certificate12,
    Certificate13,
    CertificateRequest12,
    CertificateRequest13,
    CertificateVerify,
    ClientHello,
    ClientKeyExchange,
    EncryptedExtensions,
    KeyUpdate,
    NewSessionTicket,
    ServerHello,
    ServerKeyExchange,
    frame,
    parse_certificate12,
    parse_certificate13,
    parse_certificate_request12,
    parse_certificate_request13,
    parse_certificate_verify,
    parse_client_hello,
    parse_client_key_exchange,
    parse_encrypted_extensions,
    parse_finished,
    parse_key_update,
    parse_new_session_ticket,
    parse_server_hello,
    parse_server_key_exchange,
    serialize_certificate12,
    serialize_certificate13,
    serialize_certificate_request12,
    serialize_certificate_request13,
    serialize_certificate_verify,
    serialize_client_hello,
    serialize_client_key_exchange,
    serialize_encrypted_extensions,
    serialize_key_update,
    serialize_new_session_ticket,
    serialize_server_hello,
    serialize_server_key_exchange,
)


def test_rfc8448_client_hello_parses_and_reserializes_exactly() -> None:
    ch = parse_client_hello(memoryview(vectors.CLIENT_HELLO)[4:])
    assert ch.cipher_suites == (0x1301, 0x1303, 0x1302)
    assert ch.compression_methods == b"\x00"
    assert parse_server_name(find(ch.extensions, ExtensionType.SERVER_NAME) or b"") == "server"
    assert parse_client_versions(find(ch.extensions, ExtensionType.SUPPORTED_VERSIONS) or b"") == (0x0304,)
    shares = parse_client_shares(find(ch.extensions, ExtensionType.KEY_SHARE) or b"")
    assert [g for g, _ in shares] == [NamedGroup.X25519]
    assert 0x0804 in parse_u16_list16(find(ch.extensions, ExtensionType.SIGNATURE_ALGORITHMS) or b"", "sa")
    assert frame(HandshakeType.CLIENT_HELLO, serialize_client_hello(ch)) == vectors.CLIENT_HELLO


def test_rfc8448_server_messages_reserialize_exactly() -> None:
    sh = parse_server_hello(memoryview(vectors.SERVER_HELLO)[4:])
    assert sh.cipher_suite == CipherSuite.TLS_AES_128_GCM_SHA256
    assert frame(2, serialize_server_hello(sh)) == vectors.SERVER_HELLO
    ee = parse_encrypted_extensions(memoryview(vectors.ENCRYPTED_EXTENSIONS)[4:])
    assert frame(8, serialize_encrypted_extensions(ee)) == vectors.ENCRYPTED_EXTENSIONS
    cert = parse_certificate13(memoryview(vectors.CERTIFICATE)[4:], 8)
    assert len(cert.chain) == 1
    assert frame(11, serialize_certificate13(cert)) == vectors.CERTIFICATE
    cv = parse_certificate_verify(memoryview(vectors.CERTIFICATE_VERIFY)[4:])
    assert cv.scheme == 0x0804
    assert frame(15, serialize_certificate_verify(cv)) == vectors.CERTIFICATE_VERIFY
    assert parse_finished(memoryview(vectors.SERVER_FINISHED)[4:], 32).verify_data == vectors.SERVER_FINISHED[4:]


SAMPLES: list[tuple[Any, Callable[[Any], bytes], Callable[[bytes], Any]]] = [
    (ClientHello(0x0303, b"r" * 32, b"s" * 32, (0x1301, 0xC02B), b"\x00", ((0, b"\x00\x00"), (23, b""))),
     serialize_client_hello, parse_client_hello),
    (ServerHello(0x0303, b"r" * 32, b"", 0x1301, 0, ((43, b"\x03\x04"),)), serialize_server_hello, parse_server_hello),
    (EncryptedExtensions(((0, b""),)), serialize_encrypted_extensions, parse_encrypted_extensions),
    (Certificate13(b"", ((b"cert1", ()), (b"cert2", ((5, b"x"),)))), serialize_certificate13,
     lambda b: parse_certificate13(b, 8)),
    (Certificate12((b"a", b"bb")), serialize_certificate12, lambda b: parse_certificate12(b, 8)),
    (CertificateRequest13(b"ctx", ((13, b"\x00\x02\x04\x03"),)), serialize_certificate_request13,
     parse_certificate_request13),
    (CertificateRequest12(b"\x40", (0x0403,), b""), serialize_certificate_request12, parse_certificate_request12),
    (CertificateVerify(0x0403, b"sig"), serialize_certificate_verify, parse_certificate_verify),
    (KeyUpdate(True), serialize_key_update, parse_key_update),
    (NewSessionTicket(7200, 5, b"n", b"ticket", ()), serialize_new_session_ticket, parse_new_session_ticket),
    (ServerKeyExchange(29, b"p" * 32, 0x0403, b"sig"), serialize_server_key_exchange, parse_server_key_exchange),
    (ClientKeyExchange(b"q" * 32), serialize_client_key_exchange, parse_client_key_exchange),
]


@pytest.mark.parametrize(("message", "serialize", "parse"), SAMPLES)
def test_round_trip_and_strictness(message: Any, serialize: Callable[[Any], bytes],
                                   parse: Callable[[bytes], Any]) -> None:
    body = serialize(message)
    assert parse(body) == message
    with pytest.raises(ProtocolError) as info:
        parse(body + b"\x00")
    assert info.value.alert is AlertDescription.DECODE_ERROR
    for cut in range(len(body)):
        assert _prefix_outcome(parse, body[:cut], message) in ("decode-error", "different"), cut


def _prefix_outcome(parse: Callable[[bytes], Any], prefix: bytes, whole: Any) -> str:
    """A truncated body is a decode_error, except where the format makes a prefix well-formed on its own
    (a ClientHello without its optional extension block): then it must parse to something else."""
    try:
        parsed = parse(prefix)
    except ProtocolError as err:
        return str(err.category)
    return "different" if parsed != whole else "same"


def test_duplicate_extension_is_refused() -> None:
    ch = ClientHello(0x0303, b"r" * 32, b"", (0x1301,), b"\x00", ((23, b""), (23, b"")))
    with pytest.raises(ProtocolError) as info:
        parse_client_hello(serialize_client_hello(ch))
    assert info.value.category is Category.DUPLICATE_EXTENSION
    assert info.value.alert is AlertDescription.ILLEGAL_PARAMETER


def test_certificate_chain_cap_is_enforced_while_parsing() -> None:
    body = serialize_certificate13(Certificate13(b"", tuple((b"c%d" % i, ()) for i in range(5))))
    assert len(parse_certificate13(body, 5).chain) == 5
    with pytest.raises(ProtocolError) as info:
        parse_certificate13(body, 4)
    assert info.value.category is Category.PATH_TOO_LONG
    assert info.value.alert is AlertDescription.BAD_CERTIFICATE


def test_key_update_value_must_be_0_or_1() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_key_update(b"\x02")
    assert info.value.alert is AlertDescription.ILLEGAL_PARAMETER


def test_finished_length_is_exact() -> None:
    with pytest.raises(ProtocolError):
        parse_finished(b"x" * 31, 32)


@pytest.mark.parametrize("block", [
    b"\x00\x17\x00\x05abc",  # an extension longer than what is left of its block
    b"\x00\x17\x00\x00\x00",  # one stray byte after the last extension
    b"\x00\x17\x00\x00\x00\x2b\x00",  # a type and half a length
])
def test_extension_lengths_are_checked_within_the_block(block: bytes) -> None:
    """The block's own length is right, the extensions inside it are not: decode_error, never an IndexError."""
    body = serialize_client_hello(ClientHello(0x0303, b"r" * 32, b"", (0x1301,), b"\x00", ()))
    with pytest.raises(ProtocolError) as info:
        parse_client_hello(body + vec16(block))
    assert info.value.category is Category.DECODE_ERROR


def test_extension_bodies_are_kept_exactly() -> None:
    extensions = ((0, b"\x00\x05\x00\x00\x02ab"), (23, b""), (0xFF01, b"\x00"))
    ch = ClientHello(0x0303, b"r" * 32, b"", (0x1301, 0x1302), b"\x00", extensions)
    parsed = parse_client_hello(serialize_client_hello(ch))
    assert parsed.extensions == extensions
    assert all(type(body) is bytes for _, body in parsed.extensions)
