"""The newc writer: canonical output (sorted, fixed metadata), a round trip through our parser and GNU cpio,
and refusal of malformed input."""

from __future__ import annotations

import contextlib
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from image import cpio


def sample() -> list[cpio.Entry]:
    return [
        cpio.regular("usr/bin/tool", b"\x7fELF...", 0o755),
        cpio.directory("usr"),
        cpio.directory("usr/bin"),
        cpio.symlink("lib64", "usr/lib"),
        cpio.directory("dev"),
        cpio.char_device("dev/console", 5, 1),
        cpio.regular("init", b"#!/bin/x\n"),
    ]


def test_output_does_not_depend_on_input_order() -> None:
    entries = sample()
    assert cpio.serialize(entries) == cpio.serialize(list(reversed(entries)))


def test_round_trip_sorted_with_fixed_metadata() -> None:
    archive = cpio.serialize(sample())
    parsed = cpio.parse(archive)
    assert [e.path for e in parsed] == sorted(e.path for e in sample())
    assert {e.path: e for e in parsed} == {e.path: e for e in sample()}
    # every header: uid 0, gid 0, mtime FIXED_MTIME (fields 3, 4, 6)
    offset = 0
    while True:
        header = archive[offset:offset + cpio.HEADER_BYTES]
        fields = [int(header[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        assert fields[2] == 0
        assert fields[3] == 0
        assert fields[5] == cpio.FIXED_MTIME
        name_size, file_size = fields[11], fields[6]
        name_end = offset + cpio.HEADER_BYTES + name_size
        data_start = name_end + (-(cpio.HEADER_BYTES + name_size) % 4)
        if archive[offset + cpio.HEADER_BYTES:name_end - 1] == b"TRAILER!!!":
            break
        offset = data_start + file_size + (-file_size % 4)


@pytest.mark.skipif(shutil.which("cpio") is None, reason="GNU cpio not installed")
def test_gnu_cpio_reads_our_archive(tmp_path: Path) -> None:
    archive = cpio.serialize([e for e in sample() if not stat.S_ISCHR(e.mode)])
    listing = subprocess.run(["cpio", "-i", "-t", "-v", "--quiet"], input=archive, capture_output=True, check=True)
    lines = listing.stdout.decode().splitlines()
    assert [line.split()[-1] if "->" not in line else line.split()[-3] for line in lines] == [
        "dev", "init", "lib64", "usr", "usr/bin", "usr/bin/tool"]
    assert all(" root " in f" {line} " or " 0 " in f" {line} " for line in lines)
    subprocess.run(["cpio", "-i", "-d", "--quiet"], input=archive, cwd=tmp_path, check=True)
    assert (tmp_path / "usr/bin/tool").read_bytes() == b"\x7fELF..."
    assert (tmp_path / "usr/bin/tool").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "lib64").readlink() == Path("usr/lib")


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([cpio.regular("a", b"1"), cpio.regular("a", b"1")], "duplicate"),
        ([cpio.regular("missing/child", b"")], "parent directory"),
        ([cpio.regular("/abs", b"")], "bad path"),
        ([cpio.directory("a"), cpio.regular("a/../b", b"")], "not normalised"),
        ([cpio.Entry("fifo", stat.S_IFIFO | 0o644)], "unsupported file type"),
        ([cpio.Entry("d", stat.S_IFDIR | 0o755, b"x")], "only files and symlinks"),
        ([cpio.Entry("l", stat.S_IFLNK | 0o777, b"")], "empty symlink"),
    ],
)
def test_writer_refuses_bad_entries(entries: list[cpio.Entry], message: str) -> None:
    with pytest.raises(cpio.CpioError, match=message):
        cpio.serialize(entries)


def test_parser_refuses_malformed_archives() -> None:
    good = cpio.serialize(sample())
    with pytest.raises(cpio.CpioError, match="truncated"):
        cpio.parse(good[:50])
    with pytest.raises(cpio.CpioError, match="bad magic"):
        cpio.parse(b"070707" + good[6:])
    with pytest.raises(cpio.CpioError, match="trailing"):
        cpio.parse(good + b"\x01")
    one_file = cpio.serialize([cpio.regular("f", b"x" * 100)])
    with pytest.raises(cpio.CpioError, match="runs past"):
        cpio.parse(one_file[:150])
    with pytest.raises(cpio.CpioError, match="non-hex"):
        cpio.parse(one_file[:6] + b"zzzzzzzz" + one_file[14:])
    bad_name = bytearray(one_file)
    bad_name[cpio.HEADER_BYTES] = 0xFF
    with pytest.raises(cpio.CpioError, match="UTF-8"):
        cpio.parse(bytes(bad_name))
    cpio.parse(good + b"\0" * 512)  # NUL padding after the trailer is what the kernel accepts too


_names = st.text(alphabet="abcdefghij_.", min_size=1, max_size=12).filter(lambda s: s not in (".", ".."))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_names, st.binary(max_size=64), min_size=1, max_size=8))
def test_round_trip_property(files: dict[str, bytes]) -> None:
    entries = [cpio.directory("d")] + [cpio.regular(f"d/{name}", data) for name, data in files.items()]
    archive = cpio.serialize(entries)
    assert len(archive) % 4 == 0
    assert {e.path: e.data for e in cpio.parse(archive)} == {e.path: e.data for e in entries}


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_parser_never_fails_untyped(data: bytes) -> None:
    with contextlib.suppress(cpio.CpioError):
        cpio.parse(data)
