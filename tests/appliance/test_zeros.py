"""appliance.zeros against the byte-at-a-time answers it replaces, at every block edge."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from appliance.zeros import BLOCK, first_nonzero, trimmed_length

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


@given(sparse(), st.integers(0, 3 * BLOCK + 8), st.none() | st.integers(0, 3 * BLOCK + 8))
def test_first_nonzero_is_the_first_nonzero_byte(buf: bytes, start: int, end: int | None) -> None:
    assert first_nonzero(buf, start, end) == _reference_first(buf, start, end)


@given(sparse())
def test_trimmed_length_is_rstrip(buf: bytes) -> None:
    assert trimmed_length(buf) == len(buf.rstrip(b"\x00"))


def test_the_edges() -> None:
    assert first_nonzero(b"") is None
    assert trimmed_length(b"") == 0
    assert first_nonzero(bytes(BLOCK) + b"\x01") == BLOCK
    assert first_nonzero(bytes(BLOCK - 1) + b"\x01" + bytes(BLOCK)) == BLOCK - 1
    assert trimmed_length(b"\x01" + bytes(2 * BLOCK)) == 1
    assert trimmed_length(bytes(BLOCK) + b"\x02") == BLOCK + 1
    assert first_nonzero(b"\x00\x05", 0, 1) is None  # `end` bounds the search
