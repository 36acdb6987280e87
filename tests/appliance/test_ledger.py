from __future__ import annotations

import contextlib
import mmap
import os
import signal
import subprocess
import sys
import zlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from appliance import ledger_record as rec
from appliance import zeros
from appliance.config import DISK_HEADER_BYTES, Limits
from appliance.data_disk import provision
from appliance.disk import Disk, DiskDamagedError, DiskError
from appliance.ledger import (
    CHECKPOINT_AREA,
    RESERVE,
    Ledger,
    LedgerArea,
    Recovery,
    RecoveryReport,
    min_region_bytes,
)
from appliance.ledger_scan import EPOCH_GUESS_FRAMES, frame_at, guess_epochs
from appliance.stats import Stats
from appliance.zeros import ReadBuffer
from tests.appliance.reach import walk

ROOT = Path(__file__).resolve().parents[2]
SMALLEST_REGION = -(-min_region_bytes(Limits()) // 4096) * 4096  # the disk header wants whole 4 KiB blocks
LIMITS = replace(Limits(), ledger_batch_records=4, ledger_region_bytes=SMALLEST_REGION)


def _event(i: int) -> rec.Event:
    return rec.Event(1000.0 + i, "mutual", "untrusted-chain" if i % 3 else "expired", f"10.0.{i % 7}.1", f"r{i}")


def _open(path: Path, limits: Limits = LIMITS) -> tuple[Ledger, Stats, list[rec.Record], Disk]:
    """A new ledger on a new disk of the whole layout."""
    disk = Disk(path)
    disk.extend(DISK_HEADER_BYTES + 2 * limits.ledger_region_bytes)
    ledger, stats, seen, _ = _boot(disk, limits, started=False)
    return ledger, stats, seen, disk


def _reopen(path: Path, limits: Limits = LIMITS) -> tuple[Ledger, Stats, list[rec.Record], RecoveryReport]:
    """Boot again on the disk, then let go of it (its lock) as a stopped process would."""
    ledger, stats, seen, report, disk = _reopen_held(path, limits)
    disk.close()
    return ledger, stats, seen, report


def _reopen_held(path: Path, limits: Limits = LIMITS) -> tuple[Ledger, Stats, list[rec.Record], RecoveryReport, Disk]:
    disk = Disk(path)
    return (*_boot(disk, limits, started=True), disk)


def _boot(disk: Disk, limits: Limits, *, started: bool) -> tuple[Ledger, Stats, list[rec.Record], RecoveryReport]:
    """Recover and commit as the appliance does, keeping every replayed record in `seen`."""
    ledger = Ledger(LedgerArea(disk, limits.ledger_region_bytes), limits)
    stats = Stats(limits)
    seen: list[rec.Record] = []

    def consume(record: rec.Record) -> None:
        seen.append(record)
        stats.replay(record)

    report = ledger.open(stats.initial, consume, stats.checkpoint, started=started)
    return ledger, stats, seen, report


def _events(seen: list[rec.Record]) -> list[rec.Event]:
    return [r.body for r in seen if isinstance(r.body, rec.Event)]


def _append(ledger: Ledger, stats: Stats, event: rec.Event) -> int:
    seq = ledger.append(event, stats.checkpoint)  # as Appliance.record: the ledger before the statistics
    stats.add(event)
    return seq


def _close(ledger: Ledger, stats: Stats, disk: Disk) -> None:
    ledger.mark_stopped(stats.checkpoint)
    disk.close()


def test_records_survive_a_clean_stop(tmp_path: Path) -> None:
    ledger, stats, _, disk = _open(tmp_path / "d")
    for i in range(10):
        _append(ledger, stats, _event(i))
    _close(ledger, stats, disk)
    _, stats2, seen, report = _reopen(tmp_path / "d")
    assert _events(seen) == [_event(i) for i in range(10)]
    assert report.outcome == "clean"
    assert report.findings == ()
    assert stats2.as_json() == stats.as_json()
    assert stats2.unique_sources == 7


def test_a_stop_without_the_marker_is_a_torn_tail_bounded_by_one_batch(tmp_path: Path) -> None:
    """A killed process or a power loss leaves no marker: whatever was unsynced may be gone without a
    trace, so the report gives the bound rather than claiming a clean stop."""
    ledger, stats, _, disk = _open(tmp_path / "d")
    for i in range(6):
        _append(ledger, stats, _event(i))
    ledger.sync()
    disk.close()
    _, stats2, _, report = _reopen(tmp_path / "d")
    assert report.outcome == "torn tail"
    assert (report.lost, report.lost_bound) == (0, LIMITS.ledger_batch_records)
    assert stats2.total() == 6
    assert stats2.integrity["torn_tails"] == 1


def test_an_idle_sync_marks_the_ledger_so_a_power_cut_while_quiet_reads_back_clean(tmp_path: Path) -> None:
    ledger, stats, _, disk = _open(tmp_path / "d")
    for i in range(3):
        _append(ledger, stats, _event(i))
    ledger.sync(idle=True)
    disk.close()  # the power goes: no stop marker
    _, stats2, seen, report = _reopen(tmp_path / "d")
    assert report.outcome == "clean"
    assert isinstance(seen[-1].body, rec.Marker)
    assert seen[-1].body.what == rec.MARK_SYNCED
    assert stats2.total() == 3


def test_a_torn_record_is_counted_kept_on_disk_and_skipped_by_later_appends(tmp_path: Path) -> None:
    ledger, stats, _, disk = _open(tmp_path / "d")
    for i in range(5):
        _append(ledger, stats, _event(i))
    ledger.sync()
    end = ledger.offset
    frame = rec.encode(rec.Record(0, ledger.next_seq, _event(5)), 1024)
    torn = frame[: len(frame) // 2]
    disk.write(DISK_HEADER_BYTES + end, torn)  # a record torn by a power cut
    disk.close()
    ledger2, stats2, seen, report, disk2 = _reopen_held(tmp_path / "d")
    assert report.outcome == "torn tail"
    assert len(_events(seen)) == 5
    (finding,) = report.findings
    assert (finding.start, finding.torn, finding.sample[:8]) == (end, True, torn[:8])
    _append(ledger2, stats2, _event(100))
    _close(ledger2, stats2, disk2)
    raw = (tmp_path / "d").read_bytes()
    assert raw[DISK_HEADER_BYTES + end : DISK_HEADER_BYTES + end + len(torn)] == torn  # not written over
    _, _, seen3, report3 = _reopen(tmp_path / "d")
    assert _events(seen3) == [*(_event(i) for i in range(5)), _event(100)]
    assert report3.outcome == "clean"
    assert [f.start for f in report3.known] == [end]  # the same bytes, already recorded


def test_a_whole_record_after_a_torn_one_is_read_and_the_gap_counted_exactly(tmp_path: Path) -> None:
    """Disk write reordering: record k torn, record k+1 complete. The walk resynchronises on k+1."""
    ledger, stats, _, disk = _open(tmp_path / "d")
    for i in range(3):
        _append(ledger, stats, _event(i))
    ledger.sync()
    end, seq = ledger.offset, ledger.next_seq
    torn = rec.encode(rec.Record(0, seq, _event(3)), 1024)
    after = rec.encode(rec.Record(0, seq + 1, _event(4)), 1024)
    disk.write(DISK_HEADER_BYTES + end, b"\xff" * len(torn) + after + rec.TERMINATOR)
    disk.close()
    _, _, seen, report = _reopen(tmp_path / "d")
    assert _events(seen) == [_event(0), _event(1), _event(2), _event(4)]
    assert report.outcome == "torn tail"  # within the last batch
    gap = [f for f in report.findings if f.records is not None]
    assert [(f.start, f.end, f.records) for f in gap] == [(end, end + len(torn), 1)]
    assert report.lost == 1


def test_a_bad_record_far_from_the_tail_is_damage_with_an_exact_count(tmp_path: Path) -> None:
    ledger, stats, _, disk = _open(tmp_path / "d")
    offsets = []
    for i in range(40):
        offsets.append(ledger.offset)
        _append(ledger, stats, _event(i))
    ledger.mark_stopped(stats.checkpoint)
    where = DISK_HEADER_BYTES + offsets[10] + 24  # one bit inside record 10's payload
    disk.write(where, bytes([disk.read(where, 1)[0] ^ 0x01]))
    disk.close()
    _, stats2, seen, report = _reopen(tmp_path / "d")
    assert report.outcome == "damaged"
    assert (report.lost, report.lost_bound) == (1, 1)
    assert _events(seen) == [_event(i) for i in range(40) if i != 10]
    assert stats2.integrity["damaged"] == 1
    assert stats2.integrity["records_lost"] == 1


def test_rollover_keeps_aggregate_counters(tmp_path: Path) -> None:
    ledger, stats, _, disk = _open(tmp_path / "d")
    total = 4000  # ~40 bytes each: several rollovers of the smallest region
    for i in range(total):
        _append(ledger, stats, _event(i))
    _close(ledger, stats, disk)
    assert ledger.rollovers >= 2
    _, stats2, seen, report = _reopen(tmp_path / "d")
    assert report.outcome == "clean"
    assert stats2.total() == total
    assert stats2.counts == stats.counts
    assert isinstance(seen[0].body, rec.Checkpoint)
    assert len(stats2.series["mutual"]) <= LIMITS.stats_series_points


def test_a_lost_checkpoint_is_rebuilt_from_the_older_region(tmp_path: Path) -> None:
    """The newer checkpoint holds exactly what the older region replays to, so losing it costs nothing."""
    ledger, stats, _, disk = _open(tmp_path / "d")
    i = 0
    while ledger.rollovers == 0 or i % 50:
        _append(ledger, stats, _event(i))
        i += 1
    _close(ledger, stats, disk)
    active = ledger.region
    raw = (tmp_path / "d").read_bytes()
    with (tmp_path / "d").open("r+b") as f:
        f.seek(DISK_HEADER_BYTES + active * LIMITS.ledger_region_bytes + 20)
        f.write(b"\xee" * 8)
    _, stats2, _, report = _reopen(tmp_path / "d")
    assert stats2.total() == i
    assert stats2.counts == stats.counts
    assert report.outcome == "damaged"
    assert report.lost == 0
    checkpoint_area = DISK_HEADER_BYTES + active * LIMITS.ledger_region_bytes
    after = (tmp_path / "d").read_bytes()
    assert after[checkpoint_area + 20 : checkpoint_area + 28] == b"\xee" * 8  # the evidence stays
    assert raw[:checkpoint_area] == after[:checkpoint_area]


def test_a_region_too_small_for_a_checkpoint_is_refused(tmp_path: Path) -> None:
    """Such a region would roll over on every event and write checkpoints past its own end."""
    disk = Disk(tmp_path / "d")
    for region in (16 * 1024, SMALLEST_REGION - 4096):
        with pytest.raises(DiskError, match="smaller than"):
            Ledger(LedgerArea(disk, region), replace(LIMITS, ledger_region_bytes=region))
    Ledger(LedgerArea(disk, SMALLEST_REGION), LIMITS)


def test_the_ledger_cannot_write_outside_its_regions(tmp_path: Path) -> None:
    area = LedgerArea(Disk(tmp_path / "d"), SMALLEST_REGION)
    for region, offset, size in ((0, -1, 1), (0, SMALLEST_REGION - 1, 2), (2, 0, 1)):
        with pytest.raises(DiskError):
            area.write(region, offset, b"x" * size)


def test_the_ledger_cannot_read_outside_its_regions_nor_the_header(tmp_path: Path) -> None:
    """The ledger's view of the disk (DESIGN.md rule 5): two regions, never the header that holds the key."""
    disk = Disk(tmp_path / "d")
    secret = bytes(range(1, 33))
    provision(disk, secret, SMALLEST_REGION)
    area = LedgerArea(disk, SMALLEST_REGION)
    for region in (0, 1):
        with area.view_region(region) as view:
            assert view.find(secret) < 0
    for region in (-1, 2):
        with pytest.raises(DiskError, match="no ledger region"), area.view_region(region):
            pass
    disk.close()


def test_blank_disk_starts_empty(tmp_path: Path) -> None:
    _, stats, seen, _ = _open(tmp_path / "d")
    assert stats.total() == 0
    assert len(seen) == 0


def test_damage_that_grows_a_recorded_span_is_new_damage(tmp_path: Path) -> None:
    """A recorded finding is known again only for the same bytes and no more records: a flip in the record
    after a recorded bad one makes the span one record longer from the same start, and that is new loss."""
    ledger, stats, _, disk = _open(tmp_path / "d")
    offsets = []
    for i in range(40):
        offsets.append(ledger.offset)
        _append(ledger, stats, _event(i))
    _close(ledger, stats, disk)
    for record, boot in ((10, 1), (11, 2)):
        with (tmp_path / "d").open("r+b") as f:
            where = DISK_HEADER_BYTES + offsets[record] + 24
            f.seek(where)
            byte = f.read(1)[0]
            f.seek(where)
            f.write(bytes([byte ^ 0x01]))
        ledger2, stats2, seen, report, disk2 = _reopen_held(tmp_path / "d")
        _close(ledger2, stats2, disk2)
        assert report.outcome == "damaged", boot
        assert report.known == ()
        assert [(f.start, f.end, f.records) for f in report.findings] == [(offsets[10], offsets[record + 1], boot)]
        assert _events(seen) == [_event(i) for i in range(40) if not 10 <= i <= record]
    assert stats2.integrity["damaged"] == 2
    _, _, _, report = _reopen(tmp_path / "d")
    assert report.outcome == "clean"
    assert [(f.start, f.records) for f in report.known] == [(offsets[10], 2)]


def _region_frames(path: Path, region: int) -> list[tuple[int, int]]:
    """(start, end) of every record frame of the region, read in order from its checkpoint."""
    raw = path.read_bytes()[DISK_HEADER_BYTES + region * SMALLEST_REGION :][:SMALLEST_REGION]
    frames, pos = [], 0
    while (found := frame_at(raw, pos, rec.CHECKPOINT_MAX_BYTES)) is not None:
        frames.append((found.start, found.end))
        pos = found.end
    return frames


def test_a_full_active_region_excuses_only_the_inactive_region_s_checkpoint_area(tmp_path: Path) -> None:
    """A nearly full active region may have been rolling over when the power went: that rollover writes only
    the other region's checkpoint and terminator before its sync, so only damage there is torn. A bad record
    past that area is damage, however full the active region is."""
    ledger, stats, _, disk = _open(tmp_path / "d")
    i = 0
    while ledger.rollovers < 2 or ledger.offset + rec.FRAME.size + LIMITS.ledger_max_record + RESERVE \
            <= SMALLEST_REGION:
        _append(ledger, stats, _event(i))
        i += 1
    _close(ledger, stats, disk)
    inactive = 1 - ledger.region
    start, end = _region_frames(tmp_path / "d", inactive)[-3]  # an event before the rolled-over marker
    assert start >= CHECKPOINT_AREA
    with (tmp_path / "d").open("r+b") as f:
        f.seek(DISK_HEADER_BYTES + inactive * SMALLEST_REGION + end - 1)
        f.write(b"\xee")
    _, stats2, _, report = _reopen(tmp_path / "d")
    assert report.outcome == "damaged"
    assert [(f.region, f.start, f.records, f.torn) for f in report.findings] == [(inactive, start, 1, False)]
    assert stats2.total() == i


def _checkpoint_frame(epoch: int, seq: int, state: bytes) -> bytes:
    """A checkpoint frame whose checksum holds, whatever its fields (the encoder refuses some)."""
    payload = rec.PREFIX.pack(rec.KIND_CHECKPOINT, epoch, seq) + state
    return rec.FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def test_a_ledger_at_the_last_epoch_refuses_to_roll_over_and_writes_nothing(tmp_path: Path) -> None:
    """Epochs are capped below 2^31 so that no readable ledger can roll over into one the format cannot hold
    (2^32 - 1 is UNKNOWN_EPOCH; 2^32 does not pack): the last one refuses the rollover with a RecordError,
    which the service counts as a failed write, and leaves the disk as it was."""
    ledger, stats, _, disk = _open(tmp_path / "d")
    disk.write(DISK_HEADER_BYTES, _checkpoint_frame(rec.EPOCH_LIMIT - 1, 0, stats.initial()) + rec.TERMINATOR)
    disk.close()
    ledger, stats, _, _, disk = _reopen_held(tmp_path / "d")
    assert ledger.epoch == rec.EPOCH_LIMIT - 1
    i = 0
    while ledger.offset + len(rec.encode(rec.Record(0, 0, _event(i)), 1024)) + rec.FRAME.size + RESERVE \
            <= SMALLEST_REGION:  # up to the event that rolls over
        _append(ledger, stats, _event(i))
        i += 1
    before = (tmp_path / "d").read_bytes()
    with pytest.raises(rec.RecordError, match="cannot roll over"):
        _append(ledger, stats, _event(i))
    assert (tmp_path / "d").read_bytes() == before
    assert ledger.rollovers == 0
    disk.close()


@pytest.mark.parametrize("epoch", [rec.EPOCH_LIMIT, rec.UNKNOWN_EPOCH])
def test_a_checkpoint_beyond_the_epoch_limit_is_unreadable(tmp_path: Path, epoch: int) -> None:
    _, stats, _, disk = _open(tmp_path / "d")
    disk.write(DISK_HEADER_BYTES, _checkpoint_frame(epoch, 0, stats.initial()) + rec.TERMINATOR)
    disk.close()
    before = (tmp_path / "d").read_bytes()
    with pytest.raises(DiskDamagedError, match="neither ledger region holds a readable record"):
        _reopen(tmp_path / "d")
    assert (tmp_path / "d").read_bytes() == before


def test_a_seq_gap_no_finding_can_count_is_reported_without_a_count(tmp_path: Path) -> None:
    """A record whose seq jumps by more than a finding's u32 can hold (only crafted: no region holds that
    many) is read, and the gap before it is reported with no count and the largest bound, not a crash."""
    ledger, stats, _, disk = _open(tmp_path / "d")
    for i in range(5):
        _append(ledger, stats, _event(i))
    ledger.sync()
    disk.write(DISK_HEADER_BYTES + ledger.offset,
               rec.encode(rec.Record(0, ledger.next_seq + 2**40, _event(5)), 1024) + rec.TERMINATOR)
    disk.close()
    _, _, seen, report = _reopen(tmp_path / "d")
    assert _events(seen) == [_event(i) for i in range(6)]
    assert report.outcome == "damaged"
    assert [(f.records, f.bound) for f in report.findings if not f.torn] == [(None, rec.COUNT_LIMIT)]


def test_guessing_a_generation_counts_frames_not_candidates_and_takes_every_kind_after_a_checkpoint() -> None:
    """Without a checkpoint, a region's generation is guessed from its frames: byte patterns that only look
    like frame starts do not use up the frames examined, and a marker is a frame like any other."""
    marker = rec.encode(rec.Record(4, 9, rec.Marker(rec.MARK_SYNCED)), 1024)
    lookalike = b"\x00\x00\x00\x40\xaa\xbb\xcc\xdd\x01"  # a length, a "CRC" and an event's kind: no frame
    region = lookalike * (EPOCH_GUESS_FRAMES + 1) + marker + rec.TERMINATOR
    assert guess_epochs(region, 0, 1024) == (4,)
    assert guess_epochs(region, 1, 1024) == ()


WRITER = """
import sys
from dataclasses import replace
from pathlib import Path
from appliance.config import Limits
from appliance.disk import Disk
from appliance.ledger import Ledger, LedgerArea
from appliance.stats import Stats
from appliance import ledger_record as rec
limits = replace(Limits(), ledger_batch_records=int(sys.argv[2]), ledger_region_bytes=int(sys.argv[3]))
disk = Disk(Path(sys.argv[1]))
disk.extend(4096 + 2 * limits.ledger_region_bytes)
ledger = Ledger(LedgerArea(disk, limits.ledger_region_bytes), limits)
stats = Stats(limits)
ledger.open(stats.initial, stats.replay, stats.checkpoint)
i = 0
while True:
    event = rec.Event(float(i), "reverse", "timeout", "192.0.2.%d" % (i % 200), "burst %d" % i)
    ledger.append(event, stats.checkpoint)
    stats.add(event)
    i += 1
    if ledger.sync_due():
        ledger.sync()
        print("acked", i, flush=True)
"""


def _kill_mid_burst(path: Path, batch: int, region: int, acked_target: int) -> int:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(batch), str(region)],
        stdout=subprocess.PIPE, cwd=ROOT, text=True,
    )
    assert proc.stdout is not None
    acked = 0
    try:
        for line in proc.stdout:
            acked = int(line.split()[1])
            if acked >= acked_target:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    return acked


def test_kill_9_mid_burst_loses_nothing_acknowledged(tmp_path: Path) -> None:
    region = 1024 * 1024
    acked = _kill_mid_burst(tmp_path / "d", 16, region, 2000)
    limits = replace(LIMITS, ledger_region_bytes=region, ledger_batch_records=16)
    _, stats, seen, report = _reopen(tmp_path / "d", limits)
    events = _events(seen)
    assert len(events) >= acked
    assert report.outcome in {"torn tail", "clean"}
    for i in range(acked):
        assert events[i] == rec.Event(float(i), "reverse", "timeout", f"192.0.2.{i % 200}", f"burst {i}")
    assert stats.total() == len(events)


def test_kill_9_mid_burst_with_rollovers_keeps_the_counts(tmp_path: Path) -> None:
    region = SMALLEST_REGION
    acked = _kill_mid_burst(tmp_path / "d", 8, region, 6000)  # ~45 bytes each: several rollovers
    _, stats, seen, report = _reopen(tmp_path / "d", replace(LIMITS, ledger_region_bytes=region,
                                                              ledger_batch_records=8))
    assert isinstance(seen[0].body, rec.Checkpoint)
    assert report.outcome in {"torn tail", "clean"}
    assert stats.rolled_over
    assert stats.total() >= acked


def test_an_event_over_the_record_limit_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    limits = replace(LIMITS, ledger_max_record=120)
    ledger, stats, _, disk = _open(tmp_path / "d", limits)
    _append(ledger, stats, _event(0))
    offset, seq, raw = ledger.offset, ledger.next_seq, (tmp_path / "d").read_bytes()
    wide = rec.Event(1.0, "mutual", "expired", "10.0.0.1", "r" * 120)
    with pytest.raises(rec.RecordError, match="exceeds"):
        ledger.append(wide, stats.checkpoint)
    assert (ledger.offset, ledger.next_seq) == (offset, seq)
    assert (tmp_path / "d").read_bytes() == raw
    _close(ledger, stats, disk)


# -- recovery through maps of the disk -------------------------------------------------------------------
# Recovery looks at each region through a read-only map (LedgerArea.view_region), not a copy in memory: two
# regions read into bytes were the boot's memory peak, enough to make the kernel OOM at `-m 64`.


class _NoWholeRegionReads(Disk):
    """A disk whose `read` fails the test if asked for a whole region: recovery must map it, not copy it."""

    def read(self, offset: int, length: int) -> bytes:
        assert length < LIMITS.ledger_region_bytes, f"read {length} bytes at {offset}: a whole region in memory"
        return super().read(offset, length)


def _spy_views(monkeypatch: pytest.MonkeyPatch) -> list[ReadBuffer]:
    """Every view recovery takes of a region, kept to check after it that each map was closed."""
    views: list[ReadBuffer] = []
    view_region = LedgerArea.view_region

    @contextlib.contextmanager
    def spy(area: LedgerArea, region: int) -> Iterator[ReadBuffer]:
        with view_region(area, region) as view:
            views.append(view)
            yield view

    monkeypatch.setattr(LedgerArea, "view_region", spy)
    return views


def _rolled_over(path: Path) -> tuple[Stats, list[rec.Event], int]:
    """A ledger that rolled over and went on in the other region, stopped cleanly. Returns its statistics, the
    events in the active region (those after the last rollover), and that region."""
    ledger, stats, _, disk = _open(path)
    since: list[rec.Event] = []
    i = 0
    while ledger.rollovers == 0 or len(since) < 40:
        rollovers = ledger.rollovers
        event = _event(i)
        _append(ledger, stats, event)
        since = [event] if ledger.rollovers != rollovers else [*since, event]
        i += 1
    _close(ledger, stats, disk)
    return stats, since, ledger.region


def _recover(disk: Disk, seen: list[rec.Record] | None = None, *, started: bool = True) -> Recovery:
    """`Ledger.recover` alone: reads, writes nothing."""
    ledger = Ledger(LedgerArea(disk, LIMITS.ledger_region_bytes), LIMITS)
    return ledger.recover((seen if seen is not None else []).append, started=started)


def test_recovery_never_reads_a_whole_region_into_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stats, since, _ = _rolled_over(tmp_path / "d")
    views = _spy_views(monkeypatch)
    _, stats2, seen, report = _boot(_NoWholeRegionReads(tmp_path / "d"), LIMITS, started=True)
    assert report.outcome == "clean"
    assert [type(v) for v in views] == [mmap.mmap, mmap.mmap]
    assert isinstance(seen[0].body, rec.Checkpoint)
    assert _events(seen) == since
    assert stats2.counts == stats.counts


def test_both_regions_replay_through_maps_when_the_newer_checkpoint_is_lost(tmp_path: Path) -> None:
    """The older region replays into what the lost checkpoint held: records read from both maps."""
    stats, since, active = _rolled_over(tmp_path / "d")
    with (tmp_path / "d").open("r+b") as f:
        f.seek(DISK_HEADER_BYTES + active * LIMITS.ledger_region_bytes + 20)
        f.write(b"\xee" * 8)
    _, stats2, seen, report = _boot(_NoWholeRegionReads(tmp_path / "d"), LIMITS, started=True)
    assert report.outcome == "damaged"
    assert report.lost == 0
    assert _events(seen)[-len(since) :] == since
    assert len(_events(seen)) > len(since)  # the older region's too
    assert stats2.counts == stats.counts


def test_the_maps_are_closed_when_recovery_returns_and_nothing_it_returns_refers_to_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _rolled_over(tmp_path / "d")
    views = _spy_views(monkeypatch)
    disk = Disk(tmp_path / "d")
    recovery = _recover(disk)
    assert recovery.replayed > 0
    assert [type(v) for v in views] == [mmap.mmap, mmap.mmap]
    assert all(isinstance(v, mmap.mmap) and v.closed for v in views)
    assert not [o for o in walk([recovery]).objects if isinstance(o, mmap.mmap | memoryview)]
    disk.close()


def test_the_maps_are_closed_when_recovery_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = Disk(tmp_path / "d")
    disk.extend(DISK_HEADER_BYTES + 2 * LIMITS.ledger_region_bytes)
    for region in (0, 1):
        disk.write(DISK_HEADER_BYTES + region * LIMITS.ledger_region_bytes, b"\xee" * 1000)
    views = _spy_views(monkeypatch)
    with pytest.raises(DiskDamagedError, match="neither ledger region"):
        _recover(disk)
    assert [type(v) for v in views] == [mmap.mmap, mmap.mmap]
    assert all(isinstance(v, mmap.mmap) and v.closed for v in views)
    disk.close()


def test_the_maps_are_closed_when_replay_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _rolled_over(tmp_path / "d")
    views = _spy_views(monkeypatch)
    disk = Disk(tmp_path / "d")

    def consume(record: rec.Record) -> None:
        raise RuntimeError("the statistics refused a record")

    with pytest.raises(RuntimeError, match="refused"):
        Ledger(LedgerArea(disk, LIMITS.ledger_region_bytes), LIMITS).recover(consume, started=True)
    assert len(views) == 2
    assert all(isinstance(v, mmap.mmap) and v.closed for v in views)
    disk.close()


def test_a_file_shorter_than_the_layout_recovers_as_if_its_missing_part_were_zeros(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Such a file is never mapped past its end (SIGBUS): its regions are read, the missing part as zeros,
    and recovery finds exactly what it finds on the same file made whole with zeros (which it maps)."""
    ledger, stats, _, disk = _open(tmp_path / "d")
    for i in range(200):
        _append(ledger, stats, _event(i))
    _close(ledger, stats, disk)
    assert ledger.rollovers == 0
    data = (tmp_path / "d").read_bytes()
    cut = DISK_HEADER_BYTES + zeros.trimmed_length(data[DISK_HEADER_BYTES:]) // 2
    (tmp_path / "short").write_bytes(data[:cut])
    (tmp_path / "whole").write_bytes(data[:cut] + bytes(len(data) - cut))
    views = _spy_views(monkeypatch)
    seen: dict[str, list[rec.Record]] = {"short": [], "whole": []}
    recovered = {}
    for name, records in seen.items():
        disk = Disk(tmp_path / name)
        recovered[name] = _recover(disk, records)
        disk.close()
    assert [type(v) for v in views] == [bytes, bytes, mmap.mmap, mmap.mmap]
    assert recovered["short"] == recovered["whole"]
    assert recovered["short"].findings  # the cut took records
    assert seen["short"] == seen["whole"]
    assert 0 < len(_events(seen["short"])) < 200
