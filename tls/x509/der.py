"""Strict DER: a TLV reader that refuses every non-DER header, the DER rules of each universal primitive
type, and a generic integrity walker for the values whose type the schema leaves open.

Why our own reader in front of everything: it bounds what the parsers read and enforces the DER rules that a
schema decoder accepts silently or that hide inside open types (ANY): definite minimal lengths, single-byte
tags, primitive strings, canonical BOOLEAN, INTEGER, BIT STRING and OBJECT IDENTIFIER, and sorted SET OF.

Two ways to use it. The certificate and extension parsers are schema-directed: they read each TLV once with
`children` (every header checked), compare its tag byte exactly (which also refuses a constructed encoding
of a primitive type), and apply the rules of the type they expect (`check_integer`, `read_oid`, ...).
`check_der` walks a whole value without a schema, applying the universal rules wherever they occur, with
bounded depth and node count: the parsers call it for open types (algorithm parameters, attribute values,
policy qualifiers, otherName values), whose content no schema describes.

The reader works on `bytes` with offsets (no copies until a value is taken out).
"""

from __future__ import annotations

from itertools import pairwise
from typing import Final

from tls.x509 import oids
from tls.x509.errors import decode_error
from tls.x509.limits import MAX_DER_DEPTH, MAX_DER_NODES

TAG_BOOLEAN = 0x01
TAG_INTEGER = 0x02
TAG_BIT_STRING = 0x03
TAG_OCTET_STRING = 0x04
TAG_NULL = 0x05
NULL_DER: Final = bytes((TAG_NULL, 0))  # a NULL value, whole: what absent-or-NULL parameters compare with
TAG_OID = 0x06
TAG_UTF8_STRING = 0x0C
TAG_PRINTABLE_STRING = 0x13
TAG_TELETEX_STRING = 0x14
TAG_IA5_STRING = 0x16
TAG_UTC_TIME = 0x17
TAG_GENERALIZED_TIME = 0x18
TAG_UNIVERSAL_STRING = 0x1C
TAG_BMP_STRING = 0x1E
TAG_SEQUENCE = 0x30
TAG_SET = 0x31

CONSTRUCTED = 0x20
_CLASS_MASK = 0xC0
# Universal types whose DER encoding must be primitive (X.690 10.2: no constructed strings in DER).
_PRIMITIVE_ONLY = frozenset({1, 2, 3, 4, 5, 6, 9, 10, 12, 13, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 30})
# The largest length we ever need to express: a certificate is at most a few KiB; 3 length octets is ample.
_MAX_LENGTH_OCTETS = 3

TLV = tuple[int, int, int, int]
"""(tag, header start, content start, content end) of one value inside a buffer."""

BYTES_LIKE: Final = (bytes, bytearray, memoryview)
"""What a certificate may be given as. A tuple, not `bytes | bytearray | memoryview`: that expression builds a
union object each time it is evaluated, and isinstance against it costs three times as much."""


def read_header(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """Read one TLV header at `pos`; return (tag, content_start, content_end). Lengths must be minimal."""
    if pos + 2 > end:
        raise decode_error("truncated DER header")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise decode_error("multi-byte DER tag")
    length = data[pos + 1]
    pos += 2
    if length >= 0x80:
        pos, length = _long_length(data, pos, length & 0x7F, end)
    if pos + length > end:
        raise decode_error("DER value runs past its container")
    return tag, pos, pos + length


def read_single(data: bytes, expected_tag: int | None = None) -> tuple[int, int, int]:
    """Read the one TLV that makes up all of `data` (trailing bytes refused). Its header is checked as by
    `read_header`, inline rather than by calling it: every name, key and extension value is read from here
    (two dozen per chain validated), and the extra call cost a validation about 1.5 %."""
    size = len(data)
    if size < 2:
        raise decode_error("truncated DER header")
    tag = data[0]
    if tag & 0x1F == 0x1F:
        raise decode_error("multi-byte DER tag")
    start, length = 2, data[1]
    if length >= 0x80:
        start, length = _long_length(data, 2, length & 0x7F, size)
    end = start + length
    if end > size:
        raise decode_error("DER value runs past its container")
    if end != size:
        raise decode_error("trailing bytes after DER value")
    if expected_tag is not None and tag != expected_tag:
        raise decode_error(f"expected DER tag 0x{expected_tag:02x}, found 0x{tag:02x}")
    return tag, start, end


def children(data: bytes, start: int, end: int) -> list[TLV]:
    """Every TLV in data[start:end], each header checked as by `read_header` (inlined: this is the parsers'
    innermost loop, run once per constructed value of every certificate)."""
    result: list[TLV] = []
    pos = start
    while pos < end:
        cstart = pos + 2
        if cstart > end:
            raise decode_error("truncated DER header")
        tag = data[pos]
        if tag & 0x1F == 0x1F:
            raise decode_error("multi-byte DER tag")
        length = data[pos + 1]
        if length >= 0x80:
            cstart, length = _long_length(data, cstart, length & 0x7F, end)
        cend = cstart + length
        if cend > end:
            raise decode_error("DER value runs past its container")
        result.append((tag, pos, cstart, cend))
        pos = cend
    return result


def _long_length(data: bytes, pos: int, count: int, end: int) -> tuple[int, int]:
    """(content start, length) of a long-form length whose `count` octets start at `pos`.

    Two octets, the first not zero (256 to 65535: every certificate, its TBSCertificate, an RSA key...), are
    minimal by construction and read directly: int.from_bytes on a slice was the reader's dearest line."""
    if count == 2 and pos + 2 <= end and data[pos]:
        return pos + 2, data[pos] << 8 | data[pos + 1]
    if count == 0:
        raise decode_error("indefinite length is not DER")
    if count > _MAX_LENGTH_OCTETS or pos + count > end:
        raise decode_error("DER length too large or truncated")
    if data[pos] == 0:
        raise decode_error("non-minimal DER length")
    length = int.from_bytes(data[pos : pos + count], "big")
    if length < 0x80:
        raise decode_error("non-minimal DER length")
    return pos + count, length


def only_child(data: bytes, start: int, end: int, tag: int, what: str) -> TLV:
    """The one TLV in data[start:end], which must carry `tag` (an explicit tag wraps exactly one value)."""
    parts = children(data, start, end)
    if len(parts) != 1 or parts[0][0] != tag:
        raise decode_error(f"{what} must wrap exactly one value")
    return parts[0]


def check_der(data: bytes) -> None:
    """Walk every TLV in `data` (one value, no trailing bytes) and refuse anything that is not strict DER."""
    tag, start, end = read_single(data)
    nodes = 1
    check_primitive(data, tag, start, end)
    if not tag & CONSTRUCTED:
        return
    # Explicit stack of frames (container end, next child position, container's depth (outermost = 1),
    # container is a SET, start of the previous child or -1): no recursion, whatever the input.
    stack: list[tuple[int, int, int, bool, int]] = [(end, start, 1, tag == TAG_SET, -1)]
    while stack:
        container_end, pos, depth, is_set, previous = stack.pop()
        if pos >= container_end:
            continue
        child_tag, cstart, cend = read_header(data, pos, container_end)
        nodes += 1
        if nodes > MAX_DER_NODES:
            raise decode_error("too many DER values")
        if is_set and previous >= 0 and data[previous:pos] > data[pos:cend]:
            raise decode_error("SET OF elements not in DER order")
        if depth >= MAX_DER_DEPTH:
            raise decode_error("DER nesting too deep")
        check_primitive(data, child_tag, cstart, cend)
        # Come back to the rest of this container after the child.
        stack.append((container_end, cend, depth, is_set, pos))
        if child_tag & CONSTRUCTED:
            stack.append((cend, cstart, depth + 1, child_tag == TAG_SET, -1))


def check_set_order(data: bytes, elements: list[TLV]) -> None:
    """X.690 11.6: the elements of a SET OF appear in ascending order of their encodings."""
    for (_, previous, _, previous_end), (_, header, _, end) in pairwise(elements):
        if data[previous:previous_end] > data[header:end]:
            raise decode_error("SET OF elements not in DER order")


def check_primitive(data: bytes, tag: int, start: int, end: int) -> None:
    """DER rules for the universal primitive types that certificates use."""
    if tag & _CLASS_MASK:
        return  # context/application/private tags: content is typed by the schema, checked there
    number = tag & 0x1F
    if number == 0:
        raise decode_error("end-of-contents tag (0) is not a DER value")
    if tag & CONSTRUCTED:
        if number in _PRIMITIVE_ONLY:
            raise decode_error("constructed encoding of a primitive type")
        return
    if number in (0x10, 0x11):
        raise decode_error("primitive encoding of SEQUENCE or SET")
    if number == TAG_BOOLEAN:
        check_boolean(data, start, end)
    elif number == TAG_INTEGER:
        check_integer(data, start, end)
    elif number == TAG_BIT_STRING:
        check_bit_string(data, start, end)
    elif number == TAG_NULL:
        if end != start:
            raise decode_error("NULL with content")
    elif number == TAG_OID:
        check_oid(data, start, end)


def check_boolean(data: bytes, start: int, end: int) -> None:
    if end - start != 1 or data[start] not in (0x00, 0xFF):
        raise decode_error("BOOLEAN not DER")


def check_integer(data: bytes, start: int, end: int) -> None:
    """Content octets of an INTEGER (also an implicitly tagged one): present and minimal (X.690 8.3.2)."""
    if end == start:
        raise decode_error("empty INTEGER")
    if end - start > 1 and (
        (data[start] == 0x00 and data[start + 1] < 0x80) or (data[start] == 0xFF and data[start + 1] >= 0x80)
    ):
        raise decode_error("INTEGER not minimally encoded")


MAX_NATURAL_OCTETS = 8
"""Octets of a small non-negative INTEGER (a path length, a base distance): no meaningful value needs more,
and an unbounded one would make a number too long to print."""


def read_natural(data: bytes, start: int, end: int, what: str) -> int:
    """A DER INTEGER's content that must not be negative (pathLenConstraint, BaseDistance, ...)."""
    check_integer(data, start, end)
    if data[start] & 0x80:
        raise decode_error(f"{what} malformed: negative value")
    size = end - start
    if size > MAX_NATURAL_OCTETS and not (size == MAX_NATURAL_OCTETS + 1 and data[start] == 0):  # (a leading
        raise decode_error(f"{what} malformed: longer than {MAX_NATURAL_OCTETS} octets")  # zero keeps it positive)
    return int.from_bytes(data[start:end], "big")


def check_bit_string(data: bytes, start: int, end: int) -> None:
    """A BIT STRING's content: the unused-bit count, then bits whose padding is zero (X.690 11.2)."""
    if end == start:
        raise decode_error("empty BIT STRING")
    unused = data[start]
    if unused > 7 or (end - start == 1 and unused):
        raise decode_error("BIT STRING with bad unused-bit count")
    if unused and data[end - 1] & ((1 << unused) - 1):
        raise decode_error("BIT STRING padding bits not zero")


MAX_OID_ARC_OCTETS = 20
"""Octets one arc of an OBJECT IDENTIFIER may take: a UUID arc (2.25.N, 128 bits) needs 19. Longer arcs are
refused: decoding one is quadratic in its length and its decimal form can exceed Python's int-to-str limit."""


def check_oid(data: bytes, start: int, end: int) -> None:
    if start == end:
        raise decode_error("empty OBJECT IDENTIFIER")
    if data[end - 1] & 0x80:
        raise decode_error("truncated OBJECT IDENTIFIER")
    at_arc_start = True
    arc_octets = 0
    for index in range(start, end):
        octet = data[index]
        if at_arc_start and octet == 0x80:
            raise decode_error("OBJECT IDENTIFIER arc not minimally encoded")
        arc_octets += 1
        if arc_octets > MAX_OID_ARC_OCTETS:
            raise decode_error(f"OBJECT IDENTIFIER arc longer than {MAX_OID_ARC_OCTETS} octets")
        at_arc_start = not octet & 0x80
        if at_arc_start:
            arc_octets = 0


def decode_oid(data: bytes, start: int, end: int) -> str:
    """Dotted form of an OBJECT IDENTIFIER's content octets (already checked by `check_oid`)."""
    arcs: list[int] = []
    value = 0
    for index in range(start, end):
        octet = data[index]
        value = (value << 7) | (octet & 0x7F)
        if not octet & 0x80:
            if not arcs:
                first = min(value // 40, 2)
                arcs.extend((first, value - 40 * first))
            else:
                arcs.append(value)
            value = 0
    return ".".join(map(str, arcs))


def tlv(tag: int, content: bytes) -> bytes:
    """The DER of one value (for the tables of known encodings; the parsers never encode)."""
    length = len(content)
    if length < 0x80:
        return bytes((tag, length)) + content
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(octets))) + octets + content


def encode_oid(dotted: str) -> bytes:
    """Content octets of a dotted OBJECT IDENTIFIER (the canonical encoding), for the table below."""
    arcs = [int(arc) for arc in dotted.split(".")]
    out = bytearray()
    for arc in (40 * arcs[0] + arcs[1], *arcs[2:]):
        chunk = [arc & 0x7F]
        rest = arc >> 7
        while rest:
            chunk.append(0x80 | (rest & 0x7F))
            rest >>= 7
        out.extend(reversed(chunk))
    return bytes(out)


# The OIDs this package names, by their content octets: a table, not a cache (it never grows). Every entry
# is a canonical encoding, so a hit is as well checked as a decode.
_KNOWN_OIDS: Final = {
    encode_oid(value): value
    for name, value in vars(oids).items()
    if name.isupper() and isinstance(value, str)
}


def read_oid(data: bytes, start: int, end: int) -> str:
    """The dotted OBJECT IDENTIFIER in data[start:end] (content octets), checked to be canonical."""
    known = _KNOWN_OIDS.get(data[start:end])
    if known is not None:
        return known
    check_oid(data, start, end)
    return decode_oid(data, start, end)
