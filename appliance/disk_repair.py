"""`python -m appliance disk repair DISK`: let a refused disk boot again by writing down what it lost.

Boot refuses a disk whose wallet key is intact but whose ledger it cannot continue without guessing: a file
truncated short of its layout, ledger regions that were wiped, or regions neither of which can be read.
Refusing is right for a boot (it must never decide on its own that history is gone), but an operator whose
only copy of a funded key is on that disk needs a way on. This command is that way, taken on purpose: it
never touches the key, it records each loss in the ledger as a finding (region, byte range, the bound on the
records lost, the first bytes), so the statistics page shows it for good, and then the disk boots.

Keep a copy of the disk before running it (`cp --sparse=always`): a ledger that is restarted begins again
in region 0, over whatever could not be read there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from appliance import ledger_record as rec
from appliance.config import DEFAULT_LIMITS, DISK_HEADER_BYTES
from appliance.data_disk import open_ledger, recover_ledger
from appliance.disk import Disk
from appliance.disk_header import DiskDamagedError, Header
from appliance.ledger import Recovery
from appliance.stats import Stats

EXIT_REPAIRED, EXIT_NOTHING_TO_DO, EXIT_CANNOT = 0, 3, 1
Say = Callable[[str], None]


def repair_disk(disk: Disk, say: Say) -> int:
    try:
        resolution = disk.resolve_header()
    except DiskDamagedError as exc:
        say(f"cannot repair: {exc}")
        return EXIT_CANNOT
    header = resolution.header
    if header is None and not disk.is_blank(DEFAULT_LIMITS.ledger_region_bytes):
        say("cannot repair: both header copies are blank on a disk that is not: the key is not on this disk any "
            "more; restore it from your offline backup with `provision` on a new disk")
        return EXIT_CANNOT
    if header is None or header.key is None:
        say("nothing to repair: the disk holds no wallet key yet (it boots as it is)")
        return EXIT_NOTHING_TO_DO
    if resolution.legacy:
        say("cannot repair a format 1 disk: boot it once with this build, which upgrades it in place (format 1 "
            "files are shorter than their layout by design, and its regions end without terminators)")
        return EXIT_CANNOT
    if resolution.repair:
        header = disk.repair_header(resolution)
        say(f"header: rewrote copies {list(resolution.repair)} from the good one")
    region_bytes = header.region_bytes
    cut = _extend_truncated(disk, header, say)
    stats = Stats(DEFAULT_LIMITS)
    ledger = open_ledger(disk, header, resolution, DEFAULT_LIMITS)
    bound = region_bytes // rec.SMALLEST_RECORD
    try:
        recovery = recover_ledger(ledger, header, stats.replay)
    except DiskDamagedError as exc:
        say(f"ledger: {exc}")
        stats = Stats(DEFAULT_LIMITS)  # whatever a failed replay left in it is not the record
        samples = [disk.read(DISK_HEADER_BYTES + r * region_bytes, rec.FINDING_SAMPLE_BYTES) for r in (0, 1)]
        lost = [rec.Finding(region, rec.UNKNOWN_EPOCH, 0, region_bytes, None, bound, torn=False, totals_kept=False,
                            sample=samples[region].rstrip(b"\x00")) for region in (0, 1)]
        # The new ledger starts in region 0, over what could not be read there: its first checkpoint, the
        # write that replaces that evidence, already counts the losses (seqs 1 and 2 follow it).
        for seq, finding in enumerate(lost, start=1):
            stats.add_finding(seq, finding)
        ledger.commit(Recovery(new=True), stats.initial, stats.replay, stats.checkpoint)
        for finding in lost:
            ledger.record_finding(finding, stats.checkpoint)
        say("ledger: restarted in region 0; the loss of both regions is recorded")
    else:
        if cut is not None:
            for scan in recovery.scans:
                base = DISK_HEADER_BYTES + scan.region * region_bytes
                if cut < base + region_bytes:
                    start = max(cut - base, 0)
                    epoch = scan.epoch if scan.epoch is not None else rec.UNKNOWN_EPOCH
                    recovery.findings.append(rec.Finding(scan.region, epoch, start, region_bytes, None, bound,
                                                         torn=False, totals_kept=False))
        ledger.commit(recovery, stats.initial, stats.replay, stats.checkpoint)
        say(f"ledger: {recovery.report().outcome}; {len(recovery.findings)} findings recorded")
    ledger.mark_stopped(stats.checkpoint)
    if not header.ledger_started:
        disk.write_header(replace(header, ledger_started=True))
    say("repaired: the disk boots; the statistics page lists what was lost")
    return EXIT_REPAIRED


def _extend_truncated(disk: Disk, header: Header, say: Say) -> int | None:
    size, needed = disk.size(), header.layout_bytes()
    if size >= needed or disk.is_block_device:
        return None
    disk.extend(needed)
    say(f"size: the file was {size} bytes, the layout {needed}: extended; bytes from {size} on are recorded as lost")
    return size
