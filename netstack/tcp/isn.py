"""Initial sequence numbers (RFC 6528) and SYN cookies: both are keyed hashes of the connection 4-tuple.

ISN = M + F(4-tuple, secret), M a 4-microsecond clock: unpredictable to an off-path attacker yet monotonic per
4-tuple, so a new incarnation starts above the old one's sequence space.

A SYN cookie is the ISN of a SYN-ACK for which no state is kept: 5 bits of a 64-second counter, 3 bits of MSS
index and 24 bits of keyed hash over the 4-tuple, the counter and the peer's ISN. The returning ACK proves the
peer saw our SYN-ACK (so it is not a spoofed source). Window scaling and timestamps are not in the cookie: when
the peer offers timestamps, its window scale rides in our TSval instead (netstack/tcp/window.py, as Linux).

Both families: the 4-tuple is hashed with 4-byte addresses for IPv4 and 16-byte ones for IPv6, so the two
encodings differ in length and no IPv4 tuple hashes like an IPv6 one (an IPv4-mapped address included): a
cookie minted for one family or address checks out for no other. The IPv4 encoding is what it always was.
A mixed or unknown pair is a caller's bug (ValueError): `struct` would silently cut a 16-byte address to 4.
"""

from __future__ import annotations

import hashlib
import struct

_TUPLE = struct.Struct("!4sH4sH")
_COOKIE_INPUT = struct.Struct("!4sH4sHII")
_TUPLE6 = struct.Struct("!16sH16sH")
_COOKIE_INPUT6 = struct.Struct("!16sH16sHII")

COOKIE_PERIOD = 64.0
COOKIE_LIFETIME = 2 * COOKIE_PERIOD  # the longest a cookie checks out (`check_cookie` takes two counters)
COOKIE_MSS = (536, 1024, 1220, 1360, 1400, 1440, 1452, 1460)


def _tuple_struct(local: bytes, remote: bytes, v4: struct.Struct, v6: struct.Struct) -> struct.Struct:
    size = len(local)
    if size == len(remote):
        if size == 4:
            return v4
        if size == 16:
            return v6
    raise ValueError("a 4-tuple needs two IPv4 or two IPv6 addresses")


class IsnGenerator:
    """RFC 6528 generator; `secret` comes from the caller's random source, `now` from the caller's clock."""

    __slots__ = ("_cookie_keyed", "_isn_keyed")

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("ISN secret must be at least 16 bytes")
        # Keyed once: each hash copies the keyed state rather than keying a new one (half the cost, and this
        # runs for every connection, every ephemeral port and every cookie).
        self._isn_keyed = hashlib.blake2s(key=secret[:32], digest_size=4)
        self._cookie_keyed = hashlib.blake2s(key=secret[:32], digest_size=3, person=b"syncooki")

    def isn(self, now: float, local: bytes, local_port: int, remote: bytes, remote_port: int) -> int:
        h = self._isn_keyed.copy()
        h.update(_tuple_struct(local, remote, _TUPLE, _TUPLE6).pack(local, local_port, remote, remote_port))
        digest = h.digest()
        clock = int(now * 250_000)  # 4 microsecond ticks
        return (clock + int.from_bytes(digest, "big")) & 0xFFFFFFFF

    def _cookie_hash(self, counter: int, local: bytes, local_port: int, remote: bytes, remote_port: int,  # noqa: PLR0917
                     peer_isn: int) -> int:
        h = self._cookie_keyed.copy()
        packer = _tuple_struct(local, remote, _COOKIE_INPUT, _COOKIE_INPUT6)
        h.update(packer.pack(local, local_port, remote, remote_port, counter & 0xFFFFFFFF, peer_isn))
        return int.from_bytes(h.digest(), "big")

    def make_cookie(self, now: float, local: bytes, local_port: int, remote: bytes, remote_port: int,  # noqa: PLR0917
                    peer_isn: int, peer_mss: int) -> tuple[int, int]:
        """(cookie ISN, MSS actually encoded): the largest table MSS not above the peer's."""
        index = max((i for i, m in enumerate(COOKIE_MSS) if m <= peer_mss), default=0)
        counter = int(now // COOKIE_PERIOD)
        h = self._cookie_hash(counter, local, local_port, remote, remote_port, peer_isn)
        return ((counter & 31) << 27) | (index << 24) | h, COOKIE_MSS[index]

    def check_cookie(self, now: float, local: bytes, local_port: int, remote: bytes, remote_port: int,  # noqa: PLR0917
                     peer_isn: int, cookie: int) -> int | None:
        """The MSS encoded in `cookie` if it is one we issued in the last two periods, else None."""
        counter = int(now // COOKIE_PERIOD)
        for candidate in (counter, counter - 1):
            if (candidate & 31) != cookie >> 27:
                continue
            if self._cookie_hash(candidate, local, local_port, remote, remote_port, peer_isn) == cookie & 0xFFFFFF:
                return COOKIE_MSS[(cookie >> 24) & 7]
        return None
