"""Reading one ledger region as it is, damage included: pure, a buffer in (bytes, or a read-only map of the
disk: `appliance.zeros.ReadBuffer`), a description out.

A region holds one generation (epoch): a checkpoint at offset 0, then records with consecutive seqs, then a
terminator (eight zero bytes), then whatever an older generation left. Recovery must neither stop at the
first bad byte (that silently drops every later record) nor trust bytes it cannot check. So the walk takes
records in order, and where the next record is unreadable it resynchronises: it searches for the next frame
whose kind and epoch bytes are this generation's (a C-speed search), checks its CRC and that its seq is
higher, and notes the unreadable span between, with the number of seqs it skipped.

What lies after the last readable record is either a terminator (a clean end) or unreadable bytes, whose
extent is found, not assumed: they run until bytes of another write begin (a readable frame: an older
generation's records), a run of ZERO_RUN zeros (space never written, or wiped), or the region's end; a length
chain from their start that lands on a terminator ends them there (the last record damaged or torn, its
terminator after it). Only what a power cut can leave is a torn tail (see `tail_reach`); anything longer is
damage, bounded by the records its bytes can hold. Recovery appends past the whole extent, never inside it.

A terminator is not always a clean end: where a long run of zeros follows it and then an older generation's
records, the zeros were written over records (a power cut leaves what was there before, and in a region in
use that is the older generation, never zeros). That holds whatever the last record is: the record after a
clean marker is synced at once, so no power cut leaves zeros over records after a marker either. What the
format cannot tell: where the zeros run to the region's end in a region used for the first time, a wipe of
the last records looks like records never written. It reads as a clean end after a marker, or as a torn tail
bounded by one batch otherwise; only the older records after the zeros would tell, and there are none.
"""

from __future__ import annotations

import functools
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from appliance import ledger_record as rec
from appliance import zeros
from appliance.zeros import ReadBuffer


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


@dataclass(frozen=True)
class Tail:
    """Unreadable bytes after the last readable record (see the module docstring for their extent).
    `records` is exact only when one frame with a good length but a bad checksum is followed by a
    terminator (the last record damaged or torn). `frames`: how many frames the length chain from `start`
    crossed. `torn`: a power cut can have left them (`tail_reach`), and they are no wipe. `wiped`: a long
    run of zeros with an older generation's records after it (damage, not a torn tail)."""

    start: int
    end: int
    records: int | None
    frames: int
    torn: bool
    wiped: bool = False

    @property
    def held(self) -> int:
        """The most records the bytes can have held (a frame may begin in the last byte)."""
        return (self.end - self.start) // rec.SMALLEST_RECORD + 1


@dataclass(frozen=True)
class RegionScan:
    """One region as the walk found it (module docstring): its generation, checkpoint and readable records, the
    unreadable spans between them and the tail after them, and the append point. Recovery picks the active
    region and counts what was lost from the two regions' scans."""

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


def frame_at(buf: ReadBuffer, pos: int, max_payload: int, *, bodies: bool = True) -> Located | None:
    """The record whose frame starts at `pos`, if it is whole and its checksum holds. Without `bodies`,
    an event's body is left unread (every other kind is rare and always decoded). Nothing it returns refers
    to `buf`: the view for the checksum lives only for the call (a map's close fails while a view of it is
    alive), and a record is decoded from a slice, which is bytes."""
    if pos + rec.FRAME.size > len(buf):
        return None
    length, crc = rec.FRAME.unpack_from(buf, pos)
    if length < rec.PREFIX.size or length > max_payload or pos + rec.FRAME.size + length > len(buf):
        return None
    end = pos + rec.FRAME.size + length
    kind, epoch, seq = rec.PREFIX.unpack_from(buf, pos + rec.FRAME.size)
    if kind == rec.KIND_EVENT and not bodies:
        if not rec.in_range(epoch, seq):  # (decode checks this for every other kind)
            return None
        if zlib.crc32(memoryview(buf)[pos + rec.FRAME.size : end]) != crc:
            return None
        return Located(pos, end, kind, epoch, seq, None)
    try:
        record = rec.decode(buf[pos:end], max_payload)
    except rec.RecordError:
        return None
    return Located(pos, end, kind, epoch, seq, record)


@functools.lru_cache(maxsize=16)
def _frame_starts(kinds: tuple[int, ...], epoch: int | None = None) -> re.Pattern[bytes]:
    """Where a frame of one of `kinds` (and of generation `epoch`, if given) can start: the two high bytes of
    its length are zero (every payload but a checkpoint's is below 64 KiB, and a checkpoint is only read at
    offset 0), its two low length bytes and four CRC bytes follow, then the kind and the epoch. One
    definition for every search, so that none misses a kind another one takes."""
    kind = b"[" + b"".join(re.escape(bytes([k])) for k in kinds) + b"]"
    generation = re.escape(epoch.to_bytes(4, "big")) if epoch is not None else b""
    return re.compile(b"(?=\\x00\\x00[\\x00-\\xff]{6}" + kind + generation + b")")


_ANY_FRAME = _frame_starts(rec.KINDS)
_FOLLOWING = _frame_starts(rec.FOLLOWING_KINDS)


def _candidates(pattern: re.Pattern[bytes], buf: ReadBuffer, start: int) -> Iterator[int]:
    """Where `pattern` (one of `_frame_starts`) matches at or after `start`, with the runs of ZERO_RUN zeros
    skipped at C speed. No frame holds such a run, so every frame lies in a stretch between two of them (its
    own leading zeros may lengthen the run before it by a few bytes, hence the margin); the lookahead pattern
    would otherwise be tried at every offset of an empty region: 4 MiB of zeros cost 0.15 s on the host and
    over 2 s under TCG, on every boot that met a torn tail."""
    pos = start
    while pos < len(buf):
        data = after_zeros(buf, pos)
        if data >= len(buf):
            return
        begin = max(pos, data - ZERO_RUN)
        run = buf.find(_ZEROS, data)
        end = len(buf) if run < 0 else run
        for match in pattern.finditer(buf, begin, min(len(buf), end + ZERO_RUN)):  # (the lookahead's reach)
            if match.start() < end:  # the rest are the next stretch's
                yield match.start()
        pos = end


def search(buf: ReadBuffer, start: int, epoch: int, min_seq: int | None, max_payload: int, *,
           bodies: bool = True) -> Located | None:
    """The first readable event, finding or marker of generation `epoch` whose frame starts at or after `start`
    and whose seq is at least `min_seq`."""
    for at in _candidates(_frame_starts(rec.FOLLOWING_KINDS, epoch), buf, start):
        found = frame_at(buf, at, max_payload, bodies=bodies)
        if (found is not None and found.epoch == epoch and found.kind != rec.KIND_CHECKPOINT
                and (min_seq is None or found.seq >= min_seq)):
            return found
    return None


EPOCH_GUESS_FRAMES = 10_000
"""Readable frames examined to guess a region's generation when neither checkpoint can be read: enough to see
past an older generation's leftovers, few enough that a region of garbage costs a bounded time."""


def guess_epochs(buf: ReadBuffer, region: int, max_payload: int) -> tuple[int, ...]:
    """Generations that have readable frames in `buf` (one region: even epochs in region 0, odd in 1), newest
    first, for when no checkpoint can be read."""
    seen: set[int] = set()
    examined = 0
    for at in _candidates(_FOLLOWING, buf, 0):
        found = frame_at(buf, at, max_payload, bodies=False)
        if found is None:
            continue
        if found.epoch % 2 == region:
            seen.add(found.epoch)
        examined += 1
        if examined >= EPOCH_GUESS_FRAMES:
            break
    return tuple(sorted(seen, reverse=True))


def find_epoch(buf: ReadBuffer, candidates: tuple[int, ...], max_payload: int) -> int | None:
    """The first candidate generation that has a readable record in the region."""
    for epoch in candidates:
        if epoch >= 0 and search(buf, 0, epoch, None, max_payload, bodies=False) is not None:
            return epoch
    return None


def scan_region(
    buf: ReadBuffer,
    region: int,
    *,
    max_payload: int,
    epoch_candidates: tuple[int, ...],
    batch_records: int,
    largest_record: int | None = None,
    legacy_below: int = 0,
    bodies: bool = True,
) -> RegionScan:
    """Describe `buf` (one whole region; the description holds no reference to it). `epoch_candidates` are
    tried, in order, when the checkpoint is unreadable. `largest_record`: the largest frame the writer makes
    (default: what `max_payload` allows), for `tail_reach`. Generations below `legacy_below` were written by
    format 1, which wrote no terminators, so the bytes after their last record are an older generation's,
    not a tail."""
    assert max_payload < 1 << 16, "the frame searches take a length's two high bytes to be zero"
    largest = largest_record if largest_record is not None else rec.FRAME.size + max_payload
    used = zeros.trimmed_length(buf)
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
        spans.append(Span(pos, found.start, missing, before))
        records.append(found)
        pos, expected, before = found.end, found.seq + 1, found.seq
    tail = None if epoch < legacy_below else _tail(buf, pos, epoch, max_payload,
                                                    tail_reach(batch_records, largest))
    return RegionScan(region, False, epoch, checkpoint, tuple(records), tuple(spans), pos, tail, used)


def tail_reach(batch_records: int, largest_record: int) -> int:
    """The most unreadable bytes after the last readable record that a power cut can leave: a torn tail.

    A tail holds no readable record of its generation (the walk would have taken it), so a power cut leaves
    there only writes that did not reach the disk whole. Up to `batch_records` smallest records' worth of
    bytes, whatever the cause, they cannot have held more than the batch a power cut may cost. Beyond that,
    one record torn mid-write (with its terminator) and the older record its bytes cut into, unreadable up to
    the next whole one: what a single torn write leaves, even with records larger than a batch of the
    smallest. Longer is damage (several torn writes in one power cut would be too, and read so: reported,
    never hidden)."""
    return max(batch_records * rec.SMALLEST_RECORD, 2 * largest_record + rec.FRAME.size)


ZERO_RUN = 64
"""More zeros in a row than any record holds (the longest run inside a frame is a dozen bytes): after the
last record, a run this long is not the eight-byte terminator and what was there before."""
_ZEROS = bytes(ZERO_RUN)


def _tail(buf: ReadBuffer, pos: int, epoch: int, max_payload: int, reach: int) -> Tail | None:
    """The unreadable bytes from `pos` (where the walk stopped) on, or None for a clean end."""
    if pos + rec.FRAME.size > len(buf):
        return None
    if buf[pos : pos + rec.FRAME.size] == rec.TERMINATOR:
        return _wiped(buf, pos, epoch, max_payload)
    readable, zeros = _other_write(buf, pos, max_payload)
    # Follow the length fields: a chain that lands on a terminator is this generation's last write and its
    # terminator, and the unreadable bytes end there (a torn frame's own zeros may begin the zero run: its
    # length still claims them). Elsewhere they end where another write begins, or where the zeros do.
    frames, at, landed = 0, pos, False
    while at + rec.FRAME.size <= readable:
        if buf[at : at + rec.FRAME.size] == rec.TERMINATOR:
            landed = True
            break
        length = int.from_bytes(buf[at : at + 4], "big")
        if length < rec.PREFIX.size or length > max_payload:
            break
        at += rec.FRAME.size + length
        frames += 1
    end = at if landed else min(readable, max(at, zeros))
    if buf[end : end + rec.FRAME.size] == rec.TERMINATOR:
        wiped = _wiped(buf, end, epoch, max_payload)
        if wiped is not None:  # the zeros run on over what followed the unreadable frames
            return Tail(pos, wiped.end, None, frames, torn=False, wiped=True)
    records = 1 if landed and frames == 1 else None
    return Tail(pos, end, records, frames, torn=end - pos <= reach)


def _other_write(buf: ReadBuffer, pos: int, max_payload: int) -> tuple[int, int]:
    """Where bytes of another write begin after unreadable ones at `pos`: the first readable frame before
    the first run of ZERO_RUN zeros (the walk and the resynchronising search took every frame of this
    generation after `pos`, so it is an older one's), and that run; len(buf) for either when there is none."""
    found = buf.find(_ZEROS, pos)
    zeros = len(buf) if found < 0 else found
    for match in _ANY_FRAME.finditer(buf, pos, zeros):
        if frame_at(buf, match.start(), max_payload, bodies=False) is not None:
            return match.start(), zeros
    return len(buf), zeros


def after_zeros(buf: ReadBuffer, pos: int) -> int:
    """The first non-zero byte at or after `pos` (len(buf) if none). Not a slice and a strip: every clean boot
    asks this at the end of its records, where the rest of a region may be megabytes (appliance.zeros)."""
    found = zeros.first_nonzero(buf, pos)
    return found if found is not None else len(buf)


def _wiped(buf: ReadBuffer, pos: int, epoch: int, max_payload: int) -> Tail | None:
    """A clean end, unless the zeros after the last record run on for ZERO_RUN bytes and more and then give
    way to an older generation's frame: records were there, and were zeroed (a wiped block, a bad copy)."""
    data = after_zeros(buf, pos)
    if data >= len(buf) or data - pos < ZERO_RUN:
        return None
    window = min(len(buf), data + 2 * (rec.FRAME.size + max_payload))  # past a frame the zeros cut in two
    for match in _ANY_FRAME.finditer(buf, max(pos, data - 3), window):
        stale = frame_at(buf, match.start(), max_payload, bodies=False)
        if stale is not None and stale.epoch < epoch:
            return Tail(pos, data, None, 0, torn=False, wiped=True)
    return None
