"""Ethernet II framing (IEEE 802.3 with a type field >= 0x0600): the outermost thing an attacker controls."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from netstack.errors import MalformedError
from netstack.reasons import Drop

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_IPV6 = 0x86DD
HEADER_LEN = 14
MIN_ETHERTYPE = 0x0600  # below this the field is an 802.3 length, not a type
_HEADER = struct.Struct("!6s6sH")


@dataclass(frozen=True, slots=True)
class EthernetFrame:
    """An Ethernet II frame: the addresses and the type that picks the network layer. `payload` is a view into the
    received frame, not a copy."""

    dst: bytes
    src: bytes
    ethertype: int
    payload: memoryview  # everything after the header; the network layer removes link padding itself


def parse_frame(frame: bytes | memoryview) -> EthernetFrame:
    """Split a frame; the payload is a view, not a copy. There are no trailing bytes at this layer."""
    if len(frame) < HEADER_LEN:
        raise MalformedError(Drop.ETH_TRUNCATED, f"{len(frame)} bytes")
    view = memoryview(frame)
    dst, src, ethertype = _HEADER.unpack_from(view)
    if ethertype < MIN_ETHERTYPE:
        raise MalformedError(Drop.ETH_NOT_ETHERNET_II, f"length field {ethertype}")
    return EthernetFrame(dst, src, ethertype, view[HEADER_LEN:])


def build_header(dst: bytes, src: bytes, ethertype: int) -> bytes:
    if len(dst) != 6 or len(src) != 6 or not MIN_ETHERTYPE <= ethertype <= 0xFFFF:
        raise ValueError("bad Ethernet header fields")
    return _HEADER.pack(dst, src, ethertype)


def serialize_frame(frame: EthernetFrame) -> bytes:
    return build_header(frame.dst, frame.src, frame.ethertype) + frame.payload
