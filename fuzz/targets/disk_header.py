"""The data disk's header decoder (appliance/disk_header.py): two 2048-byte copies read from the header block
(`read_copies`) and the rule that picks the one to boot from (`resolve`).

Chunks: SLOT0 and SLOT1, the bytes at the start of each slot (the rest is zeros); FIX, whose first byte says
which copies get a correct CRC (bit 0, bit 1; bit 2 for slot 0 as a format 1 header), so that the field checks
are reached. What must hold: reading never raises; only DiskDamagedError leaves `resolve`; a valid copy encodes
back to its slot byte for byte; the chosen header is one a readable copy holds, never drops a key that a
readable copy holds, and every slot not listed for repair already holds exactly it.
"""

from __future__ import annotations

import zlib

from appliance.config import DISK_HEADER_BYTES
from appliance.disk_header import (
    COPY_BYTES,
    MAGIC,
    SLOT_BYTES,
    CopyState,
    DiskDamagedError,
    Header,
    encode_copy,
    read_copies,
    resolve,
)
from fuzz import chunks
from fuzz.errors import require

SLOT0, SLOT1, FIX = range(3)
LEGACY_BYTES = 8 + 4 + 1 + 32
"""A format 1 copy before its CRC: magic, region bytes, key flag, key."""


def _fixed(slot: bytes, size: int) -> bytes:
    body = slot[:size]
    return body + zlib.crc32(body).to_bytes(4, "big") + slot[size + 4 :]


def fuzz_one(data: bytes) -> None:
    slots = [b"", b""]
    fix = 0
    for kind, body in chunks.split(data, 3):
        if kind == FIX:
            fix = body[0] if body else 0
        else:
            slots[kind] = body[:SLOT_BYTES]
    for index in (0, 1):
        if fix >> index & 1 and len(slots[index]) >= COPY_BYTES:
            size = LEGACY_BYTES if index == 0 and fix & 4 else COPY_BYTES - 4
            slots[index] = _fixed(slots[index], size)
    block = b"".join(slot.ljust(SLOT_BYTES, b"\x00") for slot in slots)
    require(len(block) == DISK_HEADER_BYTES, "the harness built a wrong header block")
    copies = read_copies(block)
    for index, copy in enumerate(copies):
        if copy.state is CopyState.VALID and copy.header is not None:
            require(encode_copy(copy.header) == block[index * SLOT_BYTES : (index + 1) * SLOT_BYTES],
                    "a valid copy does not encode back to its slot")
    try:
        resolution = resolve(copies)
    except DiskDamagedError:
        return
    headers = [copy.header for copy in copies if copy.header is not None]
    chosen = resolution.header
    if chosen is None:
        require(not headers and not resolution.repair, "blank disk with a header or repairs")
        return
    require(chosen in headers, "the chosen header is in neither copy")
    require(chosen.key is not None or all(h.key is None for h in headers), "the chosen header dropped a key")
    for index in {0, 1} - set(resolution.repair):
        require(copies[index].state is CopyState.VALID and copies[index].header == chosen,
                "a slot left unrepaired does not hold the chosen header")


def seeds() -> dict[str, bytes]:
    keyed = Header(4096 * 16, bytes(range(32)), ledger_started=True, generation=7, format_epoch=2)
    older = Header(4096 * 16, bytes(range(32)), ledger_started=True, generation=6, format_epoch=2)
    keyless = Header(4096 * 16, None, generation=9)

    def block(first: Header | None, second: Header | None, fix: int = 0) -> bytes:
        parts = [(FIX, bytes((fix,)))]
        for kind, header in ((SLOT0, first), (SLOT1, second)):
            if header is not None:
                parts.append((kind, encode_copy(header)[:COPY_BYTES]))
        return chunks.join(parts)

    legacy = b"PINATA01" + (4096 * 16).to_bytes(4, "big") + b"\x01" + bytes(range(32))
    return {
        "both": block(keyed, keyed),
        "one-older": block(older, keyed),
        "one-blank": block(keyed, None),
        "keyless-newer": block(keyed, keyless),
        "blank": block(None, None),
        "legacy": chunks.join([(FIX, b"\x05"), (SLOT0, legacy + bytes(4))]),
        "bad-magic-fixed": chunks.join([(FIX, b"\x01"), (SLOT0, MAGIC[:7] + b"X" + bytes(COPY_BYTES - 8))]),
    }
