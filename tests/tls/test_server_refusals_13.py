"""What a server refuses after its HelloRetryRequest (RFC 8446 §4.1.2: the second ClientHello repeats the
first except for the requested share), in a client's TLS 1.3 flight, and in a TLS 1.2 ClientHello's groups."""

from __future__ import annotations

import os
from typing import Any

import pytest

from outcomes.category import Category
from tests.tls.flights import client_flight_13, reframe, seal13, server_flight_13, split_messages, split_records
from tests.tls.hello import client_hello, default_extensions
from tests.tls.pki import client_config, server_config
from tests.tls.refusal import assert_refused, failure_of
from tls.alerts import AlertDescription
from tls.client import ClientConnection
from tls.config import ClientAuthMode
from tls.constants import TLS12, CipherSuite, ExtensionType, HandshakeType, NamedGroup
from tls.extensions import serialize_client_shares, serialize_client_versions, serialize_u16_list16
from tls.groups import KeyShare
from tls.messages import (
    ClientHello,
    ServerHello,
    ServerKeyExchange,
    frame,
    parse_server_hello,
    parse_server_key_exchange,
    serialize_client_hello,
)
from tls.record import plaintext_record
from tls.server import ServerConnection
from tls.server_states import AwaitClientHello2, Start

RANDOM = b"\x11" * 32
SESSION = b"\x22" * 32


def hello(extensions: list[tuple[int, bytes]], *, random: bytes = RANDOM, session_id: bytes = SESSION,
          suites: tuple[int, ...] = (CipherSuite.TLS_AES_128_GCM_SHA256,)) -> bytes:
    ch = ClientHello(TLS12, random, session_id, suites, b"\x00", tuple(extensions))
    return plaintext_record(22, frame(HandshakeType.CLIENT_HELLO, serialize_client_hello(ch)))


def p256_share() -> tuple[int, bytes]:
    share = KeyShare(NamedGroup.SECP256R1, os.urandom(64))
    return ExtensionType.KEY_SHARE, serialize_client_shares([(NamedGroup.SECP256R1, share.public)])


def second_hello_extensions() -> list[tuple[int, bytes]]:
    return [e for e in default_extensions() if e[0] != ExtensionType.KEY_SHARE] + [p256_share()]


def retrying_server(session_id: bytes = SESSION) -> ServerConnection:
    """A server that answered the first ClientHello (an x25519 share only) with a HelloRetryRequest."""
    s = ServerConnection(server_config(groups=(NamedGroup.SECP256R1,)))
    s.receive_data(hello(default_extensions(), session_id=session_id))
    assert isinstance(s.state, AwaitClientHello2)
    s.data_to_send()
    return s


def test_a_correct_second_client_hello_is_answered() -> None:
    s = retrying_server()
    s.receive_data(hello(second_hello_extensions()))
    assert s.events() == []
    assert not isinstance(s.state, AwaitClientHello2 | Start)


def test_hello_retry_without_a_session_id_sends_no_compatibility_ccs() -> None:
    s = ServerConnection(server_config(groups=(NamedGroup.SECP256R1,)))
    s.receive_data(hello(default_extensions(), session_id=b""))
    out = s.data_to_send()
    assert out[0] == 22
    assert b"\x14\x03\x03\x00\x01\x01" not in out
    state = s.state
    assert isinstance(state, AwaitClientHello2)
    assert not state.compat_ccs_sent


@pytest.mark.parametrize("change", ["random", "session_id", "suite", "version", "early_data"])
def test_second_client_hello_that_changes_more_than_the_share(change: str) -> None:
    s = retrying_server()
    extensions = second_hello_extensions()
    kwargs: dict[str, Any] = {}
    if change == "random":
        kwargs["random"] = b"\x33" * 32
    elif change == "session_id":
        kwargs["session_id"] = b"\x44" * 32
    elif change == "suite":
        kwargs["suites"] = (CipherSuite.TLS_AES_256_GCM_SHA384,)
    elif change == "version":
        extensions = [e for e in extensions if e[0] != ExtensionType.SUPPORTED_VERSIONS]
        extensions.append((ExtensionType.SUPPORTED_VERSIONS, serialize_client_versions([TLS12])))
        kwargs["suites"] = (CipherSuite.TLS_AES_128_GCM_SHA256, CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)
    else:
        extensions.append((ExtensionType.EARLY_DATA, b""))
    assert_refused(s, hello(extensions, **kwargs), AlertDescription.ILLEGAL_PARAMETER, Category.ILLEGAL_PARAMETER)


def test_client_certificate_with_a_request_context_we_did_not_send() -> None:
    c = ClientConnection(client_config(cert_kind="p256"))
    s = ServerConnection(server_config(client_auth=ClientAuthMode.REQUIRED))
    flight = server_flight_13(c, s)
    messages = client_flight_13(c, flight)
    assert messages[0][0] == HandshakeType.CERTIFICATE
    messages[0] = reframe(messages[0], lambda body: b"\x01\x07" + body[1:])  # context: one byte, 0x07
    s.receive_data(seal13(messages, flight.keys.client_hs, flight.keys.suite))
    failure = failure_of(s.events())
    assert (failure.alert, failure.category) == (AlertDescription.ILLEGAL_PARAMETER, Category.ILLEGAL_PARAMETER)


# ---- TLS 1.2 groups and point formats ------------------------------------------------------------------------


def hello12(drop: tuple[int, ...] = (), add: tuple[tuple[int, bytes], ...] = ()) -> bytes:
    return client_hello(versions=(TLS12,), drop=drop, add=add)


def test_tls12_client_that_refuses_uncompressed_points() -> None:
    compressed_only = ((ExtensionType.EC_POINT_FORMATS, b"\x01\x01"),)
    assert_refused(ServerConnection(server_config()), hello12(drop=(ExtensionType.EC_POINT_FORMATS,),
                                                              add=compressed_only),
                   AlertDescription.ILLEGAL_PARAMETER, Category.ILLEGAL_PARAMETER)


def test_tls12_client_without_a_group_in_common() -> None:
    groups = serialize_u16_list16([NamedGroup.SECP521R1])
    assert_refused(ServerConnection(server_config()),
                   hello12(drop=(ExtensionType.SUPPORTED_GROUPS,), add=((ExtensionType.SUPPORTED_GROUPS, groups),)),
                   AlertDescription.HANDSHAKE_FAILURE, Category.NO_SHARED_GROUP)


def _tls12_answer(drop: int) -> tuple[ServerHello, ServerKeyExchange]:
    s = ServerConnection(server_config(groups=(NamedGroup.X25519, NamedGroup.SECP256R1)))
    s.receive_data(hello12(drop=(drop,)))
    assert s.events() == []
    messages = split_messages(b"".join(bytes(r.payload) for r in split_records(s.data_to_send())))
    assert [m[0] for m in messages][:3] == [HandshakeType.SERVER_HELLO, HandshakeType.CERTIFICATE,
                                             HandshakeType.SERVER_KEY_EXCHANGE]
    return parse_server_hello(messages[0][4:]), parse_server_key_exchange(messages[2][4:])


def test_tls12_client_without_supported_groups_gets_secp256r1() -> None:
    """RFC 8422 §4: without supported_groups a TLS 1.2 client takes secp256r1 (our first choice is x25519)."""
    _, ske = _tls12_answer(ExtensionType.SUPPORTED_GROUPS)
    assert ske.group == NamedGroup.SECP256R1


def test_tls12_server_answers_ec_point_formats_only_when_asked() -> None:
    sh, ske = _tls12_answer(ExtensionType.EC_POINT_FORMATS)
    assert ExtensionType.EC_POINT_FORMATS not in {t for t, _ in sh.extensions}
    assert ske.group == NamedGroup.X25519
    sh, _ = _tls12_answer(ExtensionType.HEARTBEAT)  # drops nothing the hello has
    assert (ExtensionType.EC_POINT_FORMATS, b"\x01\x00") in sh.extensions
