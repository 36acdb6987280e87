"""Unexpected handshake messages in every state of both engines, both versions: the real flights are cut
into messages and re-sent (re-encrypted where TLS 1.3 protects them) with one message replaced by each
message type that state does not accept. Every such flight is refused with unexpected_message."""

from __future__ import annotations

import pytest

from outcomes.category import Category
from tests.tls.flights import client_flight_13, seal13, server_flight_13, split_messages, split_records
from tests.tls.pki import client_config, server_config
from tests.tls.refusal import failure_of
from tls.alerts import AlertDescription
from tls.client import ClientConnection
from tls.config import ClientAuthMode
from tls.constants import TLS12, ContentType
from tls.messages import frame
from tls.record import plaintext_record
from tls.server import ServerConnection

ALL_TYPES = [0, 1, 2, 4, 5, 8, 11, 12, 13, 14, 15, 16, 20, 24]


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
        flight = server_flight_13(client, ServerConnection(server_config(client_auth=ClientAuthMode.OPTIONAL)))
        assert [m[0] for m in flight.messages] == [8, 13, 11, 15, 20]
        client.receive_data(flight.seal([*flight.messages[:position], frame(wrong, b"\x00" * 8)]))
        assert_unexpected(client)


# The client's TLS 1.3 second flight with a certificate: Certificate, CertificateVerify, Finished.
SERVER13_ACCEPTS = [{11}, {15}, {20}]


@pytest.mark.parametrize("position", range(3))
def test_tls13_server_states(position: int) -> None:
    for wrong in wrong_types(SERVER13_ACCEPTS[position]):
        client = ClientConnection(client_config(cert_kind="p256"))
        server = ServerConnection(server_config(client_auth=ClientAuthMode.REQUIRED))
        flight = server_flight_13(client, server)
        messages = client_flight_13(client, flight)
        assert [m[0] for m in messages] == [11, 15, 20]
        server.receive_data(seal13([*messages[:position], frame(wrong, b"\x00" * 8)], flight.keys.client_hs,
                                   flight.keys.suite))
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
