"""Refusals inside the codecs and primitives the engines call: extension bodies, key shares, record
protection limits, the certificate bridge. Each is what a hostile peer controls, so each has its category."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from outcomes.category import Category
from tests.tls.hello import client_hello
from tests.tls.pki import NOW, ca, server_config, server_leaf
from tests.tls.refusal import assert_refused
from tls import x509
from tls.alerts import AlertDescription
from tls.constants import CipherSuite, ExtensionType, NamedGroup, SignatureScheme, group_name
from tls.errors import ProtocolError
from tls.extensions import parse_client_shares, parse_server_name, parse_u16_list16
from tls.groups import KeyShare
from tls.limits import MAX_DNS_NAME_OCTETS
from tls.messages import (
    parse_certificate12,
    parse_certificate_request12,
    parse_client_hello,
    parse_empty,
    parse_server_key_exchange,
)
from tls.peer import leaf_public_key, own_pss_key, peer_name, validate_chain
from tls.record import Protection12, Protection13, Record, RecordReader, plaintext_record
from tls.server import ServerConnection
from tls.signatures import verify
from tls.suites import SUITES


def server_name_list(*entries: tuple[int, bytes]) -> bytes:
    body = b"".join(bytes((kind,)) + len(name).to_bytes(2, "big") + name for kind, name in entries)
    return len(body).to_bytes(2, "big") + body


def test_server_name_takes_the_host_name_and_skips_other_types() -> None:
    assert parse_server_name(server_name_list((7, b"other"), (0, b"pinata.example"))) == "pinata.example"
    assert parse_server_name(server_name_list((7, b"other"))) is None


@pytest.mark.parametrize(("entries", "category"), [
    (((0, b"a.example"), (0, b"b.example")), Category.ILLEGAL_PARAMETER),  # two host names
    (((0, "ñ.example".encode()),), Category.DECODE_ERROR),  # not ASCII
    (((0, b"bad name"),), Category.ILLEGAL_PARAMETER),  # not a DNS name
    (((0, b"trailing.dot."),), Category.ILLEGAL_PARAMETER),
    (((0, b"a" * 30_000),), Category.ILLEGAL_PARAMETER),  # RFC 1035: 255 octets at most (was accepted)
    (((0, b"x" * 64 + b".example"),), Category.ILLEGAL_PARAMETER),  # a 64-octet label (was accepted)
    (((0, b"empty..label"),), Category.ILLEGAL_PARAMETER),
])
def test_server_name_refusals(entries: tuple[tuple[int, bytes], ...], category: Category) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_server_name(server_name_list(*entries))
    assert info.value.category is category


def test_server_name_at_the_rfc_1035_bounds_is_taken() -> None:
    """63-octet labels and a 253-character name (255 octets in wire form) are still host names."""
    longest = ".".join(["x" * 63, "y" * 63, "z" * 63, "w" * 61])
    assert len(longest) == MAX_DNS_NAME_OCTETS - 2
    assert parse_server_name(server_name_list((0, longest.encode()))) == longest
    with pytest.raises(ProtocolError):
        parse_server_name(server_name_list((0, longest.encode() + b"w")))


def test_a_30_kb_server_name_is_refused_on_the_wire() -> None:
    server = ServerConnection(server_config())
    record = client_hello(add=((ExtensionType.SERVER_NAME, server_name_list((0, b"a" * 30_000))),))
    message = record[5:]  # a ClientHello this long spans two records
    hello = b"".join(plaintext_record(22, message[i : i + 2**14], version=0x0301)
                     for i in range(0, len(message), 2**14))
    assert_refused(server, hello, AlertDescription.ILLEGAL_PARAMETER, Category.ILLEGAL_PARAMETER)


def test_u16_list_with_an_odd_length() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_u16_list16(b"\x00\x03\x00\x1d\x00", "supported_groups")
    assert info.value.category is Category.DECODE_ERROR


def test_key_share_group_offered_twice() -> None:
    entry = b"\x00\x1d\x00\x01\x07"
    data = (2 * len(entry)).to_bytes(2, "big") + entry * 2
    with pytest.raises(ProtocolError) as info:
        parse_client_shares(data)
    assert info.value.category is Category.ILLEGAL_PARAMETER


@pytest.mark.parametrize(("group", "public"), [
    (NamedGroup.X25519, b"\x01" * 31),
    (NamedGroup.SECP256R1, b"\x02" + b"\x01" * 32),  # compressed point
    (NamedGroup.SECP256R1, b"\x04" + b"\x00" * 64),  # not on the curve
])
def test_bad_peer_key_shares(group: int, public: bytes) -> None:
    share = KeyShare(group, os.urandom(KeyShare.random_length(group)))
    with pytest.raises(ProtocolError) as info:
        share.exchange(public)
    assert info.value.category is Category.ILLEGAL_PARAMETER


def test_unsupported_group_is_a_programming_error_not_a_refusal() -> None:
    with pytest.raises(ValueError, match="unsupported group"):
        KeyShare(0x0A0A, bytes(64))


def test_group_names() -> None:
    assert group_name(NamedGroup.X25519) == "x25519"
    assert group_name(0x0A0A) == "group_2570"


SUITE13 = SUITES[CipherSuite.TLS_AES_128_GCM_SHA256]


def record(payload: bytes, content_type: int = 23) -> Record:
    header = bytes((content_type, 3, 3)) + len(payload).to_bytes(2, "big")
    return Record(content_type, 0x0303, header, memoryview(payload))


def test_tls13_ciphertext_longer_than_allowed() -> None:
    with pytest.raises(ProtocolError) as info:
        Protection13(SUITE13, bytes(16), bytes(12)).decrypt(record(bytes(2**14 + 257)))
    assert info.value.category is Category.RECORD_OVERFLOW


@pytest.mark.parametrize(("suite", "length"), [
    (CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, 8 + 15),
    (CipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, 15),
])
def test_tls12_record_shorter_than_its_tag(suite: int, length: int) -> None:
    info_ = SUITES[suite]
    protection = Protection12(info_, bytes(info_.key_length), bytes(4 if info_.aead == "aes-gcm" else 12))
    with pytest.raises(ProtocolError) as info:
        protection.decrypt(record(bytes(length)))
    assert info.value.category is Category.BAD_MAC


def test_peer_name_tells_addresses_from_dns_names() -> None:
    assert peer_name("192.0.2.1") == x509.PeerName("IP", "192.0.2.1")
    assert peer_name("2001:db8::1") == x509.PeerName("IP", "2001:db8::1")
    assert peer_name("localhost") == x509.PeerName("DNS", "localhost")
    assert peer_name(None) is None


def test_unvalidated_leaf_that_does_not_parse_is_a_decode_error() -> None:
    with pytest.raises(ProtocolError) as info:
        leaf_public_key(b"\x30\x03\x02\x01\x01")
    assert (info.value.category, info.value.alert.name) == (Category.DECODE_ERROR, "DECODE_ERROR")


def test_chain_refusal_keeps_the_validators_category() -> None:
    stranger = server_leaf().der
    with pytest.raises(ProtocolError) as info:
        validate_chain(None, (stranger,), anchors=(), purpose=x509.Purpose.SERVER_AUTH, name="localhost",
                       now=NOW, limits=x509.DEFAULT_LIMITS)
    assert info.value.category is Category.UNTRUSTED_CHAIN
    assert info.value.alert.name == "UNKNOWN_CA"


def test_own_pss_key_of_an_unparsable_chain_is_none() -> None:
    leaf = server_leaf("rsa")
    assert own_pss_key(leaf.key, (b"\x30\x00",)) is None
    assert own_pss_key(leaf.key, ()) is None
    assert own_pss_key(leaf.key, (leaf.der, ca().der)) is None  # an rsaEncryption leaf


@pytest.mark.parametrize("length", [1, 2**14, 2**14 + 1, 5 * 2**14 + 3, 20 * 2**14])
def test_sealing_a_large_write_matches_record_by_record_encryption(length: int) -> None:
    """The one-buffer path for large writes is the per-record path, byte for byte (same records, sequence
    numbers and headers), including writes beyond the scratch buffer a connection keeps."""
    data = os.urandom(length)
    key, iv = os.urandom(16), os.urandom(12)
    by_record = Protection13(SUITE13, key, iv)
    expected = b"".join(by_record.encrypt(23, data[i : i + 2**14]) for i in range(0, length, 2**14))
    sealer = Protection13(SUITE13, key, iv)
    assert sealer.seal_application_data(memoryview(data)) == expected
    assert sealer.seal_application_data(memoryview(data)) == b"".join(
        by_record.encrypt(23, data[i : i + 2**14]) for i in range(0, length, 2**14))
    opener = Protection13(SUITE13, key, iv)
    reader = RecordReader(2**14 + 256)
    opened = b"".join(opener.decrypt(r)[1] for r in reader.feed(expected))
    assert opened == data


def _decode_refused(parse: Callable[[bytes], object], body: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        parse(body)
    assert (info.value.category, info.value.alert.name) == (Category.DECODE_ERROR, "DECODE_ERROR")


def test_client_hello_with_an_odd_cipher_suites_length() -> None:
    _decode_refused(parse_client_hello, b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x03\x13\x01\x13" + b"\x01\x00")


def test_tls12_certificate_request_with_an_odd_algorithms_length() -> None:
    _decode_refused(parse_certificate_request12, b"\x01\x40" + b"\x00\x03\x04\x03\x05" + b"\x00\x00")


def test_server_key_exchange_with_explicit_curve_parameters() -> None:
    _decode_refused(parse_server_key_exchange, b"\x01" + bytes(40))


def test_server_hello_done_with_a_body() -> None:
    _decode_refused(lambda body: parse_empty(body, "ServerHelloDone"), b"\x00")


def test_tls12_certificate_message_longer_than_the_chain_limit() -> None:
    entry = b"\x00\x00\x02\x30\x00"
    body = (3 * len(entry)).to_bytes(3, "big") + entry * 3
    assert len(parse_certificate12(body, 3).chain) == 3
    with pytest.raises(ProtocolError) as info:
        parse_certificate12(body, 2)
    assert (info.value.category, info.value.alert.name) == (Category.PATH_TOO_LONG, "BAD_CERTIFICATE")


def test_ecdsa_scheme_with_an_rsa_key_and_an_unknown_scheme_are_illegal_parameters() -> None:
    """Issue 15: a scheme that does not fit the certificate's key is illegal_parameter (RFC 8446 §4.4.3 and
    §6.2: a field inconsistent with another), not decrypt_error as it was: no signature was checked."""
    rsa_key = server_leaf("rsa").key.public_key()
    for scheme in (SignatureScheme.ECDSA_SECP256R1_SHA256, 0x0A0A):
        with pytest.raises(ProtocolError) as info:
            verify(rsa_key, scheme, b"sig", b"data", (scheme,))
        assert (info.value.category, info.value.alert.name) == (Category.WRONG_SIGNATURE_SCHEME, "ILLEGAL_PARAMETER")
