"""The ledger record decoder (appliance/ledger_record.py `decode`): what boot reads back from the data disk.

The first byte chooses how the frame is taken: as it is (integrity checks), with its CRC made right, or with
its length and CRC made right (so the payload's own checks are reached); and which payload limit applies (a
record's, or a checkpoint's). What must hold: only RecordError escapes; a decoded record is within the format's
ranges, and encoding it again gives back the same frame byte for byte (events whose strings are longer than the
encoder writes are re-encoded shorter, and still decode).
"""

from __future__ import annotations

import zlib

from appliance.config import Limits
from appliance.ledger_record import (
    CHECKPOINT_MAX_BYTES,
    FRAME,
    PREFIX,
    Checkpoint,
    Event,
    Finding,
    Marker,
    Record,
    RecordError,
    decode,
    encode,
    in_range,
)
from fuzz.errors import require

RECORD_LIMIT = Limits().ledger_max_record
CHECKPOINT_LIMIT = CHECKPOINT_MAX_BYTES + PREFIX.size
STRING_LIMIT = 64
"""What `encode` keeps of an event's category and source."""


def _frame(mode: int, frame: bytes) -> bytes:
    if mode % 3 == 0 or len(frame) < FRAME.size:
        return frame
    payload = frame[FRAME.size :]
    length = len(payload) if mode % 3 == 2 else int.from_bytes(frame[:4], "big")
    return FRAME.pack(length, zlib.crc32(payload)) + payload


def fuzz_one(data: bytes) -> None:
    if not data:
        return
    mode = data[0]
    limit = CHECKPOINT_LIMIT if mode & 0x80 else RECORD_LIMIT
    frame = _frame(mode, data[1:])
    try:
        record = decode(frame, limit)
    except RecordError:
        return
    require(in_range(record.epoch, record.seq), "decoded a record outside the format's ranges")
    again = encode(record, limit, reason_limit=0xFFFF)
    body = record.body
    if isinstance(body, Event) and max(len(body.category.encode()), len(body.source.encode())) > STRING_LIMIT:
        shorter = decode(again, limit)
        require(isinstance(shorter.body, Event) and shorter.body.time == body.time, "a shortened event changed")
    else:
        require(again == frame, "encode(decode(frame)) != frame")


def seeds() -> dict[str, bytes]:
    records = {
        "event": Record(3, 17, Event(1780000000.5, "mutual", "untrusted-chain", "192.0.2.7", "not signed by the CA")),
        "checkpoint": Record(3, 18, Checkpoint(b'{"connections": 12, "categories": {"success": 1}}')),
        "finding": Record(4, 19, Finding(1, 3, 4096, 8192, 2, 2, torn=True, totals_kept=False, sample=b"\xff" * 8)),
        "finding-unknown": Record(4, 20, Finding(0, 0xFFFFFFFF, 0, 100, None, 64, False, True)),
        "marker": Record(4, 21, Marker(2)),
    }
    seeds = {name: bytes((0x80 if name == "checkpoint" else 0,)) + encode(record, CHECKPOINT_LIMIT)
             for name, record in records.items()}
    seeds["crc-fixed"] = bytes((1,)) + encode(records["marker"], RECORD_LIMIT)
    return seeds
