"""Record framing and protection: classification of first bytes, limits, AEAD round trips, tampering."""

from __future__ import annotations

import pytest

from outcomes.category import Category
from tls.alerts import AlertDescription
from tls.constants import CipherSuite
from tls.errors import ProtocolError
from tls.record import Protection12, Protection13, Record, RecordReader, plaintext_record
from tls.suites import SUITES


def records(reader: RecordReader, data: bytes) -> list[tuple[int, bytes]]:
    return [(r.content_type, bytes(r.payload)) for r in reader.feed(data)]


def test_framing_across_arbitrary_splits() -> None:
    wire = plaintext_record(22, b"hello") + plaintext_record(23, b"") + plaintext_record(21, b"\x01\x00")
    for split in range(len(wire) + 1):
        reader = RecordReader(2**14 + 256)
        got = records(reader, wire[:split]) + records(reader, wire[split:])
        assert got == [(22, b"hello"), (23, b""), (21, b"\x01\x00")]
        assert reader.buffered == 0


@pytest.mark.parametrize(("data", "alert", "category"), [
    (b"please give key", AlertDescription.UNEXPECTED_MESSAGE, Category.NOT_TLS),
    (b"\x80\x2e\x01\x00\x02", AlertDescription.PROTOCOL_VERSION, Category.SSLV2),
    (b"\x85\x00\x07", AlertDescription.UNEXPECTED_MESSAGE, Category.NOT_TLS),
    (b"\x16\x02\x00\x00\x01", AlertDescription.PROTOCOL_VERSION, Category.BAD_RECORD_VERSION),
])
def test_first_bytes_are_classified(data: bytes, alert: AlertDescription, category: Category) -> None:
    with pytest.raises(ProtocolError) as info:
        records(RecordReader(2**14 + 256), data)
    assert (info.value.alert, info.value.category) == (alert, category)


def test_later_bad_content_type_is_unexpected() -> None:
    reader = RecordReader(2**14 + 256)
    records(reader, plaintext_record(22, b"x"))
    with pytest.raises(ProtocolError) as info:
        records(reader, b"\x19\x03\x03\x00\x01\x00")
    assert (info.value.alert, info.value.category) == (AlertDescription.UNEXPECTED_MESSAGE,
                                                       Category.UNEXPECTED_MESSAGE)


@pytest.mark.parametrize("first", [True, False])
def test_heartbeat_records_are_refused(first: bool) -> None:
    """A Heartbleed-style request, as the very first record or after a hello."""
    reader = RecordReader(2**14 + 256)
    if not first:
        records(reader, plaintext_record(22, b"x"))
    with pytest.raises(ProtocolError) as info:
        records(reader, b"\x18\x03\x02\x00\x03\x01\x40\x00")
    assert (info.value.alert, info.value.category) == (AlertDescription.UNEXPECTED_MESSAGE, Category.HEARTBEAT)


def test_record_version_is_pinned_after_negotiation() -> None:
    reader = RecordReader(2**14 + 256)
    records(reader, plaintext_record(22, b"x", version=0x0301))
    reader.expected_version = 0x0303
    with pytest.raises(ProtocolError) as info:
        records(reader, plaintext_record(22, b"x", version=0x0301))
    assert (info.value.alert, info.value.category) == (AlertDescription.PROTOCOL_VERSION,
                                                       Category.BAD_RECORD_VERSION)


def test_overflow_is_detected_from_the_header_alone() -> None:
    reader = RecordReader(2**14 + 256)
    records(reader, plaintext_record(22, b"x"))
    with pytest.raises(ProtocolError) as info:
        records(reader, b"\x17\x03\x03\x41\x01")
    assert (info.value.alert, info.value.category) == (AlertDescription.RECORD_OVERFLOW, Category.RECORD_OVERFLOW)


def test_largest_allowed_record_is_framed() -> None:
    """Exactly 2^14 + 256 bytes (RFC 8446 §5.2) is a record; one byte more is refused from the header alone."""
    reader = RecordReader(2**14 + 256)
    records(reader, plaintext_record(22, b"x"))
    largest = b"\x17\x03\x03\x41\x00" + b"\xee" * (2**14 + 256)
    assert records(reader, largest) == [(23, b"\xee" * (2**14 + 256))]
    assert reader.buffered == 0


@pytest.mark.parametrize("suite", [s for s, i in SUITES.items() if i.version == 0x0304])
def test_tls13_protection_round_trip_and_tamper(suite: int) -> None:
    info = SUITES[suite]
    key, iv = b"k" * info.key_length, b"i" * 12
    sender, receiver = Protection13(info, key, iv, padding=64), Protection13(info, key, iv)
    for payload in (b"", b"a", b"b" * 1000):
        wire = sender.encrypt(23, payload)
        assert (len(wire) - 5 - 16) % 64 == 0
        record = next(iter(RecordReader(2**14 + 256).feed(wire)))
        assert receiver.decrypt(record) == (23, payload)
    tampered = bytearray(sender.encrypt(22, b"handshake"))
    tampered[8] ^= 1
    record = next(iter(RecordReader(2**14 + 256).feed(bytes(tampered))))
    with pytest.raises(ProtocolError) as err:
        receiver.decrypt(record)
    assert err.value.category is Category.BAD_MAC


def test_tls13_all_zero_inner_plaintext_is_refused() -> None:
    info = SUITES[CipherSuite.TLS_AES_128_GCM_SHA256]
    sender = Protection13(info, b"k" * 16, b"i" * 12)
    receiver = Protection13(info, b"k" * 16, b"i" * 12)
    header = bytes((23, 3, 3, 0, 4 + 16))
    forged = header + sender._aead.encrypt(sender._nonce(), b"\x00" * 4, header)
    record = Record(23, 0x0303, forged[:5], memoryview(forged)[5:])
    with pytest.raises(ProtocolError) as err:
        receiver.decrypt(record)
    assert err.value.category is Category.UNEXPECTED_MESSAGE


def test_tls13_replayed_record_fails() -> None:
    info = SUITES[CipherSuite.TLS_CHACHA20_POLY1305_SHA256]
    sender = Protection13(info, b"k" * 32, b"i" * 12)
    receiver = Protection13(info, b"k" * 32, b"i" * 12)
    wire = sender.encrypt(23, b"once")
    record = next(iter(RecordReader(2**14 + 256).feed(wire)))
    receiver.decrypt(record)
    with pytest.raises(ProtocolError):
        receiver.decrypt(record)


@pytest.mark.parametrize("suite", [s for s, i in SUITES.items() if i.version == 0x0303])
def test_tls12_protection_round_trip(suite: int) -> None:
    info = SUITES[suite]
    iv = b"s" * (4 if info.aead == "aes-gcm" else 12)
    sender, receiver = Protection12(info, b"k" * info.key_length, iv), Protection12(info, b"k" * info.key_length, iv)
    for payload in (b"x", b"y" * 2**14):
        wire = sender.encrypt(23, payload)
        record = next(iter(RecordReader(2**14 + 2048).feed(wire)))
        assert receiver.decrypt(record) == payload
    retyped = bytearray(sender.encrypt(23, b"z"))
    retyped[0] = 22  # the content type is authenticated (additional data)
    record = next(iter(RecordReader(2**14 + 2048).feed(bytes(retyped))))
    with pytest.raises(ProtocolError) as err:
        receiver.decrypt(record)
    assert err.value.category is Category.BAD_MAC
