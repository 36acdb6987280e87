from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from netstack.tcp.seq import seq_diff, seq_ge, seq_gt, seq_in, seq_le, seq_lt

U32 = st.integers(0, 2**32 - 1)


def test_wraparound() -> None:
    assert seq_lt(0xFFFFFFF0, 0x10)
    assert seq_gt(0x10, 0xFFFFFFF0)
    assert seq_diff(0x10, 0xFFFFFFF0) == 0x20
    assert seq_in(0x5, 0xFFFFFFFE, 10)
    assert not seq_in(0xFFFFFFFD, 0xFFFFFFFE, 10)


@given(U32, st.integers(-(2**31) + 1, 2**31 - 1))
def test_comparisons_agree_with_signed_distance(a: int, delta: int) -> None:
    b = (a + delta) % 2**32
    assert seq_diff(b, a) == delta
    assert seq_lt(a, b) == (delta > 0)
    assert seq_le(a, b) == (delta >= 0)
    assert seq_gt(b, a) == (delta > 0)
    assert seq_ge(b, a) == (delta >= 0)
