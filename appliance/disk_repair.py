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

from appliance import ledger_record as rec
from appliance.config import DEFAULT_LIMITS, DISK_HEADER_BYTES
from appliance.disk import Disk
from appliance.disk_header import DiskDamagedError, Header
from appliance.ledger import Ledger, LedgerArea, Recovery, smallest_record_bytes
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
    if resolution.repair:
        header = disk.repair_header(resolution)
        say(f"header: rewrote copies {list(resolution.repair)} from the good one")
    region_bytes = header.region_bytes
    cut = _extend_truncated(disk, header, say)
    stats = Stats(DEFAULT_LIMITS)
    ledger = Ledger(LedgerArea(disk, region_bytes), DEFAULT_LIMITS, format_epoch=header.format_epoch)
    bound = region_bytes // smallest_record_bytes()
    try:
        recovery = ledger.recover(stats.replay, started=header.ledger_started)
    except DiskDamagedError as exc:
        say(f"ledger: {exc}")
        samples = [disk.read(DISK_HEADER_BYTES + r * region_bytes, rec.FINDING_SAMPLE_BYTES) for r in (0, 1)]
        recovery = Recovery(new=True)
        ledger.commit(recovery, stats.initial, stats.replay, stats.checkpoint)
        for region in (0, 1):
            _record(ledger, stats, rec.Finding(region, rec.UNKNOWN_EPOCH, 0, region_bytes, None, bound, torn=False,
                                               totals_kept=False, sample=samples[region].rstrip(b"\x00")))
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
        disk.write_header(Header(header.region_bytes, header.key, True, header.generation, header.format_epoch),
                          disk.resolve_header())
    say("repaired: the disk boots; the statistics page lists what was lost")
    return EXIT_REPAIRED


def _record(ledger: Ledger, stats: Stats, finding: rec.Finding) -> None:
    seq = ledger.record_finding(finding, stats.checkpoint)
    stats.add_finding(seq, finding)


def _extend_truncated(disk: Disk, header: Header, say: Say) -> int | None:
    size, needed = disk.size(), header.layout_bytes()
    if size >= needed or disk.is_block_device:
        return None
    disk.extend(needed)
    say(f"size: the file was {size} bytes, the layout {needed}: extended; bytes from {size} on are recorded as lost")
    return size
