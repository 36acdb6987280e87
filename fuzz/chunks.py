"""One fuzz input as a script of typed chunks: how the multi-step targets read their input.

Format: repeated `kind (1 byte) | length (2 bytes, big-endian) | body`; the kind is taken modulo the target's
number of kinds, a length past the end takes what is left. Why this shape: every byte string is a valid
script (libFuzzer's mutations never produce a "malformed" input that the harness would have to skip), a
mutation inside one chunk's body leaves the others alone, and the seeds write scripts with `join`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

HEADER = 3
MAX_CHUNKS = 64
"""Chunks read from one input: bounds the work per input whatever its length."""


def split(data: bytes, kinds: int) -> Iterator[tuple[int, bytes]]:
    """(kind, body) for each chunk of `data`, at most MAX_CHUNKS."""
    pos = 0
    count = 0
    while pos < len(data) and count < MAX_CHUNKS:
        kind = data[pos] % kinds
        length = int.from_bytes(data[pos + 1 : pos + HEADER], "big")
        body = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        count += 1
        yield kind, body


def join(chunks: Iterable[tuple[int, bytes]]) -> bytes:
    """The input that `split` reads back as `chunks` (bodies longer than 65535 bytes are refused)."""
    out = bytearray()
    for kind, body in chunks:
        if not 0 <= kind <= 0xFF or len(body) > 0xFFFF:
            raise ValueError("a chunk kind is one byte and a body at most 65535 bytes")
        out += bytes((kind,)) + len(body).to_bytes(2, "big") + body
    return bytes(out)
