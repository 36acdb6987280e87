"""Reading and writing TLS presentation-language vectors over memoryviews.

`Reader` never copies until a caller asks for bytes, checks every length against what is left before
reading, and `end()` rejects trailing bytes: a short or overlong input is a decode_error, never an
IndexError.
"""

from __future__ import annotations

import struct

from tls.errors import decode_error


class Reader:
    __slots__ = ("_end", "_pos", "_view", "what")

    def __init__(self, data: bytes | bytearray | memoryview, what: str = "message") -> None:
        self._view = data if isinstance(data, memoryview) else memoryview(data)
        self._pos = 0
        self._end = len(self._view)
        self.what = what

    @property
    def remaining(self) -> int:
        return self._end - self._pos

    def _take(self, n: int) -> memoryview:
        if n > self._end - self._pos:
            raise decode_error(f"{self.what}: needs {n} bytes, {self._end - self._pos} left")
        start = self._pos
        self._pos += n
        return self._view[start : self._pos]

    def u8(self) -> int:
        if self._pos >= self._end:
            raise decode_error(f"{self.what}: truncated")
        value = self._view[self._pos]
        self._pos += 1
        return value

    def u16(self) -> int:
        return int.from_bytes(self._take(2), "big")

    def u24(self) -> int:
        return int.from_bytes(self._take(3), "big")

    def u32(self) -> int:
        return int.from_bytes(self._take(4), "big")

    def raw(self, n: int) -> memoryview:
        return self._take(n)

    def vec(self, length_bytes: int, minimum: int = 0, maximum: int = 2**24) -> memoryview:
        """An opaque vector with a `length_bytes`-byte length prefix, its length within [minimum, maximum]."""
        n = int.from_bytes(self._take(length_bytes), "big")
        if n < minimum or n > maximum:
            raise decode_error(f"{self.what}: vector length {n} outside [{minimum}, {maximum}]")
        return self._take(n)

    def sub(self, length_bytes: int, what: str, minimum: int = 0, maximum: int = 2**24) -> Reader:
        return Reader(self.vec(length_bytes, minimum, maximum), what)

    def rest(self) -> memoryview:
        return self._take(self._end - self._pos)

    def end(self) -> None:
        if self._pos != self._end:
            raise decode_error(f"{self.what}: {self._end - self._pos} trailing bytes")


def u16_values(data: bytes | memoryview, what: str) -> tuple[int, ...]:
    """A whole vector's contents read as big-endian 16-bit values (cipher suites, groups, schemes, versions); an
    odd length is a decode_error. One `struct` call: a ClientHello's lists hold dozens of values, and a call
    per value was a measurable part of parsing it."""
    if len(data) % 2:
        raise decode_error(f"{what}: odd length")
    return struct.unpack(f">{len(data) // 2}H", data)


def u8(value: int) -> bytes:
    return value.to_bytes(1, "big")


def u16(value: int) -> bytes:
    return value.to_bytes(2, "big")


def u24(value: int) -> bytes:
    return value.to_bytes(3, "big")


def vec8(data: bytes) -> bytes:
    return len(data).to_bytes(1, "big") + data


def vec16(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def vec24(data: bytes) -> bytes:
    return len(data).to_bytes(3, "big") + data


def u16_list(values: list[int] | tuple[int, ...]) -> bytes:
    return b"".join(v.to_bytes(2, "big") for v in values)
