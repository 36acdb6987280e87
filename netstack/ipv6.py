"""IPv6 (RFC 8200): the fixed header, and the one walk over the extension headers a host has to understand.

Why one walker rather than a codec per extension header: the headers are a linked list whose meaning depends
on position (hop-by-hop only first, a destination options header on either side of a routing header, nothing
read behind a non-first fragment header), and every error must name its byte in the original packet for the
ICMPv6 Parameter Problem. A walker that keeps the position and the limits in one place gets both right.

What the walk decides is what RFC 8200 decides: cases that deserve a Parameter Problem raise
`ParameterProblemError` (a MalformedError, so an uncaught one is still a counted drop); the silent drops raise
plain MalformedError. Unknown upper-layer protocols are not its business: the stack knows what it handles.

Bounds (RFC 8504 §5.3, `Ipv6Limits`): how many headers, how many bytes of them, how many options per header
and how much consecutive padding. Past any of them the packet is dropped without an ICMPv6 error.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import NoReturn

from netstack.addresses6 import ADDRESS_LEN, is_multicast
from netstack.errors import MalformedError
from netstack.limits import Ipv6Limits
from netstack.reasons import Drop

HEADER_LEN = 40
MIN_MTU = 1280  # RFC 8200 §5: every link carries this much; ICMPv6 errors never exceed it
MAX_PAYLOAD = 0xFFFF  # the payload length field; we never accept jumbograms (RFC 2675)
PROTO_HOP_BY_HOP = 0
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ROUTING = 43
PROTO_FRAGMENT = 44
PROTO_ICMPV6 = 58
PROTO_NO_NEXT = 59
PROTO_DEST_OPTS = 60
FRAGMENT_HEADER_LEN = 8

DEFAULT_LIMITS = Ipv6Limits()

_HEADER = struct.Struct("!IHBB16s16s")
_FRAGMENT = struct.Struct("!BxHI")
_NEXT_HEADER_FIELD = 6  # the fixed header's next-header byte
_PAYLOAD_LENGTH_FIELD = 4
_MIN_LINK_PAYLOAD = 46  # Ethernet pads every frame's payload up to this
_WALKED = frozenset({PROTO_HOP_BY_HOP, PROTO_ROUTING, PROTO_FRAGMENT, PROTO_DEST_OPTS})
_PAD1 = 0
_PADN = 1
_JUMBO = 0xC2
# Parameter Problem codes (RFC 4443 §3.4, RFC 7112): raised here, so named here (icmpv6.py re-exports them)
CODE_ERRONEOUS_FIELD = 0
CODE_UNRECOGNIZED_NEXT_HEADER = 1
CODE_UNRECOGNIZED_OPTION = 2
CODE_INCOMPLETE_CHAIN = 3
# The destination options header may sit once on each side of a routing header: the second one is told apart
# from the first by a slot number no next-header value uses.
_DEST_OPTS_AFTER_ROUTING = 0x100


class ParameterProblemError(MalformedError):
    """A drop that RFC 8200 answers with an ICMPv6 Parameter Problem. `pointer` is the offset of the faulty
    byte from the start of the IPv6 header (RFC 4443 §3.4); `multicast_exempt` marks an unrecognized option
    whose type says "answer even a multicast destination" (RFC 4443 §2.4(e.3))."""

    def __init__(self, reason: Drop, detail: str, *, code: int, pointer: int, multicast_exempt: bool = False) -> None:
        super().__init__(reason, detail)
        self.code = code
        self.pointer = pointer
        self.multicast_exempt = multicast_exempt


@dataclass(frozen=True, slots=True)
class Ipv6Header:
    """The IPv6 fixed header (RFC 8200 §3), its version checked by the parser. Every other field is kept so that
    `serialize_ipv6` can write the packet back out, as reassembly does to quote a timed-out first fragment."""

    traffic_class: int
    flow_label: int
    payload_length: int
    next_header: int
    hop_limit: int
    src: bytes
    dst: bytes


@dataclass(frozen=True, slots=True)
class FragmentHeader:
    """The Fragment header (RFC 8200 §4.5), as the walk finds it and as the stack writes it when it fragments;
    `offset` is in bytes so that reassembly compares it with lengths directly."""

    next_header: int
    offset: int  # in bytes (the field times 8)
    more: bool
    ident: int


@dataclass(frozen=True, slots=True)
class HeaderChain:
    """What a walk found. Offsets are into the IPv6 payload; pointers are from the start of the IPv6 header."""

    upper: int  # the first next-header value the walk does not follow (6, 17, 58, 59 or anything unknown)
    upper_offset: int  # where that header starts (for a non-first fragment: where the fragment data starts)
    fragment: FragmentHeader | None
    fragment_header_offset: int  # = length of the unfragmentable headers; -1 without a fragment header
    extension_headers: int
    upper_pointer: int  # the next-header field that named `upper`
    fragment_pointer: int  # the next-header field that named the fragment header; -1 without one


def strip_link_padding(payload: memoryview) -> memoryview:
    """Ethernet pads short frames; the payload length says where the packet really ends. A zero payload length
    with more bytes than padding explains is a jumbogram: it is left whole so that parse_ipv6 refuses it."""
    if len(payload) < HEADER_LEN:
        raise MalformedError(Drop.IPV6_TRUNCATED, f"{len(payload)} bytes")
    length = (payload[_PAYLOAD_LENGTH_FIELD] << 8) | payload[_PAYLOAD_LENGTH_FIELD + 1]
    if length == 0 and len(payload) > _MIN_LINK_PAYLOAD:
        return payload
    end = HEADER_LEN + length
    if end < len(payload):
        return payload[:end]
    return payload


def parse_ipv6(packet: bytes | memoryview) -> tuple[Ipv6Header, memoryview]:
    """One whole packet (or fragment): header and payload view. Trailing bytes are an error here."""
    view = memoryview(packet)
    if len(view) < HEADER_LEN:
        raise MalformedError(Drop.IPV6_TRUNCATED, f"{len(view)} bytes")
    word, length, next_header, hop_limit, src, dst = _HEADER.unpack_from(view)
    if word >> 28 != 6:
        raise MalformedError(Drop.IPV6_BAD_VERSION, str(word >> 28))
    if length == 0 and len(view) > HEADER_LEN:
        raise MalformedError(Drop.IPV6_JUMBOGRAM, f"{len(view) - HEADER_LEN} bytes behind a zero payload length")
    if length != len(view) - HEADER_LEN:
        raise MalformedError(Drop.IPV6_BAD_PAYLOAD_LENGTH, f"field {length}, have {len(view) - HEADER_LEN}")
    header = Ipv6Header((word >> 20) & 0xFF, word & 0xFFFFF, length, next_header, hop_limit, src, dst)
    return header, view[HEADER_LEN:]


def build_header(
    src: bytes,
    dst: bytes,
    next_header: int,
    payload_len: int,
    *,
    hop_limit: int,
    traffic_class: int = 0,
    flow_label: int = 0,
) -> bytes:
    if len(src) != ADDRESS_LEN or len(dst) != ADDRESS_LEN:
        raise ValueError("IPv6 addresses are 16 bytes")
    if not (0 <= payload_len <= MAX_PAYLOAD and 0 <= flow_label <= 0xFFFFF and 0 <= traffic_class <= 0xFF
            and 0 <= hop_limit <= 0xFF and 0 <= next_header <= 0xFF):
        raise ValueError("IPv6 header field out of range")
    word = (6 << 28) | (traffic_class << 20) | flow_label
    return _HEADER.pack(word, payload_len, next_header, hop_limit, src, dst)


def serialize_fragment_header(fragment: FragmentHeader) -> bytes:
    """The 8-byte fragment header (RFC 8200 §4.5); the offset is in bytes and must be a multiple of 8."""
    if fragment.offset % 8 or not 0 <= fragment.offset <= 0xFFF8 or not 0 <= fragment.ident <= 0xFFFFFFFF:
        raise ValueError("fragment offset or identification out of range")
    return _FRAGMENT.pack(fragment.next_header, fragment.offset | int(fragment.more), fragment.ident)


def serialize_ipv6(header: Ipv6Header, payload: bytes | memoryview) -> bytes:
    """Inverse of parse_ipv6; the payload length comes from the payload, as it does for IPv4."""
    return build_header(
        header.src, header.dst, header.next_header, len(payload), hop_limit=header.hop_limit,
        traffic_class=header.traffic_class, flow_label=header.flow_label,
    ) + bytes(payload)  # fmt: skip


@dataclass(slots=True)
class _Walk:
    """The walk's position: kept in one object so that each header's check is a small function."""

    payload: memoryview
    limits: Ipv6Limits
    dst_multicast: bool
    reassembled: bool
    start: int = 0  # where the header being checked starts
    offset: int = 0  # where the next header starts
    pointer: int = _NEXT_HEADER_FIELD  # the next-header field naming the header at `offset`
    count: int = 0
    total: int = 0  # bytes of extension headers so far
    seen: set[int] = field(default_factory=set)
    behind_first_fragment: bool = False  # truncation here is RFC 7112's incomplete chain, not a plain one
    fragment: FragmentHeader | None = None
    fragment_header_offset: int = -1
    fragment_pointer: int = -1


def walk(
    header: Ipv6Header, payload: memoryview, limits: Ipv6Limits = DEFAULT_LIMITS, *, reassembled: bool = False
) -> HeaderChain:
    """Check every extension header up to the upper layer (or up to a non-first fragment's data).

    `reassembled` says the payload came out of the reassembler: a fragment header there is refused, because
    fragments of fragments are only ever an attack on the reassembler.
    """
    next_header = header.next_header
    if next_header not in _WALKED:  # the common case, no extension header: nothing to walk
        return HeaderChain(next_header, 0, None, -1, 0, _NEXT_HEADER_FIELD, -1)
    state = _Walk(payload, limits, is_multicast(header.dst), reassembled)
    while next_header in _WALKED:  # bounded: _take refuses the (limits.extension_headers + 1)th header
        naming = state.pointer
        block = _take(state, next_header)
        if next_header == PROTO_FRAGMENT:
            fragment = _fragment(state, block, naming)
            if fragment.offset:
                return _chain(state, fragment.next_header)  # the rest is fragment data
        elif next_header == PROTO_ROUTING:
            _check_routing(state, block)
        else:
            _check_options(state, block, hop_by_hop=next_header == PROTO_HOP_BY_HOP)
        next_header = block[0]
    return _chain(state, next_header)


def skim_to_upper(header: Ipv6Header, packet: memoryview, max_headers: int) -> tuple[int, int] | None:
    """The first header that is not an extension header, as (next-header value, offset from the start of the
    packet), found by following the length bytes alone: for a packet `walk` may have refused, where the
    stack still has to know what it carries before answering it (RFC 4443 §2.4(e): never an error about an
    error). None when the chain runs past the packet or into a non-first fragment. At `max_headers` the header it
    stopped at, an extension header still (`is_extension_header`): what it carries is unknown, and a caller
    deciding whether an error may answer must fail closed (RFC 4443 §2.4(e.1): `walk` can refuse the first
    header of a chain whose upper layer is an ICMPv6 error beyond any bound)."""
    next_header = header.next_header
    offset = HEADER_LEN
    for _ in range(max_headers):
        if next_header not in _WALKED:
            return next_header, offset
        if offset + 4 > len(packet):
            return None
        if next_header == PROTO_FRAGMENT:
            if (packet[offset + 2] << 8 | packet[offset + 3]) & 0xFFF8:  # behind it: data, not headers
                return None
            length = FRAGMENT_HEADER_LEN
        else:
            length = (packet[offset + 1] + 1) * 8
        next_header = packet[offset]
        offset += length
    return next_header, offset


def is_extension_header(next_header: int) -> bool:
    """One of the extension headers `walk` and `skim_to_upper` follow."""
    return next_header in _WALKED


def next_header_pointer(chain: HeaderChain) -> int:
    """Where a Parameter Problem code 1 (unrecognized next header) points for this chain's upper layer."""
    return chain.upper_pointer


def _chain(state: _Walk, upper: int) -> HeaderChain:
    return HeaderChain(upper, state.offset, state.fragment, state.fragment_header_offset, state.count,
                       state.pointer, state.fragment_pointer)  # fmt: skip


def _take(state: _Walk, next_header: int) -> memoryview:
    """The next extension header's bytes, once its position, count and length are acceptable."""
    if next_header == PROTO_HOP_BY_HOP and state.count:
        raise ParameterProblemError(Drop.IPV6_HOP_BY_HOP_NOT_FIRST, "hop-by-hop options after another header",
                                    code=CODE_UNRECOGNIZED_NEXT_HEADER, pointer=state.pointer)  # fmt: skip
    if next_header == PROTO_FRAGMENT and state.reassembled:
        raise MalformedError(Drop.IPV6_NESTED_FRAGMENT)
    slot = next_header
    if next_header == PROTO_DEST_OPTS and PROTO_ROUTING in state.seen:
        slot = _DEST_OPTS_AFTER_ROUTING
    if slot in state.seen:
        raise MalformedError(Drop.IPV6_REPEATED_EXTENSION, f"next header {next_header}")
    if state.count >= state.limits.extension_headers:
        raise MalformedError(Drop.IPV6_TOO_MANY_EXTENSIONS, f"more than {state.limits.extension_headers}")
    start = state.offset
    payload = state.payload
    if next_header == PROTO_FRAGMENT:
        length = FRAGMENT_HEADER_LEN
    elif start + 2 <= len(payload):
        length = (payload[start + 1] + 1) * 8
    else:
        length = 2  # not even the length byte is there
    if state.total + length > state.limits.extension_bytes:
        raise MalformedError(Drop.IPV6_EXTENSIONS_TOO_LONG, f"more than {state.limits.extension_bytes} bytes")
    if start + length > len(payload):
        _truncated(state, next_header)
    state.seen.add(slot)
    state.count += 1
    state.total += length
    state.start = start
    state.offset = start + length
    state.pointer = HEADER_LEN + start
    return payload[start : start + length]


def _truncated(state: _Walk, next_header: int) -> NoReturn:
    if state.behind_first_fragment:
        raise ParameterProblemError(Drop.IPV6_INCOMPLETE_CHAIN, f"header {next_header} cut by the fragment end",
                                    code=CODE_INCOMPLETE_CHAIN, pointer=0)  # fmt: skip
    raise MalformedError(Drop.IPV6_EXTENSION_TRUNCATED, f"next header {next_header}")


def _fragment(state: _Walk, block: memoryview, naming: int) -> FragmentHeader:
    next_header, offset_flags, ident = _FRAGMENT.unpack_from(block)
    fragment = FragmentHeader(next_header, offset_flags & 0xFFF8, bool(offset_flags & 1), ident)
    state.fragment = fragment
    state.fragment_header_offset = state.start
    state.fragment_pointer = naming
    state.behind_first_fragment = fragment.offset == 0 and fragment.more
    return fragment


def _check_routing(state: _Walk, block: memoryview) -> None:
    """A host is the last hop of every route it accepts: segments left must be 0. Type 0 is no exception
    (RFC 5095 deprecates it, and with nothing left to visit ignoring it is what RFC 5095 §3 allows)."""
    routing_type, segments_left = block[2], block[3]
    if segments_left:
        raise ParameterProblemError(Drop.IPV6_ROUTING_HEADER, f"type {routing_type}, {segments_left} left",
                                    code=CODE_ERRONEOUS_FIELD, pointer=HEADER_LEN + state.start + 2)  # fmt: skip


def _check_options(state: _Walk, block: memoryview, *, hop_by_hop: bool) -> None:
    """RFC 8200 §4.2: no option is known to us beyond padding, so each other one acts by its two high bits."""
    limits = state.limits
    i = 2
    n = len(block)
    options = 0
    padding = 0
    while i < n:  # bounded: at most limits.options_per_header turns
        options += 1
        if options > limits.options_per_header:
            raise MalformedError(Drop.IPV6_TOO_MANY_OPTIONS, f"more than {limits.options_per_header}")
        kind = block[i]
        size = 1 if kind == _PAD1 else (2 + block[i + 1] if i + 1 < n else 0)  # 0: no length byte
        if size == 0 or i + size > n:
            raise MalformedError(Drop.IPV6_BAD_OPTION, f"option {kind} runs past its header")
        if kind in (_PAD1, _PADN):
            padding += size
            if padding > limits.padding_bytes:
                raise MalformedError(Drop.IPV6_EXCESS_PADDING, f"{padding} bytes")
        else:
            padding = 0
            _unknown_option(state, kind, HEADER_LEN + state.start + i, hop_by_hop=hop_by_hop)
        i += size


def _unknown_option(state: _Walk, kind: int, pointer: int, *, hop_by_hop: bool) -> None:
    if hop_by_hop and kind == _JUMBO:  # RFC 2675 §3: jumbo option with a non-zero payload length
        raise ParameterProblemError(Drop.IPV6_JUMBOGRAM, "jumbo payload option", code=CODE_ERRONEOUS_FIELD,
                                    pointer=pointer)  # fmt: skip
    action = kind >> 6
    if action == 0:
        return
    if action == 1 or (action == 3 and state.dst_multicast):
        raise MalformedError(Drop.IPV6_UNKNOWN_OPTION, f"option {kind:#04x}")
    raise ParameterProblemError(Drop.IPV6_UNKNOWN_OPTION, f"option {kind:#04x}", code=CODE_UNRECOGNIZED_OPTION,
                                pointer=pointer, multicast_exempt=action == 2)  # fmt: skip
