"""ICMP for IPv4 (RFC 792, RFC 1122 3.2.2): message codec and the rules for when we may send an error."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from netstack.checksum import checksum
from netstack.errors import MalformedError
from netstack.reasons import Drop

ECHO_REPLY = 0
DEST_UNREACHABLE = 3
SOURCE_QUENCH = 4
REDIRECT = 5
ECHO_REQUEST = 8
TIME_EXCEEDED = 11
PARAMETER_PROBLEM = 12
ERROR_TYPES = frozenset({DEST_UNREACHABLE, SOURCE_QUENCH, TIME_EXCEEDED, PARAMETER_PROBLEM})
# RFC 1122 §3.2.2's error messages, which no ICMP error may answer: ERROR_TYPES and Redirect (which a host ignores)
SUPPRESSES_ERRORS = ERROR_TYPES | {REDIRECT}

CODE_PROTOCOL_UNREACHABLE = 2
CODE_PORT_UNREACHABLE = 3
CODE_FRAGMENTATION_NEEDED = 4
CODE_REASSEMBLY_TIME_EXCEEDED = 1  # Time Exceeded code 1 (RFC 792)

HEADER_LEN = 8
_HEADER = struct.Struct("!BBH4s")


@dataclass(frozen=True, slots=True)
class IcmpMessage:
    """An ICMP message (RFC 792) whose checksum has been verified. `rest` is kept raw because its meaning depends on
    the type; `body` is a view, not a copy."""

    type: int
    code: int
    rest: bytes  # the 4 header bytes after the checksum: echo id+seq, or unused + next-hop MTU
    body: memoryview


def parse_icmp(data: bytes | memoryview) -> IcmpMessage:
    """The whole ICMP message (IPv4 payload); the checksum covers all of it."""
    view = memoryview(data)
    if len(view) < HEADER_LEN:
        raise MalformedError(Drop.ICMP_TRUNCATED, f"{len(view)} bytes")
    if checksum(view) != 0:
        raise MalformedError(Drop.ICMP_BAD_CHECKSUM)
    icmp_type, code, _, rest = _HEADER.unpack_from(view)
    return IcmpMessage(icmp_type, code, rest, view[HEADER_LEN:])


def serialize_icmp(icmp_type: int, code: int, rest: bytes, body: bytes | memoryview) -> bytes:
    if len(rest) != 4:
        raise ValueError("ICMP rest-of-header is 4 bytes")
    message = bytearray(_HEADER.pack(icmp_type, code, 0, rest))
    message += body
    struct.pack_into("!H", message, 2, checksum(message))
    return bytes(message)


def next_hop_mtu(message: IcmpMessage) -> int | None:
    """RFC 1191: the MTU carried by 'fragmentation needed'; None when absent or for other messages."""
    if message.type != DEST_UNREACHABLE or message.code != CODE_FRAGMENTATION_NEEDED:
        return None
    mtu = int.from_bytes(message.rest[2:4], "big")
    return mtu or None
