"""Unexpected handshake messages in every state of both engines, both versions: the real flights are cut
into messages and re-sent (re-encrypted where TLS 1.3 protects them) with one message replaced by each
message type that state does not accept. Every such flight is refused with unexpected_message."""

from __future__ import annotations

import pytest

from outcomes.category import Category
from tests.tls.pki import client_config, server_config
from tests.tls.refusal import failure_of
from tls.alerts import AlertDescription
from tls.client import ClientConnection
from tls.config import ClientAuthMode
from tls.constants import TLS12, ContentType
from tls.keyschedule import traffic_key_iv
from tls.messages import frame
from tls.record import Protection13, Record, RecordReader, plaintext_record
from tls.server import ServerConnection
from tls.suites import SUITES

ALL_TYPES = [0, 1, 2, 4, 5, 8, 11, 12, 13, 14, 15, 16, 20, 24]


def split_records(data: bytes) -> list[Record]:
    return list(RecordReader(2**14 + 256).feed(data))


def split_messages(data: bytes) -> list[bytes]:
    messages = []
    while data:
        length = int.from_bytes(data[1:4], "big")
        messages.append(data[: 4 + length])
        data = data[4 + length :]
    return messages


def protection(secret: bytes, suite: int) -> Protection13:
    info = SUITES[suite]
    key, iv = traffic_key_iv(info.hash_name, secret, info.key_length)
    return Protection13(info, key, iv)


def wrong_types(accepted: set[int]) -> list[int]:
    return [t for t in ALL_TYPES if t not in accepted]


def assert_unexpected(engine: ClientConnection | ServerConnection) -> None:
    failure = failure_of(engine.events())
    assert (failure.alert, failure.category) == (AlertDescription.UNEXPECTED_MESSAGE, Category.UNEXPECTED_MESSAGE), \
        failure


# Accepted message types, position by position, in the server's TLS 1.3 flight with a CertificateRequest:
# EncryptedExtensions, CertificateRequest, Certificate, CertificateVerify, Finished.
CLIENT13_ACCEPTS = [{8}, {13, 11}, {11}, {15}, {20}]


@pytest.mark.parametrize("position", range(5))
def test_tls13_client_states(position: int) -> None:
    for wrong in wrong_types(CLIENT13_ACCEPTS[position]):
        client = ClientConnection(client_config())
        server = ServerConnection(server_config(client_auth=ClientAuthMode.OPTIONAL))
        server.receive_data(client.data_to_send())
        records = split_records(server.data_to_send())
        hello = records[0]
        client.receive_data(hello.header + bytes(hello.payload))
        reader = protection(client._server_hs_secret, server._suite.suite if server._suite else 0)
        inner = b"".join(reader.decrypt(r)[1] for r in records if r.content_type == ContentType.APPLICATION_DATA)
        messages = split_messages(inner)
        assert [m[0] for m in messages] == [8, 13, 11, 15, 20]
        writer = protection(client._server_hs_secret, server._suite.suite if server._suite else 0)
        flight = b"".join(writer.encrypt(22, m) for m in messages[:position])
        flight += writer.encrypt(22, frame(wrong, b"\x00" * 8))
        client.receive_data(flight)
        assert_unexpected(client)


# The client's TLS 1.3 second flight with a certificate: Certificate, CertificateVerify, Finished.
SERVER13_ACCEPTS = [{11}, {15}, {20}]


@pytest.mark.parametrize("position", range(3))
def test_tls13_server_states(position: int) -> None:
    for wrong in wrong_types(SERVER13_ACCEPTS[position]):
        client = ClientConnection(client_config(cert_kind="p256"))
        server = ServerConnection(server_config(client_auth=ClientAuthMode.REQUIRED))
        server.receive_data(client.data_to_send())
        client.receive_data(server.data_to_send())
        records = [r for r in split_records(client.data_to_send()) if r.content_type == ContentType.APPLICATION_DATA]
        suite = server._suite.suite if server._suite else 0
        reader = protection(server._client_hs_secret, suite)
        messages = split_messages(b"".join(reader.decrypt(r)[1] for r in records))
        assert [m[0] for m in messages] == [11, 15, 20]
        writer = protection(server._client_hs_secret, suite)
        flight = b"".join(writer.encrypt(22, m) for m in messages[:position])
        flight += writer.encrypt(22, frame(wrong, b"\x00" * 8))
        server.receive_data(flight)
        assert_unexpected(server)


# The server's TLS 1.2 flight with a CertificateRequest: ServerHello, Certificate, ServerKeyExchange,
# CertificateRequest, ServerHelloDone (all in the clear).
CLIENT12_ACCEPTS = [{2}, {11}, {12}, {13, 14}, {14}]


@pytest.mark.parametrize("position", range(5))
def test_tls12_client_states(position: int) -> None:
    for wrong in wrong_types(CLIENT12_ACCEPTS[position]):
        client = ClientConnection(client_config(versions=(TLS12,)))
        server = ServerConnection(server_config(client_auth=ClientAuthMode.OPTIONAL))
        server.receive_data(client.data_to_send())
        records = split_records(server.data_to_send())
        messages = split_messages(b"".join(bytes(r.payload) for r in records))
        assert [m[0] for m in messages] == [2, 11, 12, 13, 14]
        flight = b"".join(messages[:position]) + frame(wrong, b"\x00" * 8)
        client.receive_data(plaintext_record(22, flight))
        assert_unexpected(client)


# The client's TLS 1.2 flight with a certificate: Certificate, ClientKeyExchange, CertificateVerify, then
# ChangeCipherSpec (checked separately in test_peer_refusals).
SERVER12_ACCEPTS = [{11}, {16}, {15}]


@pytest.mark.parametrize("position", range(3))
def test_tls12_server_states(position: int) -> None:
    for wrong in wrong_types(SERVER12_ACCEPTS[position]):
        client = ClientConnection(client_config(cert_kind="p256", versions=(TLS12,)))
        server = ServerConnection(server_config(client_auth=ClientAuthMode.REQUIRED))
        server.receive_data(client.data_to_send())
        client.receive_data(server.data_to_send())
        records = split_records(client.data_to_send())
        handshake = b"".join(bytes(r.payload) for r in records if r.content_type == ContentType.HANDSHAKE)
        messages = split_messages(handshake)[:3]
        assert [m[0] for m in messages] == [11, 16, 15]
        flight = b"".join(messages[:position]) + frame(wrong, b"\x00" * 8)
        server.receive_data(plaintext_record(22, flight))
        assert_unexpected(server)
