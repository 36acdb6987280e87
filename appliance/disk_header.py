"""The data disk's header: two copies with a generation counter, and the rule that picks one.

Why two copies: the header holds the wallet key, the one thing an operator cannot rebuild. A single bit
that goes bad in a lone copy would leave a choice between refusing to boot for ever and replacing the key.
With two copies (as LMDB keeps two meta pages and file systems keep backup superblocks) one damaged copy is
repaired from the other, and only the loss of both stops the boot. Each copy sits in its own 512-byte
sector of the header block (slots at 0 and 2048), and they are written one at a time with a sync between,
so a torn write can damage at most the copy being written.

Copy (format 2):  magic "PINATA02" | generation u64 | region bytes u32 | flags u8 | format epoch u32 |
                  key 32 bytes | crc32 u32, then zeros to the end of the 2048-byte slot.
Flags: bit 0 key present, bit 1 ledger started (the ledger's first checkpoint is on the disk, so blank
regions can no longer be mistaken for a new disk), other bits must be zero.
Format epoch: the first ledger epoch written by format 2 (older regions were written without terminators).

Format 1 ("PINATA01", one copy at offset 0) is read so that a disk from an earlier build is upgraded in
place: the region layout is the same, only the second copy and the generation are added.

This module is pure: bytes in, decisions out. `appliance.disk` does the I/O.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import Enum

from appliance.config import DISK_HEADER_BYTES

MAGIC = b"PINATA02"
LEGACY_MAGIC = b"PINATA01"
SLOT_BYTES = 2048
SLOTS = (0, SLOT_BYTES)
"""Byte offsets of the two copies inside the header block."""
_COPY = struct.Struct(">8sQIBI32s")
_LEGACY = struct.Struct(">8sIB32s")
_CRC = struct.Struct(">I")
COPY_BYTES = _COPY.size + _CRC.size
FLAG_KEY = 0x01
FLAG_LEDGER_STARTED = 0x02
_KNOWN_FLAGS = FLAG_KEY | FLAG_LEDGER_STARTED
MIN_REGION_BYTES = 4096
MAX_REGION_BYTES = 64 * 1024 * 1024
"""A format limit: recovery reads a whole region into memory, so the header must not be able to ask for more."""
MAX_GENERATION = 1 << 62
"""Far beyond any number of header writes; a copy claiming more is forged or rotten, and could not be followed."""

assert DISK_HEADER_BYTES == 2 * SLOT_BYTES


class DiskError(Exception):
    """The disk is unusable: too small, unreadable, held by another instance, or damaged."""


class DiskDamagedError(DiskError):
    """What is on the disk cannot be trusted to boot from; nothing was written. The message says what is
    wrong and what the operator can do."""


@dataclass(frozen=True)
class Header:
    """The content of one header copy (layout in the module docstring): the region size, the wallet key, whether
    the ledger has started, the generation that picks the newer copy, and the format epoch. Its `__repr__`
    leaves the key out, so a header can be logged."""

    region_bytes: int
    key: bytes | None  # the 32-byte wallet secret, or None before provisioning
    ledger_started: bool = False
    generation: int = 0
    format_epoch: int = 0

    def __repr__(self) -> str:  # never print the key
        return (f"Header(region_bytes={self.region_bytes}, key={'present' if self.key else 'absent'}, "
                f"ledger_started={self.ledger_started}, generation={self.generation}, "
                f"format_epoch={self.format_epoch})")

    def layout_bytes(self) -> int:
        return layout_bytes(self.region_bytes)


def layout_bytes(region_bytes: int) -> int:
    """Header block plus both ledger regions: what the disk must hold."""
    return DISK_HEADER_BYTES + 2 * region_bytes


class CopyState(Enum):
    VALID = "valid"
    LEGACY = "format 1"
    BLANK = "blank"
    DAMAGED = "damaged"


@dataclass(frozen=True)
class Copy:
    """What one slot holds. `reason` says why a damaged copy was rejected."""

    state: CopyState
    header: Header | None = None
    reason: str = ""


def encode_copy(header: Header) -> bytes:
    """One slot's bytes (SLOT_BYTES long)."""
    key = header.key if header.key is not None else bytes(32)
    if len(key) != 32:
        raise DiskError("wallet key must be 32 bytes")
    if not _region_ok(header.region_bytes):
        raise DiskError(f"region size must be a multiple of 4096 from {MIN_REGION_BYTES} to {MAX_REGION_BYTES}")
    flags = (FLAG_KEY if header.key is not None else 0) | (FLAG_LEDGER_STARTED if header.ledger_started else 0)
    body = _COPY.pack(MAGIC, header.generation, header.region_bytes, flags, header.format_epoch, key)
    return (body + _CRC.pack(zlib.crc32(body))).ljust(SLOT_BYTES, b"\x00")


def _region_ok(region_bytes: int) -> bool:
    return MIN_REGION_BYTES <= region_bytes <= MAX_REGION_BYTES and region_bytes % 4096 == 0


def decode_copy(slot: bytes, *, first_slot: bool) -> Copy:
    """Integrity (length, CRC, zero padding) before parse before sanity; never raises for bad bytes."""
    if len(slot) != SLOT_BYTES:
        return Copy(CopyState.DAMAGED, reason=f"slot is {len(slot)} bytes, not {SLOT_BYTES}")
    if not any(slot):
        return Copy(CopyState.BLANK)
    if first_slot and slot[:8] == LEGACY_MAGIC:
        return _decode_legacy(slot)
    if any(slot[COPY_BYTES:]):
        return Copy(CopyState.DAMAGED, reason="bytes after the header copy")
    body, (crc,) = slot[: _COPY.size], _CRC.unpack_from(slot, _COPY.size)
    if zlib.crc32(body) != crc:
        return Copy(CopyState.DAMAGED, reason="checksum mismatch")
    magic, generation, region_bytes, flags, format_epoch, key = _COPY.unpack(body)
    if magic != MAGIC:
        return Copy(CopyState.DAMAGED, reason="not a Piñata header")
    if flags & ~_KNOWN_FLAGS or not _region_ok(region_bytes) or generation >= MAX_GENERATION:
        return Copy(CopyState.DAMAGED, reason="fields out of range")
    if not flags & FLAG_KEY and any(key):
        return Copy(CopyState.DAMAGED, reason="key bytes without the key flag")
    header = Header(region_bytes, key if flags & FLAG_KEY else None, bool(flags & FLAG_LEDGER_STARTED),
                    generation, format_epoch)
    return Copy(CopyState.VALID, header)


def _decode_legacy(slot: bytes) -> Copy:
    size = _LEGACY.size + _CRC.size
    if any(slot[size:]):
        return Copy(CopyState.DAMAGED, reason="format 1 header followed by other bytes")
    body, (crc,) = slot[: _LEGACY.size], _CRC.unpack_from(slot, _LEGACY.size)
    if zlib.crc32(body) != crc:
        return Copy(CopyState.DAMAGED, reason="format 1 header checksum mismatch")
    _, region_bytes, present, key = _LEGACY.unpack(body)
    if present not in (0, 1) or not _region_ok(region_bytes) or (not present and any(key)):
        return Copy(CopyState.DAMAGED, reason="format 1 header fields out of range")
    return Copy(CopyState.LEGACY, Header(region_bytes, key if present else None))


def read_copies(block: bytes) -> tuple[Copy, Copy]:
    if len(block) != DISK_HEADER_BYTES:
        raise DiskError(f"header block of {len(block)} bytes")
    return (decode_copy(block[: SLOT_BYTES], first_slot=True), decode_copy(block[SLOT_BYTES:], first_slot=False))


@dataclass(frozen=True)
class Resolution:
    """The header to boot from, or None when both slots are blank; `repair` lists the slots whose copy must
    be rewritten (damaged, blank beside a valid one, older generation, or format 1)."""

    header: Header | None
    copies: tuple[Copy, Copy]
    repair: tuple[int, ...]
    legacy: bool = False


def resolve(copies: tuple[Copy, Copy]) -> Resolution:
    """Pick the copy to trust. Raises DiskDamagedError when no copy can be trusted, or when two readable
    copies disagree about the key or the layout (choosing one would be guessing which key guards money)."""
    states = tuple(c.state for c in copies)
    if states == (CopyState.BLANK, CopyState.BLANK):
        return Resolution(None, copies, ())
    valid = [i for i, c in enumerate(copies) if c.state is CopyState.VALID]
    legacy = copies[0].state is CopyState.LEGACY
    readable = [c.header for c in copies if c.header is not None]
    keys = {h.key for h in readable if h.key is not None}
    if len(keys) > 1:
        raise DiskDamagedError(
            "the two header copies hold different wallet keys; the appliance will not guess which one guards the "
            "funds. Nothing was written. Keep this disk as it is, run `python -m appliance disk check` on a copy, "
            "and restore the header from your offline backup of the key (see the README)")
    if len({h.region_bytes for h in readable}) > 1:
        raise DiskDamagedError("the two header copies disagree on the ledger layout; nothing was written. "
                               "Run `python -m appliance disk check` on a copy of the disk")
    if valid:
        # A key is never taken away: no write removes one, so a keyless copy beside a keyed one is stale or
        # forged whatever its generation, and the keyed copy is the one to keep.
        keyed = [i for i in valid if (found := copies[i].header) is not None and found.key is not None]
        generations = [c.header.generation if c.header is not None else -1 for c in copies]
        chosen = copies[max(keyed or valid, key=lambda i: generations[i])].header
        assert chosen is not None
        repair = tuple(i for i in (0, 1) if copies[i].state is not CopyState.VALID or copies[i].header != chosen)
        return Resolution(chosen, copies, repair)
    if legacy and copies[1].state is CopyState.BLANK:
        header = copies[0].header
        assert header is not None
        return Resolution(header, copies, (0, 1), legacy=True)
    reasons = "; ".join(f"copy {i}: {c.state.value}{' (' + c.reason + ')' if c.reason else ''}"
                        for i, c in enumerate(copies))
    what = "a format 1 header beside a damaged second copy" if legacy else "no readable header copy"
    raise DiskDamagedError(
        f"{what} ({reasons}). The disk is not blank, so the appliance will not make a new key "
        "over it; nothing was written. Keep the disk as it is (it may guard funds), run `python -m appliance disk "
        "check` on a copy, and if the key is lost, restore it from your offline backup with `provision` on a "
        "new disk (see the README)")
