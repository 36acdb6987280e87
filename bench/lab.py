"""What benchmarks and tests share to run things for real: network namespaces (create, run code inside per
thread via setns, delete) and stopping a child process.

It lives in bench/ because benchmarks may not import tests/ (an import-linter contract, `.importlinter`):
the tests import it from here (`tests/netns.py` re-exports the namespace helpers under their old name).

Everything that sends real traffic in this project does so inside a namespace made here and deleted on the
way out, even when the test fails: that is how tests keep to loopback and their own addresses.

Why per-thread setns: a socket or TAP device belongs to the namespace of the thread that created it, so a
short-lived thread can create the kernel-side sockets (and our TAP device) inside the test's namespace while
the test itself, its event loop and its file descriptors stay where they are.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def available() -> bool:
    """Root, the TUN device and a working `ip netns`: what every namespace test needs."""
    return (
        os.geteuid() == 0 and os.path.exists("/dev/net/tun") and shutil.which("ip") is not None
        and subprocess.run(["ip", "netns", "list"], capture_output=True, check=False).returncode == 0
    )


@contextmanager
def namespace(prefix: str = "pns") -> Iterator[str]:
    """A fresh, uniquely named namespace with loopback up; deleted on exit even if the body failed."""
    name = f"{prefix}-{os.getpid()}-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        ip(name, "link", "set", "lo", "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def ip(ns: str, *args: str) -> str:
    """`ip -n NS ARGS...`, failing loudly; returns its output."""
    return subprocess.run(["ip", "-n", ns, *args], check=True, capture_output=True, text=True).stdout


def run_in(ns: str, fn: Callable[[], T]) -> T:
    """Call fn in a thread that has entered the namespace; return its result (or raise its exception)."""
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns failed")
            result.append(fn())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            error.append(exc)
        finally:
            os.close(fd)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within 10 s; either way it is reaped."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
