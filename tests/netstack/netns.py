"""Namespace helpers for the netstack's interop tests: the shared ones (tests/netns.py) plus kernel pings."""

from __future__ import annotations

import asyncio
import socket
import struct

from tests.netns import available, ip, namespace, run_in
from tests.netstack.builders import icmp

__all__ = ["available", "ip", "namespace", "ping", "ping6", "run_in"]


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


async def ping6(sock: socket.socket, dst: str, ident: int, seq: int, payload: bytes, *, scope_id: int = 0,
                timeout: float = 3.0) -> bytes:
    """`ping` over IPv6 from a kernel raw ICMPv6 socket (the kernel fills in the checksum and strips the IPv6
    header of what it receives); waits for the matching echo reply's payload. `scope_id` is the interface
    index a link-local destination needs."""
    loop = asyncio.get_running_loop()
    request = struct.pack("!BBHHH", 128, 0, 0, ident, seq) + payload
    await loop.run_in_executor(None, sock.sendto, request, (dst, 0, 0, scope_id))

    async def wait() -> bytes:
        while True:
            message = await loop.sock_recv(sock, 70000)
            if message[0] == 129 and message[4:8] == struct.pack("!HH", ident, seq):
                return message[8:]

    return await asyncio.wait_for(wait(), timeout)
