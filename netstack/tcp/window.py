"""Window arithmetic shared by every way a connection is opened: the formulas live here once.

Why one place: a passive open, a SYN-cookie open and an active open must agree on how large a receive buffer a
segment size implies (and, in `NewReno.start`, how large the first congestion window is); two copies of a
formula drift apart.
"""

from __future__ import annotations

from netstack.tcp.config import TcpConfig
from netstack.tcp.segment import MAX_WSCALE

MAX_RAW_WINDOW = 0xFFFF


def window_shift(buffer: int) -> int:
    """The smallest RFC 7323 shift whose largest window covers `buffer`: what our SYN announces."""
    shift = 0
    while (MAX_RAW_WINDOW << shift) < buffer and shift < MAX_WSCALE:
        shift += 1
    return shift


def receive_buffer_size(config: TcpConfig, segment: int) -> int:
    """The receive buffer rounded up to whole segments of `segment` bytes (header options included), as BSD
    does, so that a full window is a whole number of segments."""
    return -(-config.rcv_buffer // segment) * segment


__all__ = ["MAX_RAW_WINDOW", "receive_buffer_size", "window_shift"]
