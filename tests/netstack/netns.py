"""Network namespaces for interop tests: create, run code inside (per thread, via setns), always delete.

Why per-thread setns: a socket or TAP device belongs to the namespace of the thread that created it, so a
short-lived thread can create the kernel-side sockets (and our TAP device) inside the test's namespace while
the test itself, its event loop and its file descriptors stay where they are.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import secrets
import socket
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from tests.netstack.builders import icmp

CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def available() -> bool:
    return os.geteuid() == 0 and os.path.exists("/dev/net/tun") and subprocess.run(
        ["ip", "netns", "list"], capture_output=True, check=False
    ).returncode == 0


@contextmanager
def namespace(prefix: str = "pns") -> Iterator[str]:
    """A fresh, uniquely named namespace with loopback up; deleted on exit even if the test failed."""
    name = f"{prefix}-{os.getpid()}-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        ip(name, "link", "set", "lo", "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def ip(ns: str, *args: str) -> str:
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


async def ping(sock: socket.socket, dst: str, ident: int, seq: int, payload: bytes, *, timeout: float = 3.0) -> bytes:
    """Send one echo request from a kernel raw ICMP socket and wait for the matching reply's payload."""
    loop = asyncio.get_running_loop()
    await loop.sock_sendto(sock, icmp(8, 0, struct.pack("!HH", ident, seq), payload), (dst, 0))

    async def wait() -> bytes:
        while True:
            packet = await loop.sock_recv(sock, 70000)
            message = packet[(packet[0] & 0x0F) * 4 :]
            if message[0] == 0 and message[4:8] == struct.pack("!HH", ident, seq):
                return message[8:]

    return await asyncio.wait_for(wait(), timeout)
