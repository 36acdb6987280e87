"""Reading one ledger region as it is, damage included: pure, bytes in, a description out.

A region holds one generation (epoch): a checkpoint at offset 0, then records with consecutive seqs, then a
terminator (eight zero bytes), then whatever an older generation left. Recovery must neither stop at the
first bad byte (that silently drops every later record) nor trust bytes it cannot check. So the walk takes
records in order, and where the next record is unreadable it resynchronises: it searches for the next frame
whose kind and epoch bytes are this generation's (a C-speed substring search), checks its CRC and that its seq
is higher, and notes the unreadable span between, with the number of seqs it skipped.

What lies after the last readable record is either a terminator (a clean end), or unreadable bytes: a
torn tail after a power loss, or the last records damaged. The tail walk follows the length fields to say
how far it reaches, bounded by one batch. A terminator is not always a clean end: where a long run of
zeros follows it and then an older generation's records, the zeros were written over records (a power cut
leaves what was there before, and in a region in use that is the older generation, never zeros).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import NamedTuple

from appliance import ledger_record as rec


class Located(NamedTuple):
    """A frame whose integrity holds. `record` is None for an event read without its body (a light scan
    checks length, CRC and prefix only: enough to tell gaps, not enough to replay). A NamedTuple, not a
    frozen dataclass: boot makes one per record on the disk, and this is several times cheaper to build."""

    start: int
    end: int
    kind: int
    epoch: int
    seq: int
    record: rec.Record | None


@dataclass(frozen=True)
class Span:
    """Unreadable bytes between readable records (or before the first). `missing`: seqs skipped, when the
    records on both sides are known."""

    start: int
    end: int
    missing: int | None
    before_seq: int | None  # seq of the readable record just before the span (None: region start)
    after_seq: int  # seq of the readable record just after it


@dataclass(frozen=True)
class Tail:
    """Unreadable bytes after the last readable record. `records` is exact only when one frame with a good
    length but a bad checksum is followed by a terminator (the last record damaged or torn). `wiped`: the
    bytes are a run of zeros with an older generation's records after it (damage, not a torn tail)."""

    start: int
    end: int
    records: int | None
    frames_walked: int
    wiped: bool = False


@dataclass(frozen=True)
class RegionScan:
    region: int
    blank: bool
    epoch: int | None  # the generation in the region; None when nothing in it is readable
    checkpoint: Located | None
    records: tuple[Located, ...]  # readable records of the generation after the checkpoint, in order
    spans: tuple[Span, ...]
    end: int  # where the readable records end: the append point
    tail: Tail | None
    used: int  # offset just past the region's last non-zero byte

    @property
    def first_seq(self) -> int | None:
        if self.checkpoint is not None:
            return self.checkpoint.seq
        return self.records[0].seq if self.records else None

    @property
    def last_seq(self) -> int | None:
        if self.records:
            return self.records[-1].seq
        return self.checkpoint.seq if self.checkpoint is not None else None


def frame_at(buf: bytes, pos: int, max_payload: int, *, bodies: bool = True) -> Located | None:
    """The record whose frame starts at `pos`, if it is whole and its checksum holds. Without `bodies`,
    an event's body is left unread (every other kind is rare and always decoded)."""
    if pos + rec.FRAME.size > len(buf):
        return None
    length, crc = rec.FRAME.unpack_from(buf, pos)
    if length < rec.PREFIX.size or length > max_payload or pos + rec.FRAME.size + length > len(buf):
        return None
    end = pos + rec.FRAME.size + length
    kind, epoch, seq = rec.PREFIX.unpack_from(buf, pos + rec.FRAME.size)
    if kind == rec.KIND_EVENT and not bodies:
        if zlib.crc32(memoryview(buf)[pos + rec.FRAME.size : end]) != crc:
            return None
        return Located(pos, end, kind, epoch, seq, None)
    try:
        record = rec.decode(buf[pos:end], max_payload)
    except rec.RecordError:
        return None
    return Located(pos, end, kind, epoch, seq, record)


def _pattern(epoch: int) -> re.Pattern[bytes]:
    kinds = b"|".join(re.escape(bytes([kind])) for kind in (rec.KIND_EVENT, rec.KIND_FINDING, rec.KIND_MARK))
    return re.compile(b"(?:" + kinds + b")" + re.escape(epoch.to_bytes(4, "big")))


def search(buf: bytes, start: int, epoch: int, min_seq: int | None, max_payload: int, *,
           bodies: bool = True) -> Located | None:
    """The first readable event, finding or marker of generation `epoch` whose frame starts at or after `start`
    and whose seq is at least `min_seq`."""
    prefix_at = rec.FRAME.size
    for match in _pattern(epoch).finditer(buf, start + prefix_at):
        found = frame_at(buf, match.start() - prefix_at, max_payload, bodies=bodies)
        if (found is not None and found.epoch == epoch and found.kind != rec.KIND_CHECKPOINT
                and (min_seq is None or found.seq >= min_seq)):
            return found
    return None


def find_epoch(buf: bytes, candidates: tuple[int, ...], max_payload: int) -> int | None:
    """The first candidate generation that has a readable record in the region."""
    for epoch in candidates:
        if epoch >= 0 and search(buf, 0, epoch, None, max_payload, bodies=False) is not None:
            return epoch
    return None


def scan_region(
    buf: bytes,
    region: int,
    *,
    max_payload: int,
    epoch_candidates: tuple[int, ...],
    batch_records: int,
    legacy_below: int = 0,
    bodies: bool = True,
) -> RegionScan:
    """Describe `buf` (one whole region). `epoch_candidates` are tried, in order, when the checkpoint is
    unreadable. Generations below `legacy_below` were written by format 1, which wrote no terminators, so
    the bytes after their last record are an older generation's, not a tail."""
    used = len(buf.rstrip(b"\x00"))
    if used == 0:
        return RegionScan(region, True, None, None, (), (), 0, None, 0)
    checkpoint = frame_at(buf, 0, rec.CHECKPOINT_MAX_BYTES)
    if checkpoint is not None and checkpoint.kind == rec.KIND_CHECKPOINT:
        epoch: int | None = checkpoint.epoch
        pos, expected = checkpoint.end, checkpoint.seq + 1
        before: int | None = checkpoint.seq
    else:
        checkpoint = None
        epoch = find_epoch(buf, epoch_candidates, max_payload)
        pos, expected, before = 0, None, None
    if epoch is None:
        return RegionScan(region, False, None, None, (), (), 0, None, used)
    records: list[Located] = []
    spans: list[Span] = []
    while True:
        here = frame_at(buf, pos, max_payload, bodies=bodies)
        if (here is not None and here.epoch == epoch and here.seq == expected
                and here.kind != rec.KIND_CHECKPOINT):
            records.append(here)
            pos, expected, before = here.end, here.seq + 1, here.seq
            continue
        found = search(buf, pos, epoch, expected, max_payload, bodies=bodies)
        if found is None:
            break
        missing = None if expected is None else found.seq - expected
        spans.append(Span(pos, found.start, missing, before, found.seq))
        records.append(found)
        pos, expected, before = found.end, found.seq + 1, found.seq
    last = records[-1].record if records else None
    marked = last is not None and isinstance(last.body, rec.Marker) and last.body.what in rec.CLEAN_MARKS
    tail = None if epoch < legacy_below else _tail(buf, pos, epoch, max_payload, batch_records, marked=marked)
    return RegionScan(region, False, epoch, checkpoint, tuple(records), tuple(spans), pos, tail, used)


def tail_reach(max_payload: int, batch_records: int) -> int:
    """How far past the last synced record one unsynced batch can have written."""
    return batch_records * (rec.FRAME.size + max_payload) + rec.FRAME.size


ZERO_RUN = 64
"""More zeros in a row than any record holds (the longest run inside a frame is a dozen bytes): after the
last record, a run this long followed by data is not the eight-byte terminator and what was there before."""
_ANY_FRAME = re.compile(rb"(?=\x00\x00[\x00-\xff]{6}[\x01-\x04])")


def _tail(buf: bytes, pos: int, epoch: int, max_payload: int, batch_records: int, *, marked: bool) -> Tail | None:
    """`marked`: the last readable record is a stop or synced marker. Zeros right after one are taken as a
    clean end even when older records follow them: they are what is left of a wiped block that this
    generation has not yet written over (damage an earlier boot found), not records wiped after the marker."""
    if pos + rec.FRAME.size > len(buf):
        return None
    if buf[pos : pos + rec.FRAME.size] == rec.TERMINATOR:
        return None if marked else _wiped(buf, pos, epoch, max_payload)
    walked, at = 0, pos
    while walked <= batch_records and at + rec.FRAME.size <= len(buf):
        if buf[at : at + rec.FRAME.size] == rec.TERMINATOR:
            wiped = _wiped(buf, at, epoch, max_payload)
            if wiped is not None:  # the zeros run on over what followed the unreadable frames
                return Tail(pos, wiped.end, None, walked, wiped=True)
            return Tail(pos, at, walked if walked == 1 else None, walked)
        stale = frame_at(buf, at, max_payload, bodies=False)
        if stale is not None and stale.epoch != epoch:
            return Tail(pos, at, None, walked)  # an older generation's record: the unreadable bytes end here
        length = int.from_bytes(buf[at : at + 4], "big")
        if length < rec.PREFIX.size or length > max_payload:
            break
        at += rec.FRAME.size + length
        walked += 1
    return Tail(pos, min(len(buf), max(at, pos + tail_reach(max_payload, batch_records))), None, walked)


def after_zeros(buf: bytes, pos: int) -> int:
    """The first non-zero byte at or after `pos` (len(buf) if none)."""
    rest = buf[pos:]
    return pos + len(rest) - len(rest.lstrip(b"\x00"))


def _wiped(buf: bytes, pos: int, epoch: int, max_payload: int) -> Tail | None:
    """A clean end, unless the zeros after the last record run on for ZERO_RUN bytes and more and then give
    way to an older generation's frame: records were there, and were zeroed (a wiped block, a bad copy)."""
    data = after_zeros(buf, pos)
    if data >= len(buf) or data - pos < ZERO_RUN:
        return None
    window = min(len(buf), data + 2 * (rec.FRAME.size + max_payload))  # past a frame the zeros cut in two
    for match in _ANY_FRAME.finditer(buf, max(pos, data - 3), window):
        stale = frame_at(buf, match.start(), max_payload, bodies=False)
        if stale is not None and stale.epoch < epoch:
            return Tail(pos, data, None, 0, wiped=True)
    return None
