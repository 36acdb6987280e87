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


def ts_clock(now: float, iss: int) -> int:
    """A connection's TSval at `now`: a millisecond clock plus an offset of its own derived from its ISS (RFC
    7323 recommends one, so that timestamps do not reveal the host's clock). A function of the ISS alone, so
    a SYN cookie's SYN-ACK, sent before any connection exists, carries the clock the connection will use."""
    return (int(now * 1000) + iss * 2654435761) & 0xFFFFFFFF


# SYN cookies carry the peer's window scale in the low bits of our SYN-ACK's TSval (Linux's
# cookie_init_timestamp), which the peer's ACK echoes: `COOKIE_NO_WSCALE` says it sent none.
COOKIE_TS_BITS = 0xF
COOKIE_NO_WSCALE = 0xF


def cookie_tsval(now: float, cookie: int, wscale: int | None) -> int:
    """Our TSval for a cookie SYN-ACK: the connection's clock with its low bits replaced by the peer's window
    scale, moved back rather than forward, so the connection's later TSvals never go below it (PAWS)."""
    clock = ts_clock(now, cookie)
    tsval = (clock & ~COOKIE_TS_BITS & 0xFFFFFFFF) | (COOKIE_NO_WSCALE if wscale is None else wscale)
    if (tsval - clock) & 0xFFFFFFFF < 0x80000000 and tsval != clock:
        tsval = (tsval - COOKIE_TS_BITS - 1) & 0xFFFFFFFF
    return tsval


def cookie_wscale(ts_ecr: int) -> int | None:
    """The peer's window scale a cookie SYN-ACK's TSval carried, from the TSecr of the ACK that returns it."""
    code = ts_ecr & COOKIE_TS_BITS
    return None if code == COOKIE_NO_WSCALE else min(code, MAX_WSCALE)


def cookie_receive_buffer(config: TcpConfig, mss: int, timestamps: bool, local_mss: int) -> int:
    """The receive buffer of a connection a cookie makes (whose window shift the cookie SYN-ACK announced
    before the connection existed): computed the same way at both moments. `local_mss` is the MSS we
    advertise on the connection's family (`TcpConfig.local_mss_for`)."""
    return receive_buffer_size(config, min(mss, local_mss) + (12 if timestamps else 0))


__all__ = ["COOKIE_NO_WSCALE", "MAX_RAW_WINDOW", "cookie_receive_buffer", "cookie_tsval", "cookie_wscale",
           "receive_buffer_size", "ts_clock", "window_shift"]
