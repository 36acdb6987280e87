"""An asyncio event loop on a virtual clock, for tests of code that schedules timers on the loop.

Why: a test that sleeps on the wall clock to let a timer fire or a frame arrive is slow, and on a shared
machine (CI runs beside a kernel build on two cores) it is flaky: the sleep may end before the event it waits
for. On this loop `loop.time()` is virtual. It stands still while callbacks are ready and, when the loop would
block waiting for the next timer, jumps straight to that timer's deadline (exactly: a timer set for t runs with
`loop.time() == t`). So `await asyncio.sleep(30)` returns at once at virtual time +30 s, a timeout of 60 s
fires at once if nothing else can happen, and a test's result does not depend on how busy the machine is.

Real file descriptors still work (the selector is polled without waiting), but nothing here waits for them:
the loop is meant for in-memory links. If the loop would block with no timer pending at all, nothing can
ever happen again, and it raises instead of hanging.

    result = run(main())   # like asyncio.run(main()), on the virtual clock
"""

from __future__ import annotations

import asyncio
import heapq
import selectors
from collections.abc import Callable, Coroutine
from contextvars import Context
from typing import Any, TypeVar, TypeVarTuple

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

# A real select() with no timer pending at all waits this long for a file descriptor before the loop is
# declared stuck (only a thread or a real socket could still wake it).
STUCK_AFTER_SECONDS = 5.0


class VirtualClockLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._virtual_now = 0.0
        self._deadlines: list[float] = []
        super().__init__(_VirtualSelector(self))

    def time(self) -> float:
        return self._virtual_now

    def call_at(
        self, when: float, callback: Callable[[*Ts], object], *args: *Ts, context: Context | None = None
    ) -> asyncio.TimerHandle:
        # call_later goes through here too. Remembering the deadline lets the clock land on it exactly,
        # rather than on now + (deadline - now), which floating point may leave a hair short.
        heapq.heappush(self._deadlines, when)
        return super().call_at(when, callback, *args, context=context)

    def advance(self, timeout: float) -> None:
        """Move the clock forward by `timeout` (what the loop would have slept), onto the deadline it aimed at."""
        target = self._virtual_now + timeout
        while self._deadlines and self._deadlines[0] <= self._virtual_now:
            heapq.heappop(self._deadlines)
        if self._deadlines and abs(self._deadlines[0] - target) <= 1e-9 * max(1.0, abs(target)):
            target = self._deadlines[0]
        self._virtual_now = max(self._virtual_now, target)


class _VirtualSelector(selectors.DefaultSelector):
    """Polls without blocking; a wait for `timeout` seconds becomes a jump of the virtual clock."""

    def __init__(self, loop: VirtualClockLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready: list[tuple[selectors.SelectorKey, int]] = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            # No timer pending: only a real file descriptor could wake the loop now.
            ready = super().select(STUCK_AFTER_SECONDS)
            if not ready:
                raise RuntimeError("virtual-time loop is stuck: nothing is ready and no timer is pending")
            return ready
        self._loop.advance(timeout)
        return ready


def run(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on a fresh virtual-clock loop."""
    with asyncio.Runner(loop_factory=VirtualClockLoop) as runner:
        return runner.run(coro)
