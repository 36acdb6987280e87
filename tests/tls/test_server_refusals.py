"""Every refusal a server makes on what a client sends, with the alert and the failure category."""

from __future__ import annotations

from typing import Any

import pytest

from outcomes.category import Category
from tests.tls.hello import client_hello, default_extensions, x25519_public
from tests.tls.pki import server_config
from tests.tls.refusal import assert_refused
from tls.alerts import AlertDescription
from tls.constants import TLS12, TLS13, TLS_EMPTY_RENEGOTIATION_INFO_SCSV, TLS_FALLBACK_SCSV, ExtensionType
from tls.extensions import serialize_client_shares, serialize_client_versions, serialize_u16_list16
from tls.limits import Limits
from tls.messages import frame
from tls.record import plaintext_record
from tls.server import ServerConnection
from tls.server_states import AwaitClientHello2


def server(**kwargs: Any) -> ServerConnection:
    return ServerConnection(server_config(**kwargs))


def test_a_valid_hello_is_answered() -> None:
    s = server()
    s.receive_data(client_hello())
    assert s.events() == []
    assert s.data_to_send()[:1] == b"\x16"


@pytest.mark.parametrize(
    "data", [b"please give key\n", b"GET / HTTP/1.1\r\n\r\n", b"\x00\x00\x00\x00\x00", b"SSH-2.0-OpenSSH_9.2\r\n"]
)
def test_garbage_first_bytes_are_not_tls(data: bytes) -> None:
    assert_refused(server(), data, AlertDescription.UNEXPECTED_MESSAGE, Category.NOT_TLS)


def test_not_tls_is_recognised_from_the_first_byte_even_split() -> None:
    s = server()
    s.receive_data(b"p")
    assert s.closed


def test_sslv2_client_hello() -> None:
    sslv2 = bytes.fromhex("802e0100020015000000100700c0030080010080080080060040040080020080") + b"\x00" * 16
    assert_refused(server(), sslv2, AlertDescription.PROTOCOL_VERSION, Category.SSLV2)


def test_sslv2_split_before_its_type_byte() -> None:
    s = server()
    s.receive_data(b"\x80\x2e")
    assert s.events() == []
    assert_refused(s, b"\x01\x00\x02", AlertDescription.PROTOCOL_VERSION, Category.SSLV2)


def test_sslv3_hello() -> None:
    assert_refused(
        server(), client_hello(legacy_version=0x0300, versions=()), AlertDescription.PROTOCOL_VERSION, Category.SSLV3
    )


@pytest.mark.parametrize("legacy_version", [0x0300, 0x0200, 0x0002])
def test_sslv3_legacy_version_offering_tls13_is_refused(legacy_version: int) -> None:
    """RFC 8446 Appendix D.5: legacy_version 0x0300 or lower aborts with protocol_version even when
    supported_versions offers TLS 1.3 (it used to be answered with a ServerHello)."""
    assert_refused(server(), client_hello(legacy_version=legacy_version), AlertDescription.PROTOCOL_VERSION,
                   Category.SSLV3)


@pytest.mark.parametrize("version", [0x0301, 0x0302])
def test_tls10_and_tls11_hellos(version: int) -> None:
    assert_refused(
        server(),
        client_hello(legacy_version=version, versions=()),
        AlertDescription.PROTOCOL_VERSION,
        Category.OLD_TLS_VERSION,
    )


def test_supported_versions_with_only_old_versions() -> None:
    assert_refused(
        server(), client_hello(versions=(0x0302, 0x0301)), AlertDescription.PROTOCOL_VERSION, Category.OLD_TLS_VERSION
    )


def test_bad_record_version() -> None:
    record = bytearray(client_hello())
    record[1] = 2
    assert_refused(server(), bytes(record), AlertDescription.PROTOCOL_VERSION, Category.BAD_RECORD_VERSION)


def test_heartbeat_extension() -> None:
    assert_refused(
        server(),
        client_hello(add=((ExtensionType.HEARTBEAT, b"\x01"),)),
        AlertDescription.UNEXPECTED_MESSAGE,
        Category.HEARTBEAT,
    )


@pytest.mark.parametrize("versions", [(TLS13, TLS12), (TLS12,)])
def test_compression(versions: tuple[int, ...]) -> None:
    assert_refused(
        server(),
        client_hello(compression=b"\x01\x00", versions=versions),
        AlertDescription.ILLEGAL_PARAMETER,
        Category.COMPRESSION,
    )


@pytest.mark.parametrize(
    "suites",
    [
        (0x0004, 0x0005),  # RC4
        (0x002F, 0x0035, 0xC013, 0xC009),  # CBC
        (0x0000, 0x0001, 0x0002, 0x003B),  # NULL
        (0x0003, 0x0006, 0x0008),  # export
        (0x0018, 0x001B, 0x00A6),  # anonymous
    ],
)
@pytest.mark.parametrize("versions", [(TLS13, TLS12), (TLS12,)])
def test_weak_suites_only(suites: tuple[int, ...], versions: tuple[int, ...]) -> None:
    assert_refused(
        server(),
        client_hello(suites=suites, versions=versions),
        AlertDescription.HANDSHAKE_FAILURE,
        Category.NO_SHARED_CIPHER,
    )


def test_tls12_without_extended_master_secret() -> None:
    assert_refused(
        server(),
        client_hello(versions=(TLS12,), drop=(ExtensionType.EXTENDED_MASTER_SECRET,)),
        AlertDescription.HANDSHAKE_FAILURE,
        Category.NO_EXTENDED_MASTER_SECRET,
    )


def test_tls12_extended_master_secret_with_a_body() -> None:
    """RFC 7627 §5.1: the extension's data is empty; a body was accepted before."""
    exts = [(t, b"\x00" if t == ExtensionType.EXTENDED_MASTER_SECRET else b) for t, b in default_extensions((TLS12,))]
    assert_refused(server(), client_hello(extensions=exts), AlertDescription.DECODE_ERROR, Category.DECODE_ERROR)


def test_tls12_without_renegotiation_info() -> None:
    assert_refused(
        server(),
        client_hello(versions=(TLS12,), drop=(ExtensionType.RENEGOTIATION_INFO,)),
        AlertDescription.HANDSHAKE_FAILURE,
        Category.NO_RENEGOTIATION_INFO,
    )


def test_tls12_with_scsv_instead_of_renegotiation_info_is_accepted() -> None:
    s = server()
    from tls.suites import DEFAULT_SUITES_12

    s.receive_data(
        client_hello(
            versions=(TLS12,),
            drop=(ExtensionType.RENEGOTIATION_INFO,),
            suites=(*DEFAULT_SUITES_12, TLS_EMPTY_RENEGOTIATION_INFO_SCSV),
        )
    )
    assert s.events() == []


def test_tls12_with_non_empty_renegotiation_info() -> None:
    exts = [e for e in default_extensions((TLS12,)) if e[0] != ExtensionType.RENEGOTIATION_INFO]
    exts.append((ExtensionType.RENEGOTIATION_INFO, b"\x0c" + b"x" * 12))
    assert_refused(
        server(), client_hello(extensions=exts), AlertDescription.HANDSHAKE_FAILURE, Category.NO_RENEGOTIATION_INFO
    )


def test_fallback_scsv_below_our_best_version() -> None:
    from tls.suites import DEFAULT_SUITES_12

    assert_refused(
        server(),
        client_hello(versions=(TLS12,), suites=(*DEFAULT_SUITES_12, TLS_FALLBACK_SCSV)),
        AlertDescription.INAPPROPRIATE_FALLBACK,
        Category.DOWNGRADE,
    )


def test_duplicate_extensions() -> None:
    assert_refused(
        server(),
        client_hello(add=((ExtensionType.EXTENDED_MASTER_SECRET, b""),)),
        AlertDescription.ILLEGAL_PARAMETER,
        Category.DUPLICATE_EXTENSION,
    )


def test_no_shared_group() -> None:
    exts = [e for e in default_extensions() if e[0] not in (ExtensionType.SUPPORTED_GROUPS, ExtensionType.KEY_SHARE)]
    exts += [
        (ExtensionType.SUPPORTED_GROUPS, b"\x00\x02\x00\x1e"),
        (ExtensionType.KEY_SHARE, serialize_client_shares([(30, b"k" * 56)])),
    ]
    assert_refused(
        server(), client_hello(extensions=exts), AlertDescription.HANDSHAKE_FAILURE, Category.NO_SHARED_GROUP
    )


@pytest.mark.parametrize("group", [0x0013, 0x0016, 0x001A, 0xFF01])
def test_key_share_for_an_obsolete_group(group: int) -> None:
    """Issue 15: RFC 8446 §4.2.7 forbids offering obsolete_RESERVED groups in TLS 1.3 and §4.2.8 lets the server
    abort a key_share that breaks its rules with illegal_parameter; it used to be handshake_failure (no group
    in common) when the client listed only that group."""
    exts = [e for e in default_extensions() if e[0] not in (ExtensionType.SUPPORTED_GROUPS, ExtensionType.KEY_SHARE)]
    exts += [(ExtensionType.SUPPORTED_GROUPS, serialize_u16_list16([group])),
             (ExtensionType.KEY_SHARE, serialize_client_shares([(group, b"\x04" + b"k" * 48)]))]
    assert_refused(server(), client_hello(extensions=exts), AlertDescription.ILLEGAL_PARAMETER,
                   Category.OBSOLETE_GROUP)


def test_an_empty_plaintext_alert_record_is_unexpected_message() -> None:
    assert_refused(server(), plaintext_record(21, b""), AlertDescription.UNEXPECTED_MESSAGE,
                   Category.UNEXPECTED_MESSAGE)


def test_key_share_not_in_supported_groups() -> None:
    exts = [e for e in default_extensions() if e[0] != ExtensionType.SUPPORTED_GROUPS]
    exts.append((ExtensionType.SUPPORTED_GROUPS, b"\x00\x02\x00\x17"))
    assert_refused(
        server(), client_hello(extensions=exts), AlertDescription.ILLEGAL_PARAMETER, Category.ILLEGAL_PARAMETER
    )


def test_bad_x25519_share() -> None:
    exts = [e for e in default_extensions() if e[0] != ExtensionType.KEY_SHARE]
    exts.append((ExtensionType.KEY_SHARE, serialize_client_shares([(29, b"\x00" * 32)])))
    assert_refused(
        server(), client_hello(extensions=exts), AlertDescription.ILLEGAL_PARAMETER, Category.ILLEGAL_PARAMETER
    )


def test_off_curve_p256_share() -> None:
    exts = [e for e in default_extensions() if e[0] != ExtensionType.KEY_SHARE]
    exts.append((ExtensionType.KEY_SHARE, serialize_client_shares([(23, b"\x04" + b"\x01" * 64)])))
    assert_refused(
        server(groups=(23,)),
        client_hello(extensions=exts),
        AlertDescription.ILLEGAL_PARAMETER,
        Category.ILLEGAL_PARAMETER,
    )


def test_missing_signature_algorithms() -> None:
    assert_refused(
        server(),
        client_hello(drop=(ExtensionType.SIGNATURE_ALGORITHMS,)),
        AlertDescription.MISSING_EXTENSION,
        Category.MISSING_EXTENSION,
    )


def test_no_signature_scheme_for_our_key() -> None:
    exts = [e for e in default_extensions() if e[0] != ExtensionType.SIGNATURE_ALGORITHMS]
    exts.append((ExtensionType.SIGNATURE_ALGORITHMS, b"\x00\x02\x08\x07"))  # ed25519 only; our key is P-256
    assert_refused(
        server(),
        client_hello(extensions=exts),
        AlertDescription.HANDSHAKE_FAILURE,
        Category.NO_SHARED_SIGNATURE_ALGORITHM,
    )


def test_pre_shared_key_not_last() -> None:
    exts = default_extensions()
    exts.insert(0, (ExtensionType.PRE_SHARED_KEY, b"\x00\x00\x00\x00"))
    assert_refused(
        server(), client_hello(extensions=exts), AlertDescription.ILLEGAL_PARAMETER, Category.ILLEGAL_PARAMETER
    )


def test_malformed_client_hello() -> None:
    record = plaintext_record(22, frame(1, b"\x03\x03" + b"\x00" * 10))
    assert_refused(server(), record, AlertDescription.DECODE_ERROR, Category.DECODE_ERROR)


def test_client_hello_with_trailing_bytes() -> None:
    record = bytearray(client_hello())
    body = bytes(record[5:]) + b"\x00"
    body = body[:1] + (len(body) - 4).to_bytes(3, "big") + body[4:]
    assert_refused(server(), plaintext_record(22, body), AlertDescription.DECODE_ERROR, Category.DECODE_ERROR)


def test_unknown_record_type() -> None:
    s = server()
    s.receive_data(client_hello())
    s.data_to_send()
    assert_refused(
        s,
        b"\x63\x03\x03\x00\x01\x00",
        AlertDescription.UNEXPECTED_MESSAGE,
        Category.UNEXPECTED_MESSAGE,
        plaintext=False,
    )


def test_oversized_record() -> None:
    header = bytes((22, 3, 3)) + (2**14 + 257).to_bytes(2, "big")
    assert_refused(server(), header, AlertDescription.RECORD_OVERFLOW, Category.RECORD_OVERFLOW)


def test_record_of_the_largest_allowed_size_is_framed() -> None:
    """2^14 + 256 bytes is the largest ciphertext RFC 8446 §5.2 allows: after the hello such a record reaches the
    record protection (and fails there, as garbage), where one byte more is refused from its header alone."""
    s = server()
    s.receive_data(client_hello())
    s.data_to_send()
    assert_refused(s, bytes((23, 3, 3)) + (2**14 + 256).to_bytes(2, "big") + b"\xee" * (2**14 + 256),
                   AlertDescription.BAD_RECORD_MAC, Category.BAD_MAC, plaintext=False)
    s = server()
    s.receive_data(client_hello())
    s.data_to_send()
    assert_refused(s, bytes((23, 3, 3)) + (2**14 + 257).to_bytes(2, "big"), AlertDescription.RECORD_OVERFLOW,
                   Category.RECORD_OVERFLOW, plaintext=False)


@pytest.mark.parametrize("after_hello", [False, True])
def test_heartbeat_record(after_hello: bool) -> None:
    """A Heartbleed-shaped request (RFC 6520 record type 24) is refused by the engine, first or after a hello."""
    s = server()
    if after_hello:
        s.receive_data(client_hello())
        s.data_to_send()
    assert_refused(s, b"\x18\x03\x03\x00\x03\x01\x40\x00", AlertDescription.UNEXPECTED_MESSAGE,
                   Category.HEARTBEAT, plaintext=not after_hello)


def test_oversized_plaintext_record() -> None:
    assert_refused(
        server(),
        plaintext_record(22, b"\x01" + b"\x00" * (2**14)),
        AlertDescription.RECORD_OVERFLOW,
        Category.RECORD_OVERFLOW,
    )


def test_handshake_message_above_the_size_cap() -> None:
    s = server(limits=Limits(max_handshake_message=1000))
    assert_refused(
        s,
        plaintext_record(22, b"\x01\x00\x10\x00" + b"\x00" * 100),
        AlertDescription.ILLEGAL_PARAMETER,
        Category.RESOURCE_LIMIT,
    )


def test_fragmented_handshake_message_beyond_the_buffer() -> None:
    s = server(limits=Limits(max_handshake_message=60000, handshake_buffer=4096))
    fragment = plaintext_record(22, b"\x01\x00\xea\x00" + b"\x00" * 1000)
    s.receive_data(fragment)
    for _ in range(3):
        s.receive_data(plaintext_record(22, b"\x00" * 1000))
    assert s.events() == []
    assert_refused(
        s, plaintext_record(22, b"\x00" * 1000), AlertDescription.ILLEGAL_PARAMETER, Category.RESOURCE_LIMIT
    )


def test_empty_handshake_record() -> None:
    assert_refused(
        server(), plaintext_record(22, b""), AlertDescription.UNEXPECTED_MESSAGE, Category.UNEXPECTED_MESSAGE
    )


@pytest.mark.parametrize("msg_type", [11, 20, 24])
def test_a_wrong_first_message_declared_huge_is_still_unexpected(msg_type: int) -> None:
    """The state decides from the header: a message it never takes is unexpected_message whatever its declared
    length (it was illegal_parameter, from our size limit, when the length was over it)."""
    header = bytes((msg_type,)) + (2**24 - 1).to_bytes(3, "big")
    assert_refused(server(), plaintext_record(22, header + b"\x00" * 8), AlertDescription.UNEXPECTED_MESSAGE,
                   Category.UNEXPECTED_MESSAGE)


@pytest.mark.parametrize("msg_type", [2, 4, 8, 11, 13, 15, 16, 20, 24])
def test_wrong_first_message(msg_type: int) -> None:
    assert_refused(
        server(),
        plaintext_record(22, frame(msg_type, b"\x00" * 8)),
        AlertDescription.UNEXPECTED_MESSAGE,
        Category.UNEXPECTED_MESSAGE,
    )


def test_ccs_before_client_hello() -> None:
    assert_refused(
        server(), plaintext_record(20, b"\x01"), AlertDescription.UNEXPECTED_MESSAGE, Category.UNEXPECTED_MESSAGE
    )


def test_application_data_before_handshake() -> None:
    assert_refused(
        server(), plaintext_record(23, b"GET /"), AlertDescription.UNEXPECTED_MESSAGE, Category.UNEXPECTED_MESSAGE
    )


def test_alert_before_hello_ends_quietly() -> None:
    s = server()
    s.receive_data(plaintext_record(21, b"\x02\x28"))
    events = s.events()
    assert [type(e).__name__ for e in events] == ["AlertReceived", "Closed"]


def test_malformed_alert() -> None:
    assert_refused(
        server(), plaintext_record(21, b"\x02\x28\x00"), AlertDescription.DECODE_ERROR, Category.DECODE_ERROR
    )


def test_second_client_hello_must_carry_the_requested_share() -> None:
    s = server(groups=(23,))
    s.receive_data(client_hello())  # offers an x25519 share only: HelloRetryRequest for secp256r1
    out = s.data_to_send()
    assert out[:1] == b"\x16"
    assert isinstance(s.state, AwaitClientHello2)
    exts = [e for e in default_extensions() if e[0] != ExtensionType.KEY_SHARE]
    exts.append((ExtensionType.KEY_SHARE, serialize_client_shares([(29, x25519_public())])))
    assert_refused(s, client_hello(extensions=exts), AlertDescription.ILLEGAL_PARAMETER, Category.ILLEGAL_PARAMETER)


def test_only_tls13_offered_to_a_tls12_server() -> None:
    assert_refused(
        server(versions=(TLS12,)),
        client_hello(extensions=[*default_extensions((TLS13,))]),
        AlertDescription.PROTOCOL_VERSION,
        Category.OLD_TLS_VERSION,
    )


def test_supported_versions_ignores_grease() -> None:
    s = server()
    exts = [e for e in default_extensions() if e[0] != ExtensionType.SUPPORTED_VERSIONS]
    exts.append((ExtensionType.SUPPORTED_VERSIONS, serialize_client_versions((0x7A7A, TLS13))))
    s.receive_data(client_hello(extensions=exts))
    assert s.events() == []
    assert s.version == TLS13


def test_tls12_certificate_curve_outside_the_client_groups() -> None:
    """RFC 8422 §5.1: a TLS 1.2 client listing only P-384 cannot take our P-256 ECDSA certificate."""
    exts = [e for e in default_extensions((TLS12,)) if e[0] != ExtensionType.SUPPORTED_GROUPS]
    exts.append((ExtensionType.SUPPORTED_GROUPS, b"\x00\x02\x00\x18"))
    assert_refused(server(), client_hello(extensions=exts), AlertDescription.HANDSHAKE_FAILURE,
                   Category.NO_SHARED_GROUP)
    s = server(kind="ed25519")  # an Ed25519 certificate has no curve to match
    s.receive_data(client_hello(extensions=exts))
    assert s.events() == []


def test_client_hello_fragmented_across_records_is_reassembled() -> None:
    message = client_hello()[5:]
    s = server()
    s.receive_data(plaintext_record(22, message[:50], version=0x0301) + plaintext_record(22, message[50:]))
    assert s.events() == []
    assert s.version == TLS13
    assert s.data_to_send()[:1] == b"\x16"
