"""UDP (RFC 768) over either family: the pseudo-header follows the address length (netstack/checksum.py).

Why IPv6 refuses a zero checksum: IPv6 has no header checksum, so the UDP checksum is the only thing that
guards the addresses and ports; RFC 8200 §8.1 makes it mandatory and tells receivers to drop a zero one.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from netstack.addresses6 import ADDRESS_LEN
from netstack.checksum import checksum, pseudo_header_sum
from netstack.errors import MalformedError
from netstack.ipv4 import PROTO_UDP
from netstack.reasons import Drop

HEADER_LEN = 8
_HEADER = struct.Struct("!HHHH")


@dataclass(frozen=True, slots=True)
class UdpDatagram:
    """A UDP datagram (RFC 768) whose length and checksum the parser has checked, so neither is kept. `payload` is
    a view into the packet, not a copy."""

    src_port: int
    dst_port: int
    payload: memoryview


def parse_udp(data: bytes | memoryview, src: bytes, dst: bytes) -> UdpDatagram:
    """The whole IP payload; its length field must match exactly (no trailing bytes)."""
    view = memoryview(data)
    if len(view) < HEADER_LEN:
        raise MalformedError(Drop.UDP_TRUNCATED, f"{len(view)} bytes")
    sport, dport, length, csum = _HEADER.unpack_from(view)
    if length != len(view):
        raise MalformedError(Drop.UDP_BAD_LENGTH, f"field {length}, have {len(view)}")
    if csum == 0:
        if len(src) == ADDRESS_LEN:
            raise MalformedError(Drop.UDP_BAD_CHECKSUM, "zero checksum over IPv6")
    elif checksum(view, pseudo_header_sum(src, dst, PROTO_UDP, length)) != 0:
        raise MalformedError(Drop.UDP_BAD_CHECKSUM)
    if dport == 0:
        raise MalformedError(Drop.UDP_BAD_PORT, f"{sport} -> {dport}")
    return UdpDatagram(sport, dport, view[HEADER_LEN:])


def serialize_udp(src: bytes, dst: bytes, src_port: int, dst_port: int, payload: bytes | memoryview) -> bytes:
    """Always with a checksum, whatever the family (a computed 0 is sent as 0xFFFF, RFC 768, RFC 8200 §8.1)."""
    length = HEADER_LEN + len(payload)
    if length > 0xFFFF or not 0 <= src_port <= 0xFFFF or not 0 < dst_port <= 0xFFFF:
        raise ValueError("UDP length or port out of range")
    datagram = bytearray(_HEADER.pack(src_port, dst_port, length, 0))
    datagram += payload
    csum = checksum(datagram, pseudo_header_sum(src, dst, PROTO_UDP, length)) or 0xFFFF
    struct.pack_into("!H", datagram, 6, csum)
    return bytes(datagram)
