"""The initramfs archive format: cpio "newc" (SVR4 without CRC), which the kernel unpacks into its rootfs.

Why our own writer: the archive must be a pure function of its contents. Entries are sorted by path,
every mtime is the same fixed value, owners are uid/gid 0, inode numbers are assigned in order, and
nothing from the build host (its clock, its users, its inode numbers) gets in. `parse` is the paired
reader; tests round-trip through it and the build checks its own output with it.

Record layout (all numbers 8 ASCII hex digits): magic "070701", ino, mode, uid, gid, nlink, mtime,
filesize, devmajor, devminor, rdevmajor, rdevminor, namesize (with the NUL), check; then the name and
its NUL padded to 4 bytes, then the data padded to 4 bytes. The archive ends with "TRAILER!!!".
"""

from __future__ import annotations

import stat
from collections.abc import Iterable
from dataclasses import dataclass

MAGIC = b"070701"
TRAILER = "TRAILER!!!"
HEADER_BYTES = 110
FIXED_MTIME = 0
# A name longer than this is refused rather than read: no path in the image comes close.
MAX_NAME_BYTES = 4096
MAX_FILE_BYTES = 1 << 30


class CpioError(Exception):
    """An entry cannot be written, or an archive is malformed."""


@dataclass(frozen=True)
class Entry:
    """One archive member. `path` is relative ("usr/bin/python3.11"), without a leading slash."""

    path: str
    mode: int  # full st_mode: file type bits and permissions
    data: bytes = b""  # file contents, or the target of a symlink
    rdev: tuple[int, int] = (0, 0)  # (major, minor) for device nodes


def directory(path: str, perm: int = 0o755) -> Entry:
    return Entry(path, stat.S_IFDIR | perm)


def regular(path: str, data: bytes, perm: int = 0o644) -> Entry:
    return Entry(path, stat.S_IFREG | perm, data)


def symlink(path: str, target: str) -> Entry:
    return Entry(path, stat.S_IFLNK | 0o777, target.encode())


def char_device(path: str, major: int, minor: int, perm: int = 0o600) -> Entry:
    return Entry(path, stat.S_IFCHR | perm, b"", (major, minor))


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)


def _check_entry(entry: Entry) -> None:
    if not entry.path or entry.path.startswith("/") or entry.path == TRAILER:
        raise CpioError(f"bad path {entry.path!r}")
    parts = entry.path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise CpioError(f"path {entry.path!r} is not normalised")
    kind = stat.S_IFMT(entry.mode)
    if kind not in (stat.S_IFDIR, stat.S_IFREG, stat.S_IFLNK, stat.S_IFCHR):
        raise CpioError(f"{entry.path}: unsupported file type {kind:o}")
    if kind in (stat.S_IFDIR, stat.S_IFCHR) and entry.data:
        raise CpioError(f"{entry.path}: only files and symlinks carry data")
    if kind == stat.S_IFLNK and not entry.data:
        raise CpioError(f"{entry.path}: empty symlink target")
    if len(entry.data) > MAX_FILE_BYTES:
        raise CpioError(f"{entry.path}: larger than {MAX_FILE_BYTES} bytes")


def serialize(entries: Iterable[Entry]) -> bytes:
    """The archive for `entries`, sorted by path so that parents precede children and order is canonical."""
    ordered = sorted(entries, key=lambda e: e.path.encode())
    seen: set[str] = set()
    out = bytearray()
    for ino, entry in enumerate(ordered, start=1):
        _check_entry(entry)
        if entry.path in seen:
            raise CpioError(f"duplicate path {entry.path!r}")
        parent = entry.path.rpartition("/")[0]
        if parent and parent not in seen:
            raise CpioError(f"{entry.path}: parent directory {parent!r} is not in the archive")
        seen.add(entry.path)
        nlink = 2 if stat.S_ISDIR(entry.mode) else 1
        out += _record(ino, entry.mode, nlink, entry.rdev, entry.path, entry.data)
    out += _record(0, 0, 1, (0, 0), TRAILER, b"")
    return bytes(out)


def _record(ino: int, mode: int, nlink: int, rdev: tuple[int, int], name: str, data: bytes) -> bytes:  # noqa: PLR0917
    encoded = name.encode() + b"\0"
    if len(encoded) > MAX_NAME_BYTES:
        raise CpioError(f"name too long: {name[:60]}...")
    fields = (ino, mode, 0, 0, nlink, FIXED_MTIME, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0)
    header = MAGIC + b"".join(b"%08x" % value for value in fields)
    return header + encoded + _pad(HEADER_BYTES + len(encoded)) + data + _pad(len(data))


def parse(archive: bytes) -> list[Entry]:
    """The entries of a newc archive; CpioError for anything malformed, trailing bytes included
    (only the NUL padding the kernel tolerates after the trailer is accepted)."""
    view = memoryview(archive)
    entries: list[Entry] = []
    offset = 0
    while True:
        if len(view) - offset < HEADER_BYTES:
            raise CpioError(f"truncated header at {offset}")
        header = bytes(view[offset:offset + HEADER_BYTES])
        if header[:6] != MAGIC:
            raise CpioError(f"bad magic at {offset}")
        try:
            fields = [int(header[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        except ValueError as exc:
            raise CpioError(f"non-hex header field at {offset}") from exc
        mode, filesize, rmajor, rminor, namesize = fields[1], fields[6], fields[9], fields[10], fields[11]
        if not 1 <= namesize <= MAX_NAME_BYTES or filesize > MAX_FILE_BYTES:
            raise CpioError(f"field out of range at {offset}")
        name_start = offset + HEADER_BYTES
        data_start = name_start + namesize + (-(HEADER_BYTES + namesize) % 4)
        data_end = data_start + filesize
        if data_end > len(view):
            raise CpioError(f"entry at {offset} runs past the end")
        raw_name = bytes(view[name_start:name_start + namesize])
        if raw_name[-1:] != b"\0" or b"\0" in raw_name[:-1]:
            raise CpioError(f"name at {offset} is not NUL-terminated")
        try:
            name = raw_name[:-1].decode()
        except UnicodeDecodeError as exc:
            raise CpioError(f"name at {offset} is not UTF-8") from exc
        offset = data_end + (-filesize % 4)
        if name == TRAILER:
            break
        entries.append(Entry(name, mode, bytes(view[data_start:data_end]), (rmajor, rminor)))
    if any(view[offset:]):
        raise CpioError("trailing bytes after the trailer")
    return entries
