"""Which IP version a connection runs over, told by the length of its addresses: 4 bytes IPv4, 16 bytes IPv6.

Why by length and not by a flag: the stack hands TCP the addresses it read from the IP header, and their length
already says which header that was; a separate flag could disagree with them. Every place that sizes something
by the IP header (the MSS, path MTU floors, the checksum's pseudo-header, the hashes over the 4-tuple) asks
here rather than assuming one family.

A connection never mixes families: IPv4 on one end and IPv6 on the other is a caller's bug on the way out
(`pair_ok` false: ValueError) and a forged or misrouted segment on the way in (counted, dropped).
"""

from __future__ import annotations

from netstack import addresses6

IPV4_LEN = 4
IPV6_LEN = addresses6.ADDRESS_LEN
IPV4_OVERHEAD = 40  # IPv4 header without options (20) + TCP header without options (20)
IPV6_OVERHEAD = 60  # IPv6 header (40; we never send extension headers) + TCP header (20)
IPV6_MIN_MTU = 1280  # RFC 8200 §5: every IPv6 link carries this, so no path is smaller


def is_ipv6(address: bytes) -> bool:
    return len(address) == IPV6_LEN


def pair_ok(local: bytes, remote: bytes) -> bool:
    """Both ends of one family, and a family we know."""
    size = len(local)
    return size == len(remote) and size in (IPV4_LEN, IPV6_LEN)


def overhead(address: bytes) -> int:
    """IP and TCP header bytes in a segment without options: what separates the MTU from the MSS."""
    return IPV6_OVERHEAD if len(address) == IPV6_LEN else IPV4_OVERHEAD


__all__ = ["IPV4_LEN", "IPV4_OVERHEAD", "IPV6_LEN", "IPV6_MIN_MTU", "IPV6_OVERHEAD", "is_ipv6", "overhead",
           "pair_ok"]
