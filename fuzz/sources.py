"""Deterministic stand-ins for the clock and the random source the code under test takes as parameters.

Why: a fuzz input must do the same thing every time it runs, or a crash could not be reproduced and the
fuzzer's coverage feedback would be noise. The protocol cores take randomness and time as arguments (rule 1
of the design), so the targets pass these.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
"""The wall-clock time every target runs at (inside the validity of every certificate the fixtures make)."""


class Stream:
    """A reproducible byte stream (SHAKE-256 of a label and a counter); `reset` starts it over."""

    def __init__(self, label: bytes) -> None:
        self._label = label
        self._counter = 0

    def reset(self) -> None:
        self._counter = 0

    def __call__(self, size: int) -> bytes:
        self._counter += 1
        return hashlib.shake_256(self._label + self._counter.to_bytes(8, "big")).digest(size)


def now() -> datetime:
    return NOW


def wall() -> float:
    return NOW.timestamp()
