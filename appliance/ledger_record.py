"""Ledger record codec: paired encode/decode, integrity before parse before sanity.

Frame:   length u32 | crc32(payload) u32 | payload
Payload: kind u8 | epoch u32 | seq u64 | body
  EVENT body:      time f64 | endpoint u8 | category (u8 len) | source (u8 len) | reason (u16 len)
  CHECKPOINT body: JSON of the aggregate statistics at the moment of a rollover
  FINDING body:    what recovery could not read (`Finding`, below):
                   region u8 | flags u8 | epoch u32 | start u32 | end u32 | records u32 (or 0xFFFFFFFF: unknown) |
                   bound u32 | sample (u8 len)
  MARK body:       what u8 (1: the appliance stopped cleanly; 2: everything before it was synced as the ledger
                   went idle). Either one last means no batch was left unsynced. 3: rolled over: the next
                   region's checkpoint is on the disk (written after it was synced, as the region's last record,
                   so that a next region found blank reads as a lost generation, not as a rollover cut short).

A checkpoint takes a seq of its own: it holds the state before the event that caused the rollover, and that
event follows it as an ordinary record. So the last record of a region (the rolled-over marker, which takes
the seq before the checkpoint's although it is written after it) is followed, seq for seq, by the next
region's checkpoint, and a reader that loses one region's checkpoint can rebuild the totals from the other.

`epoch` names the region generation and `seq` increases by one per record, across regions: a reader takes
only records of the region's own generation, in seq order, so stale bytes from an older generation are never
mistaken for new ones, and a gap in the seqs says exactly how many records could not be read.
An unwritten frame header (eight zero bytes) ends a region's records: every append writes one after itself.

Sanity limits on the prefix (EPOCH_LIMIT, SEQ_LIMIT), refused by encode and decode alike: an epoch below 2^31
and a seq below 2^63. A real ledger comes nowhere near them (one epoch per rollover, one seq per record), so
a frame beyond them is crafted; it reads as unreadable rather than handing recovery a generation whose
successor the fields cannot hold (2^32 - 1 is also UNKNOWN_EPOCH in a finding). A ledger at the last epoch
refuses to roll over (RecordError) rather than write a generation no reader would take.
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
KIND_FINDING = 3
KIND_MARK = 4
KINDS = (KIND_EVENT, KIND_CHECKPOINT, KIND_FINDING, KIND_MARK)
FOLLOWING_KINDS = (KIND_EVENT, KIND_FINDING, KIND_MARK)
"""The kinds a region holds after its checkpoint (a checkpoint is only ever at a region's start)."""
EPOCH_LIMIT = 1 << 31
SEQ_LIMIT = 1 << 63
MARK_STOPPED = 1
MARK_SYNCED = 2
MARK_ROLLED = 3
MARKS = (MARK_STOPPED, MARK_SYNCED, MARK_ROLLED)
CLEAN_MARKS = (MARK_STOPPED, MARK_SYNCED)
"""Markers that, last in the active region, say nothing was left unsynced."""
FINDING_FIXED = struct.Struct(">BBIIIII")
FINDING_SAMPLE_BYTES = 32
UNKNOWN_RECORDS = 0xFFFFFFFF
UNKNOWN_EPOCH = 0xFFFFFFFF
"""A finding in a region whose generation could not be read (never a record's epoch: above EPOCH_LIMIT)."""
COUNT_LIMIT = UNKNOWN_RECORDS - 1
"""The largest count a finding can hold."""
TERMINATOR = bytes(8)
SMALLEST_RECORD = FRAME.size + PREFIX.size + 1
"""The fewest bytes a record after a checkpoint takes (a marker; an event takes 34 at least): what turns a
byte range into a bound on the records it can have held."""
_FINDING_TORN = 0x01
_FINDING_TOTALS_KEPT = 0x02
CHECKPOINT_MAX_BYTES = 64 * 1024
"""A format limit, not a tunable: a reader must accept every checkpoint an older boot could have written."""


class RecordError(ValueError):
    """Bytes that are not a valid record: torn, corrupt, or out of range."""


@dataclass(frozen=True)
class Event:
    """One connection's outcome as an EVENT record keeps it: when, on which endpoint, its category, the peer's
    address and the reason. The text fields are cut to their limits (never inside a character) when encoded."""

    time: float
    endpoint: str
    category: str
    source: str
    reason: str


@dataclass(frozen=True)
class Checkpoint:
    """The aggregate statistics at a rollover (a CHECKPOINT record, first in its region), so the totals survive the
    loss of the older region. Opaque here: `appliance.stats` writes and reads the JSON."""

    state: bytes  # JSON, produced and consumed by appliance.stats


@dataclass(frozen=True)
class Finding:
    """A span of a region that recovery could not read, recorded before the region may be written again.

    `records`: how many records are known to be missing (None: not even a count); `bound`: the most that can
    be. The count is exact when the two are equal, as when the seqs on both sides of the span tell it. A
    tail has no seq after it: one damaged last record is 1 known, but a power cut may also have taken
    unsynced records after it without a trace, so its bound is a batch, or what its bytes can hold when
    that is more. `torn`: the span is what a power cut can leave of the last unsynced batch (expected after
    a power loss). `totals_kept`: a later checkpoint still counts those records, only their detail is gone."""

    region: int
    epoch: int
    start: int
    end: int
    records: int | None
    bound: int
    torn: bool
    totals_kept: bool
    sample: bytes = b""

    def key(self) -> tuple[int, int, int, int]:
        """The bytes it describes: the same region, generation and span."""
        return (self.region, self.epoch, self.start, self.end)

    def recorded_by(self, earlier: Finding) -> bool:
        """`earlier` (a finding in the ledger) already says all this one says: the same bytes, and no more
        records lost than it allowed for. A span that grew, in bytes or in records, is new damage beside the
        recorded one, not the recorded one found again. (When a boot appends after an unreadable tail, the
        next boot reads the same bytes as a gap with no seq missing: 0 records, within the tail's bound.)"""
        if self.key() != earlier.key():
            return False
        if self.records is None:  # no count to compare: the same bytes are the same damage
            return True
        return self.records <= (earlier.records if earlier.records is not None else earlier.bound)


@dataclass(frozen=True)
class Marker:
    """A MARK record (`what`: MARK_STOPPED, MARK_SYNCED or MARK_ROLLED): what recovery needs to tell a clean end
    from a torn one, and a rollover from a lost generation (module docstring)."""

    what: int


@dataclass(frozen=True)
class Record:
    """One decoded frame: the generation (`epoch`) and position (`seq`) that recovery orders and checks records by,
    and the body of one of the four kinds."""

    epoch: int
    seq: int
    body: Event | Checkpoint | Finding | Marker


def in_range(epoch: int, seq: int) -> bool:
    """The sanity step for a record's prefix (see the module docstring)."""
    return 0 <= epoch < EPOCH_LIMIT and 0 <= seq < SEQ_LIMIT


def _short(text: str, width: int, limit: int) -> bytes:
    data = text.encode("utf-8")[:limit]
    data = data.decode("utf-8", "ignore").encode("utf-8")  # never cut a character in half
    return len(data).to_bytes(width, "big") + data


def encode(record: Record, max_payload: int, reason_limit: int = 160) -> bytes:
    body = record.body
    if not in_range(record.epoch, record.seq):
        raise RecordError(f"epoch {record.epoch} or seq {record.seq} beyond the format's limits")
    kind = {Event: KIND_EVENT, Checkpoint: KIND_CHECKPOINT, Finding: KIND_FINDING, Marker: KIND_MARK}[type(body)]
    prefix = PREFIX.pack(kind, record.epoch, record.seq)
    if isinstance(body, Marker):
        payload = prefix + bytes([body.what])
    elif isinstance(body, Finding):
        payload = prefix + _encode_finding(body)
    elif isinstance(body, Event):
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
    if not in_range(epoch, seq):
        raise RecordError("epoch or seq beyond the format's limits")
    rest = payload[PREFIX.size :]
    if kind == KIND_CHECKPOINT:
        return Record(epoch, seq, Checkpoint(bytes(rest)))
    if kind == KIND_FINDING:
        return Record(epoch, seq, _decode_finding(rest))
    if kind == KIND_MARK:
        if len(rest) != 1 or rest[0] not in MARKS:
            raise RecordError("unknown marker")
        return Record(epoch, seq, Marker(rest[0]))
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


def _finding_epoch_ok(epoch: int) -> bool:
    return 0 <= epoch < EPOCH_LIMIT or epoch == UNKNOWN_EPOCH


def _encode_finding(finding: Finding) -> bytes:
    if not _finding_epoch_ok(finding.epoch):
        raise RecordError(f"finding epoch {finding.epoch} beyond the format's limits")
    flags = (_FINDING_TORN if finding.torn else 0) | (_FINDING_TOTALS_KEPT if finding.totals_kept else 0)
    records = UNKNOWN_RECORDS if finding.records is None else finding.records
    sample = finding.sample[:FINDING_SAMPLE_BYTES]
    return (FINDING_FIXED.pack(finding.region, flags, finding.epoch, finding.start, finding.end, records,
                               finding.bound) + bytes([len(sample)]) + sample)


def _decode_finding(view: memoryview) -> Finding:
    if len(view) < FINDING_FIXED.size + 1:
        raise RecordError("finding too short")
    region, flags, epoch, start, end, records, bound = FINDING_FIXED.unpack_from(view)
    size = view[FINDING_FIXED.size]
    if FINDING_FIXED.size + 1 + size != len(view) or size > FINDING_SAMPLE_BYTES:
        raise RecordError("finding sample length mismatch")
    if region > 1 or flags & ~(_FINDING_TORN | _FINDING_TOTALS_KEPT) or end < start or not _finding_epoch_ok(epoch):
        raise RecordError("finding fields out of range")
    return Finding(region, epoch, start, end, None if records == UNKNOWN_RECORDS else records, bound,
                   bool(flags & _FINDING_TORN), bool(flags & _FINDING_TOTALS_KEPT),
                   bytes(view[FINDING_FIXED.size + 1 :]))
