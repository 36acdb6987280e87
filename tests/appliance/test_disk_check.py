"""`python -m appliance disk check`: what the operator is told, and that it never writes."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.bitcoin import wif_encode
from appliance.config import DISK_HEADER_BYTES
from appliance.disk import Disk, Header
from appliance.disk_check import EXIT_DAMAGED, EXIT_OK, EXIT_UNAVAILABLE, check_disk
from tests.appliance.test_data_disk import REGION, SECRET, Boot

ROOT = Path(__file__).resolve().parents[2]


def _disk(tmp_path: Path, events: int = 30, stop: bool = True) -> tuple[Path, list[int]]:
    boot = Boot(tmp_path / "d")
    opened = boot.open()
    offsets = []
    for _i in range(events):
        offsets.append(opened.ledger.offset)
        boot.append(1)
    if stop:
        boot.stop()
    else:
        opened.ledger.sync()
        boot.disk.close()
    return tmp_path / "d", offsets


def _check(path: Path) -> tuple[int, str]:
    out = io.StringIO()
    before = path.read_bytes() if path.exists() else b""
    status = check_disk(path, out)
    assert (path.read_bytes() if path.exists() else b"") == before  # read-only, always
    return status, out.getvalue()


def _never_the_key(text: str) -> None:
    assert SECRET.hex() not in text
    assert wif_encode(SECRET) not in text


def test_a_clean_disk(tmp_path: Path) -> None:
    path, _ = _disk(tmp_path)
    status, text = _check(path)
    assert status == EXIT_OK
    assert "header copy 0: valid generation 2" in text
    assert "header copy 1: valid generation 2" in text
    assert "totals: 30 connections" in text
    assert "outcome: clean; records lost 0 (at most 0)" in text
    _never_the_key(text)


def test_a_killed_appliance_leaves_a_torn_tail_which_is_not_damage(tmp_path: Path) -> None:
    path, _ = _disk(tmp_path, stop=False)
    status, text = _check(path)
    assert status == EXIT_OK
    assert "outcome: torn tail" in text


def test_a_damaged_record_is_reported_with_its_count_and_bytes(tmp_path: Path) -> None:
    """Further from the end than one batch of the build's limits (64), so not a torn tail."""
    path, offsets = _disk(tmp_path, events=100)
    where = DISK_HEADER_BYTES + offsets[5] + 30
    with path.open("r+b") as f:
        f.seek(where)
        byte = f.read(1)
        f.seek(where)
        f.write(bytes([byte[0] ^ 0x40]))
    status, text = _check(path)
    assert status == EXIT_DAMAGED
    assert f"DAMAGE: region 0 epoch 0 bytes {offsets[5]}.." in text
    assert "1 records unreadable (not in the totals)" in text
    assert "outcome: damaged; records lost 1 (at most 1)" in text
    _never_the_key(text)


def test_a_damaged_header_copy_is_named_and_the_repair_announced(tmp_path: Path) -> None:
    path, _ = _disk(tmp_path)
    with path.open("r+b") as f:
        f.seek(2048 + 3)
        f.write(b"\x00")
    status, text = _check(path)
    assert status == EXIT_OK  # one copy is enough to boot; the boot repairs it
    assert "header copy 1: damaged (checksum mismatch) - the next boot rewrites it from the other copy" in text


def test_a_refused_disk_exits_damaged(tmp_path: Path) -> None:
    path, _ = _disk(tmp_path)
    with path.open("r+b") as f:
        f.write(bytes(DISK_HEADER_BYTES))
    status, text = _check(path)
    assert status == EXIT_DAMAGED
    assert "header: none but the disk is NOT blank" in text


def test_a_disk_in_use_or_missing_cannot_be_checked(tmp_path: Path) -> None:
    path, _ = _disk(tmp_path)
    holder = Disk(path)
    status, text = _check(path)
    holder.close()
    assert status == EXIT_UNAVAILABLE
    assert "locked by another instance" in text
    assert _check(tmp_path / "absent")[0] == EXIT_UNAVAILABLE
    assert not (tmp_path / "absent").exists()


def test_the_command_line(tmp_path: Path) -> None:
    path, _ = _disk(tmp_path)
    result = subprocess.run([sys.executable, "-m", "appliance", "disk", "check", str(path)], capture_output=True,
                            text=True, cwd=ROOT, check=False)
    assert result.returncode == EXIT_OK, result.stderr
    assert "outcome: clean" in result.stdout
    assert f"2 x {REGION} bytes" in result.stdout


def test_every_record_kind_is_counted_in_the_region_lines(tmp_path: Path) -> None:
    path, _ = _disk(tmp_path, events=3)
    _, text = _check(path)
    # checkpoint, 3 events, the stop marker
    assert "4 records (3 events), seq 0..4" in text


def _repair(path: Path) -> tuple[int, str]:
    out = io.StringIO()
    from appliance.disk_check import disk_main

    return disk_main(["repair", str(path)], out), out.getvalue()


def _boot_after_repair(path: Path) -> Boot:
    boot = Boot(path)
    opened = boot.open()
    assert opened.secret == SECRET
    assert not opened.generated
    return boot


def test_repair_records_a_truncation_and_the_disk_boots_with_its_key(tmp_path: Path) -> None:
    path, _ = _disk(tmp_path, events=100)
    with path.open("r+b") as f:
        f.truncate(DISK_HEADER_BYTES + 2000)  # inside region 0: most of the records are gone
    assert _check(path)[0] == EXIT_DAMAGED
    status, text = _repair(path)
    assert status == 0, text
    assert "extended" in text
    boot = _boot_after_repair(path)
    assert boot.stats.integrity["damaged"] >= 2  # region 0 from the cut, region 1 whole
    starts = {(f["region"], f["start"]) for f in boot.stats.findings}
    assert (0, 2000) in starts
    assert (1, 0) in starts
    boot.stop()
    assert _check(path)[0] == EXIT_OK  # recorded: known from now on
    assert path.stat().st_size == DISK_HEADER_BYTES + 2 * REGION


@pytest.mark.parametrize("wipe", ["zeros", "garbage"])
def test_repair_restarts_a_lost_ledger_and_records_it(tmp_path: Path, wipe: str) -> None:
    path, _ = _disk(tmp_path)
    with path.open("r+b") as f:
        f.seek(DISK_HEADER_BYTES)
        f.write(bytes(2 * REGION) if wipe == "zeros" else b"\x5a" * (2 * REGION))
    assert _check(path)[0] == EXIT_DAMAGED
    status, text = _repair(path)
    assert status == 0, text
    assert "restarted in region 0" in text
    boot = _boot_after_repair(path)
    assert boot.opened is not None
    assert boot.opened.report.outcome == "clean"
    assert boot.stats.integrity["damaged"] == 2
    assert {f["region"] for f in boot.stats.findings} == {0, 1}
    boot.stop()


def test_repair_never_touches_a_disk_it_cannot_read_the_key_from(tmp_path: Path) -> None:
    path, _ = _disk(tmp_path)
    with path.open("r+b") as f:
        f.write(bytes(DISK_HEADER_BYTES))
    before = path.read_bytes()
    status, text = _repair(path)
    assert status == 1
    assert "cannot repair" in text
    assert path.read_bytes() == before


def test_repair_of_a_healthy_disk_changes_no_record(tmp_path: Path) -> None:
    path, _ = _disk(tmp_path)
    status, _ = _repair(path)
    assert status == 0
    boot = _boot_after_repair(path)
    assert boot.stats.total() == 30
    assert boot.stats.integrity == {"damaged": 0, "torn_tails": 0, "records_lost": 0, "records_lost_bound": 0}
    boot.stop()


def test_a_region_below_the_minimum_is_reported_not_raised(tmp_path: Path) -> None:
    from appliance.disk_header import encode_copy

    path = tmp_path / "d"
    small = encode_copy(Header(8192, SECRET, ledger_started=True, generation=1))
    path.write_bytes((small + small).ljust(DISK_HEADER_BYTES + 2 * 8192, b"\0"))
    status, text = _check(path)
    assert status == EXIT_DAMAGED
    assert "smaller than" in text


def test_repair_refuses_a_format_1_disk_and_leaves_it(tmp_path: Path) -> None:
    from tests.appliance.test_data_disk import _legacy_disk

    path = tmp_path / "d"
    _legacy_disk(path, 5)
    before = path.read_bytes()
    status, text = _repair(path)
    assert status == 1
    assert "boot it once with this build" in text
    assert path.read_bytes() == before
