"""IPv6 address helpers (RFC 4291) shared by the codecs, neighbour discovery, the configuration parser and the
stack. Addresses are 16-byte `bytes`, as IPv4 addresses are 4-byte `bytes` (netstack/addresses.py).

Why stable interface identifiers (RFC 7217) and not the MAC-derived EUI-64: an identifier built from the MAC
follows the appliance from network to network and tells an observer which hardware it runs on (RFC 7721).
RFC 8064 makes RFC 7217 the default for stable addresses; the same function gives the link-local address.
"""

from __future__ import annotations

import hashlib
import ipaddress

from netstack.addresses import ip_from_text, ip_to_text

ADDRESS_LEN = 16
IID_LEN = 8  # the interface identifier: the low 64 bits (RFC 4291 §2.5.1)
UNSPECIFIED = bytes(16)
LOOPBACK = bytes(15) + b"\x01"
ALL_NODES = bytes.fromhex("ff020000000000000000000000000001")
ALL_ROUTERS = bytes.fromhex("ff020000000000000000000000000002")
LINK_LOCAL_PREFIX = bytes.fromhex("fe80000000000000")  # fe80::/64, the only link-local prefix in use
_SOLICITED_NODE_PREFIX = bytes.fromhex("ff0200000000000000000001ff")  # ff02::1:ff00:0/104
_V4_MAPPED_PREFIX = bytes(10) + b"\xff\xff"  # ::ffff:0:0/96
_MULTICAST_MAC_PREFIX = b"\x33\x33"  # RFC 2464 §7
NO_HOST_PREFIXES = frozenset({bytes(12), _V4_MAPPED_PREFIX})
"""The first 12 bytes of the unicast addresses no host has on the wire (::/96 holds :: and ::1): with the
multicast test, the whole of `is_martian_source`, spelled out where a per-segment check wants no call."""


def ip6_from_text(text: str) -> bytes:
    """RFC 4291 §2.2 text (with `::` and an embedded dotted quad) to 16 bytes; a zone (`%eth0`) or anything
    else that is not one address raises ValueError."""
    if "%" in text or "/" in text:
        raise ValueError(f"not a bare IPv6 address: {text!r}")
    try:
        return ipaddress.IPv6Address(text).packed
    except ipaddress.AddressValueError as exc:
        raise ValueError(f"not an IPv6 address: {text!r}") from exc


def ip6_to_text(address: bytes) -> str:
    """The RFC 5952 canonical text form."""
    if len(address) != ADDRESS_LEN:
        raise ValueError("IPv6 addresses are 16 bytes")
    return str(ipaddress.IPv6Address(address))


def address_from_text(text: str) -> bytes:
    """An address of either family as 4 or 16 bytes. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a
    dual-stack kernel socket reports for an IPv4 peer) is its IPv4 host: it never appears on the wire."""
    if ":" in text:
        packed = ip6_from_text(text)
        return packed[12:] if is_v4_mapped(packed) else packed
    return ip_from_text(text)


def address_to_text(address: bytes) -> str:
    """Dotted quad for IPv4, RFC 5952 for IPv6."""
    return ip6_to_text(address) if len(address) == ADDRESS_LEN else ip_to_text(address)


def is_multicast(address: bytes) -> bool:
    return address[0] == 0xFF


def is_link_local(address: bytes) -> bool:
    """fe80::/10 (unicast link-local)."""
    return address[0] == 0xFE and address[1] & 0xC0 == 0x80


def is_v4_mapped(address: bytes) -> bool:
    return address[:12] == _V4_MAPPED_PREFIX


def is_martian_source(address: bytes) -> bool:
    """Sources no host may send from on the wire: unspecified (neighbour discovery's DAD probes are the one
    exception and are handled there), loopback, multicast, IPv4-mapped (RFC 4291 §2.5.5.2: never on the
    wire) and the deprecated IPv4-compatible ::/96."""
    return address[0] == 0xFF or address[:12] in NO_HOST_PREFIXES


def is_unicast_host(address: bytes) -> bool:
    """An address usable as a host's own or a peer's address."""
    return len(address) == ADDRESS_LEN and not is_martian_source(address)


def solicited_node(address: bytes) -> bytes:
    """The solicited-node multicast group of an address (RFC 4291 §2.7.1): ff02::1:ff + its low 24 bits."""
    return _SOLICITED_NODE_PREFIX + address[13:]


def multicast_mac(group: bytes) -> bytes:
    """The Ethernet destination of an IPv6 multicast group (RFC 2464 §7): 33:33 + its low 32 bits."""
    return _MULTICAST_MAC_PREFIX + group[12:]


def prefix_matches(a: bytes, b: bytes, prefix_len: int) -> bool:
    """Whether two addresses share their first `prefix_len` bits."""
    whole, rest = divmod(prefix_len, 8)
    if a[:whole] != b[:whole]:
        return False
    if rest == 0:
        return True
    mask = (0xFF << (8 - rest)) & 0xFF
    return a[whole] & mask == b[whole] & mask


def network(address: bytes, prefix_len: int) -> bytes:
    """The address with every bit after the prefix cleared."""
    value = int.from_bytes(address, "big") & (((1 << prefix_len) - 1) << (128 - prefix_len))
    return value.to_bytes(ADDRESS_LEN, "big")


def source_key(address: bytes) -> bytes:
    """What counts as one source for per-source limits. An IPv4 address is one host; an IPv6 host is normally
    given a whole /64 (RFC 7421), so an attacker rotating its low 64 bits is still one source. Link-local
    addresses all share one /64 (fe80::/64), one per neighbour on the link: each is its own source."""
    if len(address) == ADDRESS_LEN and not is_link_local(address):
        return address[:IID_LEN]
    return address


def _reserved_iid(iid: bytes) -> bool:
    """The reserved identifiers (RFC 5453) a hash can land on: all zeros (the subnet-router anycast address,
    RFC 4291 §2.6.1) and the subnet anycast range fdff:ffff:ffff:ff80 to fdff:ffff:ffff:ffff (RFC 2526)."""
    return iid == bytes(IID_LEN) or (iid[:7] == bytes.fromhex("fdffffffffffff") and iid[7] >= 0x80)


def stable_iid(prefix: bytes, interface: bytes, network_id: bytes, dad_counter: int, secret: bytes) -> bytes:
    """RFC 7217's F(Prefix, Net_Iface, Network_ID, DAD_Counter, secret_key), SHA-256 truncated to 64 bits: the
    same on the same network across reboots, different on every other prefix. A value that lands on a reserved
    identifier is recomputed with the next counter (RFC 7217 §5 step 2)."""
    if len(secret) < 16:
        raise ValueError("RFC 7217 asks for a secret of at least 128 bits")
    counter = dad_counter
    while True:
        digest = hashlib.sha256(b"|".join((prefix[:IID_LEN], interface, network_id, counter.to_bytes(4, "big"),
                                            secret))).digest()
        iid = digest[:IID_LEN]
        if not _reserved_iid(iid):
            return iid
        counter += 1


def link_local(iid: bytes) -> bytes:
    """fe80::/64 with the given interface identifier."""
    if len(iid) != IID_LEN:
        raise ValueError("an interface identifier is 8 bytes")
    return LINK_LOCAL_PREFIX + iid
