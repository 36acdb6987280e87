from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from appliance import ledger_record as rec
from appliance.config import DISK_HEADER_BYTES, Limits
from appliance.disk import Disk, DiskError
from appliance.ledger import Ledger, min_region_bytes
from appliance.stats import Stats

ROOT = Path(__file__).resolve().parents[2]
SMALLEST_REGION = -(-min_region_bytes(Limits()) // 4096) * 4096  # the disk header wants whole 4 KiB blocks
LIMITS = replace(Limits(), ledger_batch_records=4, ledger_region_bytes=SMALLEST_REGION)


def _event(i: int) -> rec.Event:
    return rec.Event(1000.0 + i, "mutual", "untrusted-chain" if i % 3 else "expired", f"10.0.{i % 7}.1", f"r{i}")


def _open(path: Path, limits: Limits = LIMITS) -> tuple[Ledger, Stats, list[rec.Record], Disk]:
    disk = Disk(path)
    ledger = Ledger(disk, limits.ledger_region_bytes, limits)
    stats = Stats(limits)
    seen: list[rec.Record] = []

    def consume(record: rec.Record) -> None:
        seen.append(record)
        stats.replay(record)

    ledger.open(stats.initial, consume)
    return ledger, stats, seen, disk


def _append(ledger: Ledger, stats: Stats, event: rec.Event) -> int:
    stats.add(event)
    return ledger.append(event, stats.checkpoint)


def test_records_survive_reopen(tmp_path: Path) -> None:
    ledger, stats, _, _ = _open(tmp_path / "d")
    for i in range(10):
        _append(ledger, stats, _event(i))
    ledger.sync()
    _, stats2, seen, _ = _open(tmp_path / "d")
    assert [r.body for r in seen[1:]] == [_event(i) for i in range(10)]
    assert stats2.as_json() == stats.as_json()
    assert stats2.unique_sources == 7


def test_torn_tail_is_cut_and_later_appends_replay_cleanly(tmp_path: Path) -> None:
    ledger, stats, _, disk = _open(tmp_path / "d")
    for i in range(5):
        _append(ledger, stats, _event(i))
    ledger.sync()
    end = ledger._offset  # test-only peek at where the next record goes
    frame = rec.encode(rec.Record(0, 6, _event(5)), 1024)
    disk.write(DISK_HEADER_BYTES + end, frame[: len(frame) // 2])  # a record torn by a power cut
    ledger2, stats2, seen, _ = _open(tmp_path / "d")
    assert len(seen) == 6  # checkpoint + 5
    _append(ledger2, stats2, _event(100))
    ledger2.sync()
    _, _, seen3, _ = _open(tmp_path / "d")
    assert [r.body for r in seen3[1:]] == [*(_event(i) for i in range(5)), _event(100)]


def test_stale_record_after_a_torn_one_is_not_replayed(tmp_path: Path) -> None:
    """Disk write reordering: record k torn, record k+1 complete. Only the prefix before k survives."""
    ledger, stats, _, disk = _open(tmp_path / "d")
    for i in range(3):
        _append(ledger, stats, _event(i))
    ledger.sync()
    end = ledger._offset
    torn = rec.encode(rec.Record(0, 4, _event(3)), 1024)
    after = rec.encode(rec.Record(0, 5, _event(4)), 1024)
    disk.write(DISK_HEADER_BYTES + end, b"\xff" * len(torn) + after)
    ledger2, stats2, seen, _ = _open(tmp_path / "d")
    assert len(seen) == 4
    _append(ledger2, stats2, _event(50))  # seq 4, same length as the torn record
    ledger2.sync()
    _, _, seen3, _ = _open(tmp_path / "d")
    assert [r.body for r in seen3[1:]] == [_event(0), _event(1), _event(2), _event(50)]


def test_rollover_keeps_aggregate_counters(tmp_path: Path) -> None:
    ledger, stats, _, _ = _open(tmp_path / "d")
    total = 4000  # ~40 bytes each: several rollovers of the smallest region
    for i in range(total):
        _append(ledger, stats, _event(i))
    ledger.sync()
    assert ledger.rollovers >= 2
    _, stats2, seen, _ = _open(tmp_path / "d")
    assert stats2.total() == total
    assert stats2.counts == stats.counts
    assert isinstance(seen[0].body, rec.Checkpoint)
    assert len(stats2.series["mutual"]) <= LIMITS.stats_series_points


def test_crash_during_rollover_falls_back_to_the_full_region(tmp_path: Path) -> None:
    ledger, stats, _, disk = _open(tmp_path / "d")
    i = 0
    while ledger.rollovers == 0:
        _append(ledger, stats, _event(i))
        i += 1
    ledger.sync()
    active = ledger._region
    # Tear the fresh region's checkpoint: the other (full, older) region must be used instead.
    disk.write(DISK_HEADER_BYTES + active * LIMITS.ledger_region_bytes + 20, b"\xee" * 8)
    _, stats2, seen, _ = _open(tmp_path / "d")
    assert isinstance(seen[0].body, rec.Checkpoint)
    assert 0 < stats2.total() < i


def test_a_region_too_small_for_a_checkpoint_is_refused(tmp_path: Path) -> None:
    """Such a region would roll over on every event and write checkpoints past its own end."""
    disk = Disk(tmp_path / "d")
    for region in (16 * 1024, SMALLEST_REGION - 4096):
        with pytest.raises(DiskError, match="smaller than"):
            Ledger(disk, region, replace(LIMITS, ledger_region_bytes=region))
    Ledger(disk, SMALLEST_REGION, LIMITS)


def test_blank_disk_starts_empty(tmp_path: Path) -> None:
    _, stats, seen, _ = _open(tmp_path / "d")
    assert stats.total() == 0
    assert len(seen) == 0


WRITER = """
import sys
from dataclasses import replace
from pathlib import Path
from appliance.config import Limits
from appliance.disk import Disk
from appliance.ledger import Ledger
from appliance.stats import Stats
from appliance import ledger_record as rec
limits = replace(Limits(), ledger_batch_records=int(sys.argv[2]), ledger_region_bytes=int(sys.argv[3]))
disk = Disk(Path(sys.argv[1]))
ledger = Ledger(disk, limits.ledger_region_bytes, limits)
stats = Stats(limits)
ledger.open(stats.initial, stats.replay)
i = 0
while True:
    event = rec.Event(float(i), "reverse", "timeout", "192.0.2.%d" % (i % 200), "burst %d" % i)
    stats.add(event)
    ledger.append(event, stats.checkpoint)
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
    limits = replace(LIMITS, ledger_region_bytes=region)
    _, stats, seen, _ = _open(tmp_path / "d", limits)
    events = [r.body for r in seen if isinstance(r.body, rec.Event)]
    assert len(events) >= acked
    for i in range(acked):
        assert events[i] == rec.Event(float(i), "reverse", "timeout", f"192.0.2.{i % 200}", f"burst {i}")
    assert stats.total() == len(events)


def test_kill_9_mid_burst_with_rollovers_keeps_the_counts(tmp_path: Path) -> None:
    region = SMALLEST_REGION
    acked = _kill_mid_burst(tmp_path / "d", 8, region, 6000)  # ~45 bytes each: several rollovers
    _, stats, seen, _ = _open(tmp_path / "d", replace(LIMITS, ledger_region_bytes=region))
    assert isinstance(seen[0].body, rec.Checkpoint)
    assert stats.rolled_over
    assert stats.total() >= acked
