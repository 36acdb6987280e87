"""An AF_PACKET socket bound to a NIC: the link inside the VM image, where the kernel has no IP stack at all.

Why AF_PACKET and not TAP there: the NIC (virtio-net) belongs to the guest kernel; a raw packet socket is the
only way to see its frames without the kernel's INET code, which the image leaves out.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import socket
import struct

from netstack.faults import FaultLog
from netstack.limits import LINK_MAX_FRAME, LINK_READ_BATCH
from netstack.link.base import FrameHandler, read_failed, write_frame
from netstack.reasons import Counters

logger = logging.getLogger(__name__)

ETH_P_ALL = 0x0003
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
SIOCGIFHWADDR = 0x8927
SIOCGIFMTU = 0x8921
SIOCGIFINDEX = 0x8933
IFF_UP = 0x1
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_MR_ALLMULTI = 2
PACKET_IGNORE_OUTGOING = 23
PACKET_OUTGOING = 4
_IFREQ_FLAGS = struct.Struct("16sH22x")
_IFREQ_MTU = struct.Struct("16si20x")  # also the layout of an ifindex request


class PacketLink:
    def __init__(self, ifname: str, mac: bytes | None = None) -> None:
        """Bind to ifname and bring it up; mac None means the NIC's own address, otherwise listen promiscuously."""
        self._counters = Counters()
        self._faults = FaultLog(logger)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            self._sock.setblocking(False)
            name = ifname.encode()
            flags = struct.unpack_from("16sH", fcntl.ioctl(self._sock, SIOCGIFFLAGS, _IFREQ_FLAGS.pack(name, 0)))[1]
            if not flags & IFF_UP:
                fcntl.ioctl(self._sock, SIOCSIFFLAGS, _IFREQ_FLAGS.pack(name, flags | IFF_UP))
            hw = fcntl.ioctl(self._sock, SIOCGIFHWADDR, struct.pack("16s16x", name))
            nic_mac = hw[18:24]
            self._mtu: int = _IFREQ_MTU.unpack(fcntl.ioctl(self._sock, SIOCGIFMTU, _IFREQ_MTU.pack(name, 0)))[1]
            self._sock.bind((ifname, ETH_P_ALL))
            # kernels before 4.20 lack the option: outgoing frames are filtered by packet type in _readable too
            with contextlib.suppress(OSError):
                self._sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            self._mac = mac if mac is not None else nic_mac
            # through our own socket: the image has no INET, so libc's helper sockets may not exist
            ifindex = _IFREQ_MTU.unpack(fcntl.ioctl(self._sock, SIOCGIFINDEX, _IFREQ_MTU.pack(name, 0)))[1]
            # IPv6 lives on multicast (neighbour solicitations to solicited-node groups, router advertisements
            # to all-nodes), and a NIC filters multicast to the groups its kernel joined: none, in the image,
            # whose kernel has no IPv6. So the NIC takes every group, and the stack keeps its own (accepts_mac).
            mode = PACKET_MR_PROMISC if self._mac != nic_mac else PACKET_MR_ALLMULTI
            self._sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, struct.pack("iHH8s", ifindex, mode, 0, b""))
        except OSError:
            self._sock.close()
            raise

    @property
    def mac(self) -> bytes:
        return self._mac

    @property
    def mtu(self) -> int:
        return self._mtu

    def start(self, on_frames: FrameHandler) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._sock.fileno(), lambda: self._readable(on_frames))

    def _readable(self, on_frames: FrameHandler) -> None:
        frames = []
        for _ in range(LINK_READ_BATCH):
            try:
                frame, address = self._sock.recvfrom(LINK_MAX_FRAME)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as error:  # ENETDOWN when the NIC goes down, for one
                read_failed(error, self._counters, self._faults)
                break
            if address[2] != PACKET_OUTGOING:
                frames.append(frame)
        if frames:
            on_frames(frames)

    def send(self, frame: bytes) -> None:
        write_frame(self._sock.fileno(), frame, self._counters)  # write(2) on a bound packet socket is send(2)

    def close(self) -> None:
        if self._sock.fileno() < 0:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()

    def stats(self) -> dict[str, int]:
        return self._counters.as_dict()
