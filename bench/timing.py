"""Helpers for measuring rates fairly: interleaved rounds, best-of, so background load hits both sides."""

from __future__ import annotations

import time
from collections.abc import Callable


def rate(operation: Callable[[], object], *, seconds: float, min_count: int = 1) -> float:
    """Operations per second of `operation`, run repeatedly for about `seconds`."""
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while count < min_count or time.perf_counter() < deadline:
        operation()
        count += 1
    return count / (time.perf_counter() - started)


def interleaved_rates(
    ours: Callable[[], object], reference: Callable[[], object], *, seconds: float, rounds: int = 3
) -> tuple[float, float]:
    """Best rate of each over `rounds` alternating rounds: alternation spreads any background load
    over both sides, and best-of discards rounds in which the machine was busy elsewhere."""
    best_ours = best_ref = 0.0
    for _ in range(rounds):
        best_ours = max(best_ours, rate(ours, seconds=seconds / rounds))
        best_ref = max(best_ref, rate(reference, seconds=seconds / rounds))
    return best_ours, best_ref
