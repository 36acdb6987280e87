"""ICMP and ICMPv6 errors about our TCP segments: which connection and sequence number a quote names, and what
kind of error it is (RFC 5927, RFC 1122 4.2.3.9, RFC 1191; RFC 4443, RFC 8201). Pure functions: the layer finds
the connection and acts.

Why apart: the quote is attacker-controlled bytes, parsed in the house's three steps (lengths, then fields,
then meaning); the layer's part is only the decision about a connection it holds.

Which family an error belongs to is read from the quote's version nibble, never from the type: the two
numberings overlap (3 is destination unreachable in ICMP and time exceeded in ICMPv6; 4 is source quench and
parameter problem), so `classify` reads ICMP numbers and `classify6` ICMPv6 ones, and the layer picks by the
family of the connection the quote names.
"""

from __future__ import annotations

import enum
import struct

from netstack.tcp.counters import Count

_QUOTED_TCP = struct.Struct("!HHI")
_PROTO_TCP = 6

# ICMP (RFC 792)
UNREACHABLE = 3
TIME_EXCEEDED = 11
FRAG_NEEDED = 4
# Protocol and port unreachable, and administratively prohibited (net, host, communication).
HARD_UNREACHABLE_CODES = frozenset({2, 3, 9, 10, 13})
MIN_MTU = 68  # RFC 791: every IPv4 link carries at least this

# ICMPv6 (RFC 4443 §3)
UNREACHABLE6 = 1
PACKET_TOO_BIG6 = 2
TIME_EXCEEDED6 = 3
PARAMETER_PROBLEM6 = 4
# Destination unreachable codes that answer a connection attempt for good, as their ICMP counterparts do:
# 1 administratively prohibited, 4 port unreachable, 5 source address failed ingress/egress policy and 6 reject
# route to destination (RFC 4443 §3.1 likens both to "prohibited"). 0 no route, 2 beyond the scope of the
# source address and 3 address unreachable stay soft, like ICMP's net and host unreachable.
HARD_UNREACHABLE_CODES6 = frozenset({1, 4, 5, 6})
UNRECOGNIZED_NEXT_HEADER = 1  # parameter problem code: IPv6's "protocol unreachable"
IPV6_HEADER_LEN = 40


class Kind(enum.Enum):
    """What an ICMP error means to a connection."""

    FRAG_NEEDED = enum.auto()   # path MTU discovery (RFC 1191; ICMPv6 packet too big, RFC 8201)
    REFUSED = enum.auto()       # hard while connecting: unreachable protocol or port, or prohibited
    UNREACHABLE = enum.auto()   # hard while connecting: TTL (hop limit) exceeded in transit
    SOFT = enum.auto()          # remembered; the reason if a timeout ends the connection later
    IGNORED = enum.auto()


Quote = tuple[tuple[bytes, int, bytes, int], int]  # (connection key as the layer files it, quoted SEG.SEQ)


def parse_quote(quoted: bytes) -> Quote | Count:
    """The connection and sequence number an ICMP error's quote (our IP header and at least 8 bytes of TCP)
    names, or why it names none. The addresses come back 4 bytes long from an IPv4 quote and 16 from an IPv6
    one, so the key says the family."""
    if len(quoted) < 20:
        return Count.ICMP_SHORT_QUOTE
    if quoted[0] >> 4 == 6:
        return _parse_quote6(quoted)
    ihl = (quoted[0] & 0x0F) * 4
    if quoted[0] >> 4 != 4 or ihl < 20 or quoted[9] != _PROTO_TCP or len(quoted) < ihl + 8:
        return Count.ICMP_BAD_QUOTE
    local = bytes(quoted[12:16])
    remote = bytes(quoted[16:20])
    src_port, dst_port, seq = _QUOTED_TCP.unpack_from(quoted, ihl)
    return (remote, dst_port, local, src_port), seq


def _parse_quote6(quoted: bytes) -> Quote | Count:
    """An IPv6 quote: the 40-byte header, then TCP at once. We never send extension headers, so a quote whose
    next header is anything but TCP quotes a packet that was not ours (`ICMP6_QUOTE_NOT_TCP`); walking a chain
    of headers an attacker wrote would only cost us time for nothing."""
    if len(quoted) < IPV6_HEADER_LEN + 8:
        return Count.ICMP_BAD_QUOTE
    if quoted[6] != _PROTO_TCP:
        return Count.ICMP6_QUOTE_NOT_TCP
    local = bytes(quoted[8:24])
    remote = bytes(quoted[24:40])
    src_port, dst_port, seq = _QUOTED_TCP.unpack_from(quoted, IPV6_HEADER_LEN)
    return (remote, dst_port, local, src_port), seq


def classify(icmp_type: int, icmp_code: int, *, connecting: bool, hard_errors: bool) -> Kind:
    """An ICMP (IPv4) error. RFC 1122 4.2.3.9: only a few errors are hard, and (RFC 5927) only while
    connecting, when the attempt has a definite answer; once established every error is soft."""
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


def classify6(icmp_type: int, icmp_code: int, *, connecting: bool, hard_errors: bool) -> Kind:
    """An ICMPv6 error, by the rules `classify` applies to ICMP (RFC 5927, RFC 5461): packet too big is path
    MTU discovery whatever the code; unreachable and time exceeded are soft, except the codes that mirror
    ICMP's hard ones while connecting. A parameter problem is ignored as ICMP's is, except the one that
    says the destination does not speak TCP (unrecognized next header), which is ICMP's protocol
    unreachable."""
    if icmp_type == PACKET_TOO_BIG6:
        return Kind.FRAG_NEEDED
    if icmp_type == PARAMETER_PROBLEM6:
        if icmp_code != UNRECOGNIZED_NEXT_HEADER:
            return Kind.IGNORED
        return Kind.REFUSED if connecting and hard_errors else Kind.SOFT
    if icmp_type not in (UNREACHABLE6, TIME_EXCEEDED6):
        return Kind.IGNORED
    if connecting and hard_errors:
        if icmp_type == UNREACHABLE6 and icmp_code in HARD_UNREACHABLE_CODES6:
            return Kind.REFUSED
        if icmp_type == TIME_EXCEEDED6 and icmp_code == 0:
            return Kind.UNREACHABLE
    return Kind.SOFT


__all__ = ["Kind", "Quote", "classify", "classify6", "parse_quote"]
