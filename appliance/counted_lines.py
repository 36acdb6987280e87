"""Console lines under a rate, and the count of the lines the rate refused, which is never left unsaid.

Why a rate: a peer can cause console lines (a connection's outcome, a library's warning), and the console is
a slow serial line (about 11 KB/s) whose blocked write stalls the event loop. Why a count: what the rate
refused is still evidence an operator reading the console needs, as a number. The next line printed carries
it; when none follows (a burst, then silence), a line of its own says it once the rate allows a line again
(`flush`, which the first refused line arranges through a Schedule), and `close` says what is still counted.

The two users, appliance.library_log (the libraries' records) and appliance.service (connection outcomes),
each print their own lines; this holds the rate, the count and the arranging of the flush, once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from netstack.ratelimit import per_second

Schedule = Callable[[float, Callable[[], None]], None]
"""Run a function after a delay in seconds, later and never inline; raise RuntimeError when it never can
again (a closed loop, no loop). Its clock must be the rate's: the flush it runs asks the rate whether a line is
allowed. `on_loop` makes one callable from any thread, `on_running_loop` is one for code on the loop's thread."""

FLUSH_TRIES = 3
"""How many flushes in a row may find the rate still spent and arrange another: with the Schedule on the
rate's clock the first always finds a line; the bound keeps two clocks that disagree from arranging flushes
for ever (`close` still says the count)."""


def on_loop(loop: asyncio.AbstractEventLoop) -> Schedule:
    """A Schedule on `loop`, callable from any thread: the call is handed to the loop's thread, which sets the
    timer. A stopped loop that is not closed accepts it and never runs it; then the count waits for the next
    line or for `close`."""
    def schedule(delay: float, function: Callable[[], None]) -> None:
        loop.call_soon_threadsafe(loop.call_later, delay, function)
    return schedule


def on_running_loop(delay: float, function: Callable[[], None]) -> None:
    """A Schedule for code that runs on the event loop's own thread: a timer on the running loop (none running
    raises RuntimeError)."""
    asyncio.get_running_loop().call_later(delay, function)


class CountedLines:
    """A rate of `lines_per_second` (with a burst of one second's worth) and the count of the lines it refused.

    `say(count)` prints the count in a line of its own. `clock` is the rate's, read by `flush`; the other
    calls are given the time. `lock`, if given, is held by `flush` and `close`, which may run on another
    thread than the lines (a logging handler's own lock: the lines are decided under it too)."""

    def __init__(self, lines_per_second: float, *, clock: Callable[[], float], say: Callable[[int], None],
                 schedule: Schedule | None = None, lock: AbstractContextManager[object] | None = None) -> None:
        self._bucket = per_second(lines_per_second)
        self._line_seconds = 1.0 / lines_per_second  # how long the bucket takes to allow one more line
        self._clock = clock
        self._say = say
        self._schedule = schedule
        self._lock: AbstractContextManager[object] = lock if lock is not None else nullcontext()
        self._flush_arranged = False
        self._flush_tries = 0  # flushes in a row that found no line
        self.suppressed = 0  # lines refused since the last line that carried the count

    def admit(self, now: float) -> int | None:
        """Whether a line may be printed at `now`: the count it must carry (counting starts again), or None:
        the line is counted, not printed, and a line of its own is arranged to say the count."""
        if self._bucket.allow(now):
            return self.take()
        self.suppressed += 1
        self._arrange_flush()
        return None

    def take(self) -> int:
        """The count, for a line printed whatever the rate (or allowed by `admit`): counting starts again."""
        count = self.suppressed
        self.suppressed = 0
        self._flush_tries = 0
        return count

    def flush(self) -> None:
        """Say the count in a line of its own, if the rate allows one now; otherwise, with a Schedule, arrange
        another flush a line's time later, up to FLUSH_TRIES in a row (a line printed first carries the count
        instead, and this finds nothing to say)."""
        with self._lock:
            self._flush_arranged = False
            if not self.suppressed:
                return
            if self._bucket.allow(self._clock()):
                self._say(self.take())
            elif self._flush_tries < FLUSH_TRIES:
                self._flush_tries += 1
                self._arrange_flush()

    def close(self) -> None:
        """Say what is still counted, whatever the rate."""
        with self._lock:
            if self.suppressed:
                self._say(self.take())

    def _arrange_flush(self) -> None:
        if self._schedule is None or self._flush_arranged:
            return
        self._flush_arranged = True  # before the call: a Schedule that broke its contract and ran it inline
        try:  # would otherwise arrange again from inside
            self._schedule(self._line_seconds, self.flush)
        except RuntimeError:  # the loop is closed, or there is none: `close` says the count
            self._flush_arranged = False
