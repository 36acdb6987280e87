"""Extension blocks and the bodies of the extensions we act on (RFC 8446 §4.2, RFC 5246 §7.4.1.4).

A block is kept as ordered (type, body) pairs so that unknown extensions survive and the transcript stays
byte-exact; `parse_extensions` refuses duplicates, which RFC 8446 §4.2 forbids.
"""

from __future__ import annotations

from outcomes.category import Category
from tls.codec import Reader, u16, u16_list, u16_values, vec8, vec16
from tls.constants import ExtensionType
from tls.errors import ProtocolError, decode_error, illegal
from tls.limits import MAX_DNS_LABEL_OCTETS, MAX_DNS_NAME_OCTETS

Extension = tuple[int, bytes]
Extensions = tuple[Extension, ...]


def parse_extensions(reader: Reader, what: str) -> Extensions:
    """The extension block at `reader`, each extension's length checked against what is left before it is
    read. Walked with index arithmetic over one copy of the block rather than a `Reader` call per field: a
    ClientHello carries a dozen or more extensions, and those calls were most of the cost of parsing it."""
    block = bytes(reader.vec(2))
    end = len(block)
    pos = 0
    seen: set[int] = set()
    found: list[Extension] = []
    while pos < end:
        if end - pos < 4:
            raise decode_error(f"{what} extensions: needs 4 bytes, {end - pos} left")
        ext_type = (block[pos] << 8) | block[pos + 1]
        start = pos + 4
        pos = start + ((block[pos + 2] << 8) | block[pos + 3])
        if pos > end:
            raise decode_error(f"{what} extensions: needs {pos - start} bytes, {end - start} left")
        if ext_type in seen:
            raise ProtocolError(Category.DUPLICATE_EXTENSION, f"{what}: duplicate extension {ext_type}")
        seen.add(ext_type)
        found.append((ext_type, block[start:pos]))
    return tuple(found)


def serialize_extensions(extensions: Extensions) -> bytes:
    return vec16(b"".join([u16(t) + vec16(body) for t, body in extensions]))


def find(extensions: Extensions, ext_type: int) -> bytes | None:
    for t, body in extensions:
        if t == ext_type:
            return body
    return None


def _u16_list(data: bytes, length_bytes: int, what: str, minimum: int = 2) -> tuple[int, ...]:
    reader = Reader(data, what)
    inner = reader.vec(length_bytes, minimum)
    reader.end()
    return u16_values(inner, what)


def parse_u16_list16(data: bytes, what: str) -> tuple[int, ...]:
    """supported_groups, signature_algorithms, signature_algorithms_cert."""
    return _u16_list(data, 2, what)


def serialize_u16_list16(values: tuple[int, ...] | list[int]) -> bytes:
    return vec16(u16_list(values))


def parse_client_versions(data: bytes) -> tuple[int, ...]:
    return _u16_list(data, 1, "supported_versions")


def serialize_client_versions(versions: tuple[int, ...] | list[int]) -> bytes:
    return vec8(u16_list(versions))


def parse_selected_version(data: bytes) -> int:
    reader = Reader(data, "supported_versions")
    version = reader.u16()
    reader.end()
    return version


def parse_client_shares(data: bytes) -> tuple[tuple[int, bytes], ...]:
    reader = Reader(data, "key_share")
    entries = reader.sub(2, "key_share list")
    reader.end()
    shares: list[tuple[int, bytes]] = []
    groups: set[int] = set()
    while entries.remaining:
        group = entries.u16()
        key = bytes(entries.vec(2, 1))
        if group in groups:
            raise illegal(f"key_share: group {group} offered twice")
        groups.add(group)
        shares.append((group, key))
    return tuple(shares)


def serialize_client_shares(shares: tuple[tuple[int, bytes], ...] | list[tuple[int, bytes]]) -> bytes:
    return vec16(b"".join(u16(g) + vec16(k) for g, k in shares))


def parse_server_share(data: bytes) -> tuple[int, bytes]:
    reader = Reader(data, "key_share")
    group = reader.u16()
    key = bytes(reader.vec(2, 1))
    reader.end()
    return group, key


def serialize_server_share(group: int, key: bytes) -> bytes:
    return u16(group) + vec16(key)


def parse_hrr_group(data: bytes) -> int:
    reader = Reader(data, "key_share (HelloRetryRequest)")
    group = reader.u16()
    reader.end()
    return group


def parse_server_name(data: bytes) -> str | None:
    """The host_name from a ClientHello's server_name list (RFC 6066 §3), or None when there is none."""
    reader = Reader(data, "server_name")
    names = reader.sub(2, "server_name list", 1)
    reader.end()
    host: str | None = None
    while names.remaining:
        name_type = names.u8()
        name = bytes(names.vec(2, 1))
        if name_type == 0:
            if host is not None:
                raise illegal("server_name: two host names")
            host = _host_name(name)
    return host


def _host_name(name: bytes) -> str:
    """An SNI HostName, held to what RFC 6066 §3 says it is: a DNS host name in ASCII without a trailing dot,
    so bounded by RFC 1035 (a name of at most 255 octets in wire form, labels of 1..63 octets).

    A name that breaks these is refused with illegal_parameter, not decode_error: the HostName vector
    (<1..2^16-1>) decodes fine, it is the field's value that is not a host name (RFC 8446 §6.2: "a field in
    the handshake was incorrectly formatted"). Only bytes that are not ASCII at all are decode_error, as
    before. unrecognized_name (RFC 6066 §3) is for a well-formed name we do not serve, and we serve any."""
    try:
        host = name.decode("ascii")
    except UnicodeDecodeError as exc:
        raise decode_error("server_name: not ASCII") from exc
    if len(host) + 2 > MAX_DNS_NAME_OCTETS:
        raise illegal(f"server_name: {len(host)} characters, longer than a DNS name (RFC 1035)")
    labels = host.split(".")
    if any(not 0 < len(label) <= MAX_DNS_LABEL_OCTETS for label in labels):
        raise illegal("server_name: an empty label or one longer than 63 octets (RFC 1035)")
    if not all(c.isalnum() or c in "-_" for label in labels for c in label):
        raise illegal("server_name: not a DNS host name")
    return host


def serialize_server_name(host: str) -> bytes:
    entry = b"\x00" + vec16(host.encode("ascii"))
    return vec16(entry)


def parse_renegotiation_info(data: bytes) -> bytes:
    reader = Reader(data, "renegotiation_info")
    value = bytes(reader.vec(1))
    reader.end()
    return value


def parse_point_formats(data: bytes) -> bytes:
    reader = Reader(data, "ec_point_formats")
    formats = bytes(reader.vec(1, 1))
    reader.end()
    return formats


def parse_cookie(data: bytes) -> bytes:
    reader = Reader(data, "cookie")
    cookie = bytes(reader.vec(2, 1))
    reader.end()
    return cookie


RENEGOTIATION_INFO_EMPTY = (ExtensionType.RENEGOTIATION_INFO, b"\x00")
