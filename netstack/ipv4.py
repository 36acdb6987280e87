"""The IPv4 header (RFC 791, RFC 1122): parse in three steps, build from a precomputed template.

Options are walked only to check that they are well formed and to refuse source routing (RFC 1122 3.2.1.8 lets
a host drop them, and a host that is not a router has no use for them); otherwise they are ignored.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from netstack.checksum import checksum
from netstack.errors import MalformedError
from netstack.limits import IPV4_MAX_DATAGRAM
from netstack.reasons import Drop

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
MIN_HEADER_LEN = 20
FLAG_RESERVED = 0x8000
FLAG_DF = 0x4000
FLAG_MF = 0x2000
OFFSET_MASK = 0x1FFF

_HEADER = struct.Struct("!BBHHHBBH4s4s")
_OPT_EOL = 0
_OPT_NOP = 1
_OPT_LSRR = 131
_OPT_SSRR = 137


@dataclass(frozen=True, slots=True)
class Ipv4Header:
    """An IPv4 header (RFC 791) that passed the parser's checks (version, lengths, checksum, reserved flag,
    options). The options themselves are not kept; `header_len` says how many bytes they took."""

    header_len: int
    tos: int
    total_length: int
    ident: int
    dont_fragment: bool
    more_fragments: bool
    fragment_offset: int  # in bytes (the field times 8)
    ttl: int
    protocol: int
    src: bytes
    dst: bytes

    @property
    def is_fragment(self) -> bool:
        return self.more_fragments or self.fragment_offset != 0


def strip_link_padding(payload: memoryview) -> memoryview:
    """Ethernet pads short frames to 60 bytes; the IPv4 total length says where the datagram really ends."""
    if len(payload) < 4:
        raise MalformedError(Drop.IPV4_TRUNCATED, f"{len(payload)} bytes")
    total = (payload[2] << 8) | payload[3]
    if total < len(payload):
        return payload[:total]
    return payload


def parse_ipv4(packet: bytes | memoryview) -> tuple[Ipv4Header, memoryview]:
    """One whole datagram (or fragment): header and payload view. Trailing bytes are an error here."""
    view = memoryview(packet)
    # integrity
    if len(view) < MIN_HEADER_LEN:
        raise MalformedError(Drop.IPV4_TRUNCATED, f"{len(view)} bytes")
    vihl, tos, total, ident, frag, ttl, proto, _, src, dst = _HEADER.unpack_from(view)
    if vihl >> 4 != 4:
        raise MalformedError(Drop.IPV4_BAD_VERSION, str(vihl >> 4))
    header_len = (vihl & 0x0F) * 4
    if header_len < MIN_HEADER_LEN or header_len > len(view):
        raise MalformedError(Drop.IPV4_BAD_HEADER_LENGTH, str(header_len))
    if total != len(view) or total < header_len:
        raise MalformedError(Drop.IPV4_BAD_TOTAL_LENGTH, f"field {total}, have {len(view)}")
    if checksum(view[:header_len]) != 0:
        raise MalformedError(Drop.IPV4_BAD_CHECKSUM)
    # parse
    header = Ipv4Header(
        header_len, tos, total, ident, bool(frag & FLAG_DF), bool(frag & FLAG_MF),
        (frag & OFFSET_MASK) * 8, ttl, proto, src, dst,
    )  # fmt: skip
    # sanity
    if frag & FLAG_RESERVED:
        raise MalformedError(Drop.IPV4_RESERVED_FLAG)
    if header.fragment_offset + total - header_len > IPV4_MAX_DATAGRAM - header_len:
        raise MalformedError(Drop.IPV4_OVERSIZE, f"fragment ends at {header.fragment_offset + total - header_len}")
    if header_len > MIN_HEADER_LEN:
        check_options(view[MIN_HEADER_LEN:header_len])
    return header, view[header_len:]


def check_options(options: memoryview) -> None:
    """Refuse malformed option lists and source routes; every other option is skipped unread."""
    i = 0
    n = len(options)
    while i < n:
        kind = options[i]
        if kind == _OPT_EOL:
            return
        if kind == _OPT_NOP:
            i += 1
            continue
        if i + 1 >= n:
            raise MalformedError(Drop.IPV4_BAD_OPTIONS, f"option {kind} without length")
        length = options[i + 1]
        if length < 2 or i + length > n:
            raise MalformedError(Drop.IPV4_BAD_OPTIONS, f"option {kind} length {length}")
        if kind in (_OPT_LSRR, _OPT_SSRR):
            raise MalformedError(Drop.IPV4_SOURCE_ROUTE)
        i += length


def build_header(
    src: bytes,
    dst: bytes,
    protocol: int,
    payload_len: int,
    ident: int,
    *,
    ttl: int,
    dont_fragment: bool = False,
    more_fragments: bool = False,
    fragment_offset: int = 0,
    tos: int = 0,
) -> bytearray:
    """A 20-byte header (we never send options) with its checksum filled in."""
    total = MIN_HEADER_LEN + payload_len
    if total > IPV4_MAX_DATAGRAM or fragment_offset % 8 or not 0 <= fragment_offset <= OFFSET_MASK * 8:
        raise ValueError("IPv4 datagram or fragment offset out of range")
    frag = (fragment_offset // 8) | (FLAG_DF if dont_fragment else 0) | (FLAG_MF if more_fragments else 0)
    header = bytearray(_HEADER.pack(0x45, tos, total, ident & 0xFFFF, frag, ttl, protocol, 0, src, dst))
    struct.pack_into("!H", header, 10, checksum(header))
    return header


def serialize_ipv4(header: Ipv4Header, payload: bytes | memoryview) -> bytes:
    """Inverse of parse_ipv4 for option-less headers (used by tests and when quoting datagrams)."""
    return bytes(
        build_header(
            header.src, header.dst, header.protocol, len(payload), header.ident, ttl=header.ttl,
            dont_fragment=header.dont_fragment, more_fragments=header.more_fragments,
            fragment_offset=header.fragment_offset, tos=header.tos,
        )
    ) + bytes(payload)  # fmt: skip
