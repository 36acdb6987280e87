"""ICMP errors about our TCP segments: which connection and sequence number a quote names, and what kind of
error it is (RFC 5927, RFC 1122 4.2.3.9, RFC 1191). Pure functions: the layer finds the connection and acts.

Why apart: the quote is attacker-controlled bytes, parsed in the house's three steps (lengths, then fields,
then meaning); the layer's part is only the decision about a connection it holds.
"""

from __future__ import annotations

import enum
import struct

from netstack.tcp.counters import Count

_QUOTED_TCP = struct.Struct("!HHI")
UNREACHABLE = 3
TIME_EXCEEDED = 11
FRAG_NEEDED = 4
# Protocol and port unreachable, and administratively prohibited (net, host, communication).
HARD_UNREACHABLE_CODES = frozenset({2, 3, 9, 10, 13})
MIN_MTU = 68  # RFC 791: every IPv4 link carries at least this


class Kind(enum.Enum):
    """What an ICMP error means to a connection."""

    FRAG_NEEDED = enum.auto()   # path MTU discovery (RFC 1191)
    REFUSED = enum.auto()       # hard while connecting: unreachable protocol or port, or prohibited
    UNREACHABLE = enum.auto()   # hard while connecting: TTL exceeded in transit
    SOFT = enum.auto()          # remembered; the reason if a timeout ends the connection later
    IGNORED = enum.auto()


Quote = tuple[tuple[bytes, int, bytes, int], int]  # (connection key as the layer files it, quoted SEG.SEQ)


def parse_quote(quoted: bytes) -> Quote | Count:
    """The connection and sequence number an ICMP error's quote (our IPv4 header and at least 8 bytes of TCP)
    names, or why it names none."""
    if len(quoted) < 20:
        return Count.ICMP_SHORT_QUOTE
    ihl = (quoted[0] & 0x0F) * 4
    if quoted[0] >> 4 != 4 or ihl < 20 or quoted[9] != 6 or len(quoted) < ihl + 8:
        return Count.ICMP_BAD_QUOTE
    local = bytes(quoted[12:16])
    remote = bytes(quoted[16:20])
    src_port, dst_port, seq = _QUOTED_TCP.unpack_from(quoted, ihl)
    return (remote, dst_port, local, src_port), seq


def classify(icmp_type: int, icmp_code: int, *, connecting: bool, hard_errors: bool) -> Kind:
    """RFC 1122 4.2.3.9: only a few errors are hard, and (RFC 5927) only while connecting, when the attempt
    has a definite answer; once established every error is soft."""
    if icmp_type == UNREACHABLE and icmp_code == FRAG_NEEDED:
        return Kind.FRAG_NEEDED
    if icmp_type not in (UNREACHABLE, TIME_EXCEEDED):
        return Kind.IGNORED
    if connecting and hard_errors:
        if icmp_type == UNREACHABLE and icmp_code in HARD_UNREACHABLE_CODES:
            return Kind.REFUSED
        if icmp_type == TIME_EXCEEDED and icmp_code == 0:
            return Kind.UNREACHABLE
    return Kind.SOFT


__all__ = ["Kind", "Quote", "classify", "parse_quote"]
