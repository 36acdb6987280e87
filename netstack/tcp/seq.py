"""Sequence-number arithmetic modulo 2**32 (RFC 9293 §3.4): comparisons are on the signed distance."""

from __future__ import annotations

MASK = 0xFFFFFFFF
HALF = 0x80000000


def seq_lt(a: int, b: int) -> bool:
    return a != b and ((b - a) & MASK) < HALF


def seq_le(a: int, b: int) -> bool:
    return ((b - a) & MASK) < HALF


def seq_gt(a: int, b: int) -> bool:
    return seq_lt(b, a)


def seq_ge(a: int, b: int) -> bool:
    return seq_le(b, a)


def seq_diff(a: int, b: int) -> int:
    """a - b as a signed distance in (-2**31, 2**31]."""
    d = (a - b) & MASK
    return d - 0x100000000 if d >= HALF else d


def seq_in(value: int, start: int, length: int) -> bool:
    """start <= value < start + length."""
    return ((value - start) & MASK) < length
