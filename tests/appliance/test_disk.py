from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.config import DISK_HEADER_BYTES
from appliance.disk import Disk, DiskError, Header, decode_header, encode_header
from appliance.vault import load_or_generate


def test_header_round_trip() -> None:
    for header in (Header(8192, None), Header(4 * 1024 * 1024, bytes(range(32)))):
        assert decode_header(encode_header(header).ljust(DISK_HEADER_BYTES, b"\0")) == header


def test_blank_block_is_no_header() -> None:
    assert decode_header(bytes(DISK_HEADER_BYTES)) is None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b[:8] + b"\x01" + b[9:],  # region size changed: checksum fails
        lambda b: b"NOTPINAT" + b[8:],
        lambda b: b[:-1] + b"\x01",  # trailing byte in the block
    ],
)
def test_corrupt_headers_are_refused(mangle: object) -> None:
    block = encode_header(Header(8192, bytes(32))).ljust(DISK_HEADER_BYTES, b"\0")
    assert callable(mangle)
    with pytest.raises(DiskError):
        decode_header(mangle(block))


@settings(max_examples=300)
@given(st.binary(min_size=64, max_size=64))
def test_random_header_bytes_only_raise_disk_error(prefix: bytes) -> None:
    try:
        decode_header(prefix.ljust(DISK_HEADER_BYTES, b"\0"))
    except DiskError:
        return


def test_a_file_reads_zeros_past_its_end(tmp_path: Path) -> None:
    disk = Disk(tmp_path / "d")
    disk.write(10, b"abc")
    assert disk.read(8, 8) == b"\0\0abc\0\0\0"
    assert disk.size() is None
    disk.close()


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("losetup") is None, reason="needs root and losetup")
def test_block_device_too_small_is_refused_and_a_big_one_works(tmp_path: Path) -> None:
    """A loop device stands in for the VM's virtio disk: fixed size, no growth."""
    backing = tmp_path / "blk"
    backing.write_bytes(bytes(DISK_HEADER_BYTES + 2 * 8192))
    device = subprocess.run(
        ["losetup", "--find", "--show", str(backing)], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        disk = Disk(Path(device))
        assert disk.is_block_device
        assert disk.size() == DISK_HEADER_BYTES + 2 * 8192
        with pytest.raises(DiskError):
            load_or_generate(disk, 16384)
        secret, header, generated = load_or_generate(disk, 8192)
        assert generated
        assert header.region_bytes == 8192
        assert load_or_generate(disk, 8192)[0] == secret
        disk.close()
    finally:
        subprocess.run(["losetup", "--detach", device], check=False)
