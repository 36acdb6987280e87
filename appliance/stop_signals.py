"""SIGTERM and SIGINT stop a running appliance gracefully: the run's `stop` event is set, and the run then stops
its listeners, marks the ledger stopped and closes the disk before it says `stopped`.

Why not `loop.add_signal_handler`, and why `_signal` rather than `signal`: both would run `inspect` (deferred at
boot, see appliance.deferred_imports) just after ready, on the first request's path (0.06 s in the VM). The
loop checks its callback with `inspect.iscoroutinefunction`. And `signal.signal` turns the handler it replaces
into a `signal.Handlers` member when it can, whose failed lookup formats that handler's repr: for SIGINT,
asyncio.run's own handler, a partial holding the main task, whose repr finds its callbacks' source with
`inspect`. `_signal.signal` and `_signal.set_wakeup_fd` are the same calls without that conversion.

How the loop wakes, as its own signal handling does: the handler runs in the main thread (Python runs signal
handlers there), which is the loop's; and a wakeup descriptor that the loop watches makes the main thread's wait
for events return even when the kernel delivers the signal to another thread (the boot's PKI thread, the RSA key
thread), whose interrupted system call would not wake it. Interrupted system calls are restarted
(`siginterrupt(False)`), as asyncio has them, for C code that does not retry them itself.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # signal's C module (no typeshed stub): see the docstring
import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Callable

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
"""What asks the appliance to stop: a service manager's or libvirt's shutdown of a host instance, Ctrl-C."""

WAKE_READ_BYTES = 4096
"""How much of the wakeup descriptor's bytes (one per signal) one read drains."""


def stop_on_signals(stop: asyncio.Event) -> Callable[[], None]:
    """From now on STOP_SIGNALS set `stop`; returns what puts the handlers and the wakeup descriptor from before
    back. Call it in the main thread, from a coroutine of the running loop; if it raises (another thread), it
    has left nothing installed. A wakeup descriptor installed before (asyncio's, for its own signal handlers)
    still receives every signal's byte meanwhile: the drain passes them on."""
    loop = asyncio.get_running_loop()
    wake_read, wake_write = socket.socketpair()
    wake_read.setblocking(False)
    wake_write.setblocking(False)  # a full buffer drops a wakeup byte rather than block a signal handler
    previous_fd: int | None = None  # None until ours is the wakeup descriptor
    handlers: dict[int, object] = {}

    def drain() -> None:
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while data := wake_read.recv(WAKE_READ_BYTES):
                if previous_fd is not None and previous_fd >= 0:  # (None before ours was set, -1 for none)
                    with contextlib.suppress(OSError):  # (a full or closed descriptor loses a byte, as it would)
                        os.write(previous_fd, data)

    def handle(signum: int, frame: object) -> None:
        loop.call_soon_threadsafe(stop.set)

    def restore() -> None:
        for signum, handler in handlers.items():
            _signal.signal(signum, handler)
        if previous_fd is not None:
            _signal.set_wakeup_fd(previous_fd)
        loop.remove_reader(wake_read.fileno())
        wake_read.close()
        wake_write.close()

    loop.add_reader(wake_read.fileno(), drain)
    try:
        previous_fd = _signal.set_wakeup_fd(wake_write.fileno(), warn_on_full_buffer=False)
        for signum in STOP_SIGNALS:
            handlers[signum] = _signal.signal(signum, handle)
            signal.siginterrupt(signum, False)
    except BaseException:
        restore()  # what was installed, and only that
        raise
    return restore
