"""IPv4 and MAC address helpers shared by the codecs, the configuration parser and the stack."""

from __future__ import annotations

ANY = b"\x00\x00\x00\x00"
LIMITED_BROADCAST = b"\xff\xff\xff\xff"
MAC_BROADCAST = b"\xff" * 6


def ip_from_text(text: str) -> bytes:
    """Dotted quad to 4 bytes; raises ValueError for anything else (inet_aton would accept '1' or '0x1', and
    str.isdigit accepts '²', which int() then refuses with a message of its own)."""
    parts = text.split(".")
    if len(parts) != 4 or not all(p.isascii() and p.isdigit() and len(p) <= 3 and int(p) <= 255 for p in parts):
        raise ValueError(f"not a dotted-quad IPv4 address: {text!r}")
    return bytes(int(p) for p in parts)


def ip_to_text(address: bytes) -> str:
    if len(address) != 4:
        raise ValueError("IPv4 addresses are 4 bytes")
    return ".".join(str(b) for b in address)


def mac_to_text(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def mac_from_text(text: str) -> bytes:
    parts = text.split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise ValueError(f"not a MAC address: {text!r}")
    return bytes(int(p, 16) for p in parts)


def prefix_mask(prefix_len: int) -> int:
    return (0xFFFFFFFF << (32 - prefix_len)) & 0xFFFFFFFF


def mask_to_prefix(mask: bytes) -> int:
    """Netmask to prefix length; a non-contiguous mask raises ValueError."""
    value = int.from_bytes(mask, "big")
    prefix = bin(value).count("1")
    if prefix_mask(prefix) != value:
        raise ValueError(f"non-contiguous netmask {ip_to_text(mask)}")
    return prefix


def same_subnet(a: bytes, b: bytes, prefix_len: int) -> bool:
    mask = prefix_mask(prefix_len)
    return int.from_bytes(a, "big") & mask == int.from_bytes(b, "big") & mask


def subnet_broadcast(address: bytes, prefix_len: int) -> bytes:
    value = int.from_bytes(address, "big") | (~prefix_mask(prefix_len) & 0xFFFFFFFF)
    return value.to_bytes(4, "big")


def is_subnet_network_or_broadcast(address: bytes, prefix_len: int) -> bool:
    """{net, 0} or {net, -1} of a /30 or wider subnet: never a host's address (RFC 1122 3.2.1.3, 3.3.6). A /31
    (RFC 3021) or /32 has no such addresses."""
    if prefix_len > 30:
        return False
    host_bits = int.from_bytes(address, "big") & ~prefix_mask(prefix_len) & 0xFFFFFFFF
    return host_bits in (0, ~prefix_mask(prefix_len) & 0xFFFFFFFF)


def is_multicast_mac(mac: bytes | memoryview) -> bool:
    """Group bit set (includes broadcast): never a valid source address."""
    return bool(mac[0] & 1)


def is_martian_source(address: bytes) -> bool:
    """Sources no host may legitimately send from (RFC 1122 3.2.1.3): 0/8, 127/8, multicast, class E, broadcast."""
    first = address[0]
    return first in (0, 127) or first >= 224


def is_unicast_host(address: bytes) -> bool:
    """An address usable as a host address at all (not zero, loopback, multicast, class E or broadcast)."""
    return not is_martian_source(address)
