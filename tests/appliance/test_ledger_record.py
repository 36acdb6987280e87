from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance import ledger_record as rec
from appliance.config import ENDPOINTS

MAX = 1024

events = st.builds(
    rec.Event,
    time=st.floats(min_value=0, max_value=4e9, allow_nan=False),
    endpoint=st.sampled_from(ENDPOINTS),
    category=st.text(max_size=16),  # 4 bytes a character at most: within the 64-byte field
    source=st.text(max_size=16),
    reason=st.text(max_size=40),
)


@settings(max_examples=300)
@given(events, st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1))
def test_event_round_trip(event: rec.Event, epoch: int, seq: int) -> None:
    frame = rec.encode(rec.Record(epoch, seq, event), MAX)
    assert rec.decode(frame, MAX) == rec.Record(epoch, seq, event)


def test_checkpoint_round_trip() -> None:
    record = rec.Record(3, 99, rec.Checkpoint(b'{"x":1}'))
    assert rec.decode(rec.encode(record, MAX), MAX) == record


def test_reason_is_truncated_on_a_character_boundary() -> None:
    event = rec.Event(1.0, "mutual", "expired", "10.0.0.1", "é" * 200)
    decoded = rec.decode(rec.encode(rec.Record(0, 1, event), MAX, reason_limit=11), MAX).body
    assert isinstance(decoded, rec.Event)
    assert decoded.reason == "é" * 5


def test_trailing_bytes_and_corruption_are_refused() -> None:
    frame = rec.encode(rec.Record(0, 1, rec.Event(1.0, "http", "served", "1.2.3.4", "")), MAX)
    with pytest.raises(rec.RecordError):
        rec.decode(frame + b"\x00", MAX)
    with pytest.raises(rec.RecordError):
        rec.decode(frame[:-1], MAX)
    corrupted = bytearray(frame)
    corrupted[-1] ^= 1
    with pytest.raises(rec.RecordError):
        rec.decode(bytes(corrupted), MAX)


def test_oversized_record_refused_on_encode() -> None:
    with pytest.raises(rec.RecordError):
        rec.encode(rec.Record(0, 1, rec.Checkpoint(b"x" * 2000)), MAX)


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_random_bytes_only_raise_record_error(data: bytes) -> None:
    with contextlib.suppress(rec.RecordError):
        rec.decode(data, MAX)


@settings(max_examples=300)
@given(events, st.data())
def test_payload_with_a_valid_checksum_but_mangled_fields(event: rec.Event, data: st.DataObject) -> None:
    """Corrupt the payload and fix the CRC, so the parse and sanity steps (not the checksum) must catch it."""
    import zlib

    frame = bytearray(rec.encode(rec.Record(0, 1, event), MAX))
    index = data.draw(st.integers(rec.FRAME.size, len(frame) - 1))
    frame[index] = data.draw(st.integers(0, 255))
    payload = bytes(frame[rec.FRAME.size :])
    frame[4:8] = zlib.crc32(payload).to_bytes(4, "big")
    with contextlib.suppress(rec.RecordError):
        rec.decode(bytes(frame), MAX)
