"""Where the zeros of a buffer end: the first non-zero byte, and the length without the trailing zeros.

Why not `bytes.lstrip`, `bytes.rstrip` or a regex: each tests one byte at a time, which under TCG (every guest
instruction emulated) ran at about 20 MB/s: a new data disk's blank check and the ledger's two region scans
cost 0.8 s of the VM's boot, on data that is mostly zeros. Here whole blocks are compared with a block of zeros
(a memcmp: many bytes per instruction), and only the one block where the zeros end is stripped byte by byte.

A buffer is `bytes` or a read-only `mmap` of the disk (`ReadBuffer`): recovery maps the ledger's regions
rather than reading them into memory (appliance.disk). `bytes` compares a block in place (`startswith`,
`endswith`); an mmap has neither, so its block is sliced out (a memcpy) and compared: two C passes, still
many bytes per instruction, and no more than one block in memory at a time.
"""

from __future__ import annotations

import mmap
from typing import TypeAlias

ReadBuffer: TypeAlias = bytes | mmap.mmap
"""What the ledger's readers take: bytes, or a read-only map of the disk. Both have `find`, `len`, slices that
are bytes, and the buffer protocol (re, struct, zlib); only bytes has `startswith` and the strips."""

BLOCK = 64 * 1024
_ZERO_BLOCK = bytes(BLOCK)


def first_nonzero(buf: ReadBuffer, start: int = 0, end: int | None = None) -> int | None:
    """The index of the first non-zero byte in buf[start:end], or None if there is none."""
    stop = len(buf) if end is None else min(end, len(buf))
    pos = max(start, 0)
    while pos < stop:
        size = min(BLOCK, stop - pos)
        if not _zeros_at(buf, pos, size):
            block = buf[pos : pos + size]
            return pos + size - len(block.lstrip(b"\x00"))
        pos += size
    return None


def trimmed_length(buf: ReadBuffer) -> int:
    """len(buf.rstrip(b"\\x00")), a block at a time from the end."""
    end = len(buf)
    while end > 0:
        size = min(BLOCK, end)
        if not _zeros_at(buf, end - size, size):
            return end - size + len(buf[end - size : end].rstrip(b"\x00"))
        end -= size
    return 0


def _zeros_at(buf: ReadBuffer, pos: int, size: int) -> bool:
    """buf[pos:pos+size] is all zeros (size at most BLOCK, within buf): in place for bytes, one block's copy
    for an mmap."""
    zero = _ZERO_BLOCK if size == BLOCK else bytes(size)
    if isinstance(buf, bytes):
        return buf.startswith(zero, pos)
    return buf[pos : pos + size] == zero
