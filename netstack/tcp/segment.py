"""TCP segment codec (RFC 9293 §3.1, options RFC 7323 / RFC 2018): parse and build, paired.

Parsing follows the house order: integrity (length, data offset, checksum with the pseudo-header of the
segment's IP version) ->
parse (fields read from the memoryview, the payload stays a view, no copy) -> sanity (option lengths, flag
combinations are judged by the connection layer, which knows the state). A malformed segment raises
`SegmentError` whose `reason` names a drop counter.

The checksum uses the identity that a one's-complement sum of 16-bit words is the big-endian integer of the
same bytes modulo 0xFFFF (because 2**16 == 1 mod 0xFFFF): one `int.from_bytes` and one modulo run in C, which
is an order of magnitude faster than summing words in Python.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from netstack.tcp.counters import Count

HEADER = struct.Struct("!HHIIBBHHH")
MIN_HEADER_LEN = 20
MAX_HEADER_LEN = 60

FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20
ECE = 0x40
CWR = 0x80

OPT_EOL = 0
OPT_NOP = 1
OPT_MSS = 2
OPT_WSCALE = 3
OPT_SACK_PERMITTED = 4
OPT_SACK = 5
OPT_TIMESTAMP = 8

MAX_WSCALE = 14  # RFC 7323 §2.3: larger shift counts are treated as 14
_PROTO_TCP = 6
_MSS = struct.Struct("!BBH")
_TS = struct.Struct("!BBII")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_TS_ONLY = struct.Struct("!4sII")
_SYN_OPTIONS = struct.Struct("!BBHBBBBBBBBII")
_TS_ONLY_PREFIX = bytes((OPT_NOP, OPT_NOP, OPT_TIMESTAMP, 10))


class SegmentError(ValueError):
    """A segment that cannot be accepted; `reason` is the drop counter it increments."""

    def __init__(self, reason: Count) -> None:
        super().__init__(reason)
        self.reason = reason


def ones_sum(data: bytes | bytearray | memoryview) -> int:
    """One's-complement sum residue (mod 0xFFFF) of `data` read as big-endian 16-bit words, odd length padded."""
    value = int.from_bytes(data, "big")
    if len(data) & 1:
        value <<= 8
    return value % 0xFFFF


def pseudo_header_sum(src: bytes, dst: bytes, length: int) -> int:
    """Residue of the pseudo-header for a TCP segment of `length` bytes, the family told by the addresses'
    length (4 or 16 bytes; the caller never mixes them, netstack/tcp/family.py).

    One expression serves both, and so the IPv4 path costs what it always did. IPv4's pseudo-header (RFC 9293
    §3.1) is the addresses, a zero byte and the protocol (the word 6), and a 16-bit length. IPv6's (RFC 8200
    §8.1) is the addresses, a 32-bit length, three zero bytes and the next header (again the word 6): its
    length's two words add up to `length` itself modulo 0xFFFF (2**16 == 1 there), so both residues are
    addresses + 6 + length. What differs between the families is the addresses, and all 32 bytes of IPv6's
    are summed. tests/netstack/tcp/test_segment6.py checks this against both layouts written out."""
    return (int.from_bytes(src + dst, "big") + _PROTO_TCP + length) % 0xFFFF


def checksum_ok(src: bytes, dst: bytes, segment: bytes | bytearray | memoryview) -> bool:
    """Whether the checksum field makes the whole sum (pseudo-header included) come out as all ones."""
    return (pseudo_header_sum(src, dst, len(segment)) + ones_sum(segment)) % 0xFFFF == 0


def finish_checksum(residue: int) -> int:
    """Checksum field value for a sum residue: the complement of the one's-complement sum."""
    return (0xFFFF - residue % 0xFFFF) % 0xFFFF


class Options(NamedTuple):
    """Options that matter to this stack; absent ones are None. Immutable like the segment that carries them
    (`NO_OPTIONS` is shared by every segment without options)."""

    mss: int | None = None
    wscale: int | None = None
    sack_permitted: bool = False
    ts_val: int | None = None
    ts_ecr: int | None = None


NO_OPTIONS = Options()
# NamedTuple construction without its generated __new__ (a Python-level function): what the parser, which
# builds one of each per segment, uses; the fields are passed in declaration order.
_new_tuple = tuple.__new__


def parse_options(raw: memoryview) -> Options:
    """Parse the option bytes of a header. Unknown options are skipped by their length; a length byte that is
    missing, below 2, runs past the header, or does not fit a known option's fixed size is an error.
    Bytes after EOL must be padding and are ignored (RFC 9293 §3.1)."""
    if len(raw) == 12:
        # What nearly every segment after the handshake carries (NOP, NOP, timestamps: RFC 7323 appendix A's
        # layout, which Linux, BSD and this stack send): decoded at once, as the loop below would.
        prefix, val, ecr = _TS_ONLY.unpack(raw)
        if prefix == _TS_ONLY_PREFIX:
            return _new_tuple(Options, (None, None, False, val, ecr))
    mss: int | None = None
    wscale: int | None = None
    sack_permitted = False
    ts_val: int | None = None
    ts_ecr: int | None = None
    i = 0
    end = len(raw)
    while i < end:
        kind = raw[i]
        if kind == OPT_EOL:
            break
        if kind == OPT_NOP:
            i += 1
            continue
        if i + 1 >= end:
            raise SegmentError(Count.OPTION_TRUNCATED)
        length = raw[i + 1]
        if length < 2 or i + length > end:
            raise SegmentError(Count.OPTION_LENGTH)
        if kind == OPT_MSS:
            if length != 4:
                raise SegmentError(Count.OPTION_LENGTH)
            mss = _U16.unpack_from(raw, i + 2)[0]
        elif kind == OPT_WSCALE:
            if length != 3:
                raise SegmentError(Count.OPTION_LENGTH)
            wscale = min(raw[i + 2], MAX_WSCALE)
        elif kind == OPT_SACK_PERMITTED:
            if length != 2:
                raise SegmentError(Count.OPTION_LENGTH)
            sack_permitted = True
        elif kind == OPT_TIMESTAMP:
            if length != 10:
                raise SegmentError(Count.OPTION_LENGTH)
            ts_val = _U32.unpack_from(raw, i + 2)[0]
            ts_ecr = _U32.unpack_from(raw, i + 6)[0]
        i += length
    return _new_tuple(Options, (mss, wscale, sack_permitted, ts_val, ts_ecr))


def build_options(
    *, mss: int | None = None, wscale: int | None = None, sack_permitted: bool = False,
    ts: tuple[int, int] | None = None,
) -> bytes:
    """Serialize options in the usual aligned layout (what Linux and FreeBSD send), padded to 4 bytes."""
    if mss is not None and wscale is not None and ts is not None and not sack_permitted:
        # Every SYN and SYN-ACK between two stacks that offer both: the loop below would give these bytes.
        return _SYN_OPTIONS.pack(OPT_MSS, 4, mss, OPT_NOP, OPT_WSCALE, 3, wscale, OPT_NOP, OPT_NOP, OPT_TIMESTAMP,
                                 10, ts[0], ts[1])
    out = bytearray()
    if mss is not None:
        out += _MSS.pack(OPT_MSS, 4, mss)
    if wscale is not None:
        out += bytes((OPT_NOP, OPT_WSCALE, 3, wscale))
    if sack_permitted:
        out += bytes((OPT_SACK_PERMITTED, 2)) if ts is not None else bytes((OPT_NOP, OPT_NOP, OPT_SACK_PERMITTED, 2))
    if ts is not None:
        if not sack_permitted:
            out += bytes((OPT_NOP, OPT_NOP))
        out += _TS.pack(OPT_TIMESTAMP, 10, ts[0], ts[1])
    while len(out) % 4:
        out.append(OPT_EOL)
    if len(out) > MAX_HEADER_LEN - MIN_HEADER_LEN:
        raise ValueError("options longer than 40 bytes")
    return bytes(out)


class Segment(NamedTuple):
    """A parsed segment, immutable: a check that wants it different makes a new one (`_replace`), so no later
    step, and no caller holding it, sees a segment change under it. `payload` is a view into the caller's
    buffer: copy it before the buffer is reused. A NamedTuple rather than a frozen dataclass because it costs
    no more than a slotted class to build and read, and this is built for every segment."""

    src_port: int
    dst_port: int
    seq: int
    ack: int
    flags: int
    window: int
    urgent: int
    options: Options
    payload: memoryview

    @property
    def seg_len(self) -> int:
        """Sequence space the segment occupies: data plus one for each of SYN and FIN."""
        return len(self.payload) + (self.flags & SYN != 0) + (self.flags & FIN != 0)

    def __repr__(self) -> str:
        names = "".join(ch for bit, ch in ((SYN, "S"), (FIN, "F"), (RST, "R"), (PSH, "P"), (ACK, "."))
                        if self.flags & bit)
        return (f"Segment({self.src_port}->{self.dst_port} {names or '-'} seq={self.seq} ack={self.ack} "
                f"win={self.window} len={len(self.payload)} {self.options!r})")


def parse_segment(src: bytes, dst: bytes, data: memoryview, *, verify_checksum: bool = True) -> Segment:
    """Integrity, then parse; raises SegmentError. `data` is exactly the TCP segment (the IPv4 or IPv6
    payload); `src` and `dst` are both IPv4 or both IPv6 addresses (the layer refuses a mixed pair first)."""
    length = len(data)
    if length < MIN_HEADER_LEN:
        raise SegmentError(Count.TRUNCATED)
    src_port, dst_port, seq, ack, offset_byte, flags, window, _checksum, urgent = HEADER.unpack_from(data)
    header_len = (offset_byte >> 4) * 4
    if header_len < MIN_HEADER_LEN or header_len > length:
        raise SegmentError(Count.BAD_DATA_OFFSET)
    if verify_checksum and not checksum_ok(src, dst, data):
        raise SegmentError(Count.BAD_CHECKSUM)
    options = parse_options(data[MIN_HEADER_LEN:header_len]) if header_len > MIN_HEADER_LEN else NO_OPTIONS
    return _new_tuple(Segment, (src_port, dst_port, seq, ack, flags, window, urgent, options, data[header_len:]))


def build_segment(  # noqa: PLR0917
    src: bytes, dst: bytes, src_port: int, dst_port: int, seq: int, ack: int, flags: int, window: int,
    options: bytes = b"", payload: bytes | bytearray | memoryview = b"", urgent: int = 0,
) -> bytes:
    """Serialize a segment with its checksum computed over the pseudo-header of the addresses' family."""
    if len(options) % 4 or len(options) > MAX_HEADER_LEN - MIN_HEADER_LEN:
        raise ValueError("options must be padded to 4 bytes and at most 40")
    header_len = MIN_HEADER_LEN + len(options)
    header = HEADER.pack(src_port, dst_port, seq, ack, (header_len // 4) << 4, flags, window, 0, urgent) + options
    residue = pseudo_header_sum(src, dst, header_len + len(payload)) + ones_sum(header)
    if payload:
        residue += ones_sum(payload)
    checksum = finish_checksum(residue)
    return header[:16] + _U16.pack(checksum) + header[18:] + payload
