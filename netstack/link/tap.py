"""A Linux TAP device (/dev/net/tun with IFF_TAP | IFF_NO_PI): the host-side link for tests and benchmarks.

The kernel owns the other end of the device (its own MAC and IP addresses); our stack is a separate host on
that wire with its own MAC, which the caller chooses.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import struct

from netstack.faults import FaultLog
from netstack.link.base import FrameHandler, read_batch, write_frame
from netstack.reasons import Counters

logger = logging.getLogger(__name__)

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
_IFREQ = struct.Struct("16sH22x")


class TapLink:
    def __init__(self, name: str, mac: bytes, mtu: int = 1500) -> None:
        if len(name.encode()) >= 16:
            raise ValueError("interface names are at most 15 bytes")
        self._mac = mac
        self._mtu = mtu
        self._counters = Counters()
        self._faults = FaultLog(logger)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            result = fcntl.ioctl(self._fd, TUNSETIFF, _IFREQ.pack(name.encode(), IFF_TAP | IFF_NO_PI))
        except OSError:
            os.close(self._fd)
            raise
        self.name = _IFREQ.unpack(result)[0].rstrip(b"\0").decode()

    @property
    def mac(self) -> bytes:
        return self._mac

    @property
    def mtu(self) -> int:
        return self._mtu

    def fileno(self) -> int:
        return self._fd

    def start(self, on_frames: FrameHandler) -> None:
        self._loop = asyncio.get_running_loop()

        def readable() -> None:
            frames = read_batch(self._fd, self._counters, self._faults)
            if frames:
                on_frames(frames)

        self._loop.add_reader(self._fd, readable)

    def send(self, frame: bytes) -> None:
        write_frame(self._fd, frame, self._counters)

    def close(self) -> None:
        if self._fd < 0:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._fd)
        os.close(self._fd)
        self._fd = -1

    def stats(self) -> dict[str, int]:
        return self._counters.as_dict()
