"""Namespace helpers for the netstack's interop tests: the shared ones (tests/netns.py) plus a kernel ping."""

from __future__ import annotations

import asyncio
import socket
import struct

from tests.netns import available, ip, namespace, run_in
from tests.netstack.builders import icmp

__all__ = ["available", "ip", "namespace", "ping", "run_in"]


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
