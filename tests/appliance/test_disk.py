"""Positional I/O, the lock, and what counts as a blank disk."""

from __future__ import annotations

import errno
import mmap
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from appliance import disk as disk_module
from appliance.config import DISK_HEADER_BYTES
from appliance.disk import Disk, DiskBusyError, DiskDamagedError, DiskError, Header

ROOT = Path(__file__).resolve().parents[2]
REGION = 8192
LAYOUT = DISK_HEADER_BYTES + 2 * REGION


def test_a_file_reads_zeros_past_its_end(tmp_path: Path) -> None:
    disk = Disk(tmp_path / "d")
    disk.write(10, b"abc")
    assert disk.read(8, 8) == b"\0\0abc\0\0\0"
    assert disk.size() == 13
    disk.close()


def test_a_second_writer_is_refused_before_it_reads(tmp_path: Path) -> None:
    first = Disk(tmp_path / "d")
    first.write(0, b"data")
    with pytest.raises(DiskBusyError, match="locked by another instance"):
        Disk(tmp_path / "d")
    with pytest.raises(DiskBusyError):
        Disk(tmp_path / "d", read_only=True)  # a reader would see half-written records
    first.close()
    Disk(tmp_path / "d").close()  # released on close


def test_the_lock_holds_across_processes(tmp_path: Path) -> None:
    holder = Disk(tmp_path / "d")
    probe = "import sys; from pathlib import Path; from appliance.disk import Disk; Disk(Path(sys.argv[1]))"
    result = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "d")], capture_output=True, text=True,
                            cwd=ROOT, check=False)
    assert result.returncode != 0
    assert "DiskBusyError" in result.stderr
    holder.close()


def test_a_reader_never_writes_and_keeps_writers_and_other_readers_out(tmp_path: Path) -> None:
    Disk(tmp_path / "d").close()
    one = Disk(tmp_path / "d", read_only=True)
    with pytest.raises(DiskError, match="read-only"):
        one.write(0, b"x")
    with pytest.raises(DiskBusyError):
        Disk(tmp_path / "d")
    with pytest.raises(DiskBusyError):
        Disk(tmp_path / "d", read_only=True)  # a lock held elsewhere cannot be told from a VM's
    one.close()
    Disk(tmp_path / "d", read_only=True).close()


def test_a_new_file_is_blank_and_an_existing_short_one_is_not(tmp_path: Path) -> None:
    """A file that exists but is shorter than the layout may be a truncated disk."""
    disk = Disk(tmp_path / "new")
    assert disk.created
    assert disk.is_blank(REGION)
    disk.close()
    (tmp_path / "empty").write_bytes(b"")
    disk = Disk(tmp_path / "empty")
    assert not disk.created
    assert not disk.is_blank(REGION)
    disk.close()


def test_an_all_zero_file_of_the_layout_is_blank_and_one_byte_makes_it_not(tmp_path: Path) -> None:
    path = tmp_path / "zeros"
    path.write_bytes(bytes(LAYOUT))
    disk = Disk(path)
    assert disk.is_blank(REGION)
    disk.write(LAYOUT - 1, b"\x01")
    assert not disk.is_blank(REGION)
    assert disk.first_nonzero(0, LAYOUT) == LAYOUT - 1
    disk.close()


def test_a_truncated_file_is_refused_once_its_ledger_started(tmp_path: Path) -> None:
    disk = Disk(tmp_path / "d")
    disk.write(0, b"x" * (LAYOUT - 1))
    disk.check_fits(Header(REGION, bytes(32), ledger_started=False))  # grows when the ledger starts
    with pytest.raises(DiskDamagedError, match="truncated"):
        disk.check_fits(Header(REGION, bytes(32), ledger_started=True))
    disk.extend(LAYOUT)
    disk.check_fits(Header(REGION, bytes(32), ledger_started=True))
    disk.close()


def test_header_writes_go_stale_copy_first_with_the_next_generation(tmp_path: Path) -> None:
    disk = Disk(tmp_path / "d")
    first = disk.write_header(Header(REGION, bytes(range(32))))
    assert first.generation == 1
    resolution = disk.resolve_header()
    assert resolution.header == first
    assert resolution.repair == ()
    disk.write(5, b"\xff")  # damage copy 0
    damaged = disk.resolve_header()
    assert damaged.repair == (0,)
    repaired = disk.repair_header(damaged)
    assert repaired.generation == 2
    assert repaired.key == first.key
    again = disk.resolve_header()
    assert again.repair == ()
    assert again.header == repaired
    disk.close()


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("losetup") is None, reason="needs root and losetup")
def test_a_block_device_is_claimed_exclusively_and_too_small_is_refused(tmp_path: Path) -> None:
    """A loop device stands in for the VM's virtio disk: fixed size, no growth, O_EXCL."""
    backing = tmp_path / "blk"
    backing.write_bytes(bytes(LAYOUT))
    device = subprocess.run(
        ["losetup", "--find", "--show", str(backing)], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        disk = Disk(Path(device))
        assert disk.is_block_device
        assert disk.size() == LAYOUT
        assert disk.is_blank(REGION)
        with pytest.raises(DiskError, match="layout needs"):
            disk.check_fits(Header(2 * REGION, bytes(32)))
        disk.check_fits(Header(REGION, bytes(32)))
        with pytest.raises(DiskBusyError):
            Disk(Path(device))
        disk.close()
    finally:
        subprocess.run(["losetup", "--detach", device], check=False)


QEMU = shutil.which("qemu-system-x86_64")


def _qemu_on(path: Path) -> list[str]:
    """A QEMU that opens `path` as a raw drive and then waits, paused, on QMP over stdio."""
    assert QEMU is not None
    return [QEMU, "-M", "none", "-S", "-display", "none", "-nodefaults", "-qmp", "stdio",
            "-drive", f"file={path},format=raw,if=none,id=data"]


@pytest.mark.skipif(QEMU is None, reason="needs qemu-system-x86_64 (make test installs it)")
def test_a_vm_and_a_host_instance_keep_each_other_off_one_disk_file(tmp_path: Path) -> None:
    """QEMU locks its images with OFD byte-range locks, which flock cannot see: the disk's lock is of
    the same kind, so neither can start writing a disk the other holds."""
    path = tmp_path / "d"
    path.write_bytes(bytes(LAYOUT))
    held = Disk(path)
    refused = subprocess.run(_qemu_on(path), capture_output=True, text=True, timeout=60, check=False,
                             stdin=subprocess.DEVNULL)
    held.close()
    assert refused.returncode != 0
    assert "lock" in refused.stderr
    vm = subprocess.Popen(_qemu_on(path), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    try:
        assert vm.stdout is not None
        assert '"QMP"' in vm.stdout.readline()  # the greeting comes after the drives are open (and locked)
        with pytest.raises(DiskBusyError, match="a VM running on it"):
            Disk(path)
        with pytest.raises(DiskBusyError):
            Disk(path, read_only=True)
    finally:
        vm.kill()
        vm.wait(timeout=30)
    assert path.read_bytes() == bytes(LAYOUT)


def test_a_file_this_open_created_is_removed_when_its_lock_fails(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Left behind empty, it would read as a truncated disk at every later boot."""
    import appliance.disk

    def refuse(fd: int, *, shared: bool, optional: bool) -> None:
        raise DiskBusyError("locked")

    monkeypatch.setattr(appliance.disk, "_lock_whole", refuse)
    with pytest.raises(DiskBusyError):
        Disk(tmp_path / "new")
    assert not (tmp_path / "new").exists()
    (tmp_path / "old").write_bytes(b"kept")
    with pytest.raises(DiskBusyError):
        Disk(tmp_path / "old")
    assert (tmp_path / "old").read_bytes() == b"kept"


def test_a_view_maps_the_disk_read_only_and_closes_the_map_after(tmp_path: Path) -> None:
    disk = Disk(tmp_path / "d")
    disk.extend(LAYOUT)
    disk.write(DISK_HEADER_BYTES + 5, b"ledger")
    with disk.view(DISK_HEADER_BYTES, REGION) as region:
        assert isinstance(region, mmap.mmap)
        assert region[:] == disk.read(DISK_HEADER_BYTES, REGION)
        assert region.find(b"ledger") == 5
        with pytest.raises(TypeError):
            region[0:1] = b"x"  # read-only
    assert region.closed
    disk.close()


def test_a_view_is_closed_when_its_block_raises(tmp_path: Path) -> None:
    disk = Disk(tmp_path / "d")
    disk.extend(LAYOUT)
    with pytest.raises(RuntimeError), disk.view(DISK_HEADER_BYTES, REGION) as region:
        raise RuntimeError
    assert isinstance(region, mmap.mmap)
    assert region.closed
    disk.close()


def test_a_view_never_maps_past_a_short_files_end_but_reads_it_as_zeros(tmp_path: Path) -> None:
    """Touching a map past the file's end is SIGBUS: a file shorter than the range is read, zeros after it."""
    disk = Disk(tmp_path / "d")
    disk.write(0, b"\x01" * (DISK_HEADER_BYTES + 10))
    with disk.view(DISK_HEADER_BYTES, REGION) as region:
        assert isinstance(region, bytes)
        assert region == b"\x01" * 10 + bytes(REGION - 10)
    with disk.view(DISK_HEADER_BYTES + REGION, REGION) as region:  # wholly past the end
        assert region == bytes(REGION)
    disk.close()


@pytest.mark.parametrize(("offset", "length"), [(DISK_HEADER_BYTES, 0), (DISK_HEADER_BYTES + 1, REGION - 1)])
def test_a_view_reads_what_it_cannot_map(tmp_path: Path, offset: int, length: int) -> None:
    """A zero length, or an offset off the allocation granularity, cannot be mapped: the bytes are read."""
    disk = Disk(tmp_path / "d")
    disk.extend(LAYOUT)
    disk.write(offset, b"\x07" * length)
    with disk.view(offset, length) as region:
        assert isinstance(region, bytes)
        assert region == b"\x07" * length
    disk.close()


def test_an_empty_file_is_viewed_as_zeros(tmp_path: Path) -> None:
    disk = Disk(tmp_path / "d")
    with disk.view(0, REGION) as region:
        assert region == bytes(REGION)
    disk.close()


def test_a_range_the_device_cannot_read_raises_as_read_does_not_as_sigbus(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad sector under a map is SIGBUS when touched; the populate step finds it first (here: made to fail as
    the kernel does for an unreadable page), the map is given up and the read raises the device's error."""
    disk = Disk(tmp_path / "d")
    disk.extend(LAYOUT)
    mapped: list[mmap.mmap] = []

    def unreadable(region: mmap.mmap) -> None:
        mapped.append(region)
        raise OSError(errno.EIO, "Input/output error")

    def failing_read(offset: int, length: int) -> bytes:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(disk_module, "populate", unreadable)
    monkeypatch.setattr(disk, "read", failing_read)
    with pytest.raises(OSError, match="Input/output error"), disk.view(DISK_HEADER_BYTES, REGION):
        pass
    assert len(mapped) == 1  # the map was made, found unreadable ...
    assert mapped[0].closed  # ... and closed
    disk.close()


@pytest.mark.parametrize("failing", ["populate", "mmap"])
def test_a_range_that_cannot_be_mapped_or_populated_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            failing: str) -> None:
    """A kernel without the populate advice (EINVAL), or a device that cannot be mapped (ENODEV): the range is
    read, as it was before maps."""
    disk = Disk(tmp_path / "d")
    disk.extend(LAYOUT)
    disk.write(DISK_HEADER_BYTES, b"kept")

    def refuse(*args: object, **kwargs: object) -> mmap.mmap:
        raise OSError(errno.EINVAL if failing == "populate" else errno.ENODEV, "refused")

    monkeypatch.setattr(*((disk_module, "populate", refuse) if failing == "populate" else (mmap, "mmap", refuse)))
    with disk.view(DISK_HEADER_BYTES, REGION) as region:
        assert isinstance(region, bytes)
        assert region[:4] == b"kept"
    disk.close()


def test_an_error_inside_the_block_is_not_hidden_by_a_view_still_held(tmp_path: Path) -> None:
    """A memoryview of the map alive when the block raises makes close fail with BufferError: the block's own
    error is the one that reaches the caller."""
    disk = Disk(tmp_path / "d")
    disk.extend(LAYOUT)
    held: list[memoryview] = []

    def hold_a_view_and_fail() -> None:
        with disk.view(DISK_HEADER_BYTES, REGION) as region:
            held.append(memoryview(region))
            raise RuntimeError("the real error")

    with pytest.raises(RuntimeError, match="the real error"):
        hold_a_view_and_fail()
    held.clear()
    disk.close()


def test_the_populate_advice_works_on_this_kernel(tmp_path: Path) -> None:
    """The map path is the one the VM takes: on a kernel with the advice, a readable range is mapped."""
    disk = Disk(tmp_path / "d")
    disk.extend(LAYOUT)
    with disk.view(DISK_HEADER_BYTES, REGION) as region:
        assert isinstance(region, mmap.mmap)
    disk.close()
