"""The virtual-clock loop the asyncio tests run on: time moves only to the next timer, exactly, and a loop
with nothing left to wait for fails instead of hanging."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.virtual_time import run


def test_sleeping_costs_no_wall_clock_and_timers_run_exactly_at_their_deadline() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        seen: list[float] = []
        for delay in (0.1, 0.3, 3600.0):
            loop.call_later(delay, lambda: seen.append(loop.time()))
        await asyncio.sleep(4000.0)
        return seen

    started = time.monotonic()
    assert run(main()) == [0.1, 0.3, 3600.0]
    assert time.monotonic() - started < 5.0


def test_time_stands_still_while_callbacks_are_ready() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        before = loop.time()
        for _ in range(100):
            await asyncio.sleep(0)
        return loop.time() - before

    assert run(main()) == 0.0


def test_a_timeout_fires_when_nothing_else_can_happen() -> None:
    async def main() -> None:
        await asyncio.wait_for(asyncio.Event().wait(), 60)

    with pytest.raises(TimeoutError):
        run(main())


def test_a_loop_with_no_timer_and_nothing_ready_is_reported_stuck(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tests.virtual_time.STUCK_AFTER_SECONDS", 0.01)

    async def main() -> None:
        await asyncio.Event().wait()

    with pytest.raises(RuntimeError, match="stuck"):
        run(main())
