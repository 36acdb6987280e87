"""The thin asyncio adapter: link readiness and one timer in, Stack calls out. No protocol logic lives here.

Why a single timer: the stack reports its earliest deadline, so there is never more than one pending loop
timer however many connections, ARP entries or fragments exist.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from netstack.link.base import Link
from netstack.stack import Stack


class Driver:
    def __init__(self, link: Link, stack: Stack, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.link = link
        self.stack = stack
        self._loop = loop
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._closed = False
        self.after_io: list[Callable[[], None]] = []
        """Run after every received batch and every timer (the socket layer dispatches protocol events here)."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def now(self) -> float:
        return self.loop.time()

    def start(self) -> None:
        """Start reading (call from inside the running loop); brings the interface up (ARP announce / DHCP)."""
        self.link.start(self._frames_received)
        self.stack.start(self.now())
        self.kick()

    def kick(self) -> None:
        """Flush what the stack has to send and re-arm the timer: call after the application wrote or closed."""
        if self._closed:
            return
        self._flush()
        self._reschedule()

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.link.close()

    # The three methods below are what the loop calls (reader and timer callbacks). Nothing may escape them:
    # an exception there would be logged by asyncio without a count, and it would skip the flush and the
    # timer re-arm, stalling the stack. Each step is guarded on its own, counted as the stack's internal-error.

    def _frames_received(self, frames: list[bytes]) -> None:
        if self._closed:
            return
        now = self.now()
        for frame in frames:
            self._safely("frame delivery failed", self.stack.frame_received, now, frame)
        self._after_io()

    def _timer_fired(self) -> None:
        self._timer = None
        self._timer_at = None
        if self._closed:
            return
        self._safely("timers failed", self.stack.timers_expired, self.now())
        self._after_io()

    def _after_io(self) -> None:
        self._safely("flush failed", self._flush)
        for callback in self.after_io:
            self._safely("after-I/O callback failed", callback)
        self._safely("flush failed", self._flush)
        self._safely("timer re-arm failed", self._reschedule)

    def _safely(self, what: str, call: Callable[..., None], *args: Any) -> None:
        try:
            call(*args)
        except Exception as exc:  # noqa: BLE001 (counted and logged by the stack)
            self.stack.internal_error(f"driver: {what}", exc)

    def _flush(self) -> None:
        send = self.link.send
        for frame in self.stack.take_frames(self.now()):
            send(frame)

    def _reschedule(self) -> None:
        deadline = self.stack.next_deadline()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            self._timer = self.loop.call_at(deadline, self._timer_fired)
