"""appliance.zeros against the byte-at-a-time answers it replaces, at every block edge, over bytes and over an
mmap of the same bytes (recovery reads the ledger's regions through a map of the disk)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.zeros import BLOCK, first_nonzero, trimmed_length
from tests.appliance.mapped import KINDS, as_buffer

# Mostly zeros with a few non-zero bytes, placed near the block edges where a block-wise search can slip.
positions = st.integers(0, 3 * BLOCK + 7) | st.sampled_from([0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK, 3 * BLOCK])


@st.composite
def sparse(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.integers(0, 3 * BLOCK + 8)))
    for at in draw(st.lists(positions, max_size=4)):
        if at < len(data):
            data[at] = draw(st.integers(1, 255))
    return bytes(data)


def _reference_first(buf: bytes, start: int, end: int | None) -> int | None:
    stop = len(buf) if end is None else min(end, len(buf))
    for index in range(max(start, 0), stop):
        if buf[index]:
            return index
    return None


@pytest.mark.parametrize("kind", KINDS)
@given(sparse(), st.integers(0, 3 * BLOCK + 8), st.none() | st.integers(0, 3 * BLOCK + 8))
def test_first_nonzero_is_the_first_nonzero_byte(kind: str, data: bytes, start: int, end: int | None) -> None:
    with as_buffer(kind, data) as buf:
        assert first_nonzero(buf, start, end) == _reference_first(data, start, end)


@pytest.mark.parametrize("kind", KINDS)
@given(sparse())
def test_trimmed_length_is_rstrip(kind: str, data: bytes) -> None:
    with as_buffer(kind, data) as buf:
        assert trimmed_length(buf) == len(data.rstrip(b"\x00"))


@pytest.mark.parametrize("kind", KINDS)
def test_the_edges(kind: str) -> None:
    def first(data: bytes, start: int = 0, end: int | None = None) -> int | None:
        with as_buffer(kind, data) as buf:
            return first_nonzero(buf, start, end)

    def trimmed(data: bytes) -> int:
        with as_buffer(kind, data) as buf:
            return trimmed_length(buf)

    assert first(b"") is None
    assert trimmed(b"") == 0
    assert first(bytes(BLOCK) + b"\x01") == BLOCK
    assert first(bytes(BLOCK - 1) + b"\x01" + bytes(BLOCK)) == BLOCK - 1
    assert trimmed(b"\x01" + bytes(2 * BLOCK)) == 1
    assert trimmed(bytes(BLOCK) + b"\x02") == BLOCK + 1
    assert first(b"\x00\x05", 0, 1) is None  # `end` bounds the search
