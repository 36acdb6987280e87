"""The boot sequence of the data disk: when a key may be made, when boot refuses, what it repairs."""

from __future__ import annotations

import io
import json
import struct
import zlib
from dataclasses import replace
from pathlib import Path

import pytest

from appliance import ledger_record as rec
from appliance.config import DISK_HEADER_BYTES, Limits
from appliance.data_disk import AlreadyProvisionedError, Opened, open_data_disk, provision
from appliance.disk import Disk, DiskDamagedError, Header
from appliance.disk_header import SLOT_BYTES
from appliance.ledger import min_region_bytes
from appliance.log import JsonLog
from appliance.stats import Stats

REGION = -(-min_region_bytes(Limits()) // 4096) * 4096
LIMITS = replace(Limits(), ledger_region_bytes=REGION, ledger_batch_records=4)
SECRET = bytes.fromhex("1e99423a4ed27608a15a2616a2b0e9e52ced330ac530edcc32c8ffc6a526aedd")


class Boot:
    def __init__(self, path: Path, limits: Limits = LIMITS) -> None:
        self.console = io.StringIO()
        self.stats = Stats(limits)
        self.disk = Disk(path)
        self.opened: Opened | None = None
        self.limits = limits

    def open(self) -> Opened:
        self.opened = open_data_disk(self.disk, self.limits, self.stats, JsonLog(self.console),
                                     new_key=lambda: SECRET)
        return self.opened

    def events(self, name: str) -> list[dict[str, object]]:
        lines = [json.loads(line) for line in self.console.getvalue().splitlines()]
        return [line for line in lines if line["event"] == name]

    def append(self, n: int) -> None:
        assert self.opened is not None
        for i in range(n):
            event = rec.Event(1000.0 + i, "mutual", "expired", f"10.0.0.{i % 9}", f"r{i}")
            self.opened.ledger.append(event, self.stats.checkpoint)
            self.stats.add(event)

    def stop(self) -> None:
        if self.opened is not None:
            self.opened.ledger.mark_stopped(self.stats.checkpoint)
        self.disk.close()


def test_what_the_boot_opened_prints_without_the_key(tmp_path: Path) -> None:
    boot = Boot(tmp_path / "d")
    opened = boot.open()
    text = repr(opened)
    assert "Opened(" in text
    assert SECRET.hex() not in text
    assert repr(SECRET) not in text
    boot.stop()


def test_first_boot_makes_the_key_and_later_boots_keep_it(tmp_path: Path) -> None:
    boot = Boot(tmp_path / "d")
    first = boot.open()
    assert first.generated
    assert first.secret == SECRET
    assert first.report.outcome == "new"
    assert first.header.ledger_started
    assert boot.events("key-generated")
    boot.append(10)
    boot.stop()
    assert (tmp_path / "d").stat().st_size == DISK_HEADER_BYTES + 2 * REGION  # a later shrink is visible

    again = Boot(tmp_path / "d", replace(LIMITS, ledger_region_bytes=2 * REGION))  # the disk's layout rules
    second = again.open()
    assert not second.generated
    assert second.secret == SECRET
    assert second.report.outcome == "clean"
    assert again.stats.total() == 10
    assert not again.events("key-generated")
    again.stop()


def test_provision_then_boot_uses_the_provisioned_key_and_never_overwrites_it(tmp_path: Path) -> None:
    disk = Disk(tmp_path / "d")
    address = provision(disk, SECRET, REGION)
    assert address.startswith(b"bc1q")
    with pytest.raises(AlreadyProvisionedError):
        provision(disk, SECRET, REGION)
    disk.close()
    boot = Boot(tmp_path / "d")
    opened = boot.open()
    assert not opened.generated
    assert opened.secret == SECRET
    boot.stop()
    disk = Disk(tmp_path / "d")
    with pytest.raises(AlreadyProvisionedError):
        provision(disk, SECRET, REGION)
    disk.close()


def _refused(path: Path, match: str) -> Boot:
    """Boot on `path` must refuse with `match` and leave every byte of the disk as it was."""
    before = path.read_bytes()
    boot = Boot(path)
    with pytest.raises(DiskDamagedError, match=match):
        boot.open()
    boot.disk.close()
    assert path.read_bytes() == before
    return boot


def _booted_disk(tmp_path: Path, events: int = 20) -> Path:
    boot = Boot(tmp_path / "d")
    boot.open()
    boot.append(events)
    boot.stop()
    return tmp_path / "d"


@pytest.mark.parametrize("wipe", [(0, DISK_HEADER_BYTES), (0, SLOT_BYTES * 2)])
def test_a_zeroed_header_on_a_used_disk_is_refused_and_nothing_is_written(tmp_path: Path,
                                                                         wipe: tuple[int, int]) -> None:
    path = _booted_disk(tmp_path)
    with path.open("r+b") as f:
        f.seek(wipe[0])
        f.write(bytes(wipe[1] - wipe[0]))
    before = path.read_bytes()
    boot = _refused(path, "a new key would be written over")
    assert not boot.events("key-generated")
    disk = Disk(path)
    with pytest.raises(DiskDamagedError):
        provision(disk, SECRET, REGION)  # provisioning does not guess either
    disk.close()
    assert path.read_bytes() == before


@pytest.mark.parametrize("slot", [0, 1])
def test_one_damaged_header_copy_is_repaired_from_the_other_and_logged(tmp_path: Path, slot: int) -> None:
    path = _booted_disk(tmp_path)
    with path.open("r+b") as f:
        f.seek(slot * SLOT_BYTES + 30)  # inside the key
        byte = f.read(1)
        f.seek(slot * SLOT_BYTES + 30)
        f.write(bytes([byte[0] ^ 0x04]))
    boot = Boot(path)
    opened = boot.open()
    assert opened.secret == SECRET
    assert not opened.generated
    repaired = boot.events("disk-header-repaired")
    assert [(e["copy"], e["was"], e["reason"]) for e in repaired] == [(slot, "damaged", "checksum mismatch")]
    boot.stop()
    check = Disk(path, read_only=True)
    assert check.resolve_header().repair == ()
    check.close()


def test_a_truncated_disk_is_refused_unchanged(tmp_path: Path) -> None:
    path = _booted_disk(tmp_path)
    with path.open("r+b") as f:
        f.truncate(DISK_HEADER_BYTES + REGION)
    _refused(path, "truncated")


def test_blank_regions_under_a_started_header_are_refused(tmp_path: Path) -> None:
    path = _booted_disk(tmp_path)
    with path.open("r+b") as f:
        f.seek(DISK_HEADER_BYTES)
        f.write(bytes(2 * REGION))
    _refused(path, "wiped")


def _legacy_disk(path: Path, events: int) -> None:
    """A disk as the format 1 build wrote it: one header copy, a checkpoint that included the event that
    caused it, no terminators."""
    body = struct.pack(">8sIB32s", b"PINATA01", REGION, 1, SECRET)
    header = (body + struct.pack(">I", zlib.crc32(body))).ljust(DISK_HEADER_BYTES, b"\0")
    stats = Stats(LIMITS)
    frames = [rec.encode(rec.Record(0, 0, rec.Checkpoint(stats.initial())), rec.CHECKPOINT_MAX_BYTES)]
    for i in range(events):
        frames.append(rec.encode(rec.Record(0, i + 1, rec.Event(5.0 + i, "http", "served", "192.0.2.1", "ok")), 1024))
    region = b"".join(frames)
    path.write_bytes(header + region + b"\x5a" * 64)  # stale bytes after the valid prefix, as reuse leaves them


def test_a_format_1_disk_boots_with_its_key_and_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "d"
    _legacy_disk(path, 12)
    boot = Boot(path)
    opened = boot.open()
    assert opened.secret == SECRET
    assert not opened.generated
    assert opened.report.outcome == "clean"  # format 1 left no terminator: its stale bytes are not damage
    assert boot.stats.total() == 12
    assert opened.header.format_epoch == 1
    assert opened.header.ledger_started
    assert {e["was"] for e in boot.events("disk-header-repaired")} == {"format 1", "blank"}
    boot.append(3)
    boot.stop()
    again = Boot(path)
    second = again.open()
    assert second.secret == SECRET
    assert second.header.format_epoch == 1
    assert again.stats.total() == 15
    assert second.report.outcome == "clean"
    again.stop()


def test_a_keyless_header_over_a_used_ledger_gets_no_key(tmp_path: Path) -> None:
    """A provisioned layout whose key is missing is only blank if its ledger part is: otherwise a key
    would be made over a record."""
    path = _booted_disk(tmp_path)
    from appliance.disk_header import encode_copy

    keyless = encode_copy(Header(REGION, None, ledger_started=False, generation=1))
    with path.open("r+b") as f:
        f.write(keyless + keyless)
    _refused(path, "ledger part of the disk holds data")
    before = path.read_bytes()
    disk = Disk(path)
    with pytest.raises(DiskDamagedError, match="ledger part of the disk holds data"):
        provision(disk, SECRET, REGION)  # the same proof as the first boot's, not a weaker one
    disk.close()
    assert path.read_bytes() == before


def test_a_checkpoint_that_is_not_statistics_is_refused_unchanged(tmp_path: Path) -> None:
    """Its CRC holds (forged, or another build's shape), so only the statistics can tell: the boot refuses
    rather than replay half of it."""
    path = tmp_path / "d"
    boot = Boot(path)
    boot.open()
    boot.stop()
    for state in (b"[" * 5000, b'{"counts": 5}', b"\xff\xfe", b'{"counts":{},"series":{},"recent":[],'
                  b'"sources_before":0,"rolled_over":false,"findings":[{"kind":"<script>"}]}'):
        frame = rec.encode(rec.Record(0, 0, rec.Checkpoint(state)), rec.CHECKPOINT_MAX_BYTES)
        with path.open("r+b") as f:
            f.seek(DISK_HEADER_BYTES)
            f.write(frame + rec.TERMINATOR)
        _refused(path, "not statistics this build can read")
