"""The data disk: a block device in the image, a plain file on the host. One layout for both.

    [0, 4096)                  header: magic, ledger region size, the wallet key, CRC-32
    [4096, 4096 + R)           ledger region A
    [4096 + R, 4096 + 2R)      ledger region B

Why a fixed layout instead of files: the image has no filesystem on its data disk (no filesystem code to
trust, nothing to mount), and the same positional reads/writes work on a regular file for host runs.
"""

from __future__ import annotations

import os
import stat
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from appliance.config import DISK_HEADER_BYTES

MAGIC = b"PINATA01"
_HEADER = struct.Struct(">8sIB32s")  # magic, region bytes, key present, key
_CRC = struct.Struct(">I")


class DiskError(Exception):
    """The disk is unusable: too small, unreadable, or its header is corrupt."""


@dataclass(frozen=True)
class Header:
    region_bytes: int
    key: bytes | None  # the 32-byte wallet secret, or None before provisioning


def encode_header(header: Header) -> bytes:
    key = header.key if header.key is not None else b"\x00" * 32
    if len(key) != 32:
        raise DiskError("wallet key must be 32 bytes")
    body = _HEADER.pack(MAGIC, header.region_bytes, 1 if header.key is not None else 0, key)
    return body + _CRC.pack(zlib.crc32(body))


def decode_header(block: bytes) -> Header | None:
    """None for a blank (all-zero) disk; DiskError for anything else that is not a valid header."""
    size = _HEADER.size + _CRC.size
    if len(block) < size:
        raise DiskError("header block truncated")
    if not any(block[:size]):
        return None
    if any(block[size:DISK_HEADER_BYTES]):
        raise DiskError("header block has bytes after the header")
    body, (crc,) = block[: _HEADER.size], _CRC.unpack_from(block, _HEADER.size)
    if zlib.crc32(body) != crc:
        raise DiskError("header checksum mismatch")
    magic, region_bytes, present, key = _HEADER.unpack(body)
    if magic != MAGIC:
        raise DiskError("not a Piñata disk")
    if present not in (0, 1) or region_bytes < 4096 or region_bytes % 4096:
        raise DiskError("header fields out of range")
    return Header(region_bytes, key if present else None)


class Disk:
    """Positional I/O on the disk or file; `sync` is the only durability point."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self.is_block_device = stat.S_ISBLK(os.fstat(self._fd).st_mode)

    def size(self) -> int | None:
        """A block device's fixed size; None for a file, which grows as written."""
        return os.lseek(self._fd, 0, os.SEEK_END) if self.is_block_device else None

    def read(self, offset: int, length: int) -> bytes:
        data = os.pread(self._fd, length, offset)
        return data + b"\x00" * (length - len(data))  # a file's unwritten tail reads as zeros, like a new disk

    def write(self, offset: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, offset)
            view, offset = view[written:], offset + written

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        os.close(self._fd)

    def read_header(self) -> Header | None:
        return decode_header(self.read(0, DISK_HEADER_BYTES))

    def check_fits(self, region_bytes: int) -> None:
        """A block device must hold the header and both ledger regions (a file grows as needed)."""
        needed = DISK_HEADER_BYTES + 2 * region_bytes
        size = self.size()
        if size is not None and size < needed:
            raise DiskError(f"disk has {size} bytes; the layout needs {needed}")

    def write_header(self, header: Header) -> None:
        self.check_fits(header.region_bytes)
        self.write(0, encode_header(header).ljust(DISK_HEADER_BYTES, b"\x00"))
        self.sync()
