"""TLS 1.3 record protection against the protected records RFC 8448 §3 publishes. Round trips between two of our own
protectors cannot catch a nonce, additional-data or inner-content-type mistake made the same way on both sides; the
RFC's bytes can."""

from __future__ import annotations

import pytest

from outcomes.category import Category
from tests.tls import rfc8448 as vectors
from tls.alerts import AlertDescription
from tls.constants import CipherSuite, ContentType
from tls.errors import ProtocolError
from tls.keyschedule import traffic_key_iv
from tls.record import Protection13, RecordReader
from tls.suites import SUITES

INFO = SUITES[CipherSuite.TLS_AES_128_GCM_SHA256]
HANDSHAKE, ALERT, DATA = ContentType.HANDSHAKE, ContentType.ALERT, ContentType.APPLICATION_DATA
SERVER_FLIGHT = (vectors.ENCRYPTED_EXTENSIONS + vectors.CERTIFICATE + vectors.CERTIFICATE_VERIFY
                 + vectors.SERVER_FINISHED)

# Everything one direction sends under one key, in the RFC's order (so record i is sequence number i):
# key, IV, and each record's (inner content type, content, complete record).
STREAMS: dict[str, tuple[bytes, bytes, list[tuple[int, bytes, bytes]]]] = {
    "server handshake": (vectors.SERVER_HS_KEY, vectors.SERVER_HS_IV, [
        (HANDSHAKE, SERVER_FLIGHT, vectors.SERVER_HANDSHAKE_RECORD),
    ]),
    "client handshake": (vectors.CLIENT_HS_KEY, vectors.CLIENT_HS_IV, [
        (HANDSHAKE, vectors.CLIENT_FINISHED, vectors.CLIENT_FINISHED_RECORD),
    ]),
    "server application": (vectors.SERVER_AP_KEY, vectors.SERVER_AP_IV, [
        (HANDSHAKE, vectors.NEW_SESSION_TICKET, vectors.NEW_SESSION_TICKET_RECORD),
        (DATA, vectors.APPLICATION_DATA, vectors.SERVER_APPLICATION_DATA_RECORD),
        (ALERT, vectors.CLOSE_NOTIFY, vectors.SERVER_ALERT_RECORD),
    ]),
    "client application": (vectors.CLIENT_AP_KEY, vectors.CLIENT_AP_IV, [
        (DATA, vectors.APPLICATION_DATA, vectors.CLIENT_APPLICATION_DATA_RECORD),
        (ALERT, vectors.CLOSE_NOTIFY, vectors.CLIENT_ALERT_RECORD),
    ]),
}


def _open(receiver: Protection13, wire: bytes) -> tuple[int, bytes]:
    """Frame `wire` as the connection does (exactly one record) and open it."""
    records = list(RecordReader(2**14 + 256).feed(wire))
    assert len(records) == 1
    return receiver.decrypt(records[0])


def _assert_bad_record_mac(receiver: Protection13, wire: bytes) -> None:
    with pytest.raises(ProtocolError) as err:
        _open(receiver, wire)
    assert (err.value.alert, err.value.category) == (AlertDescription.BAD_RECORD_MAC, Category.BAD_MAC)


def test_the_server_flight_is_the_rfc_handshake_messages() -> None:
    """The vectors fit together: the flight record's length is the four messages, the content type byte and a tag."""
    assert len(SERVER_FLIGHT) == 657
    assert int.from_bytes(vectors.SERVER_HANDSHAKE_RECORD[3:5], "big") == 657 + 1 + 16


def test_application_keys_derive_from_the_rfc_traffic_secrets() -> None:
    """The RFC lists the application keys and IVs too; ours, derived from its traffic secrets, are the same."""
    assert traffic_key_iv("sha256", vectors.SERVER_AP_TRAFFIC, 16) == (vectors.SERVER_AP_KEY, vectors.SERVER_AP_IV)
    assert traffic_key_iv("sha256", vectors.CLIENT_AP_TRAFFIC, 16) == (vectors.CLIENT_AP_KEY, vectors.CLIENT_AP_IV)


@pytest.mark.parametrize("stream", STREAMS)
def test_sealing_gives_the_rfc_records(stream: str) -> None:
    key, iv, records = STREAMS[stream]
    sender = Protection13(INFO, key, iv)
    assert [sender.encrypt(content_type, content) for content_type, content, _ in records] == [
        wire for _, _, wire in records]


@pytest.mark.parametrize("stream", STREAMS)
def test_opening_the_rfc_records_gives_their_contents(stream: str) -> None:
    key, iv, records = STREAMS[stream]
    receiver = Protection13(INFO, key, iv)
    assert [_open(receiver, wire) for _, _, wire in records] == [
        (content_type, content) for content_type, content, _ in records]


@pytest.mark.parametrize("offset", [
    2,   # the header's minor version: the header is the additional data
    5,   # the first ciphertext byte
    340,  # mid-record
    -17,  # the last ciphertext byte, the inner content type
    -1,  # the last tag byte
])
def test_one_flipped_bit_in_the_rfc_record_is_bad_record_mac(offset: int) -> None:
    tampered = bytearray(vectors.SERVER_HANDSHAKE_RECORD)
    tampered[offset] ^= 0x01
    _assert_bad_record_mac(Protection13(INFO, vectors.SERVER_HS_KEY, vectors.SERVER_HS_IV), bytes(tampered))


def test_an_rfc_record_at_the_wrong_sequence_number_is_bad_record_mac() -> None:
    """The server's application data is its record 1: opened as record 0 (the ticket skipped) it fails, and so
    does the ticket replayed as record 1."""
    _assert_bad_record_mac(Protection13(INFO, vectors.SERVER_AP_KEY, vectors.SERVER_AP_IV),
                           vectors.SERVER_APPLICATION_DATA_RECORD)
    receiver = Protection13(INFO, vectors.SERVER_AP_KEY, vectors.SERVER_AP_IV)
    assert _open(receiver, vectors.NEW_SESSION_TICKET_RECORD) == (HANDSHAKE, vectors.NEW_SESSION_TICKET)
    _assert_bad_record_mac(receiver, vectors.NEW_SESSION_TICKET_RECORD)


def test_an_rfc_record_under_the_other_directions_key_is_bad_record_mac() -> None:
    _assert_bad_record_mac(Protection13(INFO, vectors.SERVER_HS_KEY, vectors.SERVER_HS_IV),
                           vectors.CLIENT_FINISHED_RECORD)
