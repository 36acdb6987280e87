"""The attack ledger: every connection outcome, appended to the disk, durable in bounded batches, and
recovered at boot without ever losing a record silently.

Why two regions: a ledger must be bounded, and rolling over must not risk the history. When the active
region is full, a checkpoint (the aggregate statistics before the event that filled it) is written at the
start of the other region with the next epoch, synced, and only then does appending continue there. The
older region stays intact until the rollover after, so losing either region costs its records' detail but
not the totals: the newer checkpoint counts the older region, and the older region replays into the state
the newer checkpoint held. The region left behind ends with a ROLLED marker, written once the new
checkpoint is synced: if the newer region is later found blank or unreadable, recovery knows a generation
was lost there that no checkpoint counts (without it, a blank region beside a full one could as well be a
rollover that a power cut stopped before its checkpoint reached the disk, which loses nothing).

Recovery (`recover`, read-only) scans both regions with `appliance.ledger_scan`, replays what it can read,
and describes what it cannot as findings: exact counts where the seqs around a gap tell them, a bound where
they cannot. `commit` then records every new finding in the ledger itself (a FINDING record, with a sample
of the bad bytes) before anything that could not be read may be overwritten: new records go after an
unreadable tail, never over it, and a damaged region is reused only by a rollover that comes after its
finding was written. The outcome is one of `new`, `clean`, `torn tail` (within one unsynced batch, as a power
loss leaves it) or `damaged` (anything else).

A clean stop appends a STOPPED marker. Its absence at boot means the process died with up to one batch
unsynced: reported as a torn tail whose size is bounded, because records that never reached the disk leave
no trace to count. For the same reason a marker (or a new ledger's lone checkpoint) can only say "clean" if
no record that follows it can vanish without trace: the first record after one is synced before `append`
returns, so a power cut either keeps it (the marker is no longer last) or took it before it was counted.

Durability: `append` writes through to the OS at once (a killed process loses nothing it appended), with a
terminator after it; `sync` (fsync) runs every `ledger_batch_records` records or `ledger_batch_seconds` after
the first unsynced one, so a power loss costs at most one batch. `synced_seq` is the acknowledgement.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from appliance import ledger_record as rec
from appliance.config import DISK_HEADER_BYTES, ENDPOINTS, Limits
from appliance.disk import Disk, DiskDamagedError, DiskError
from appliance.ledger_scan import RegionScan, after_zeros, frame_at, guess_epochs, scan_region
from appliance.zeros import ReadBuffer

CHECKPOINT_MAX_BYTES = rec.CHECKPOINT_MAX_BYTES
FINDINGS_RESERVED = 8
"""Findings a full region still has room for: boot can record what it found before rolling over."""
FINDING_MAX_FRAME = rec.FRAME.size + rec.PREFIX.size + rec.FINDING_FIXED.size + 1 + rec.FINDING_SAMPLE_BYTES
MARK_FRAME = len(rec.encode(rec.Record(0, 0, rec.Marker(rec.MARK_STOPPED)), 64))
RESERVE = FINDINGS_RESERVED * FINDING_MAX_FRAME + 3 * MARK_FRAME
"""Room a region keeps past the last event: a boot's findings, and the stop and rolled-over markers."""
CHECKPOINT_AREA = rec.FRAME.size + CHECKPOINT_MAX_BYTES + len(rec.TERMINATOR)
"""What a rollover writes in the region it enters before its checkpoint is synced: the checkpoint and the
terminator after it. A power cut in a rollover can leave no other bytes of that region unreadable."""

CLEAN, TORN_TAIL, DAMAGED, NEW = "clean", "torn tail", "damaged", "new"


def min_region_bytes(limits: Limits) -> int:
    """The smallest region that works: the largest checkpoint, at least one largest event, the room kept for
    findings and the stop marker, and a terminator. A smaller region would roll over on every event and
    write a checkpoint past its own end."""
    return CHECKPOINT_MAX_BYTES + rec.FRAME.size + limits.ledger_max_record + RESERVE + rec.FRAME.size


class LedgerArea:
    """The part of the disk the ledger may touch: its two regions, never the header (the wallet key)."""

    def __init__(self, disk: Disk, region_bytes: int) -> None:
        self._disk = disk
        self.region_bytes = region_bytes

    def view_region(self, region: int) -> contextlib.AbstractContextManager[ReadBuffer]:
        """The region read-only, through a map of the disk where one can be made (`Disk.view`): what recovery
        scans, without holding a region's worth of memory."""
        return self._disk.view(self._base(region), self.region_bytes)

    def write(self, region: int, offset: int, data: bytes) -> None:
        if offset < 0 or offset + len(data) > self.region_bytes:
            raise DiskError(f"ledger write of {len(data)} bytes at {offset} leaves region {region}")
        self._disk.write(self._base(region) + offset, data)

    def sync(self) -> None:
        self._disk.sync()

    def _base(self, region: int) -> int:
        if region not in (0, 1):
            raise DiskError(f"no ledger region {region}")
        return DISK_HEADER_BYTES + region * self.region_bytes


@dataclass(frozen=True)
class RecoveryReport:
    """What boot recovery found, for the boot log and the statistics (`as_log`) and for `disk check`: the outcome,
    the findings new and already recorded, and how many records' counts were lost, exact where the seqs tell
    and bounded where they cannot."""

    outcome: str
    region: int
    epoch: int
    records: int  # replayed
    findings: tuple[rec.Finding, ...]  # found and recorded this boot
    known: tuple[rec.Finding, ...]  # found again: recorded by an earlier boot
    lost: int  # records whose counts are gone from the totals: the known part (at least this many)
    lost_bound: int  # at most this many (the sum of the findings' bounds)
    unreadable: int  # records that could not be read (their counts may survive in a checkpoint), exact part

    def as_log(self) -> dict[str, str | int]:
        return {"outcome": self.outcome, "region": self.region, "epoch": self.epoch, "records": self.records,
                "findings": len(self.findings), "known": len(self.known), "lost": self.lost,
                "lost_bound": self.lost_bound, "unreadable": self.unreadable}


@dataclass
class Recovery:
    """What `recover` read, and what `commit` must write. Nothing here holds key material."""

    new: bool
    region: int = 0
    epoch: int = 0
    append_at: int = 0
    next_seq: int = 0
    replayed: int = 0
    findings: list[rec.Finding] = field(default_factory=list)
    known: list[rec.Finding] = field(default_factory=list)
    scans: tuple[RegionScan, ...] = ()
    clean_end: bool = False  # the active region reads as cleanly ended (see Ledger._clean_end)

    def report(self) -> RecoveryReport:
        if self.new:
            outcome = NEW
        elif not self.findings:
            outcome = CLEAN
        elif all(f.torn for f in self.findings):
            outcome = TORN_TAIL
        else:
            outcome = DAMAGED
        counted = [f for f in self.findings if not f.totals_kept]
        lost = sum(f.records or 0 for f in counted)
        bound = sum(f.bound for f in counted)
        unreadable = sum(f.records or 0 for f in self.findings)
        return RecoveryReport(outcome, self.region, self.epoch, self.replayed, tuple(self.findings),
                              tuple(self.known), lost, bound, unreadable)


class Ledger:
    def __init__(self, area: LedgerArea, limits: Limits, *, format_epoch: int = 0) -> None:
        if area.region_bytes < min_region_bytes(limits):
            raise DiskError(f"ledger region of {area.region_bytes} bytes is smaller than the "
                            f"{min_region_bytes(limits)} a checkpoint and one record need")
        self._area = area
        self._region_bytes = area.region_bytes
        self._limits = limits
        self._format_epoch = format_epoch
        self._largest_record = _largest_record(limits)
        self._region = 0
        self._epoch = 0
        self._offset = 0  # within the active region
        self._next_seq = 0
        self.synced_seq = -1
        self.unsynced = 0
        self.rollovers = 0
        # The disk reads as cleanly ended here (a marker last, or a new ledger's first checkpoint alone): the
        # next record is synced at once. Were it left for the batch, a power cut could take it and leave the
        # marker last, and the next boot would report "clean" over a lost record.
        self._clean_end = False

    @property
    def region(self) -> int:
        return self._region

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def offset(self) -> int:
        return self._offset

    @property
    def next_seq(self) -> int:
        return self._next_seq

    @property
    def _max_payload(self) -> int:
        return max(self._limits.ledger_max_record, FINDING_MAX_FRAME)

    # -- recovery (read-only) -------------------------------------------------------------------------

    def _scan(self, buf: ReadBuffer, region: int, candidates: tuple[int, ...], *, bodies: bool = False) -> RegionScan:
        return scan_region(buf, region, max_payload=self._max_payload, epoch_candidates=candidates,
                           batch_records=self._limits.ledger_batch_records, largest_record=self._largest_record,
                           legacy_below=self._format_epoch, bodies=bodies)

    def _with_bodies(self, buf: ReadBuffer, scan: RegionScan) -> RegionScan:
        """The same region read again with every record decoded, for replay (the first pass checked only
        lengths, checksums and prefixes: most of a boot's time would otherwise go to decoding the older
        region's events, which a readable checkpoint already counts)."""
        candidates = (scan.epoch,) if scan.epoch is not None else ()
        return self._scan(buf, scan.region, candidates, bodies=True)

    def recover(self, consume: Callable[[rec.Record], None], *, started: bool) -> Recovery:
        """Scan both regions, replay what can be read into `consume`, and describe what cannot. Writes
        nothing. Raises DiskDamagedError when no region can be read although the ledger was started.

        The regions are looked at through maps of the disk (`LedgerArea.view_region`), closed before this
        returns or raises: read into bytes, the two were the boot's memory peak. What the `Recovery` holds
        (decoded records, findings' samples) is copied out of them."""
        with self._area.view_region(0) as first, self._area.view_region(1) as second:
            return self._recover((first, second), consume, started=started)

    def _recover(self, bufs: tuple[ReadBuffer, ReadBuffer], consume: Callable[[rec.Record], None], *,
                 started: bool) -> Recovery:
        heads = [frame_at(buf, 0, CHECKPOINT_MAX_BYTES) for buf in bufs]
        epochs = [h.epoch if h is not None and h.kind == rec.KIND_CHECKPOINT else None for h in heads]
        # Usually both checkpoints are readable and the newer one names the active region: read it with
        # bodies at once. Otherwise every region is read light first, and the active one again below.
        ranks = [-1 if e is None else e for e in epochs]
        likely = max((0, 1), key=lambda r: ranks[r]) if max(ranks) >= 0 else None
        scans = [self._scan(bufs[r], r, (), bodies=r == likely) for r in (0, 1)]
        for r in (0, 1):
            if scans[r].epoch is None and not scans[r].blank:
                beside = scans[1 - r].epoch
                candidates = (beside + 1, beside - 1) if beside is not None else guess_epochs(
                    bufs[r], r, self._max_payload)
                scans[r] = self._scan(bufs[r], r, candidates)
        if all(s.blank for s in scans):
            if started:
                raise DiskDamagedError(
                    "both ledger regions are blank, but the disk header says the ledger was started: the ledger "
                    "was wiped or the disk truncated. Nothing was written. Keep a copy of the disk; if the ledger "
                    "is lost for good, `python -m appliance disk repair` records the loss and lets it boot")
            return Recovery(new=True)
        readable = [s for s in scans if s.epoch is not None]
        if not readable:
            raise DiskDamagedError(
                "neither ledger region holds a readable record (both are damaged); nothing was written. Keep a "
                "copy of the disk, run `python -m appliance disk check` on it; `disk repair` records the loss and "
                "restarts the ledger")
        newest = max(readable, key=lambda s: (s.epoch, s.region))
        active = scans[newest.region] = newest if newest.region == likely else self._with_bodies(
            bufs[newest.region], newest)
        other = scans[1 - active.region]
        if active.checkpoint is None and other.epoch is not None:
            other = scans[other.region] = self._with_bodies(bufs[other.region], other)  # it must replay
        return _Recoverer(self, active, other, bufs, consume).run(tuple(scans))

    def open(self, initial_state: Callable[[], bytes], consume: Callable[[rec.Record], None],
             checkpoint_state: Callable[[], bytes], *, started: bool = False) -> RecoveryReport:
        """`recover` then `commit`: for callers with no decision to make between the two."""
        return self.commit(self.recover(consume, started=started), initial_state, consume, checkpoint_state)

    # -- writing --------------------------------------------------------------------------------------

    def commit(self, recovery: Recovery, initial_state: Callable[[], bytes],
               consume: Callable[[rec.Record], None], checkpoint_state: Callable[[], bytes]) -> RecoveryReport:
        """Start a new ledger, or continue after what `recover` read, recording each new finding (and
        replaying it into `consume`) before anything else is written. Synced before it returns."""
        if recovery.new:
            self._start_region(0, 0, 0, initial_state())
            return recovery.report()
        self._region, self._epoch = recovery.region, recovery.epoch
        self._offset, self._next_seq = recovery.append_at, recovery.next_seq
        self.synced_seq = recovery.next_seq - 1
        self._clean_end = recovery.clean_end
        findings = recovery.findings
        size = sum(len(rec.encode(rec.Record(0, 0, f), self._max_payload)) for f in findings)
        if self._offset + size + rec.FRAME.size <= self._region_bytes:
            for finding in findings:
                seq = self._append_body(finding, checkpoint_state, reserve=False)
                consume(rec.Record(self._epoch, seq, finding))
        else:
            # They do not all fit: a rollover comes first, and its checkpoint goes over the start of the other
            # region, where some of them may describe bytes no record counts yet. So the statistics take them
            # first, under the seqs they will have, and the checkpoint that replaces the evidence is itself
            # their record; a power cut before the finding records are synced loses only their detail. The
            # records follow it, not consumed again (the statistics count a finding's seq once). Findings too
            # many for the region after that checkpoint (tens of thousands in a default region) roll over
            # once more; the last ones then take seqs past those the checkpoints counted them under, and a
            # replay counts them twice: more than was lost, never less.
            first = self._rollover_seq() + 1
            for index, finding in enumerate(findings):
                consume(rec.Record(self._epoch + 1, first + index, finding))
            self._roll_over(checkpoint_state)
            for finding in findings:
                self._append_body(finding, checkpoint_state, reserve=False)
        self.sync()
        return recovery.report()

    def _start_region(self, region: int, epoch: int, seq: int, state: bytes) -> None:
        frame = rec.encode(rec.Record(epoch, seq, rec.Checkpoint(state)), CHECKPOINT_MAX_BYTES)
        # The terminator first: the older generation's records after the new checkpoint must end before
        # the checkpoint makes this region the newest.
        self._area.write(region, len(frame), rec.TERMINATOR)
        self._area.write(region, 0, frame)
        self._area.sync()
        self._region, self._epoch, self._offset = region, epoch, len(frame)
        self._next_seq = seq + 1
        self.synced_seq = seq
        self.unsynced = 0
        self._clean_end = seq == 0  # as _ends_cleanly reads a lone checkpoint

    def _append_body(self, body: rec.Event | rec.Finding | rec.Marker, checkpoint_state: Callable[[], bytes],
                     *, reserve: bool) -> int:
        frame = self._frame(body)
        if isinstance(body, rec.Event) and len(frame) > self._limits.ledger_max_record:
            raise rec.RecordError(f"event record exceeds {self._limits.ledger_max_record} bytes")
        room = self._region_bytes - (RESERVE if reserve else 0)
        if self._offset + len(frame) + rec.FRAME.size > room:
            self._roll_over(checkpoint_state)
            frame = self._frame(body)  # the seq and epoch moved on
        seq = self._put(frame)
        if isinstance(body, rec.Marker):
            self._clean_end = True  # every caller syncs a marker at once
        elif self._clean_end:
            self._clean_end = False
            self.sync()
        return seq

    def _frame(self, body: rec.Event | rec.Finding | rec.Marker) -> bytes:
        return rec.encode(rec.Record(self._epoch, self._next_seq, body), self._max_payload,
                          self._limits.ledger_reason_bytes)

    def _put(self, frame: bytes) -> int:
        """Write `frame` (the next seq's) at the end of the active region with a terminator after it;
        returns its seq. Through to the OS, not yet synced."""
        seq = self._next_seq
        self._area.write(self._region, self._offset, frame + rec.TERMINATOR)
        self._offset += len(frame)
        self._next_seq = seq + 1
        self.unsynced += 1
        return seq

    def _rolled_marker_fits(self) -> bool:
        return self._offset + MARK_FRAME + rec.FRAME.size <= self._region_bytes

    def _rollover_seq(self) -> int:
        """The seq the checkpoint of a rollover from here takes: the rolled-over marker, when there is room for
        it, takes the one before (seqs stay consecutive across the regions), though it is written after."""
        return self._next_seq + (1 if self._rolled_marker_fits() else 0)

    def _roll_over(self, checkpoint_state: Callable[[], bytes]) -> None:
        """Continue in the other region, from a checkpoint of `checkpoint_state()`. Without room for the
        rolled-over marker (findings filled the reserve), the region left is left without one, as by a power
        cut before it was synced. Refused (RecordError, nothing written) at the format's last epoch."""
        if self._epoch + 1 >= rec.EPOCH_LIMIT:
            raise rec.RecordError(f"the ledger is at epoch {self._epoch}, the last the format allows: it cannot "
                                  "roll over")
        self.sync()
        self.rollovers += 1
        old_region, old_offset, old_epoch, rolled_seq = self._region, self._offset, self._epoch, self._next_seq
        marked = self._rolled_marker_fits()
        self._start_region(1 - self._region, self._epoch + 1, self._rollover_seq(), checkpoint_state())
        if marked:
            self._mark_rolled(old_region, old_offset, old_epoch, rolled_seq)

    def _mark_rolled(self, region: int, offset: int, epoch: int, seq: int) -> None:
        """End the region just left with a ROLLED marker, once the new region's checkpoint is synced: a region
        that ends so beside a blank or unreadable one tells recovery that the newer generation was there and
        is gone (nothing counts its records), where a region that merely looks full could also be a rollover
        that a power cut stopped before its checkpoint reached the disk (nothing lost)."""
        frame = rec.encode(rec.Record(epoch, seq, rec.Marker(rec.MARK_ROLLED)), MARK_FRAME)
        self._area.write(region, offset, frame + rec.TERMINATOR)
        self._area.sync()

    def append(self, event: rec.Event, checkpoint_state: Callable[[], bytes]) -> int:
        """Write one event (through to the OS, not yet synced); returns its seq. Rolls over when full, with
        `checkpoint_state()` (which must not yet include this event) as the new region's start. An event
        whose record would exceed `ledger_max_record` is refused (RecordError) before anything is written."""
        return self._append_body(event, checkpoint_state, reserve=True)

    def record_finding(self, finding: rec.Finding, checkpoint_state: Callable[[], bytes]) -> int:
        """Append and sync one finding that the caller established (the repair tool's losses)."""
        seq = self._append_body(finding, checkpoint_state, reserve=False)
        self.sync()
        return seq

    def mark_stopped(self, checkpoint_state: Callable[[], bytes]) -> None:
        """A clean stop: the marker says no batch was left unsynced."""
        self._append_body(rec.Marker(rec.MARK_STOPPED), checkpoint_state, reserve=False)
        self.sync()

    def sync_due(self) -> bool:
        return self.unsynced >= self._limits.ledger_batch_records

    def sync(self, *, idle: bool = False) -> int:
        """fsync; afterwards every appended record is durable. Returns the acknowledged seq.

        `idle`: the sync comes from the batch timer, not a full batch. It then ends with a SYNCED marker,
        so that a power cut while the appliance is quiet reads back as clean, not as a possible lost batch
        (at most one marker per `ledger_batch_seconds`)."""
        if self.unsynced and idle:
            frame = self._frame(rec.Marker(rec.MARK_SYNCED))
            if self._offset + len(frame) + rec.FRAME.size <= self._region_bytes:  # never a rollover for a marker
                self._put(frame)
                self._clean_end = True  # synced just below
        if self.unsynced:
            self._area.sync()
            self.unsynced = 0
            self.synced_seq = self._next_seq - 1
        return self.synced_seq


class _Recoverer:
    """One recovery's bookkeeping: which records to replay, in what order, and what to report. `bufs` are the
    regions' views, valid only while `recover` holds them open: nothing taken from them into the `Recovery`
    (findings' samples) is more than a slice, which is bytes."""

    def __init__(self, ledger: Ledger, active: RegionScan, other: RegionScan, bufs: Sequence[ReadBuffer],
                 consume: Callable[[rec.Record], None]) -> None:
        self.ledger = ledger
        self.bufs = bufs
        self.active = active
        self.other = other
        self.consume = consume
        self.limits = ledger._limits
        self.region_bytes = ledger._region_bytes
        self.findings: list[rec.Finding] = []
        self.replayed = 0

    def run(self, scans: tuple[RegionScan, ...]) -> Recovery:
        active, other = self.active, self.other
        assert active.epoch is not None
        recorded = [r.record.body for s in scans for r in s.records
                    if r.record is not None and isinstance(r.record.body, rec.Finding)]
        legacy = active.epoch < self.ledger._format_epoch
        batch = self.limits.ledger_batch_records
        last_seq = active.last_seq
        assert last_seq is not None
        skip_first_span = False
        if active.checkpoint is not None:
            self._replay(active.checkpoint.record)
            self._describe_other(totals_kept=True)
        elif self._other_leads_in():
            for located in (other.checkpoint, *other.records):
                assert located is not None
                self._replay(located.record)
            first = active.records[0].seq
            # Between the two: the older region's unreadable last records, the unreadable checkpoint (one
            # seq) and the active region's unreadable first records. Each is counted once.
            missing = max(first - (other.last_seq or 0) - 2, 0)
            at_end = self._describe_other(totals_kept=False)
            head = missing - at_end if at_end is not None and at_end <= missing else None
            self._add(active, 0, active.records[0].start, head, missing, torn=False, totals_kept=False)
            skip_first_span = True
        else:
            first = active.records[0].seq if active.records else 0
            if other.epoch is not None and other.epoch == active.epoch - 1:
                # Neither checkpoint: the totals before the older region are gone (the finding below bounds
                # them), but the older region's records still count.
                for located in other.records:
                    self._replay(located.record)
            self._describe_other(totals_kept=False)
            self._add(active, 0, active.records[0].start if active.records else active.used, None, first,
                      torn=False, totals_kept=False)
            skip_first_span = True
        for index, span in enumerate(active.spans):
            if index == 0 and skip_first_span and span.start == 0:
                continue
            # Torn only if every record it lost lies in the last batch (no more can have been unsynced).
            torn = span.before_seq is not None and span.before_seq >= last_seq - batch
            count = span.missing
            self._add(active, span.start, span.end, count, count if count is not None else batch, torn=torn,
                      totals_kept=False)
        for located in active.records:
            self._replay(located.record)
        append_at = active.end
        if active.tail is not None:
            # Torn: a power cut's, costing the unsynced batch; its bytes may still have held more records (small
            # ones, damaged), and the bound says so. Anything else: what its bytes can hold. New records go
            # after all of it.
            tail = active.tail
            bound = max(batch, tail.held) if tail.torn else tail.held
            self._add(active, tail.start, tail.end, tail.records, bound, torn=tail.torn, totals_kept=False)
            append_at = tail.end
        elif not legacy and not _ends_cleanly(active):
            self._add(active, active.end, active.end, None, batch, torn=True, totals_kept=False)
        known = [f for f in self.findings if any(f.recorded_by(r) for r in recorded)]
        new = [f for f in self.findings if f not in known]
        clean_end = active.tail is None and _ends_cleanly(active)
        return Recovery(False, active.region, active.epoch, append_at, last_seq + 1, self.replayed, new, known,
                        scans, clean_end)

    def _replay(self, record: rec.Record | None) -> None:
        assert record is not None, "replayed regions are read with their bodies"
        self.consume(record)
        self.replayed += 1

    def _other_leads_in(self) -> bool:
        """The older region is whole up to the active one: its replay is the state the lost checkpoint held."""
        o, a = self.other, self.active
        return (o.epoch is not None and a.epoch is not None and o.epoch == a.epoch - 1 and o.checkpoint is not None
                and bool(a.records))

    def _describe_other(self, *, totals_kept: bool) -> int | None:
        """Findings in the inactive region. With the active checkpoint readable, they cost detail only.
        Returns how many records it counted as lost after the region's last readable one (None: unknown)."""
        o, a = self.other, self.active
        assert a.epoch is not None
        # A rollover from the active region may have been cut short by a power cut (it is nearly full): it
        # can have left unreadable only what it writes here before its sync, the checkpoint area. Anything
        # else unreadable in this region is damage, however full the active one is.
        in_flight = a.end + rec.FRAME.size + self.limits.ledger_max_record + RESERVE > self.region_bytes
        # The active region rolled over (it holds the marker), yet the other one is not newer: the newer
        # generation was there and is gone, and no checkpoint counts its records.
        newer_gone = (o.blank or o.epoch is None) and _rolled_over(a)
        if o.blank:
            if newer_gone:
                self._add(o, 0, self.region_bytes, None, self.region_bytes // rec.SMALLEST_RECORD, torn=False,
                          totals_kept=False, epoch=a.epoch + 1)
            elif a.epoch > 0:  # the older generation was there and is gone
                self._add(o, 0, self.region_bytes, None, self.region_bytes // rec.SMALLEST_RECORD, torn=False,
                          totals_kept=totals_kept, epoch=a.epoch - 1)
            return None
        if o.epoch is None:
            torn = in_flight and o.used <= CHECKPOINT_AREA and not newer_gone
            self._add(o, 0, o.used, None, o.used // rec.SMALLEST_RECORD + 1, torn=torn,
                      totals_kept=totals_kept and not newer_gone, epoch=rec.UNKNOWN_EPOCH)
            return None
        if o.epoch < self.ledger._format_epoch:  # format 1 left no terminators to check
            return None
        for span in o.spans:
            count = span.missing
            bound = count if count is not None else span.end // rec.SMALLEST_RECORD + 1
            self._add(o, span.start, span.end, count, bound, torn=in_flight and span.start < CHECKPOINT_AREA,
                      totals_kept=totals_kept)
        missing = self._missing_at_end(o)
        if o.tail is not None and not (o.tail.wiped and missing == 0):  # (zeros left of older damage)
            t = o.tail
            count = missing if missing is not None else t.records
            bound = missing if missing is not None else t.held
            # More records gone than the walk saw: the rest lie in the zeros after it.
            end = after_zeros(self.bufs[o.region], t.end) if missing is not None and missing > t.frames else t.end
            self._add(o, t.start, end, count, bound, torn=in_flight and t.start < CHECKPOINT_AREA and not t.wiped,
                      totals_kept=totals_kept)
            return count if count == bound else None
        if missing:
            # Its last records are gone and nothing unreadable is left of them (zeros, or the rolled-over
            # marker of a rollover that a power cut stopped just before the marker was synced: torn).
            just_rolled = missing == 1 and len(a.records) <= self.limits.ledger_batch_records
            self._add(o, o.end, after_zeros(self.bufs[o.region], o.end), missing, missing, torn=just_rolled,
                      totals_kept=totals_kept)
        return missing or 0

    def _missing_at_end(self, o: RegionScan) -> int | None:
        """How many records the older region holds after its last readable one: seqs run on across a
        rollover, so they end just before the newer checkpoint's (None: not known)."""
        a = self.active
        if a.checkpoint is None or a.epoch is None or o.epoch != a.epoch - 1 or o.last_seq is None:
            return None
        return max(a.checkpoint.seq - 1 - o.last_seq, 0)

    def _add(self, scan: RegionScan, start: int, end: int, records: int | None, bound: int, *, torn: bool,
             totals_kept: bool, epoch: int | None = None) -> None:
        buf_epoch = epoch if epoch is not None else (scan.epoch if scan.epoch is not None else rec.UNKNOWN_EPOCH)
        sample = self.bufs[scan.region][start : min(end, start + rec.FINDING_SAMPLE_BYTES)]
        bound = max(bound, records or 0)
        # Seqs so far apart that a finding cannot hold their count are crafted (no region holds that many
        # records): no count, and the largest bound a finding holds, rather than a record that cannot encode.
        if records is not None and records > rec.COUNT_LIMIT:
            records = None
        self.findings.append(rec.Finding(scan.region, buf_epoch, start, end, records, min(bound, rec.COUNT_LIMIT),
                                         torn, totals_kept, sample))


def _largest_record(limits: Limits) -> int:
    """The largest frame this writer makes after a checkpoint: an event with every string at its limit (or
    `ledger_max_record`, which `append` enforces, if smaller), or a finding."""
    event = rec.Event(0.0, ENDPOINTS[0], "x" * 64, "x" * 64, "x" * limits.ledger_reason_bytes)
    longest = len(rec.encode(rec.Record(0, 0, event), 1 << 20, limits.ledger_reason_bytes))
    return max(min(longest, limits.ledger_max_record), FINDING_MAX_FRAME, MARK_FRAME)


def _rolled_over(scan: RegionScan) -> bool:
    """The region holds a ROLLED marker: a rollover from it completed. Usually its last record; a boot that
    finds the newer region gone appends its findings (and a smaller event may still fit) after it."""
    return any(located.kind == rec.KIND_MARK and located.record is not None
               and isinstance(located.record.body, rec.Marker) and located.record.body.what == rec.MARK_ROLLED
               for located in scan.records)


def _ends_cleanly(scan: RegionScan) -> bool:
    """The last record is a stop or synced marker, or the ledger is new (nothing but its first checkpoint).
    A rolled-over marker is not one: last in the active region, it means the newer region was lost."""
    if not scan.records:
        return scan.checkpoint is not None and scan.checkpoint.seq == 0
    last = scan.records[-1].record
    return last is not None and isinstance(last.body, rec.Marker) and last.body.what in rec.CLEAN_MARKS
