"""Who counts as one source: the key every per-source limit of the appliance is kept under (the gate's
concurrent connections, the /proof buckets), and the address family the statistics count.

Why not the peer's address text: an IPv6 host is normally given a whole /64 (RFC 7421), and picks the low 64
bits of its address freely (RFC 8981 temporary addresses do so on their own). Keyed by address, an attacker
rotating those bits would get a fresh share of the connection table and a fresh /proof bucket per
connection. So an IPv6 peer is its /64 (`netstack.addresses6.source_key`), written
`2001:db8:1:2::/64`, except a link-local one, which is its own address (every neighbour on the link shares
fe80::/64); an IPv4 peer is its address, as before. An IPv4-mapped IPv6 address (what a dual-stack
kernel socket reports for an IPv4 peer) is that IPv4 host, so one peer is one source whichever socket saw it.

The ledger still records the full address, and the statistics' distinct sources count addresses: the key
is for limits, not for the record.
"""

from __future__ import annotations

from netstack.addresses import ip_to_text
from netstack.addresses6 import IID_LEN, address_from_text, ip6_to_text, source_key

IPV4 = "ipv4"
IPV6 = "ipv6"
OTHER = "other"
"""A peer that is not an address: `unknown` (the transport reported none), or a test's made-up name."""
SOURCE_PREFIX_LEN = 8 * IID_LEN  # what `source_key` keeps of an IPv6 address


def _address(peer: str) -> bytes | None:
    """The peer text as 4 or 16 bytes (an IPv4-mapped address as its IPv4 host), or None if it is neither."""
    try:
        return address_from_text(peer.partition("%")[0])  # a kernel socket names a link-local peer's zone
    except ValueError:
        return None


def family(peer: str) -> str:
    """`ipv4`, `ipv6` or `other`: the family the peer connected over (an IPv4-mapped peer is IPv4)."""
    packed = _address(peer)
    if packed is None:
        return OTHER
    return IPV6 if len(packed) == 16 else IPV4


def source_of(peer: str) -> str:
    """The source key of a peer's address text: the IPv4 address, the IPv6 /64 as `PREFIX::/64` (a link-local
    address: itself); text that is no address is its own key (so `unknown` peers share one)."""
    packed = _address(peer)
    if packed is None:
        return peer
    if len(packed) == 4:
        return ip_to_text(packed)
    key = source_key(packed)
    if len(key) == len(packed):  # a link-local neighbour: its own source
        return ip6_to_text(key)
    return f"{ip6_to_text(key + bytes(IID_LEN))}/{SOURCE_PREFIX_LEN}"
