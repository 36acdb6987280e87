"""A job run on a thread of its own while the event loop goes on, its result (or failure) awaited there.

Why not `asyncio.to_thread`: the loop's default executor keeps its worker threads for the process's life and
shares them between jobs, so a priority lowered for one job would stay with a thread the next job reuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class ThreadDiedError(Exception):
    """The thread ended without a result or an exception its caller could be given."""


async def made_in_thread(make: Callable[[], T], nice: int | None, *, name: str) -> T:
    """`make()` run in a thread of its own named `name`, at `nice` (None: the process's own), awaited on the
    event loop, which goes on meanwhile. Two jobs use it: the RSA key (appliance.alternates, lowered) and the
    boot PKI (appliance.main, so that the loop answers the interface's DHCP exchange while it is made). A thread of
    its own, not the loop's executor: a lowered priority stays with its one job, and the thread ends with it.
    Whatever ends the thread is delivered, so the awaiting task never waits on a thread that is gone."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def deliver(settle: Callable[[], object]) -> None:
        def unless_cancelled() -> None:
            if not done.cancelled():
                settle()

        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody is waiting any more
            loop.call_soon_threadsafe(unless_cancelled)

    def work() -> None:
        try:
            if nice is not None:
                with contextlib.suppress(OSError):  # a priority not lowered only costs the first clients time
                    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
            result = make()
        except Exception as exc:  # noqa: BLE001 - handed to the awaiting task, which decides
            failure = exc  # (`exc` itself is unbound when the except block ends)
            deliver(lambda: done.set_exception(failure))
        except BaseException as exc:  # noqa: BLE001 - ends this thread only (SystemExit, ...): said to the awaiter
            died = ThreadDiedError(f"the thread ended with {type(exc).__name__}")
            deliver(lambda: done.set_exception(died))
        else:
            deliver(lambda: done.set_result(result))

    threading.Thread(target=work, name=name, daemon=True).start()
    return await done
