from __future__ import annotations

import contextlib
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance import ledger_record as rec
from appliance.config import ENDPOINTS
from appliance.ledger_scan import frame_at

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
@given(events, st.integers(0, rec.EPOCH_LIMIT - 1), st.integers(0, rec.SEQ_LIMIT - 1))
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


findings = st.builds(
    rec.Finding,
    region=st.integers(0, 1),
    epoch=st.integers(0, rec.EPOCH_LIMIT - 1) | st.just(rec.UNKNOWN_EPOCH),
    start=st.integers(0, 2**31),
    end=st.integers(2**31, 2**32 - 1),
    records=st.none() | st.integers(0, 2**32 - 2),
    bound=st.integers(0, 2**32 - 1),
    torn=st.booleans(),
    totals_kept=st.booleans(),
    sample=st.binary(max_size=rec.FINDING_SAMPLE_BYTES),
)


@settings(max_examples=200)
@given(findings, st.integers(0, rec.SEQ_LIMIT - 1))
def test_finding_round_trip(finding: rec.Finding, seq: int) -> None:
    record = rec.Record(7, seq, finding)
    assert rec.decode(rec.encode(record, MAX), MAX) == record


def test_marker_round_trip_and_unknown_markers_are_refused() -> None:
    record = rec.Record(2, 5, rec.Marker(rec.MARK_STOPPED))
    frame = rec.encode(record, MAX)
    assert rec.decode(frame, MAX) == record
    for body in (bytes([max(rec.MARKS) + 1]), b"\x00", b"", b"\x01\x00"):
        payload = rec.PREFIX.pack(rec.KIND_MARK, 2, 5) + body
        import zlib

        with pytest.raises(rec.RecordError, match="marker"):
            rec.decode(rec.FRAME.pack(len(payload), zlib.crc32(payload)) + payload, MAX)


@pytest.mark.parametrize("mangle", [
    lambda body: body[:-1],  # sample shorter than its length byte
    lambda body: body + b"x",  # trailing byte
    lambda body: bytes([2]) + body[1:],  # region 2
    lambda body: body[:1] + bytes([0x80]) + body[2:],  # unknown flag
    lambda body: body[:6] + (10).to_bytes(4, "big") + (5).to_bytes(4, "big") + body[14:],  # end before start
])
def test_mangled_findings_are_refused(mangle: object) -> None:
    import zlib

    assert callable(mangle)
    good = rec.encode(rec.Record(1, 2, rec.Finding(1, 3, 100, 200, 4, 4, False, False, b"abc")), MAX)
    body = good[rec.FRAME.size + rec.PREFIX.size :]
    payload = good[rec.FRAME.size : rec.FRAME.size + rec.PREFIX.size] + mangle(body)
    with pytest.raises(rec.RecordError):
        rec.decode(rec.FRAME.pack(len(payload), zlib.crc32(payload)) + payload, MAX)


def _forged(kind: int, epoch: int, seq: int, body: bytes) -> bytes:
    """A frame whose checksum holds, whatever its fields."""
    payload = rec.PREFIX.pack(kind, epoch, seq) + body
    return rec.FRAME.pack(len(payload), zlib.crc32(payload)) + payload


@pytest.mark.parametrize(("epoch", "seq"), [
    (rec.EPOCH_LIMIT, 0), (rec.UNKNOWN_EPOCH, 0), (0, rec.SEQ_LIMIT), (0, 2**64 - 1),
])
def test_epochs_and_seqs_beyond_the_format_limits_are_refused_both_ways(epoch: int, seq: int) -> None:
    """Within the limits, the next epoch and seq are always encodable; beyond them (crafted), a frame reads
    as unreadable, on the light path of a scan too, and the encoder never writes one."""
    event = rec.Event(1.0, "mutual", "expired", "10.0.0.1", "x")
    with pytest.raises(rec.RecordError, match="limits"):
        rec.encode(rec.Record(epoch, seq, event), MAX)
    good = rec.encode(rec.Record(0, 0, event), MAX)
    body = good[rec.FRAME.size + rec.PREFIX.size :]
    for kind, payload in ((rec.KIND_EVENT, body), (rec.KIND_MARK, bytes([rec.MARK_SYNCED])),
                          (rec.KIND_CHECKPOINT, b"{}")):
        frame = _forged(kind, epoch, seq, payload)
        with pytest.raises(rec.RecordError, match="limits"):
            rec.decode(frame, MAX)
        assert frame_at(frame, 0, MAX, bodies=False) is None
        assert frame_at(frame, 0, MAX) is None
    assert frame_at(_forged(rec.KIND_EVENT, rec.EPOCH_LIMIT - 1, rec.SEQ_LIMIT - 1, body), 0, MAX) is not None


def test_a_finding_epoch_is_a_generation_or_unknown() -> None:
    finding = rec.Finding(0, rec.EPOCH_LIMIT, 0, 1, 1, 1, False, False)
    with pytest.raises(rec.RecordError, match="limits"):
        rec.encode(rec.Record(0, 0, finding), MAX)
    good = rec.encode(rec.Record(0, 0, rec.Finding(0, 5, 0, 1, 1, 1, False, False)), MAX)
    body = bytearray(good[rec.FRAME.size + rec.PREFIX.size :])
    body[2:6] = rec.EPOCH_LIMIT.to_bytes(4, "big")
    with pytest.raises(rec.RecordError, match="out of range"):
        rec.decode(_forged(rec.KIND_FINDING, 0, 0, bytes(body)), MAX)


def test_a_finding_is_known_again_only_for_the_same_bytes_and_no_more_records() -> None:
    recorded = rec.Finding(1, 4, 100, 200, 2, 2, False, False)
    assert rec.Finding(1, 4, 100, 200, 2, 2, True, True).recorded_by(recorded)
    assert rec.Finding(1, 4, 100, 200, 0, 0, False, False).recorded_by(recorded)  # appended after: no seq missing
    assert not rec.Finding(1, 4, 100, 200, 3, 3, False, False).recorded_by(recorded)  # more records
    assert not rec.Finding(1, 4, 100, 260, 2, 2, False, False).recorded_by(recorded)  # more bytes
    assert not rec.Finding(1, 4, 60, 200, 2, 2, False, False).recorded_by(recorded)
    assert not rec.Finding(0, 4, 100, 200, 2, 2, False, False).recorded_by(recorded)
    assert not rec.Finding(1, 6, 100, 200, 2, 2, False, False).recorded_by(recorded)
    tail = rec.Finding(1, 4, 100, 200, None, 8, True, False)
    assert rec.Finding(1, 4, 100, 200, 5, 5, False, False).recorded_by(tail)  # within its bound
    assert not rec.Finding(1, 4, 100, 200, 9, 9, False, False).recorded_by(tail)
    assert rec.Finding(1, 4, 100, 200, None, 8, True, False).recorded_by(tail)
