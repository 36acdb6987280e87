"""`python -m appliance disk check DISK`: what is on a data disk, read-only (and `disk repair`: see
appliance.disk_repair).

It prints the two header copies (never the key: the address it belongs to), the layout against the disk's
size, each ledger region (generation, records, bytes in use), the totals the appliance would boot with, and
every finding recovery would record. Exit status: 0 clean or a torn tail (expected after a power loss),
1 damaged (the boot would record damage, or refuses), 2 the disk cannot be opened (missing, or in use).
It uses the appliance's own recovery code, so what it reports is what the next boot would do, minus the writes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from appliance import bitcoin
from appliance.config import DEFAULT_LIMITS, DISK_HEADER_BYTES
from appliance.data_disk import open_ledger, recover_ledger
from appliance.disk import Disk, DiskError
from appliance.disk_header import DiskDamagedError, Resolution
from appliance.disk_repair import repair_disk
from appliance.ledger import CLEAN, DAMAGED, NEW, TORN_TAIL, Recovery
from appliance.ledger_record import KIND_EVENT
from appliance.stats import Stats
from appliance.wallet_key import public_key

EXIT_OK, EXIT_DAMAGED, EXIT_UNAVAILABLE = 0, 1, 2
Say = Callable[[str], None]


def disk_main(argv: list[str], out: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m appliance disk", description="Operator tools for the data disk.")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="read-only report of the header copies, the ledger and any damage")
    check.add_argument("disk", type=Path)
    repair = sub.add_parser("repair", help="record what a refused disk lost so that it boots again (never the key)")
    repair.add_argument("disk", type=Path)
    args = parser.parse_args(argv)
    stream = out if out is not None else sys.stdout
    if args.command == "repair":
        return _repair(args.disk, stream)
    return check_disk(args.disk, stream)


def _repair(path: Path, out: TextIO) -> int:
    if not path.exists():
        out.write(f"{path}: no such disk\n")
        return EXIT_UNAVAILABLE
    try:
        disk = Disk(path)
    except (DiskError, OSError) as exc:
        out.write(f"{path}: cannot open: {exc}\n")
        return EXIT_UNAVAILABLE
    def say(text: str) -> None:
        out.write(text + "\n")

    try:
        return repair_disk(disk, say)
    finally:
        disk.close()


def check_disk(path: Path, out: TextIO) -> int:
    def say(text: str) -> None:
        out.write(text + "\n")

    if not path.exists():
        say(f"{path}: no such disk")
        return EXIT_UNAVAILABLE
    try:
        disk = Disk(path, read_only=True)
    except (DiskError, OSError) as exc:
        say(f"{path}: cannot open: {exc}")
        return EXIT_UNAVAILABLE
    try:
        return _check(disk, say)
    finally:
        disk.close()


def _check(disk: Disk, say: Say) -> int:
    say(f"disk {disk.path}: {disk.size()} bytes ({'block device' if disk.is_block_device else 'file'})")
    try:
        resolution = disk.resolve_header()
    except DiskDamagedError as exc:
        say(f"header: DAMAGED: {exc}")
        return EXIT_DAMAGED
    _print_copies(resolution, say)
    header = resolution.header
    if header is None:
        blank = disk.is_blank(DEFAULT_LIMITS.ledger_region_bytes)
        say("header: none" + (" (the disk is blank: the appliance would make a new key)" if blank else
                               " but the disk is NOT blank: the appliance refuses to boot from it"))
        return EXIT_OK if blank else EXIT_DAMAGED
    if header.key is not None:
        public = public_key(header.key)
        say(f"wallet: key present, address {bitcoin.p2wpkh_address(public)} (the key is never printed)")
    else:
        say("wallet: no key yet (the next boot generates one)")
    say(f"layout: header {DISK_HEADER_BYTES} + 2 x {header.region_bytes} bytes = {header.layout_bytes()}; "
        f"ledger {'started' if header.ledger_started else 'not started'}; format epoch {header.format_epoch}"
        + (" (format 1: the next boot upgrades the header in place)" if resolution.legacy else ""))
    try:
        disk.check_fits(header)
    except DiskError as exc:
        say(f"size: DAMAGED: {exc}")
        return EXIT_DAMAGED
    stats = Stats(DEFAULT_LIMITS)
    try:
        recovery = recover_ledger(open_ledger(disk, header, resolution, DEFAULT_LIMITS), header, stats.replay)
    except DiskError as exc:  # a refusal, or a layout this build cannot read (a region below the minimum)
        say(f"ledger: DAMAGED: {exc}")
        return EXIT_DAMAGED
    return _print_ledger(recovery, stats, say)


def _print_copies(resolution: Resolution, say: Say) -> None:
    for slot, copy in enumerate(resolution.copies):
        detail = f" generation {copy.header.generation}" if copy.header is not None else ""
        reason = f" ({copy.reason})" if copy.reason else ""
        repair = " - the next boot rewrites it from the other copy" if slot in resolution.repair else ""
        say(f"header copy {slot}: {copy.state.value}{detail}{reason}{repair}")


def _print_ledger(recovery: Recovery, stats: Stats, say: Say) -> int:
    if recovery.new:
        say(f"ledger: {NEW} (both regions blank)")
        return EXIT_OK
    for scan in recovery.scans:
        if scan.blank:
            say(f"region {scan.region}: blank")
            continue
        events = sum(1 for r in scan.records if r.kind == KIND_EVENT)
        first, last = scan.first_seq, scan.last_seq
        say(f"region {scan.region}: epoch {scan.epoch}, checkpoint {'ok' if scan.checkpoint else 'UNREADABLE'}, "
            f"{len(scan.records)} records ({events} events), seq {first}..{last}, records end at byte {scan.end}"
            + (" (active)" if scan.region == recovery.region else ""))
    report = recovery.report()
    say(f"totals: {stats.total()} connections, {stats.by_category().get('success', 0)} successes")
    for finding in report.known:
        say(f"  known (recorded earlier): region {finding.region} bytes {finding.start}..{finding.end}")
    for finding in report.findings:
        count = finding.records if finding.records is not None else f"up to {finding.bound}"
        kept = "counts kept in a checkpoint, detail lost" if finding.totals_kept else "not in the totals"
        say(f"  {'torn tail' if finding.torn else 'DAMAGE'}: region {finding.region} epoch {finding.epoch} "
            f"bytes {finding.start}..{finding.end}: {count} records unreadable ({kept}); "
            f"first bytes {finding.sample.hex() or '-'}")
    say(f"outcome: {report.outcome}; records lost {report.lost} (at most {report.lost_bound})")
    if report.outcome == DAMAGED:
        return EXIT_DAMAGED
    assert report.outcome in (CLEAN, TORN_TAIL)
    return EXIT_OK

