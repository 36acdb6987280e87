"""The benchmark's floor init: a well-formed static ELF that calls reboot(2) and then exit(2)."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from image import cpio, floor


def test_elf_header_and_entry() -> None:
    data = floor.elf()
    assert data[:4] == b"\x7fELF"
    assert data[4] == 2
    assert data[5] == 1
    e_type, e_machine, _, e_entry, e_phoff = struct.unpack_from("<HHIQQ", data, 16)
    assert (e_type, e_machine, e_phoff) == (2, 0x3E, 64)
    assert e_entry == floor.BASE + floor.HEADERS
    assert data[floor.HEADERS:] == floor.CODE
    assert floor.CODE.count(b"\x0f\x05") == 2  # two syscalls: reboot, then exit


@pytest.mark.skipif(shutil.which("readelf") is None, reason="binutils missing")
def test_readelf_accepts_it(tmp_path: Path) -> None:
    path = tmp_path / "init"
    path.write_bytes(floor.elf())
    out = subprocess.run(["readelf", "-h", "-l", str(path)], capture_output=True, text=True, check=True).stdout
    assert "EXEC (Executable file)" in out
    assert "Advanced Micro Devices X86-64" in out
    assert "LOAD" in out


def test_archive_holds_init_and_console() -> None:
    entries = {e.path: e for e in cpio.parse(floor.archive())}
    assert set(entries) == {"init", "dev", "dev/console"}
    assert entries["init"].mode & 0o111
    assert entries["dev/console"].rdev == (5, 1)
