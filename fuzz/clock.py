"""Virtual time for the network targets: run every timer that falls due, each at its own deadline.

Why each at its deadline rather than once at the new time: a retransmission or a lease renewal that fires
late behaves as a late timer does, and the fuzzer should see the stack as a real clock would drive it.
"""

from __future__ import annotations

from typing import Protocol


class Timed(Protocol):
    def next_deadline(self) -> float | None: ...
    def timers_expired(self, now: float) -> None: ...


def run_due_timers(timed: Timed, now: float) -> None:
    """Fire `timed`'s timers up to `now`, in deadline order."""
    deadline = timed.next_deadline()
    while deadline is not None and deadline <= now:
        timed.timers_expired(deadline)
        deadline = timed.next_deadline()
