"""Clients that behave as the attack tools do, shared by the tests of every layer."""

from __future__ import annotations

import socket


def send_all_then_read(port: int, payload: bytes, timeout: float = 30.0) -> tuple[str | None, bytes, str | None]:
    """A client as the tools are: send all of `payload`, shut down writing, then read to the end of the stream.
    Returns what failed while sending (an exception's name, or None), what was read, and what failed while
    reading: a peer that closes on us with our bytes unread resets the connection, and a tool then reports
    that instead of the answer it was sent."""
    send_error = read_error = None
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            send_error = type(exc).__name__
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except OSError as exc:
            read_error = type(exc).__name__
    return send_error, received, read_error
