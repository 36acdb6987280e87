"""ICMPv6 (RFC 4443): message codec, what an error carries, and the rules for when we may send one.

Why the sending rules live here and not in the stack: RFC 4443 §2.4(e) is what keeps an appliance on the open
internet from being a reflector (an error to a multicast group, or about someone's error, multiplies traffic
for whoever spoofed the source). Keeping the rule next to the codec means one function to review and test.
Neighbour discovery's messages (RFC 4861) are parsed with this codec but named in netstack/ndp.py.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from netstack import ipv6
from netstack.addresses6 import is_multicast, is_unicast_host
from netstack.checksum import checksum, pseudo_header_sum
from netstack.errors import MalformedError
from netstack.ipv6 import HEADER_LEN as IPV6_HEADER_LEN
from netstack.ipv6 import MAX_PAYLOAD, MIN_MTU, PROTO_ICMPV6
from netstack.reasons import Drop

DEST_UNREACHABLE = 1
PACKET_TOO_BIG = 2
TIME_EXCEEDED = 3
PARAMETER_PROBLEM = 4
ECHO_REQUEST = 128
ECHO_REPLY = 129
ERROR_TYPES = frozenset({DEST_UNREACHABLE, PACKET_TOO_BIG, TIME_EXCEEDED, PARAMETER_PROBLEM})
FIRST_INFORMATIONAL_TYPE = 128  # RFC 4443 §2.1: every type below is an error, known to us or not

# Destination Unreachable
CODE_NO_ROUTE = 0
CODE_ADMIN_PROHIBITED = 1
CODE_ADDRESS_UNREACHABLE = 3
CODE_PORT_UNREACHABLE = 4
# Time Exceeded
CODE_HOP_LIMIT_EXCEEDED = 0
CODE_REASSEMBLY_TIMEOUT = 1
# Parameter Problem
CODE_ERRONEOUS_FIELD = ipv6.CODE_ERRONEOUS_FIELD  # Parameter Problem codes: ipv6.py raises them, named there
CODE_UNRECOGNIZED_NEXT_HEADER = ipv6.CODE_UNRECOGNIZED_NEXT_HEADER
CODE_UNRECOGNIZED_OPTION = ipv6.CODE_UNRECOGNIZED_OPTION
CODE_INCOMPLETE_CHAIN = ipv6.CODE_INCOMPLETE_CHAIN  # RFC 7112

HEADER_LEN = 4  # type, code, checksum
MIN_LEN = 8  # every message RFC 4443 and RFC 4861 define has at least a 32-bit word after the header
ERROR_HEADER_LEN = HEADER_LEN + 4  # the word (unused, MTU or pointer) before the quoted packet
MAX_QUOTE = MIN_MTU - IPV6_HEADER_LEN - ERROR_HEADER_LEN  # RFC 4443 §2.4(c): the error fits the minimum MTU
_REDIRECT = 137  # RFC 4861 §4.5; named in netstack/ndp.py, needed here only because §2.4(e.2) names it
_HEADER = struct.Struct("!BBH")


@dataclass(frozen=True, slots=True)
class Icmp6Message:
    """An ICMPv6 message (RFC 4443 §2.1) whose checksum, over the pseudo-header too, has been verified. The body is
    left raw for whoever reads the type: the error accessors here, ndp.py for neighbour discovery, mld.py for MLD."""

    type: int
    code: int
    body: memoryview  # everything after type, code and checksum


def parse_icmpv6(data: bytes | memoryview, src: bytes, dst: bytes) -> Icmp6Message:
    """The whole IPv6 upper-layer payload; the checksum covers it and the pseudo-header (RFC 4443 §2.3)."""
    view = memoryview(data)
    if len(view) < MIN_LEN:
        raise MalformedError(Drop.ICMPV6_TRUNCATED, f"{len(view)} bytes")
    if checksum(view, pseudo_header_sum(src, dst, PROTO_ICMPV6, len(view))) != 0:
        raise MalformedError(Drop.ICMPV6_BAD_CHECKSUM)
    icmp_type, code, _ = _HEADER.unpack_from(view)
    return Icmp6Message(icmp_type, code, view[HEADER_LEN:])


def serialize_icmpv6(icmp_type: int, code: int, body: bytes | memoryview, src: bytes, dst: bytes) -> bytes:
    length = HEADER_LEN + len(body)
    if not MIN_LEN <= length <= MAX_PAYLOAD:
        raise ValueError("ICMPv6 message length out of range")
    message = bytearray(_HEADER.pack(icmp_type, code, 0))
    message += body
    struct.pack_into("!H", message, 2, checksum(message, pseudo_header_sum(src, dst, PROTO_ICMPV6, length)))
    return bytes(message)


def error_body(word: int, invoking_packet: bytes | memoryview) -> bytes:
    """The body of an error: the 32-bit word (unused, MTU or pointer), then as much of the invoking packet as
    keeps the whole error packet within the minimum MTU."""
    return struct.pack("!I", word) + bytes(invoking_packet[:MAX_QUOTE])


def packet_too_big_mtu(message: Icmp6Message) -> int | None:
    """The MTU a Packet Too Big reports, as it says it; None for other messages. A value below the IPv6
    minimum is passed on for the one who acts on it to refuse and count (RFC 8201 §4: the TCP layer)."""
    if message.type != PACKET_TOO_BIG:
        return None
    return int.from_bytes(message.body[:4], "big")


def quoted_packet(message: Icmp6Message) -> memoryview:
    """The invoking packet an error quotes (possibly cut short by the sender)."""
    if message.type >= FIRST_INFORMATIONAL_TYPE:
        raise ValueError(f"ICMPv6 type {message.type} is not an error")
    return message.body[4:]


def is_error(icmp_type: int) -> bool:
    return icmp_type < FIRST_INFORMATIONAL_TYPE


def suppresses_errors(icmp_type: int) -> bool:
    """RFC 4443 §2.4(e.1, e.2): no error is ever sent about an ICMPv6 error or a Redirect."""
    return is_error(icmp_type) or icmp_type == _REDIRECT


def error_allowed(
    *,
    invoking_src: bytes,
    invoking_dst: bytes,
    link_multicast: bool,
    invoking_is_error: bool,
    error_type: int,
    multicast_exempt: bool,
) -> bool:
    """RFC 4443 §2.4(e): whether an error of `error_type` may answer the invoking packet. `invoking_is_error`
    is `suppresses_errors(type)` of an invoking ICMPv6 message; `link_multicast` says the frame came to a
    link-layer multicast or broadcast address. Packet Too Big and the Parameter Problem for an option whose
    type asks for it (`multicast_exempt`) may answer a multicast destination; nothing answers a source that
    is not a unicast host address (it would go to a group, to nobody, or to a spoofed victim's loopback)."""
    if invoking_is_error or not is_unicast_host(invoking_src):
        return False
    exempt = error_type == PACKET_TOO_BIG or (error_type == PARAMETER_PROBLEM and multicast_exempt)
    return exempt or not (is_multicast(invoking_dst) or link_multicast)
