"""Ledger record codec: paired encode/decode, integrity before parse before sanity.

Frame:   length u32 | crc32(payload) u32 | payload
Payload: kind u8 | epoch u32 | seq u64 | body
  EVENT body:      time f64 | endpoint u8 | category (u8 len) | source (u8 len) | reason (u16 len)
  CHECKPOINT body: JSON of the aggregate statistics at the moment of a rollover

`epoch` names the region generation and `seq` increases by one per record: a reader stops at the first
record that breaks either, so stale bytes from an older generation are never mistaken for new ones.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from appliance.config import ENDPOINTS

FRAME = struct.Struct(">II")
PREFIX = struct.Struct(">BIQ")
EVENT_FIXED = struct.Struct(">dB")
KIND_EVENT = 1
KIND_CHECKPOINT = 2
CHECKPOINT_MAX_BYTES = 64 * 1024
"""A format limit, not a tunable: a reader must accept every checkpoint an older boot could have written."""


class RecordError(ValueError):
    """Bytes that are not a valid record: torn, corrupt, or out of range."""


@dataclass(frozen=True)
class Event:
    time: float
    endpoint: str
    category: str
    source: str
    reason: str


@dataclass(frozen=True)
class Checkpoint:
    state: bytes  # JSON, produced and consumed by appliance.stats


@dataclass(frozen=True)
class Record:
    epoch: int
    seq: int
    body: Event | Checkpoint


def _short(text: str, width: int, limit: int) -> bytes:
    data = text.encode("utf-8")[:limit]
    data = data.decode("utf-8", "ignore").encode("utf-8")  # never cut a character in half
    return len(data).to_bytes(width, "big") + data


def encode(record: Record, max_payload: int, reason_limit: int = 160) -> bytes:
    body = record.body
    prefix = PREFIX.pack(
        KIND_EVENT if isinstance(body, Event) else KIND_CHECKPOINT, record.epoch, record.seq
    )
    if isinstance(body, Event):
        payload = (
            prefix
            + EVENT_FIXED.pack(body.time, ENDPOINTS.index(body.endpoint))
            + _short(body.category, 1, 64)
            + _short(body.source, 1, 64)
            + _short(body.reason, 2, reason_limit)
        )
    else:
        payload = prefix + body.state
    if len(payload) > max_payload:
        raise RecordError(f"record of {len(payload)} bytes exceeds {max_payload}")
    return FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def frame_length(head: bytes, max_payload: int) -> int:
    """Integrity step 1: the payload length the 8-byte frame header announces (0 = unwritten space)."""
    length: int = FRAME.unpack(head)[0]
    if length > max_payload:
        raise RecordError("record length beyond the limit")
    return length


def decode(frame: bytes, max_payload: int) -> Record:
    """Decode exactly one frame; trailing bytes are an error."""
    if len(frame) < FRAME.size:
        raise RecordError("truncated frame header")
    length, crc = FRAME.unpack_from(frame)
    if length > max_payload or FRAME.size + length != len(frame):
        raise RecordError("frame length mismatch")
    payload = memoryview(frame)[FRAME.size :]
    if zlib.crc32(payload) != crc:
        raise RecordError("checksum mismatch")
    if len(payload) < PREFIX.size:
        raise RecordError("payload shorter than its prefix")
    kind, epoch, seq = PREFIX.unpack_from(payload)
    rest = payload[PREFIX.size :]
    if kind == KIND_CHECKPOINT:
        return Record(epoch, seq, Checkpoint(bytes(rest)))
    if kind != KIND_EVENT:
        raise RecordError(f"unknown record kind {kind}")
    return Record(epoch, seq, _decode_event(rest))


def _decode_event(view: memoryview) -> Event:
    if len(view) < EVENT_FIXED.size:
        raise RecordError("event too short")
    time, endpoint = EVENT_FIXED.unpack_from(view)
    if endpoint >= len(ENDPOINTS) or time != time:  # noqa: PLR0124 (NaN check)
        raise RecordError("event fields out of range")
    position = EVENT_FIXED.size
    fields = []
    for width in (1, 1, 2):
        if position + width > len(view):
            raise RecordError("event string header truncated")
        size = int.from_bytes(view[position : position + width], "big")
        position += width
        if position + size > len(view):
            raise RecordError("event string truncated")
        try:
            fields.append(str(view[position : position + size], "utf-8"))
        except UnicodeDecodeError as exc:
            raise RecordError("event string is not UTF-8") from exc
        position += size
    if position != len(view):
        raise RecordError("trailing bytes after the event")
    return Event(time, ENDPOINTS[endpoint], fields[0], fields[1], fields[2])
