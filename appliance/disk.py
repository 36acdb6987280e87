"""The data disk: a block device in the image, a plain file on the host. One layout for both.

    [0, 4096)                  header block: two copies of the header (appliance.disk_header)
    [4096, 4096 + R)           ledger region 0
    [4096 + R, 4096 + 2R)      ledger region 1

Why a fixed layout instead of files: the image has no filesystem on its data disk (no filesystem code to
trust, nothing to mount), and the same positional reads/writes work on a regular file for host runs.

Why a lock before the first read: a second instance that recovered the ledger while the first was writing
it would cut records the first had just appended. A file gets an exclusive open-file-description lock (the
kind QEMU takes on its images, so a VM running on the file keeps a host instance out and the other way
round), a block device an exclusive open (O_EXCL, which the kernel refuses while anyone else holds the
device the same way).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os
import stat
import struct
from collections.abc import Iterator
from pathlib import Path

from appliance import zeros
from appliance.config import DISK_HEADER_BYTES
from appliance.disk_header import (
    SLOTS,
    DiskDamagedError,
    DiskError,
    Header,
    Resolution,
    encode_copy,
    layout_bytes,
    read_copies,
    resolve,
)
from appliance.zeros import ReadBuffer

__all__ = ["Disk", "DiskBusyError", "DiskDamagedError", "DiskError", "Header"]

BLANK_CHECK_CHUNK = 1024 * 1024


class DiskBusyError(DiskError):
    """Another instance holds the disk."""


MADV_POPULATE_READ = getattr(mmap, "MADV_POPULATE_READ", 22)  # linux/mman.h; `mmap` names it from Python 3.13


def populate(mapped: mmap.mmap) -> None:
    """Fault every page of `mapped` in from the device, raising OSError (EIO, EFAULT, ...) for a page that cannot
    be read instead of leaving it to SIGBUS when touched (see Disk.view)."""
    mapped.madvise(MADV_POPULATE_READ)


class Disk:
    """Positional I/O on the disk or file, under an exclusive (or, read-only, shared) lock.

    `sync` is the only durability point. `created` says whether this open made the file: the one case,
    besides an all-zero device or file of the full layout, that proves the disk blank."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self.created = False
        if read_only:
            flags = os.O_RDONLY
        else:
            flags = os.O_RDWR
            try:
                self._fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600)
                self.created = True
            except FileExistsError:
                pass
        if not self.created:
            mode = os.stat(path).st_mode
            if stat.S_ISBLK(mode):
                flags |= os.O_EXCL  # Linux: an exclusive claim on the device (EBUSY while held elsewhere)
            try:
                self._fd = os.open(path, flags)
            except OSError as exc:
                if exc.errno == errno.EBUSY:
                    raise DiskBusyError(f"{path} is in use by another instance (exclusive open refused)") from exc
                raise
        self.is_block_device = stat.S_ISBLK(os.fstat(self._fd).st_mode)
        try:
            _lock_whole(self._fd, shared=read_only, optional=self.is_block_device)
        except (OSError, DiskBusyError) as exc:
            os.close(self._fd)
            if self.created:  # an empty file left behind would read as a truncated disk at the next boot
                os.unlink(path)
            if isinstance(exc, DiskBusyError):
                raise DiskBusyError(f"{path} is locked by another instance (the appliance, or a VM running on "
                                    "it); stop it first: a second writer would corrupt the ledger") from exc
            raise

    def size(self) -> int:
        """The device's fixed size, or the file's current length."""
        return os.lseek(self._fd, 0, os.SEEK_END)

    def read(self, offset: int, length: int) -> bytes:
        data = os.pread(self._fd, length, offset)
        return data + b"\x00" * (length - len(data))  # a file's unwritten tail reads as zeros, like a new disk

    @contextlib.contextmanager
    def view(self, offset: int, length: int) -> Iterator[ReadBuffer]:
        """The bytes of [offset, offset + length), read-only, for the duration of the `with`: a map of the disk
        where one can be made, else what `read` gives.

        Why a map: recovery scans both ledger regions (4 MiB each by default) at every boot, and read into
        bytes they were the boot's memory peak (8 MB of anonymous memory at once), enough at `-m 64` for the
        kernel to deadlock on memory. A map's pages are the page cache's: the kernel drops them under
        pressure and reads them again when touched, so nothing region-sized stays in memory. The map is
        closed when the `with` ends: the caller must keep no view of it (memoryview) and nothing that
        outlives the block may refer to it.

        Where a map cannot serve, the bytes are read: a zero length, an offset off `mmap`'s allocation
        granularity, or a disk shorter than the range. A map must never reach past a file's end (touching
        it there is SIGBUS); `read` gives a short file's missing part as zeros, like a new disk. (Nothing
        else truncates the file meanwhile: the disk's lock keeps every other instance, and QEMU, out.)

        A map is also where a read error would become a signal: a page the device cannot read is SIGBUS when
        touched, which no handler survives, where `pread` raises OSError, which the boot logs as fatal. So the
        whole range is read into the page cache first, by the kernel, with MADV_POPULATE_READ, which reports
        such an error as OSError instead (Linux 5.14+): then the map is given up and the range read, so the
        error is raised as `read` raises it. A page dropped later under memory pressure is read again when
        touched; only an error that first appears then would still be SIGBUS."""
        mapped = self._map(offset, length)
        if mapped is None:
            yield self.read(offset, length)
            return
        try:
            yield mapped
        except BaseException:
            # A view of the map still held by the traceback's frames would make close fail over the error
            # that matters; the map then goes when they do.
            with contextlib.suppress(BufferError):
                mapped.close()
            raise
        mapped.close()

    def _map(self, offset: int, length: int) -> mmap.mmap | None:
        """A read-only map of [offset, offset + length), or None where `view` must read instead."""
        if length <= 0 or offset < 0 or offset % mmap.ALLOCATIONGRANULARITY:
            return None
        if self.size() < offset + length:
            return None
        try:
            mapped = mmap.mmap(self._fd, length, access=mmap.ACCESS_READ, offset=offset)
        except OSError:  # a device or kernel that cannot map: reading works everywhere
            return None
        try:
            populate(mapped)
        except OSError:  # unreadable somewhere, or a kernel without the advice: `read` says which
            mapped.close()
            return None
        return mapped

    def write(self, offset: int, data: bytes) -> None:
        if self.read_only:
            raise DiskError("disk opened read-only")
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, offset)
            view, offset = view[written:], offset + written

    def sync(self) -> None:
        os.fsync(self._fd)

    def extend(self, length: int) -> None:
        """Grow a file to `length` (sparse zeros), so that a shorter file later means truncation."""
        if not self.is_block_device and self.size() < length:
            os.ftruncate(self._fd, length)
            self.sync()

    def close(self) -> None:
        os.close(self._fd)  # closing the descriptor releases the lock

    # -- the header ---------------------------------------------------------------------------------------

    def read_header_block(self) -> bytes:
        return self.read(0, DISK_HEADER_BYTES)

    def resolve_header(self) -> Resolution:
        return resolve(read_copies(self.read_header_block()))

    def is_blank(self, region_bytes: int) -> bool:
        """Provably blank: made by this open, or all zeros over the whole layout (a new device, or a zeroed
        image of at least the layout's size). A shorter file that exists may be a truncated disk."""
        if self.created:
            return True
        end = layout_bytes(region_bytes)
        size = self.size()
        if size < end and not self.is_block_device:
            return False
        return self.first_nonzero(0, min(end, size)) is None

    def first_nonzero(self, start: int, end: int) -> int | None:
        offset = start
        while offset < end:
            chunk = self.read(offset, min(BLANK_CHECK_CHUNK, end - offset))
            found = zeros.first_nonzero(chunk)
            if found is not None:
                return offset + found
            offset += len(chunk)
        return None

    def check_fits(self, header: Header) -> None:
        """The disk must hold the whole layout. A file is extended when its ledger starts, so once the
        header says the ledger started, a shorter file was truncated."""
        needed = header.layout_bytes()
        size = self.size()
        if size >= needed:
            return
        if self.is_block_device:
            raise DiskError(f"disk has {size} bytes; the layout needs {needed}")
        if header.ledger_started:
            raise DiskDamagedError(
                f"{self.path} is {size} bytes but its header says the layout is {needed}: the file was truncated "
                "(or only partly copied). Nothing was written. Restore the whole file; if the missing part is lost "
                "for good, keep a copy and run `python -m appliance disk repair` to record the loss and boot again")

    def write_header(self, header: Header) -> Header:
        """Write `header` with the next generation into both slots, the stale (or damaged) one first, each
        followed by a sync: a crash leaves at least one complete copy. The generation and the order come
        from what the slots hold now, read here rather than trusted from a caller. Returns what was written."""
        current = self.resolve_header()
        generation = max((c.header.generation for c in current.copies if c.header is not None), default=0)
        written = Header(header.region_bytes, header.key, header.ledger_started, generation + 1, header.format_epoch)
        for slot in _stale_first(current):
            self.write(SLOTS[slot], encode_copy(written))
            self.sync()
        return written

    def repair_header(self, resolution: Resolution) -> Header:
        """Rewrite the slots `resolution.repair` names from the chosen header (same key, next generation)."""
        assert resolution.header is not None
        return self.write_header(resolution.header)


_FLOCK = struct.Struct("hhqqi4x")  # struct flock on Linux x86-64/aarch64: type, whence, start, len, pid
assert _FLOCK.size == 32


def _lock_whole(fd: int, *, shared: bool, optional: bool) -> None:
    """An open-file-description lock over the whole file, taken without waiting.

    Why this kind of lock: QEMU locks its disk images with OFD byte-range locks, which `flock` does not
    see, so only a lock of the same kind keeps a VM and a host instance from writing one disk together (in
    both directions: with this lock held, QEMU refuses to start on the image). OFD locks, unlike classic
    POSIX record locks, belong to this descriptor, so another open and close of the file in this process
    cannot drop them. `optional`: a block device is already claimed by its exclusive open, and the image's
    kernel is built without file locking (its stubs answer EACCES or EINVAL), so there the lock adds what it
    can and nothing more."""
    try:
        if shared:
            # A reader must not read a disk being written either: QEMU holds only shared locks on its
            # images, which a read lock does not conflict with, so ask whether a write lock would (any
            # lock held elsewhere, another reader's included, answers yes: one reader at a time).
            probe = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
            if _FLOCK.unpack(probe)[0] != fcntl.F_UNLCK:
                raise DiskBusyError("locked")
        kind = fcntl.F_RDLCK if shared else fcntl.F_WRLCK
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _FLOCK.pack(kind, os.SEEK_SET, 0, 0, 0))
    except OSError as exc:
        if exc.errno == errno.EAGAIN:  # Linux's answer to a conflicting OFD lock
            raise DiskBusyError("locked") from exc
        if optional and exc.errno in (errno.EACCES, errno.ENOSYS, errno.EINVAL, errno.ENOLCK):
            return  # a kernel without file locking answers EACCES or EINVAL to every request
        if exc.errno == errno.EACCES:
            raise DiskBusyError("locked") from exc
        raise


def _stale_first(current: Resolution) -> list[int]:
    """Slots in write order: those needing repair first, then the lower generation."""
    generations = [c.header.generation if c.header is not None else -1 for c in current.copies]
    return sorted((0, 1), key=lambda i: (i not in current.repair, generations[i]))
