"""The attack ledger: every connection outcome, appended to the disk, durable in bounded batches.

Why two regions: a ledger must be bounded, and rolling over must not risk the history. When the active
region is full, a checkpoint (the aggregate statistics) is written at the start of the other region with
a higher epoch, synced, and only then does appending continue there. A crash mid-rollover leaves the old
region intact and still the newest valid one.

Durability: `append` writes through to the OS at once (a killed process loses nothing it appended);
`sync` (fsync) runs every `ledger_batch_records` records or `ledger_batch_seconds` after the first unsynced
one, so a power loss costs at most one batch. `synced_seq` is the acknowledgement: every record with a
seq at or below it is on stable storage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from appliance import ledger_record as rec
from appliance.config import DISK_HEADER_BYTES, Limits
from appliance.disk import Disk, DiskError

CHECKPOINT_MAX_BYTES = rec.CHECKPOINT_MAX_BYTES


def min_region_bytes(limits: Limits) -> int:
    """The smallest region that works: the largest checkpoint, then at least one largest event, then the
    zero frame that ends the valid prefix. A smaller region would roll over on every event and write a
    checkpoint past its own end, into the other region or beyond the disk's two."""
    return CHECKPOINT_MAX_BYTES + rec.FRAME.size + limits.ledger_max_record + rec.FRAME.size


@dataclass
class RecoveryReport:
    region: int
    epoch: int
    records: int
    torn_bytes_cut: bool


class Ledger:
    def __init__(self, disk: Disk, region_bytes: int, limits: Limits) -> None:
        if region_bytes < min_region_bytes(limits):
            raise DiskError(f"ledger region of {region_bytes} bytes is smaller than the {min_region_bytes(limits)} "
                            "a checkpoint and one record need")
        self._disk = disk
        self._region_bytes = region_bytes
        self._limits = limits
        self._region = 0
        self._epoch = 0
        self._offset = 0  # within the active region
        self._next_seq = 0
        self.synced_seq = -1
        self.unsynced = 0
        self.rollovers = 0

    def _base(self, region: int) -> int:
        return DISK_HEADER_BYTES + region * self._region_bytes

    def _max_payload(self, checkpoint: bool) -> int:
        return CHECKPOINT_MAX_BYTES if checkpoint else self._limits.ledger_max_record

    # -- recovery -------------------------------------------------------------------------------------

    def _scan(self, region: int) -> Iterator[tuple[int, rec.Record]]:
        """Yield (end offset, record) for the valid prefix of a region: a checkpoint, then events with
        the same epoch and consecutive seqs. Stops silently at the first thing that breaks the chain."""
        base, offset, epoch, seq = self._base(region), 0, -1, -1
        while offset + rec.FRAME.size <= self._region_bytes:
            head = self._disk.read(base + offset, rec.FRAME.size)
            try:
                length = rec.frame_length(head, CHECKPOINT_MAX_BYTES)
                if length == 0 or offset + rec.FRAME.size + length > self._region_bytes:
                    return
                frame = head + self._disk.read(base + offset + rec.FRAME.size, length)
                record = rec.decode(frame, CHECKPOINT_MAX_BYTES)
            except rec.RecordError:
                return
            first = epoch < 0
            if first != isinstance(record.body, rec.Checkpoint):
                return
            if not first and (record.epoch != epoch or record.seq != seq + 1):
                return
            if not first and len(frame) - rec.FRAME.size > self._limits.ledger_max_record:
                return
            epoch, seq, offset = record.epoch, record.seq, offset + len(frame)
            yield offset, record

    def open(self, initial_state: Callable[[], bytes], consume: Callable[[rec.Record], None]) -> RecoveryReport:
        """Find the newest valid region, replay it into `consume`, cut a torn tail. A blank disk gets an
        initial checkpoint (`initial_state()`) in region 0."""
        heads = {}
        for region in (0, 1):
            for _, first in self._scan(region):
                heads[region] = first.epoch
                break
        if not heads:
            self._start_region(0, 0, 0, initial_state())
            return RecoveryReport(0, 0, 0, torn_bytes_cut=False)
        region = max(heads, key=lambda r: heads[r])
        end, count, last = 0, 0, None
        for end, record in self._scan(region):  # noqa: B007 - `end` after the loop is the valid prefix
            consume(record)
            count += 1
            last = record
        assert last is not None
        self._region, self._epoch, self._offset = region, last.epoch, end
        self._next_seq = last.seq + 1
        self.synced_seq = last.seq
        torn = self._scrub_tail()
        return RecoveryReport(region, self._epoch, count, torn)

    def _scrub_tail(self) -> bool:
        """Zero what follows the valid prefix, as far as one unsynced batch can reach: a torn record may
        have been followed by later records of the same batch, which must not be replayed after we
        append new ones in front of them."""
        reach = min(
            self._region_bytes - self._offset,
            self._limits.ledger_batch_records * (self._limits.ledger_max_record + rec.FRAME.size)
            + CHECKPOINT_MAX_BYTES,
        )
        start = self._base(self._region) + self._offset
        if not any(self._disk.read(start, reach)):
            return False
        self._disk.write(start, b"\x00" * reach)
        self._disk.sync()
        return True

    def _start_region(self, region: int, epoch: int, seq: int, state: bytes) -> None:
        frame = rec.encode(rec.Record(epoch, seq, rec.Checkpoint(state)), CHECKPOINT_MAX_BYTES)
        base = self._base(region)
        # Invalidate whatever followed the old checkpoint before the new one makes this region "newest".
        self._disk.write(base + len(frame), b"\x00" * rec.FRAME.size)
        self._disk.write(base, frame)
        self._disk.sync()
        self._region, self._epoch, self._offset = region, epoch, len(frame)
        self._next_seq = seq + 1
        self.synced_seq = seq
        self.unsynced = 0

    # -- appending ------------------------------------------------------------------------------------

    def append(self, event: rec.Event, checkpoint_state: Callable[[], bytes]) -> int:
        """Write one event (through to the OS, not yet synced); returns its seq. Rolls over when full,
        with `checkpoint_state()` (which must already include this event) as the new region's start."""
        seq = self._next_seq
        frame = rec.encode(
            rec.Record(self._epoch, seq, event), self._limits.ledger_max_record, self._limits.ledger_reason_bytes
        )
        if self._offset + len(frame) + rec.FRAME.size > self._region_bytes:
            self.sync()
            self.rollovers += 1
            self._start_region(1 - self._region, self._epoch + 1, seq, checkpoint_state())
            return seq
        self._disk.write(self._base(self._region) + self._offset, frame)
        self._offset += len(frame)
        self._next_seq = seq + 1
        self.unsynced += 1
        return seq

    def sync_due(self) -> bool:
        return self.unsynced >= self._limits.ledger_batch_records

    def sync(self) -> int:
        """fsync; afterwards every appended record is durable. Returns the acknowledged seq."""
        if self.unsynced:
            self._disk.sync()
            self.unsynced = 0
            self.synced_seq = self._next_seq - 1
        return self.synced_seq
