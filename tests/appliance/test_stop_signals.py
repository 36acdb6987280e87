"""The stop signals: each sets the run's stop event, from whichever thread the kernel delivers it to, and runs
nothing the boot deferred; what was installed before comes back."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading

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
                while not _waiting_for_events(main_thread):  # by state, not by time
                    pass
                signal.pthread_kill(threading.get_ident(), signum)  # to this thread, not the main one

            late: list[bool] = []
            asyncio.get_running_loop().call_later(60, late.append, True)  # wakes a loop that nothing else wakes
            worker = threading.Thread(target=send)
            worker.start()
            await stop.wait()
            assert not late  # the signal woke the loop, not the timer (whose wake would run the handler too)
            worker.join()
        finally:
            restore()
        assert _installed() == before

    asyncio.run(main())


def test_a_signal_to_the_main_thread_sets_the_event_and_a_second_changes_nothing() -> None:
    async def main() -> None:
        stop = asyncio.Event()
        restore = stop_on_signals(stop)
        try:
            signal.raise_signal(signal.SIGTERM)
            await asyncio.wait_for(stop.wait(), 60)
            signal.raise_signal(signal.SIGTERM)  # (during the shutdown): the process is not ended
            await asyncio.sleep(0)
            assert stop.is_set()
        finally:
            restore()

    asyncio.run(main())


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
