"""Fault injection on a whole data disk (issue 14), as tables: case -> expected outcome.

Each case damages a copy of one disk that holds thousands of events across both ledger regions (several
rollovers; bursts with the idle syncs' SYNCED markers between them, as a quiet appliance writes; two runs,
each stopped cleanly), boots the copy through the real boot path (`open_data_disk`), and holds the boot to
one of two outcomes:

  refused    the boot raises DiskError and the disk is byte-identical afterwards;
  recovered  the key is the old key (never "key-generated"); the loss the report gives is the loss the test
             counts (exact where the report is exact, else within its bound), so no loss goes unreported;
             the label fits (clean: nothing lost or unreadable; torn tail: only the last batch; damaged:
             anything else); the damaged bytes are still on the disk after the boot and a FINDING record
             covers them; a second boot finds nothing new and knows the damage; the findings outlive the
             rollovers that finally reuse the damaged region.

`python -m appliance disk check` must agree (exit 1 for refused or damaged, 0 otherwise) without changing
the disk.

The ground truth is what was written, not what the ledger's own scanner reads back: `RecordingDisk` decodes
every record frame as the ledger hands it to the disk, so the test knows each record's seq, kind, bytes and
place, and which events it appended (each event's reason names it).

Power loss: `CrashDisk` makes writes durable only at `sync`. A named operation of a workload (a write or a
sync) is replaced by the power cut; what survives is the durable image, or that plus a random subset of the
unsynced writes, or plus all of them with one torn at a 512-byte sector boundary.
"""

from __future__ import annotations

import io
import itertools
import random
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from appliance import ledger_record as rec
from appliance.config import DISK_HEADER_BYTES, ENDPOINTS, Limits
from appliance.data_disk import Opened, open_data_disk
from appliance.disk import Disk, DiskBusyError, DiskError
from appliance.disk_check import check_disk
from appliance.disk_header import SLOTS, CopyState, read_copies
from appliance.ledger import CHECKPOINT_AREA, CLEAN, DAMAGED, NEW, TORN_TAIL, RecoveryReport, min_region_bytes
from appliance.ledger_scan import ZERO_RUN
from appliance.log import JsonLog
from appliance.stats import Stats

ROOT = Path(__file__).resolve().parents[2]
REGION = -(-min_region_bytes(Limits()) // 4096) * 4096  # the smallest region, in whole 4 KiB blocks
BATCH = 8
LIMITS = replace(Limits(), ledger_batch_records=BATCH, ledger_region_bytes=REGION)
LAYOUT = DISK_HEADER_BYTES + 2 * REGION
KEY = bytes(range(1, 33))
NEW_KEY = bytes(range(101, 133))  # what a boot that generates a key gets: never expected on a used disk
REFUSED = "refused"
SECTOR = 512
CATEGORIES = ("untrusted-chain", "expired", "success", "timeout", "bad-handshake")
HEADER_FIELDS = {"magic": 0, "generation": 8, "region bytes": 16, "flags": 20, "format epoch": 21, "key": 25,
                 "crc": 57}
"""Byte offsets of the fields of a header copy (appliance.disk_header, format 2)."""


def event(i: int) -> rec.Event:
    """Event `i`: its reason names it."""
    return rec.Event(1000.0 + i, ENDPOINTS[i % 5], CATEGORIES[i % 5], f"10.{i % 3}.{i % 251}.1", f"event {i}")


# -- disks that tell the test what was written ------------------------------------------------------------


@dataclass(frozen=True)
class Written:
    """One record frame as the ledger handed it to the disk."""

    offset: int  # on the disk
    raw: bytes
    record: rec.Record
    op: int  # the disk operation (writes and syncs counted from 1) that wrote it

    @property
    def seq(self) -> int:
        return self.record.seq

    @property
    def is_checkpoint(self) -> bool:
        return isinstance(self.record.body, rec.Checkpoint)

    @property
    def is_event(self) -> bool:
        return isinstance(self.record.body, rec.Event)

    @property
    def region(self) -> int:
        return (self.offset - DISK_HEADER_BYTES) // REGION

    @property
    def local(self) -> int:
        return (self.offset - DISK_HEADER_BYTES) % REGION


@dataclass(frozen=True)
class Op:
    number: int
    kind: str  # "write" or "sync"
    offset: int


class RecordingDisk(Disk):
    """A Disk that notes every operation, and every record frame it is given to write."""

    def __init__(self, path: Path, written: list[Written]) -> None:
        super().__init__(path)
        self.written = written
        self.ops: list[Op] = []

    def write(self, offset: int, data: bytes) -> None:
        self._op("write", offset)
        super().write(offset, data)
        if offset >= DISK_HEADER_BYTES and len(data) > rec.FRAME.size:
            frame = bytes(data[: rec.FRAME.size + int.from_bytes(data[:4], "big")])
            try:
                record = rec.decode(frame, rec.CHECKPOINT_MAX_BYTES)
            except rec.RecordError:
                return  # a terminator, or the header
            self.written.append(Written(offset, frame, record, len(self.ops)))

    def sync(self) -> None:
        self._op("sync", 0)
        super().sync()

    def _op(self, kind: str, offset: int) -> None:
        self.ops.append(Op(len(self.ops) + 1, kind, offset))


class PowerLossError(Exception):
    """The simulated power cut: raised by CrashDisk instead of the operation it was asked for."""


class CrashDisk(RecordingDisk):
    """Every write reaches the file (so the run goes on as on a real disk), but only `sync` makes it durable:
    `durable` is what a power cut leaves for sure, `pending` what it may or may not leave. Operation number
    `crash_at` raises PowerLossError instead of happening."""

    def __init__(self, path: Path, written: list[Written], crash_at: int | None) -> None:
        super().__init__(path, written)
        self.crash_at = crash_at
        self.durable = bytearray(path.read_bytes())
        self.pending: list[tuple[int, bytes]] = []
        self.synced_op = 0  # every write before this operation is durable

    def _op(self, kind: str, offset: int) -> None:
        super()._op(kind, offset)
        if len(self.ops) == self.crash_at:
            raise PowerLossError

    def write(self, offset: int, data: bytes) -> None:
        super().write(offset, data)
        self.pending.append((offset, bytes(data)))

    def sync(self) -> None:
        super().sync()
        self.durable.extend(bytes(max(0, self.size() - len(self.durable))))  # a file grown by extend()
        for offset, data in self.pending:
            _apply(self.durable, offset, data)
        self.pending.clear()
        self.synced_op = len(self.ops)

    def survivor(self, variant: str, rng: random.Random) -> bytes:
        image = bytearray(self.durable)
        if variant == "subset":
            for offset, data in self.pending:
                if rng.random() < 0.5:
                    _apply(image, offset, data)
        elif variant == "torn":
            # The last unsynced write that spans a sector boundary reaches the disk on one side of it only.
            crossing = [i for i, (o, d) in enumerate(self.pending) if _boundary(o) < o + len(d)]
            torn = crossing[-1] if crossing else len(self.pending) - 1
            for i, (offset, data) in enumerate(self.pending[: torn + 1]):
                cut = _boundary(offset) - offset
                if i < torn:
                    _apply(image, offset, data)
                elif cut < len(data):
                    _apply(image, *((offset, data[:cut]) if rng.random() < 0.5 else (offset + cut, data[cut:])))
        else:
            assert variant == "drop"
        return bytes(image)


def _boundary(offset: int) -> int:
    """The first sector boundary after `offset`."""
    return (offset // SECTOR + 1) * SECTOR


def _apply(image: bytearray, offset: int, data: bytes) -> None:
    image.extend(bytes(max(0, offset + len(data) - len(image))))
    image[offset : offset + len(data)] = data


# -- running the appliance's side of the ledger ---------------------------------------------------------------


class Sink:
    """The statistics as boot feeds them, keeping every replayed record for the test."""

    def __init__(self) -> None:
        self.stats = Stats(LIMITS)
        self.replayed: list[rec.Record] = []

    def initial(self) -> bytes:
        return self.stats.initial()

    def replay(self, record: rec.Record) -> None:
        self.replayed.append(record)
        self.stats.replay(record)

    def checkpoint(self) -> bytes:
        return self.stats.checkpoint()


@dataclass
class Run:
    """What a workload wrote: the ground truth, on top of the history of the image it started from."""

    written: list[Written] = field(default_factory=list)
    next_event: int = 0
    durable: int = 0  # written[:durable] were on the disk before this run
    call: int = 0  # written[call:] were written by the ledger call in progress when the power was cut


def append_events(opened: Opened, sink: Sink, run: Run, count: int) -> None:
    """As appliance.service.Appliance.record does: the ledger first (a rollover checkpoints the state before
    the event), then the statistics, then a sync when a batch is full."""
    for _ in range(count):
        ev = event(run.next_event)
        run.next_event += 1
        run.call = len(run.written)
        opened.ledger.append(ev, sink.checkpoint)
        sink.stats.add(ev)
        if opened.ledger.sync_due():
            opened.ledger.sync()
    run.call = len(run.written)


def append_bursts(opened: Opened, sink: Sink, run: Run, rng: random.Random) -> None:
    """A burst of 1 to 12 events, then the quiet that lets the batch timer sync: as a quiet appliance does,
    the idle sync ends with a SYNCED marker (Ledger.sync(idle=True))."""
    append_events(opened, sink, run, rng.randint(1, 12))
    opened.ledger.sync(idle=True)
    run.call = len(run.written)


def stop(opened: Opened, sink: Sink, run: Run | None = None) -> None:
    opened.ledger.mark_stopped(sink.checkpoint)
    if run is not None:
        run.call = len(run.written)


def boot_on(disk: Disk, sink: Sink, out: io.StringIO, new_key: bytes = NEW_KEY) -> Opened:
    return open_data_disk(disk, LIMITS, sink, JsonLog(out), new_key=lambda: new_key)


@dataclass(frozen=True)
class Built:
    """The disk every case starts from."""

    image: bytes
    written: tuple[Written, ...]
    active: int  # the region the ledger was appending to at the clean stop

    def live(self, region: int) -> list[Written]:
        """The records of the region's current generation, checkpoint first, as they are on the disk."""
        on_disk = [w for w in self.written if w.region == region and _intact(self.image, w)]
        epoch = max(w.record.epoch for w in on_disk if w.is_checkpoint)
        return sorted((w for w in on_disk if w.record.epoch == epoch), key=lambda w: w.seq)

    def with_image(self, image: bytes) -> Built:
        return Built(image, self.written, self.active)


def _intact(image: bytes, w: Written) -> bool:
    return image[w.offset : w.offset + len(w.raw)] == w.raw


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """Booted from blank, filled in bursts with idle syncs between them (SYNCED markers) until four rollovers
    have happened and the active region is over half full (well over a batch, and over the batch of 64 that
    `disk check` assumes), then stopped cleanly; booted again, a few more bursts in the same region (so that
    a STOPPED marker has records after it), and stopped cleanly again."""
    path = tmp_path_factory.mktemp("built") / "disk.img"
    run = Run()
    rng = random.Random(14)
    disk = RecordingDisk(path, run.written)
    sink = Sink()
    opened = boot_on(disk, sink, io.StringIO(), new_key=KEY)
    assert opened.generated
    while opened.ledger.rollovers < 4 or opened.ledger.offset < REGION // 2:
        append_bursts(opened, sink, run, rng)
    stop(opened, sink)
    disk.close()
    disk = RecordingDisk(path, run.written)
    sink = Sink()
    opened = boot_on(disk, sink, io.StringIO())
    assert opened.report.outcome == CLEAN
    more = run.next_event + 150
    while run.next_event < more:
        append_bursts(opened, sink, run, rng)
    stop(opened, sink)
    disk.close()
    assert opened.ledger.rollovers == 0
    result = Built(path.read_bytes(), tuple(run.written), opened.ledger.region)
    assert len(result.live(result.active)) > 128
    assert len(result.live(1 - result.active)) > 128
    assert sink.stats.total() == run.next_event > 3000
    marks = [w.record.body for w in result.live(result.active) if isinstance(w.record.body, rec.Marker)]
    assert marks.count(rec.Marker(rec.MARK_STOPPED)) == 2
    assert marks.count(rec.Marker(rec.MARK_SYNCED)) > 10
    return result


# -- damage ---------------------------------------------------------------------------------------------------


Damage = Callable[[Built], bytes]
Where = Callable[[Built], int]


def base(region: int) -> int:
    return DISK_HEADER_BYTES + region * REGION


def region_of(b: Built, role: str) -> int:
    return b.active if role == "active" else 1 - b.active


def header_field(slot: int, name: str) -> Where:
    return lambda b: SLOTS[slot] + HEADER_FIELDS[name]


def checkpoint(role: str) -> Where:
    return lambda b: base(region_of(b, role)) + rec.FRAME.size + rec.PREFIX.size + 40  # inside its JSON


def _nth(b: Built, role: str, which: str) -> Written:
    records = b.live(region_of(b, role))[1:]  # after the checkpoint
    return records[{"first": 0, "middle": len(records) // 2, "last": -1}[which]]


def record(role: str, which: str) -> Where:
    """The last byte of a record (in the active region the last one is the stop marker: its only body byte)."""
    return lambda b: _nth(b, role, which).offset + len(_nth(b, role, which).raw) - 1


def length_field(role: str, which: str) -> Where:
    """The low byte of a record's length: with bit 0x20 flipped the length is off by 32."""
    return lambda b: _nth(b, role, which).offset + 3


def terminator(role: str) -> Where:
    """A byte of the eight zeros after the region's last record."""
    return lambda b: b.live(region_of(b, role))[-1].offset + len(b.live(region_of(b, role))[-1].raw) + 3


def flip(*places: Where, bit: int = 0x20) -> Damage:
    def damage(b: Built) -> bytes:
        image = bytearray(b.image)
        for where in places:
            image[where(b)] ^= bit
        return bytes(image)
    return damage


def zero(start: Where, length: int) -> Damage:
    return lambda b: b.image[: start(b)] + bytes(length) + b.image[start(b) + length :]


def in_region(role: str, offset: int = 0) -> Where:
    return lambda b: base(region_of(b, role)) + offset


def records_end(role: str, back: int) -> Where:
    """`back` bytes before the end of the region's records, or earlier, so that 2 * back bytes from there
    stay in the region."""
    def where(b: Built) -> int:
        last = b.live(region_of(b, role))[-1]
        return min(last.offset + len(last.raw) - back, base(region_of(b, role)) + REGION - 2 * back)
    return where


def overwrite(start: Where, end: Where, fill: str) -> Damage:
    """Zeros (a wiped block) or random bytes (a misdirected write) from `start` to `end`."""
    def damage(b: Built) -> bytes:
        a, z = start(b), end(b)
        data = bytes(z - a) if fill == "zeros" else random.Random(a).randbytes(z - a)
        return b.image[:a] + data + b.image[z:]
    return damage


def nth_last_record(role: str, n: int) -> Where:
    """Where the region's n-th record from the end begins."""
    return lambda b: b.live(region_of(b, role))[-n].offset


def past_records(role: str) -> Where:
    """Just past the terminator after the region's last record."""
    def where(b: Built) -> int:
        last = b.live(region_of(b, role))[-1]
        return last.offset + len(last.raw) + len(rec.TERMINATOR)
    return where


def after_marker(what: int, n: int) -> Where:
    """Just after the active region's n-th marker `what` from the end."""
    def where(b: Built) -> int:
        marker = [w for w in b.live(b.active) if w.record.body == rec.Marker(what)][-n]
        return marker.offset + len(marker.raw)
    return where


def region_end(role: str) -> Where:
    return lambda b: base(region_of(b, role)) + REGION


def truncate(size: int) -> Damage:
    return lambda b: b.image[:size]


def then(first: Damage, second: Damage) -> Damage:
    return lambda b: second(b.with_image(first(b)))


@dataclass(frozen=True)
class Case:
    name: str
    damage: Damage
    expect: str  # REFUSED, or the outcome of the boot that recovers
    repaired: tuple[int, ...] = ()  # header copies the boot rewrites

    def param(self) -> object:
        return pytest.param(self, id=f"{self.name} -> {self.expect}")


HEADER_CASES = [
    Case("zeroed header block", zero(lambda b: 0, DISK_HEADER_BYTES), REFUSED),
    Case("zeroed copy 0", zero(lambda b: 0, SLOTS[1]), CLEAN, repaired=(0,)),
    Case("zeroed copy 1", zero(lambda b: SLOTS[1], SLOTS[1]), CLEAN, repaired=(1,)),
    *(Case(f"flip copy {slot} {name}", flip(header_field(slot, name)), CLEAN, repaired=(slot,))
      for slot in (0, 1) for name in HEADER_FIELDS),
    Case("flip copy 0 padding", flip(lambda b: 1000), CLEAN, repaired=(0,)),
    Case("flip both copies' key", flip(header_field(0, "key"), header_field(1, "key")), REFUSED),
    Case("flip both copies' CRC", flip(header_field(0, "crc"), header_field(1, "crc")), REFUSED),
    Case("zeroed copy 0, flip copy 1", then(zero(lambda b: 0, SLOTS[1]), flip(header_field(1, "generation"))),
         REFUSED),
]

LEDGER_CASES = [
    Case("flip active checkpoint", flip(checkpoint("active")), DAMAGED),
    Case("flip inactive checkpoint", flip(checkpoint("inactive")), DAMAGED),
    Case("flip both checkpoints", flip(checkpoint("active"), checkpoint("inactive")), DAMAGED),
    Case("flip active first record", flip(record("active", "first")), DAMAGED),
    Case("flip active middle record", flip(record("active", "middle")), DAMAGED),
    Case("flip active last record (stop marker)", flip(record("active", "last")), TORN_TAIL),
    Case("flip inactive first record", flip(record("inactive", "first")), DAMAGED),
    Case("flip inactive middle record", flip(record("inactive", "middle")), DAMAGED),
    Case("flip inactive last record (rolled-over marker)", flip(record("inactive", "last")), DAMAGED),
    Case("flip active middle length field", flip(length_field("active", "middle")), DAMAGED),
    Case("flip active last length field", flip(length_field("active", "last")), TORN_TAIL),
    Case("flip inactive middle length field", flip(length_field("inactive", "middle")), DAMAGED),
    Case("flip inactive last length field", flip(length_field("inactive", "last")), DAMAGED),
    Case("flip active and inactive middle records", flip(record("active", "middle"), record("inactive", "middle")),
         DAMAGED),
    Case("flip active terminator", flip(terminator("active")), TORN_TAIL),
    Case("zeroed 4 KiB mid active region", zero(in_region("active", REGION // 4), 4096), DAMAGED),
    Case("zeroed 4 KiB over the active region's last records", zero(records_end("active", 2048), 4096), DAMAGED),
    # (more than a batch of 64 too, the batch `disk check` assumes: LIMITS has a batch of 8)
    Case("zeroed 4600 bytes, more than a batch, just before the stop marker",
         zero(records_end("active", 4700), 4600), DAMAGED),
    Case("zeroed 4 KiB over the inactive region's last records", zero(records_end("inactive", 2048), 4096),
         DAMAGED),
    Case("zeroed inactive region", zero(in_region("inactive"), REGION), DAMAGED),
    # Zeros after a clean marker: the record after one is synced at once, so no power cut leaves this.
    Case("zeroed from the 5th last SYNCED marker to past the records",
         overwrite(after_marker(rec.MARK_SYNCED, 5), past_records("active"), "zeros"), DAMAGED),
    Case("zeroed from the earlier session's STOPPED marker to past the records",
         overwrite(after_marker(rec.MARK_STOPPED, 2), past_records("active"), "zeros"), DAMAGED),
    # Garbage over the last records: its extent is found, and past what a torn write leaves it is damage.
    Case("garbage over the active region's last 2 records (what one torn write can leave)",
         overwrite(nth_last_record("active", 2), past_records("active"), "garbage"), TORN_TAIL),
    Case("garbage over the active region's last 40 records",
         overwrite(nth_last_record("active", 40), past_records("active"), "garbage"), DAMAGED),
    Case("garbage over the active region's last 250 records",
         overwrite(nth_last_record("active", 250), past_records("active"), "garbage"), DAMAGED),
    # ... up to the region's end: the boot's findings do not fit after it, and roll over.
    Case("garbage from the active region's 40th last record to its end",
         overwrite(nth_last_record("active", 40), region_end("active"), "garbage"), DAMAGED),
    Case("garbage over the inactive region's last 40 records",
         overwrite(nth_last_record("inactive", 40), past_records("inactive"), "garbage"), DAMAGED),
    Case("zeroed active region", zero(in_region("active"), REGION), DAMAGED),
]

TRUNCATION_CASES = [
    Case("truncated to 0", truncate(0), REFUSED),
    Case("truncated to 2048 (copy 1 gone)", truncate(SLOTS[1]), REFUSED),
    Case("truncated to 4096 (header only)", truncate(DISK_HEADER_BYTES), REFUSED),
    Case("truncated inside region 0's checkpoint", truncate(base(0) + 100), REFUSED),
    Case("truncated at region 1's start", truncate(base(1)), REFUSED),
    Case("truncated mid region 1", truncate(base(1) + REGION // 2), REFUSED),
    Case("truncated one byte short of the layout", truncate(LAYOUT - 1), REFUSED),
]


# -- what every boot must satisfy -----------------------------------------------------------------------------


@dataclass
class Boot:
    opened: Opened | None
    error: DiskError | None
    sink: Sink
    log: str
    written: list[Written]  # by this boot

    @property
    def report(self) -> RecoveryReport:
        assert self.opened is not None, self.error
        return self.opened.report


def boot(path: Path, *, then_stop: bool = True) -> Boot:
    """Boot as the appliance does, then (unless told not to) stop cleanly."""
    written: list[Written] = []
    disk = RecordingDisk(path, written)
    sink, out = Sink(), io.StringIO()
    try:
        opened = boot_on(disk, sink, out)
        if then_stop:
            stop(opened, sink)
        return Boot(opened, None, sink, out.getvalue(), written)
    except DiskError as exc:
        return Boot(None, exc, sink, out.getvalue(), written)
    finally:
        disk.close()


@dataclass(frozen=True)
class Loss:
    """What the test counts from what was written and what the boot replayed."""

    records: tuple[Written, ...]  # gone from the totals: neither replayed nor counted by a replayed checkpoint
    events: int  # events gone from the totals, by the statistics
    excused: int  # of `records`, how many the report may leave out (see assert_recovered)

    @property
    def least(self) -> int:
        return len(self.records) - self.excused


def count_loss(history: Sequence[Written], result: Boot, excusable: frozenset[int]) -> Loss:
    """Records written before this boot that are now neither replayed nor counted in the checkpoint the boot
    restored. Every replayed record must be exactly one that was written, in seq order."""
    own = {(w.seq, w.record.body) for w in result.written}
    replayed = [r for r in result.sink.replayed if (r.seq, r.body) not in own]  # recovery's, not commit's
    by_seq = {w.seq: w for w in history}
    seqs = [r.seq for r in replayed]
    assert seqs == sorted(set(seqs)), "records replayed out of order or twice"
    for r in replayed:
        assert r.seq in by_seq, f"replayed record {r.seq} was never written"
        assert by_seq[r.seq].record == r, f"replayed record {r.seq} is not what was written"
    checkpoints = [r.seq for r in replayed if isinstance(r.body, rec.Checkpoint)]
    since = checkpoints[-1] if checkpoints else -1
    replayed_seqs = set(seqs)
    gone = [w for w in history if not w.is_checkpoint and w.seq > since and w.seq not in replayed_seqs]
    known = result.report.known  # reported by an earlier boot: not this one's to count again
    lost = tuple(w for w in gone if not any(f.region == w.region and f.start <= w.local < f.end for f in known))
    events = sum(w.is_event for w in history) - sum(w.is_event for w in gone if w not in lost)
    return Loss(lost, events - result.sink.stats.total(), sum(w.seq in excusable for w in lost))


def assert_recovered(result: Boot, history: Sequence[Written], *, at_risk: Sequence[Written] | None = None,
                     excusable: Sequence[Written] = ()) -> Loss:
    """No new key; the loss reported is the loss counted (or within its bound); the label fits.

    `at_risk`: after a power cut, the records that were not yet synced (or were damaged before): the only
    ones it may cost. `excusable`: records whose loss leaves no trace a boot could count, so the report may
    leave them out: the records of the ledger call the power cut interrupted (the caller never counted
    them), and the findings and markers of a run that never synced them (the next boot finds the same
    damage again). An event whose append returned is never excusable."""
    report = result.report
    assert "key-generated" not in result.log
    loss = count_loss(history, result, frozenset(w.seq for w in excusable))
    assert loss.events == sum(w.is_event for w in loss.records), "the totals disagree with the records"
    lost_seqs = [w.seq for w in loss.records]
    assert report.lost <= len(loss.records), (report, lost_seqs)
    assert loss.least <= report.lost_bound, (report, lost_seqs)
    if all(f.records == f.bound for f in report.findings if not f.totals_kept):  # every count exact
        assert loss.least <= report.lost, (report, lost_seqs)
    if at_risk is not None:
        assert set(lost_seqs) <= {w.seq for w in at_risk}, f"synced records lost: {lost_seqs}"
    if report.outcome in (CLEAN, NEW):
        assert not report.findings
        assert loss.least == 0, (report, lost_seqs)
    else:
        assert report.findings
        assert all(f.torn for f in report.findings) == (report.outcome == TORN_TAIL)
    if report.outcome == TORN_TAIL:  # the last batch only (and the checkpoint and marker of a rollover)
        last = max(w.seq for w in history)
        assert all(seq > last - BATCH - 3 for seq in lost_seqs), (report, lost_seqs)
    # The boot wrote its findings (each before anything that could overwrite what it describes).
    assert [w.record.body for w in result.written if isinstance(w.record.body, rec.Finding)] == list(report.findings)
    return loss


def assert_evidence_kept(before: bytes, after: bytes, report: RecoveryReport) -> None:
    """What the boot could not read is still there: no byte of a new finding's span was written over."""
    for f in report.findings:
        at = base(f.region)
        assert after[at + f.start : at + f.end] == before[at + f.start : at + f.end], f"finding {f} overwritten"


def assert_detail_reported(report: RecoveryReport, built: Built, image: bytes) -> None:
    """Every record of the two live generations whose bytes the damage touched lies in a finding of its
    region, and the unreadable count agrees (exactly, where the findings are exact)."""
    touched = [w for r in (0, 1) for w in built.live(r) if not _intact(image, w)]
    for w in touched:  # (a finding of no bytes says "from here on")
        assert any(f.region == w.region and f.start <= w.local < (f.end if f.end > f.start else REGION)
                   for f in report.findings), \
            f"damaged record {w.seq} ({type(w.record.body).__name__}) at {w.region}:{w.local} is in no finding"
    records = sum(not w.is_checkpoint for w in touched)
    assert report.unreadable <= records <= sum(f.bound for f in report.findings)
    if all(f.records == f.bound for f in report.findings):
        assert report.unreadable == records


def assert_known_later(path: Path, first: RecoveryReport, key: bytes, *, through_rollovers: bool) -> None:
    """The first boot's findings are in the ledger: a second boot finds nothing new and knows the damage it
    sees again; and (`through_rollovers`) after the two rollovers that reuse both regions, the damaged one
    included, the statistics still list it."""
    again = boot(path, then_stop=False)
    assert again.opened is not None, again.error
    assert "key-generated" not in again.log
    assert again.opened.secret == key
    assert again.report.outcome == CLEAN, again.report
    assert {f.key() for f in first.findings if f.start < f.end} <= {f.key() for f in again.report.known}
    assert _listed(again.sink.stats) >= _as_listed(first.findings)
    if not through_rollovers:
        return
    disk = Disk(path)
    sink = Sink()
    try:
        opened = boot_on(disk, sink, io.StringIO())
        run = Run(next_event=1_000_000)
        while opened.ledger.rollovers < 2 or _ends_in_zeros(disk, opened):
            append_events(opened, sink, run, 1)
        stop(opened, sink)
    finally:
        disk.close()
    last = boot(path)
    assert last.report.outcome == CLEAN, last.report
    assert _listed(last.sink.stats) >= _as_listed(first.findings)
    integrity = last.sink.stats.integrity
    assert integrity["damaged"] + integrity["torn_tails"] >= len(first.findings)


def _ends_in_zeros(disk: Disk, opened: Opened) -> bool:
    """The records end in a run of zeros that data follows: zeros a wipe left, recorded when the older
    generation was there. A later generation that ends inside them looks wiped to the next boot (the format
    cannot tell those zeros from a wipe of its own records: reported as damage, never hidden; see
    appliance.ledger_scan), so the reuse below stops elsewhere."""
    at = DISK_HEADER_BYTES + opened.ledger.region * REGION + opened.ledger.offset
    after = disk.read(at, REGION - opened.ledger.offset)
    return not any(after[: ZERO_RUN + rec.FRAME.size]) and any(after)


def _listed(stats: Stats) -> set[tuple[object, ...]]:
    return {(f["region"], f["epoch"], f["start"], f["end"], f["records"]) for f in stats.findings}


def _as_listed(findings: Sequence[rec.Finding]) -> set[tuple[object, ...]]:
    return {(f.region, f.epoch, f.start, f.end, f.records) for f in findings}


def check_status(path: Path) -> int:
    """`disk check`'s exit status; it must not change the disk."""
    before = path.read_bytes()
    status = check_disk(path, io.StringIO())
    assert path.read_bytes() == before, "disk check changed the disk"
    return status


# -- the matrix -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", [c.param() for c in HEADER_CASES + LEDGER_CASES + TRUNCATION_CASES])
def test_damaged_disk(case: Case, built: Built, tmp_path: Path) -> None:
    image = case.damage(built)
    assert image != built.image
    path = tmp_path / "disk.img"
    path.write_bytes(image)

    assert check_status(path) == (0 if case.expect in (CLEAN, TORN_TAIL) else 1)

    result = boot(path)
    if case.expect == REFUSED:
        assert result.error is not None, result.report
        assert path.read_bytes() == image, "a refused boot wrote to the disk"
        assert "key-generated" not in result.log
        return
    assert result.opened is not None, result.error
    assert result.opened.secret == KEY
    assert result.report.outcome == case.expect, result.report
    assert_recovered(result, built.written)
    assert_detail_reported(result.report, built, image)
    after = path.read_bytes()
    assert_evidence_kept(image, after, result.report)
    ledger_damage = [i for i in range(DISK_HEADER_BYTES, len(image)) if image[i] != built.image[i]]
    assert all(after[i] == image[i] for i in ledger_damage), "damaged ledger bytes were overwritten"
    copies = read_copies(after[:DISK_HEADER_BYTES])
    assert all(c.state is CopyState.VALID and c.header is not None and c.header.key == KEY for c in copies)
    assert result.log.count('"disk-header-repaired"') == len(case.repaired)
    assert_known_later(path, result.report, KEY, through_rollovers=True)


def test_findings_that_force_a_rollover_are_counted_by_its_checkpoint(built: Built, tmp_path: Path) -> None:
    """Garbage to the end of the active region leaves no room for the boot's findings after it, so recording
    them rolls over, and the new checkpoint goes over the inactive region's first records, where one of the
    findings describes damage. Power is cut after that checkpoint is synced, before the findings are: the
    checkpoint itself must count them (the write that replaces the evidence is its record). Without the
    power cut, each finding is counted once."""
    inactive = 1 - built.active
    image = then(overwrite(nth_last_record("active", 40), region_end("active"), "garbage"),
                 flip(record("inactive", "first")))(built)
    path = tmp_path / "disk.img"
    path.write_bytes(image)
    written: list[Written] = []
    disk = RecordingDisk(path, written)
    try:
        findings = boot_on(disk, Sink(), io.StringIO()).report.findings
    finally:
        disk.close()
    assert any(f.region == inactive and not f.torn and f.start < CHECKPOINT_AREA for f in findings), findings
    (checkpoint,) = [w for w in written if w.is_checkpoint]
    assert checkpoint.region == inactive
    assert all(w.op > checkpoint.op for w in written if isinstance(w.record.body, rec.Finding))
    synced = next(op.number for op in disk.ops if op.kind == "sync" and op.number > checkpoint.op)

    path.write_bytes(image)
    crash = CrashDisk(path, [], crash_at=synced + 1)
    try:
        with pytest.raises(PowerLossError):
            boot_on(crash, Sink(), io.StringIO())
    finally:
        crash.close()
    path.write_bytes(crash.survivor("drop", random.Random(0)))
    after = boot(path)
    assert after.opened is not None, after.error
    assert _listed(after.sink.stats) >= _as_listed(findings)

    path.write_bytes(image)
    assert boot(path).report.findings == findings
    again = boot(path)
    assert again.report.outcome == CLEAN, again.report
    integrity = again.sink.stats.integrity
    assert integrity["damaged"] + integrity["torn_tails"] == len(findings)
    assert _listed(again.sink.stats) >= _as_listed(findings)


# -- one writer -----------------------------------------------------------------------------------------------


def test_a_second_instance_is_refused_and_changes_nothing(built: Built, tmp_path: Path) -> None:
    path = tmp_path / "disk.img"
    path.write_bytes(built.image)
    holder = Disk(path)
    try:
        with pytest.raises(DiskBusyError, match="locked"):
            Disk(path)
        proc = subprocess.run(
            [sys.executable, "-m", "appliance", "--net", "kernel", "--port-offset", "30000", "--disk", str(path)],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        )
        assert proc.returncode != 0
        assert "locked" in proc.stdout + proc.stderr
        assert check_disk(path, io.StringIO()) == 2  # in use: the check does not read under a writer
    finally:
        holder.close()
    assert path.read_bytes() == built.image
    assert check_status(path) == 0


# -- power loss -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """A boot on `start`, then `events` appends (0: to a rollover and two batches past it), then a stop."""

    start: Damage | None  # the starting image; None: no file (a new disk)
    events: int
    damaged: bool = False  # the starting image holds damage no boot has recorded yet
    quiet: bool = False  # the events come in bursts with idle syncs between them (SYNCED markers)


WORKLOADS = {
    "blank": Workload(None, 2 * BATCH + 3),
    "first rollover": Workload(None, 0),
    "built": Workload(lambda b: b.image, 0),
    "header repair": Workload(flip(header_field(0, "key")), BATCH + 3),
    "finding": Workload(flip(record("active", "middle")), BATCH + 3, damaged=True),
    "quiet": Workload(lambda b: b.image, 4 * BATCH, quiet=True),
}


def run_workload(name: str, built: Built, path: Path, crash_at: int | None) -> tuple[CrashDisk, Run]:
    workload = WORKLOADS[name]
    path.unlink(missing_ok=True)
    run = Run()
    if workload.start is not None:
        path.write_bytes(workload.start(built))
        run = Run(list(built.written), next_event=500_000, durable=len(built.written))
    disk = CrashDisk(path, run.written, crash_at)
    sink = Sink()
    try:
        opened = boot_on(disk, sink, io.StringIO())
        count = workload.events
        if not count:
            size = min(len(w.raw) for w in built.written if w.is_event)
            count = (REGION - opened.ledger.offset) // size + 2 * BATCH + 2
        if workload.quiet:
            rng, more = random.Random(name), run.next_event + count
            while run.next_event < more:
                append_bursts(opened, sink, run, rng)
        else:
            append_events(opened, sink, run, count)
        stop(opened, sink, run)
    except PowerLossError:
        pass
    finally:
        disk.close()
    return disk, run


_CRASH_POINTS: dict[str, dict[str, int]] = {}


def crash_points(name: str, built: Built, tmp_path: Path) -> dict[str, int]:
    """Named operations of a workload, from a run that does not crash (once per workload)."""
    if name not in _CRASH_POINTS:
        disk, run = run_workload(name, built, tmp_path / "points.img", None)
        ops = disk.ops
        writes = [op.number for op in ops if op.kind == "write"]
        syncs = [op.number for op in ops if op.kind == "sync"]
        booted = min(w.op for w in run.written[run.durable :] if w.is_event) - 1
        stop_write = max(w.op for w in run.written[run.durable :] if w.record.body == rec.Marker(rec.MARK_STOPPED))
        points = {
            "boot's first write": writes[0],
            "first event": booted + 1,
            "first event's sync": next(n for n in syncs if n > booted),
            "mid batch": [n for n in writes if n > booted][BATCH + 3],
            "batch sync": next(b for a, b in itertools.pairwise(syncs) if a > booted and b - a > 2),
            "stop marker write": stop_write,
            "stop marker sync": stop_write + 1,
        }
        boot_syncs = [n for n in syncs if n <= booted]
        if boot_syncs:
            points["boot's last sync"] = boot_syncs[-1]
        synced = [w.op for w in run.written[run.durable :] if w.record.body == rec.Marker(rec.MARK_SYNCED)]
        if synced:  # the record after a SYNCED marker is synced alone, before its append returns
            after = min(w.op for w in run.written[run.durable :] if w.is_event and w.op > synced[0])
            points |= {"SYNCED marker write": synced[0], "SYNCED marker sync": synced[0] + 1,
                       "event after a SYNCED marker": after, "its sync": after + 1}
        rolled = [w.op for w in run.written[run.durable :] if w.record.body == rec.Marker(rec.MARK_ROLLED)]
        if rolled:  # a rollover: terminator, checkpoint, sync, rolled-over marker, sync, the event
            points |= {"rollover terminator": rolled[0] - 3, "rollover checkpoint write": rolled[0] - 2,
                       "rollover checkpoint sync": rolled[0] - 1, "rolled-over marker write": rolled[0],
                       "rolled-over marker sync": rolled[0] + 1, "first event after rollover": rolled[0] + 2}
        _CRASH_POINTS[name] = points
    return _CRASH_POINTS[name]


ROLLOVER = ("rollover terminator", "rollover checkpoint write", "rollover checkpoint sync",
            "rolled-over marker write", "rolled-over marker sync", "first event after rollover")
CRASHES = [
    *(("blank", p) for p in ("boot's first write", "boot's last sync", "first event", "first event's sync",
                             "mid batch", "batch sync", "stop marker write")),
    *(("first rollover", p) for p in ROLLOVER),
    *(("built", p) for p in ("boot's first write", "first event", "first event's sync", "mid batch", "batch sync",
                             *ROLLOVER, "stop marker write", "stop marker sync")),
    *(("header repair", p) for p in ("boot's first write", "boot's last sync", "mid batch")),
    *(("finding", p) for p in ("boot's first write", "boot's last sync", "mid batch")),
    *(("quiet", p) for p in ("SYNCED marker write", "SYNCED marker sync", "event after a SYNCED marker", "its sync",
                             "stop marker write")),
]


@pytest.mark.parametrize("variant", ["drop", "subset", "torn"])
@pytest.mark.parametrize(("workload", "point"), CRASHES, ids=[f"{w}: power cut at {p}" for w, p in CRASHES])
def test_power_loss(workload: str, point: str, variant: str, built: Built, tmp_path: Path) -> None:
    """Drop: only synced writes survive. Subset: a random half of the unsynced ones too. Torn: all of them,
    one cut at a sector boundary. Expected: clean or torn tail (damaged only where the starting image was),
    never a synced record lost, never a new key on a disk that had one."""
    crash_at = crash_points(workload, built, tmp_path)[point]
    path = tmp_path / "disk.img"
    disk, run = run_workload(workload, built, path, crash_at)
    assert len(disk.ops) == crash_at, "the power cut did not happen"
    image = disk.survivor(variant, random.Random(f"{workload} {point} {variant}"))
    path.write_bytes(image)
    key = _key_on(image)

    status = check_status(path)
    result = boot(path)
    if key is None:  # no header copy reached the disk: only a provably blank disk gets a key, or none
        if result.opened is None:  # a file shorter than the layout may be a truncated disk: refused
            assert path.read_bytes() == image
            assert len(image) < LAYOUT
        else:
            assert not any(image)
        return
    assert result.opened is not None, result.error
    assert result.opened.secret == key
    unsynced = [w for w in run.written[run.durable :] if w.op > disk.synced_op]
    start = _start_image(workload, built)
    before = [w for w in run.written[: run.durable] if not _intact(start, w)]
    excusable = run.written[run.call :] + [w for w in unsynced if not w.is_event]
    loss = assert_recovered(result, run.written, at_risk=unsynced + before, excusable=excusable)
    # (new: the power cut came before the ledger's first checkpoint reached the disk)
    allowed = (NEW, CLEAN, TORN_TAIL, DAMAGED) if WORKLOADS[workload].damaged else (NEW, CLEAN, TORN_TAIL)
    assert result.report.outcome in allowed, (result.report, len(loss.records))
    assert status == (1 if result.report.outcome == DAMAGED else 0)
    assert_evidence_kept(image, path.read_bytes(), result.report)
    assert_known_later(path, result.report, key, through_rollovers=False)


def _start_image(workload: str, built: Built) -> bytes:
    start = WORKLOADS[workload].start
    return start(built) if start is not None else b""


def _key_on(image: bytes) -> bytes | None:
    block = image[:DISK_HEADER_BYTES].ljust(DISK_HEADER_BYTES, b"\x00")
    keys = {c.header.key for c in read_copies(block) if c.header is not None and c.header.key is not None}
    assert len(keys) <= 1
    return keys.pop() if keys else None
