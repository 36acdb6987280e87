"""Entry point. As PID 1 (inside the image) the init duties in `appliance.pid1` run first, and the
service's command line comes from what they found (the NIC, the data disk) when none was given."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import json
import os
import sys
import time
from collections.abc import Callable
from typing import NoReturn

# linux/reboot.h, as in appliance.pid1: repeated here because it is pid1 that could not be loaded.
_RB_AUTOBOOT = 0x01234567


def _libc_reboot() -> None:
    """Restart the VM (QEMU runs with -no-reboot, so this ends it); returns only if reboot(2) failed."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.sync()
    libc.reboot(ctypes.c_int(_RB_AUTOBOOT))


def _init_unavailable(exc: BaseException, reboot: Callable[[], None]) -> NoReturn:
    """PID 1 without its init duties would run unchecked (no mounts, no device check): refuse, say why on
    the console in the log's JSON-lines shape (appliance.log may be what is broken), and power off."""
    line = {"t": round(time.time(), 3), "event": "pid1.fatal", "error": type(exc).__name__, "detail": str(exc)[:500]}
    with contextlib.suppress(OSError, ValueError):  # a broken console must not stop the power-off
        print(json.dumps(line, separators=(",", ":")), flush=True)
    with contextlib.suppress(Exception):  # the exit below is the fallback for any failure here
        reboot()
    # reboot(2) failed or was not possible: exiting is all that is left (the kernel then panics, which is
    # loud, unlike carrying on without the checks).
    raise SystemExit("appliance: running as PID 1 but appliance.pid1 cannot be loaded")


def _init_if_pid1(argv: list[str], pid: int | None = None, reboot: Callable[[], None] = _libc_reboot) -> list[str]:
    if (os.getpid() if pid is None else pid) != 1:
        return argv
    try:
        pid1 = importlib.import_module("appliance.pid1")
    except Exception as exc:  # noqa: BLE001 - any failure to load init is fatal, whatever it is
        _init_unavailable(exc, reboot)
    info = pid1.boot()
    if not argv:
        return [str(arg) for arg in pid1.appliance_argv(info)]
    return argv


if __name__ == "__main__":
    gc.disable()  # until the appliance is ready: see appliance.main.settle_heap
    arguments = _init_if_pid1(sys.argv[1:])
    from appliance.main import main

    sys.exit(main(arguments))
