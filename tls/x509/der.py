"""Strict DER integrity pass and a small TLV reader, run before any ASN.1 schema decoding.

Why our own walker in front of pyasn1: it bounds depth and node count before a recursive decoder sees
the bytes, and it enforces the DER rules that a schema decoder accepts silently or that hide inside open
types (ANY): definite minimal lengths, single-byte tags, primitive strings, canonical BOOLEAN, INTEGER,
BIT STRING and OBJECT IDENTIFIER, and sorted SET OF. Schema-level canonical form (DEFAULT values left out)
is checked afterwards by re-encoding with pyasn1 and comparing.

The reader works on `bytes` with offsets (no copies until a value is taken out).
"""

from __future__ import annotations

from collections.abc import Iterator

from tls.x509.errors import decode_error
from tls.x509.limits import MAX_DER_DEPTH, MAX_DER_NODES

TAG_BOOLEAN = 0x01
TAG_INTEGER = 0x02
TAG_BIT_STRING = 0x03
TAG_OCTET_STRING = 0x04
TAG_NULL = 0x05
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


def read_header(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """Read one TLV header at `pos`; return (tag, content_start, content_end). Lengths must be minimal."""
    if pos + 2 > end:
        raise decode_error("truncated DER header")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise decode_error("multi-byte DER tag")
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0:
            raise decode_error("indefinite length is not DER")
        if count > _MAX_LENGTH_OCTETS or pos + count > end:
            raise decode_error("DER length too large or truncated")
        if data[pos] == 0:
            raise decode_error("non-minimal DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        if length < 0x80:
            raise decode_error("non-minimal DER length")
        pos += count
    if pos + length > end:
        raise decode_error("DER value runs past its container")
    return tag, pos, pos + length


def read_single(data: bytes, expected_tag: int | None = None) -> tuple[int, int, int]:
    """Read the one TLV that makes up all of `data` (trailing bytes refused)."""
    tag, start, end = read_header(data, 0, len(data))
    if end != len(data):
        raise decode_error("trailing bytes after DER value")
    if expected_tag is not None and tag != expected_tag:
        raise decode_error(f"expected DER tag 0x{expected_tag:02x}, found 0x{tag:02x}")
    return tag, start, end


def iter_children(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """Yield (tag, header_start, content_start, content_end) for each TLV in data[start:end]."""
    pos = start
    while pos < end:
        tag, cstart, cend = read_header(data, pos, end)
        yield tag, pos, cstart, cend
        pos = cend


def check_der(data: bytes) -> None:
    """Walk every TLV in `data` (one value, no trailing bytes) and refuse anything that is not strict DER."""
    tag, start, end = read_single(data)
    nodes = 1
    _check_primitive(data, tag, start, end)
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
        _check_primitive(data, child_tag, cstart, cend)
        # Come back to the rest of this container after the child.
        stack.append((container_end, cend, depth, is_set, pos))
        if child_tag & CONSTRUCTED:
            stack.append((cend, cstart, depth + 1, child_tag == TAG_SET, -1))


def _check_primitive(data: bytes, tag: int, start: int, end: int) -> None:
    """DER rules for the universal primitive types that certificates use."""
    if tag & _CLASS_MASK:
        return  # context/application/private tags: content is typed by the schema, checked there
    number = tag & 0x1F
    if tag & CONSTRUCTED:
        if number in _PRIMITIVE_ONLY:
            raise decode_error("constructed encoding of a primitive type")
        return
    if number in (0x10, 0x11):
        raise decode_error("primitive encoding of SEQUENCE or SET")
    length = end - start
    if number == TAG_BOOLEAN:
        if length != 1 or data[start] not in (0x00, 0xFF):
            raise decode_error("BOOLEAN not DER")
    elif number == TAG_INTEGER:
        if length == 0:
            raise decode_error("empty INTEGER")
        if length > 1 and (
            (data[start] == 0x00 and data[start + 1] < 0x80) or (data[start] == 0xFF and data[start + 1] >= 0x80)
        ):
            raise decode_error("INTEGER not minimally encoded")
    elif number == TAG_BIT_STRING:
        if length == 0:
            raise decode_error("empty BIT STRING")
        unused = data[start]
        if unused > 7 or (length == 1 and unused):
            raise decode_error("BIT STRING with bad unused-bit count")
        if unused and data[end - 1] & ((1 << unused) - 1):
            raise decode_error("BIT STRING padding bits not zero")
    elif number == TAG_NULL:
        if length:
            raise decode_error("NULL with content")
    elif number == TAG_OID:
        _check_oid(data, start, end)


def _check_oid(data: bytes, start: int, end: int) -> None:
    if start == end:
        raise decode_error("empty OBJECT IDENTIFIER")
    if data[end - 1] & 0x80:
        raise decode_error("truncated OBJECT IDENTIFIER")
    at_arc_start = True
    for index in range(start, end):
        octet = data[index]
        if at_arc_start and octet == 0x80:
            raise decode_error("OBJECT IDENTIFIER arc not minimally encoded")
        at_arc_start = not octet & 0x80


def decode_oid(data: bytes, start: int, end: int) -> str:
    """Dotted form of an OBJECT IDENTIFIER's content octets (already checked by `check_der`)."""
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
