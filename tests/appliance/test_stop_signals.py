"""The stop signals: each sets the run's stop event, from whichever thread the kernel delivers it to, and runs
nothing the boot deferred; what was installed before comes back."""

from __future__ import annotations

import asyncio
import ctypes
import json
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from appliance.stop_signals import STOP_SIGNALS, stop_on_signals


def _installed() -> tuple[dict[int, object], int]:
    """The handlers of STOP_SIGNALS and the wakeup descriptor (read by setting it back at once)."""
    fd = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(fd)
    return {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}, fd


def _waiting_for_events(thread: int) -> bool:
    """Whether `thread` is in the selector's wait (the loop asleep, as at ready with no traffic)."""
    frame = sys._current_frames().get(thread)
    return frame is not None and frame.f_code.co_name == "select" and "selectors" in frame.f_code.co_filename


@pytest.mark.parametrize("signum", STOP_SIGNALS)
def test_a_signal_delivered_to_another_thread_wakes_the_loop_and_sets_the_event(signum: int) -> None:
    """The kernel may deliver a process's signal to any thread (the boot PKI's, the RSA key's): the loop, asleep
    in its wait for events, must still wake. The signal is sent to a worker thread while the loop waits."""

    async def main() -> None:
        before = _installed()  # SIGINT's handler is asyncio.run's own
        stop = asyncio.Event()
        restore = stop_on_signals(stop)
        try:
            main_thread = threading.get_ident()

            def send() -> None:
                deadline = time.monotonic() + 60  # (a bound only: the main thread reaches the wait at once)
                while not _waiting_for_events(main_thread) and time.monotonic() < deadline:  # by state
                    pass
                signal.pthread_kill(threading.get_ident(), signum)  # to this thread, not the main one

            late: list[bool] = []
            asyncio.get_running_loop().call_later(60, late.append, True)  # wakes a loop that nothing else wakes
            worker = threading.Thread(target=send, daemon=True)
            worker.start()
            await stop.wait()
            assert not late  # the signal woke the loop, not the timer (whose wake would run the handler too)
            worker.join(60)
        finally:
            restore()
        assert _installed() == before

    asyncio.run(main())


SA_RESTART = 0x10000000
"""<asm/signal.h>: a system call the handler interrupted is restarted instead of failing with EINTR."""


class _Sigaction(ctypes.Structure):
    """glibc's `struct sigaction` (the handler, the mask of 1024 bits, the flags, the restorer)."""

    _fields_ = [("handler", ctypes.c_void_p), ("mask", ctypes.c_ulong * 16), ("flags", ctypes.c_int),
                ("restorer", ctypes.c_void_p)]


def _restarts(signum: int) -> bool:
    """Whether the kernel restarts a system call that `signum`'s handler interrupted: read with sigaction(2),
    since Python can set SA_RESTART (`siginterrupt`) but not read it."""
    current = _Sigaction()
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.sigaction(signum, None, ctypes.byref(current)) == 0, ctypes.get_errno()
    return bool(current.flags & SA_RESTART)


def test_interrupted_system_calls_are_restarted_while_installed_and_the_flags_come_back() -> None:
    """C code that does not retry EINTR itself (in a library on another thread) must not see a stop signal as a
    failed call: the handlers are installed with SA_RESTART, as asyncio's own are. Restoring puts the flags
    back as they were (Python installs its handlers without SA_RESTART)."""

    async def main() -> None:
        before = {signum: _restarts(signum) for signum in STOP_SIGNALS}
        restore = stop_on_signals(asyncio.Event())
        try:
            assert all(_restarts(signum) for signum in STOP_SIGNALS)
        finally:
            restore()
        assert {signum: _restarts(signum) for signum in STOP_SIGNALS} == before

    asyncio.run(main())


def test_repeated_signals_are_absorbed_until_the_handlers_are_put_back() -> None:
    """A second SIGTERM (during the shutdown that the first began) must not end the process: this test's own
    process, which a default handler put back too early would kill."""

    async def main() -> None:
        stop = asyncio.Event()
        restore = stop_on_signals(stop)
        try:
            signal.raise_signal(signal.SIGTERM)
            await asyncio.wait_for(stop.wait(), 60)
            signal.raise_signal(signal.SIGTERM)
            await asyncio.sleep(0)
        finally:
            restore()

    asyncio.run(main())


def test_a_wakeup_descriptor_installed_before_gets_every_byte_and_comes_back() -> None:
    """asyncio's own signal handling keeps its wakeup descriptor: while ours is installed, the drain passes each
    signal's byte on to it, and the restore puts it back."""
    theirs_read, theirs_write = socket.socketpair()
    theirs_read.setblocking(False)
    theirs_write.setblocking(False)

    async def main() -> None:
        before = signal.set_wakeup_fd(theirs_write.fileno())
        try:
            stop = asyncio.Event()
            restore = stop_on_signals(stop)
            try:
                signal.raise_signal(signal.SIGTERM)
                await asyncio.wait_for(stop.wait(), 60)
                passed_on = b""
                for _ in range(1000):  # the drain runs in a later iteration of the loop than the handler's callback
                    try:
                        passed_on = theirs_read.recv(16)
                        break
                    except BlockingIOError:
                        await asyncio.sleep(0)
                assert passed_on == bytes([signal.SIGTERM])
            finally:
                restore()
            assert signal.set_wakeup_fd(-1) == theirs_write.fileno()  # (read by clearing it)
        finally:
            signal.set_wakeup_fd(before)

    try:
        asyncio.run(main())
    finally:
        theirs_read.close()
        theirs_write.close()


def test_outside_the_main_thread_it_refuses_and_leaves_nothing_installed() -> None:
    before = _installed()
    seen: list[object] = []

    def in_thread() -> None:
        async def main() -> None:
            loop = asyncio.get_running_loop()
            watched = len(loop._selector.get_map())  # type: ignore[attr-defined]  # (the loop's descriptors)
            try:
                stop_on_signals(asyncio.Event())
            except ValueError as exc:  # set_wakeup_fd: "only works in main thread"
                seen.append(exc)
            seen.append(len(loop._selector.get_map()) - watched)  # type: ignore[attr-defined]

        asyncio.run(main())

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join(60)
    assert len(seen) == 2
    assert isinstance(seen[0], ValueError)
    assert seen[1] == 0  # its reader was taken off the loop again
    assert _installed() == before


SIGNALS_AFTER_READY = """
from appliance import deferred_imports
deferred_imports.install()
import asyncio, json, os, signal, sys
from appliance.stop_signals import stop_on_signals

async def main():
    stop = asyncio.Event()
    restore = stop_on_signals(stop)
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(stop.wait(), 60)
    restore()
    imported = sorted(name for name in deferred_imports.DEFERRED if name in sys.modules)
    return deferred_imports.deferred(), imported

print(json.dumps(asyncio.run(main())))
"""


def test_handling_the_stop_signals_runs_no_deferred_module() -> None:
    """appliance.main installs the handlers just after ready: neither asyncio's add_signal_handler (it checks the
    callback with inspect) nor signal.signal's repr of asyncio.run's SIGINT handler may run inspect there."""
    result = subprocess.run([sys.executable, "-c", SIGNALS_AFTER_READY], capture_output=True, text=True, check=True)
    unrun, imported = json.loads(result.stdout.splitlines()[-1])
    assert "inspect" in imported  # (asyncio imports it)
    assert unrun == imported
