"""The vector reader: lengths checked before reading, trailing bytes refused."""

from __future__ import annotations

import pytest

from outcomes.category import Category
from tls.codec import Reader, u16_values, vec8, vec16, vec24
from tls.errors import ProtocolError


def test_reads_nested_vectors_without_copying() -> None:
    data = bytearray(vec16(vec8(b"abc") + vec24(b"defg")) + b"\x01")
    reader = Reader(data)
    inner = reader.sub(2, "inner")
    first = inner.vec(1)
    assert isinstance(first, memoryview)
    assert bytes(first) == b"abc"
    assert bytes(inner.vec(3)) == b"defg"
    inner.end()
    assert reader.u8() == 1
    reader.end()


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00\x05abc", b"\x00\x01"])
def test_truncation_is_a_decode_error(data: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        Reader(data).vec(2)
    assert info.value.category is Category.DECODE_ERROR


def test_trailing_bytes_are_refused() -> None:
    reader = Reader(b"\x01\x02")
    reader.u8()
    with pytest.raises(ProtocolError):
        reader.end()


def test_vector_bounds() -> None:
    with pytest.raises(ProtocolError):
        Reader(b"\x00").vec(1, minimum=1)
    with pytest.raises(ProtocolError):
        Reader(b"\x03abc").vec(1, maximum=2)


def test_u16_values_are_big_endian_and_refuse_an_odd_length() -> None:
    assert u16_values(b"\x13\x01\x00\x1d\xff\xff", "list") == (0x1301, 0x001D, 0xFFFF)
    assert u16_values(memoryview(b""), "list") == ()
    with pytest.raises(ProtocolError) as info:
        u16_values(b"\x13\x01\x00", "list")
    assert info.value.category is Category.DECODE_ERROR
