"""Neighbour discovery messages (RFC 4861 §4): codecs for the ICMPv6 message body, with the validity checks of
§6.1.1, §6.1.2, §7.1.1 and §7.1.2.

The stack has already checked the IPv6 header and the ICMPv6 checksum; these functions see the bytes after
ICMPv6's type, code and checksum, plus the IPv6 hop limit, source and destination the checks need. Why the
hop limit of 255 matters most: a router decrements it, so 255 proves the message was sent on this link, and
no host elsewhere on the internet can forge our neighbours or routers (§3.1).

Why Redirects are refused outright: a redirect only ever names a better first hop than our default router.
The appliance is a host with one default route; honouring redirects would let anyone on the link who can
forge the router's link-local source steer our traffic, for no gain (Linux with accept_redirects=0 does the
same). They are counted under their own reason so a redirect storm stands out in the statistics.

Options we do not know, or that do not belong to the message they arrive in, are skipped (§4.6); duplicates of
the ones we use are refused rather than guessed between.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from netstack.addresses6 import UNSPECIFIED, is_link_local, is_multicast, solicited_node
from netstack.errors import MalformedError
from netstack.limits import NdLimits
from netstack.reasons import Drop

ROUTER_SOLICIT = 133
ROUTER_ADVERT = 134
NEIGHBOR_SOLICIT = 135
NEIGHBOR_ADVERT = 136
REDIRECT = 137
ND_TYPES = frozenset({ROUTER_SOLICIT, ROUTER_ADVERT, NEIGHBOR_SOLICIT, NEIGHBOR_ADVERT, REDIRECT})
HOP_LIMIT = 255
INFINITE_LIFETIME = 0xFFFFFFFF  # a prefix lifetime that never runs out (§4.6.2)

OPT_SOURCE_LINK_ADDRESS = 1
OPT_TARGET_LINK_ADDRESS = 2
OPT_PREFIX_INFORMATION = 3
OPT_MTU = 5

DEFAULT_ND_LIMITS = NdLimits()

_MAC_LEN = 6
_OPTION_UNIT = 8
_NA_ROUTER = 0x80
_NA_SOLICITED = 0x40
_NA_OVERRIDE = 0x20
_RA_MANAGED = 0x80
_RA_OTHER = 0x40
_PREFIX_ON_LINK = 0x80
_PREFIX_AUTONOMOUS = 0x40
_TARGET = struct.Struct("!4x16s")  # NS and NA: flags or reserved, target
_RA = struct.Struct("!BBHII")
_PREFIX = struct.Struct("!BBII4x16s")
_MTU = struct.Struct("!2xI")
_MIN_BODY = {ROUTER_SOLICIT: 4, ROUTER_ADVERT: _RA.size, NEIGHBOR_SOLICIT: _TARGET.size,
             NEIGHBOR_ADVERT: _TARGET.size}


@dataclass(frozen=True, slots=True)
class NeighborSolicit:
    """A Neighbor Solicitation (RFC 4861 §4.3) that passed §7.1.1: address resolution for `target`, or, from the
    unspecified source and then without `source_mac`, another host's duplicate address detection probe."""

    target: bytes
    source_mac: bytes | None


@dataclass(frozen=True, slots=True)
class NeighborAdvert:
    """A Neighbor Advertisement (RFC 4861 §4.4) that passed §7.1.2. The flags decide how it updates the neighbour
    cache (§7.2.5); one for an address of ours is a DAD collision or a conflict."""

    router: bool
    solicited: bool
    override: bool
    target: bytes
    target_mac: bytes | None


@dataclass(frozen=True, slots=True)
class RouterSolicit:
    """A Router Solicitation (RFC 4861 §4.1). We are a host, so one received is parsed only to check it and then
    counted as ignored (§6.2.6 is for routers); we send our own with `serialize_rs`."""

    source_mac: bytes | None


@dataclass(frozen=True, slots=True)
class PrefixInfo:
    """A Prefix Information option (RFC 4861 §4.6.2): an on-link prefix, an autoconfiguration prefix (RFC 4862
    §5.5.3), or both, with the lifetimes that bound how long it counts."""

    prefix_len: int
    on_link: bool
    autonomous: bool
    valid_lifetime: int  # seconds; INFINITE_LIFETIME for ever
    preferred_lifetime: int
    prefix: bytes  # as sent: bits after prefix_len are not cleared here (receivers ignore them)


@dataclass(frozen=True, slots=True)
class RouterAdvert:
    """A Router Advertisement (RFC 4861 §4.2) from a link-local source (§6.1.2). What it may change is bounded by
    slaac.py: a forged one can come from anyone on the link."""

    cur_hop_limit: int  # 0: unspecified
    managed: bool
    other: bool
    router_lifetime: int  # seconds; 0: not a default router
    reachable_time: int  # milliseconds; 0: unspecified
    retrans_timer: int  # milliseconds; 0: unspecified
    source_mac: bytes | None
    mtu: int | None
    prefixes: tuple[PrefixInfo, ...]


NdMessage = NeighborSolicit | NeighborAdvert | RouterSolicit | RouterAdvert


def parse_nd(
    icmp_type: int, code: int, body: memoryview, *, hop_limit: int, src: bytes, dst: bytes,
    max_options: int = DEFAULT_ND_LIMITS.options_per_message,
) -> NdMessage:
    """One ND message body (after the ICMPv6 type, code and checksum); every option must end inside it."""
    if icmp_type == REDIRECT:
        raise MalformedError(Drop.ND_REDIRECT_IGNORED)
    if icmp_type not in _MIN_BODY:
        raise MalformedError(Drop.ND_UNKNOWN_TYPE, str(icmp_type))
    if hop_limit != HOP_LIMIT:
        raise MalformedError(Drop.ND_BAD_HOP_LIMIT, str(hop_limit))
    if code != 0:
        raise MalformedError(Drop.ND_BAD_CODE, str(code))
    fixed = _MIN_BODY[icmp_type]
    if len(body) < fixed:
        raise MalformedError(Drop.ND_TRUNCATED, f"type {icmp_type}: {len(body)} bytes")
    options = _walk_options(body[fixed:], max_options)
    if icmp_type == NEIGHBOR_SOLICIT:
        return _solicit(body, options, src, dst)
    if icmp_type == NEIGHBOR_ADVERT:
        return _advert(body, options, dst)
    if icmp_type == ROUTER_SOLICIT:
        source_mac = _link_address(options, OPT_SOURCE_LINK_ADDRESS)
        if src == UNSPECIFIED and source_mac is not None:
            raise MalformedError(Drop.ND_UNSPECIFIED_SOURCE_OPTION, "router solicitation")
        return RouterSolicit(source_mac)
    return _router_advert(body, options, src)


def _walk_options(view: memoryview, max_options: int) -> list[tuple[int, memoryview]]:
    """(type, value) of every option; the walk is bounded by the message length and by max_options."""
    options: list[tuple[int, memoryview]] = []
    i = 0
    while i < len(view):
        if len(options) >= max_options:
            raise MalformedError(Drop.ND_TOO_MANY_OPTIONS, f"more than {max_options}")
        if len(view) - i < 2:
            raise MalformedError(Drop.ND_BAD_OPTION, "option header cut short")
        kind, units = view[i], view[i + 1]
        end = i + units * _OPTION_UNIT
        if units == 0 or end > len(view):  # §4.6: length 0 is invalid; an option may not run past the end
            raise MalformedError(Drop.ND_BAD_OPTION, f"option {kind} length {units}")
        options.append((kind, view[i + 2:end]))
        i = end
    return options


def _only(options: list[tuple[int, memoryview]], kind: int) -> memoryview | None:
    found = [value for k, value in options if k == kind]
    if len(found) > 1:
        raise MalformedError(Drop.ND_DUPLICATE_OPTION, f"option {kind} {len(found)} times")
    return found[0] if found else None


def _link_address(options: list[tuple[int, memoryview]], kind: int) -> bytes | None:
    """An Ethernet link-layer address option (§4.6.1): exactly one unit, a unicast MAC."""
    value = _only(options, kind)
    if value is None:
        return None
    if len(value) != _MAC_LEN:
        raise MalformedError(Drop.ND_BAD_LINK_ADDRESS, f"{len(value)} bytes")
    mac = bytes(value)
    if mac[0] & 1 or mac == bytes(_MAC_LEN):
        raise MalformedError(Drop.ND_BAD_LINK_ADDRESS, "multicast or zero")
    return mac


def _solicit(body: memoryview, options: list[tuple[int, memoryview]], src: bytes, dst: bytes) -> NeighborSolicit:
    (target,) = _TARGET.unpack_from(body)
    if is_multicast(target):
        raise MalformedError(Drop.ND_MULTICAST_TARGET)
    source_mac = _link_address(options, OPT_SOURCE_LINK_ADDRESS)
    if src == UNSPECIFIED:  # a duplicate address detection probe (§7.1.1)
        if solicited_node(dst) != dst:
            raise MalformedError(Drop.ND_DAD_NOT_SOLICITED_NODE)
        if source_mac is not None:
            raise MalformedError(Drop.ND_UNSPECIFIED_SOURCE_OPTION, "neighbour solicitation")
    return NeighborSolicit(target, source_mac)


def _advert(body: memoryview, options: list[tuple[int, memoryview]], dst: bytes) -> NeighborAdvert:
    flags = body[0]
    (target,) = _TARGET.unpack_from(body)
    if is_multicast(target):
        raise MalformedError(Drop.ND_MULTICAST_TARGET)
    if flags & _NA_SOLICITED and is_multicast(dst):
        raise MalformedError(Drop.ND_SOLICITED_TO_MULTICAST)
    return NeighborAdvert(bool(flags & _NA_ROUTER), bool(flags & _NA_SOLICITED), bool(flags & _NA_OVERRIDE),
                          target, _link_address(options, OPT_TARGET_LINK_ADDRESS))


def _router_advert(body: memoryview, options: list[tuple[int, memoryview]], src: bytes) -> RouterAdvert:
    if not is_link_local(src):  # §6.1.2: routers speak from their link-local address
        raise MalformedError(Drop.ND_RA_NOT_LINK_LOCAL)
    hops, flags, lifetime, reachable, retrans = _RA.unpack_from(body)
    mtu = None
    mtu_value = _only(options, OPT_MTU)
    if mtu_value is not None:
        if len(mtu_value) != _MTU.size:
            raise MalformedError(Drop.ND_BAD_MTU_OPTION, f"{len(mtu_value)} bytes")
        (mtu,) = _MTU.unpack(mtu_value)
    prefixes = tuple(_prefix(value) for kind, value in options if kind == OPT_PREFIX_INFORMATION)
    return RouterAdvert(hops, bool(flags & _RA_MANAGED), bool(flags & _RA_OTHER), lifetime, reachable, retrans,
                        _link_address(options, OPT_SOURCE_LINK_ADDRESS), mtu, prefixes)


def _prefix(value: memoryview) -> PrefixInfo:
    if len(value) != _PREFIX.size:
        raise MalformedError(Drop.ND_BAD_PREFIX_OPTION, f"{len(value)} bytes")
    prefix_len, flags, valid, preferred, prefix = _PREFIX.unpack(value)
    if prefix_len > 128:
        raise MalformedError(Drop.ND_BAD_PREFIX_OPTION, f"prefix length {prefix_len}")
    return PrefixInfo(prefix_len, bool(flags & _PREFIX_ON_LINK), bool(flags & _PREFIX_AUTONOMOUS), valid,
                      preferred, prefix)


# --- serializers: the body bytes, to go after ICMPv6's type, code and checksum -------------------------------


def _option(kind: int, value: bytes) -> bytes:
    units, rest = divmod(len(value) + 2, _OPTION_UNIT)
    if rest or units > 255:
        raise ValueError(f"option {kind}: {len(value)} value bytes do not fill whole units")
    return bytes((kind, units)) + value


def _mac_option(kind: int, mac: bytes | None) -> bytes:
    if mac is None:
        return b""
    if len(mac) != _MAC_LEN:
        raise ValueError("an Ethernet address is 6 bytes")
    return _option(kind, mac)


def _check_address(address: bytes) -> bytes:
    if len(address) != 16:
        raise ValueError("IPv6 addresses are 16 bytes")
    return address


def serialize_ns(target: bytes, source_mac: bytes | None) -> bytes:
    return _TARGET.pack(_check_address(target)) + _mac_option(OPT_SOURCE_LINK_ADDRESS, source_mac)


def serialize_na(target: bytes, target_mac: bytes | None, *, router: bool, solicited: bool, override: bool) -> bytes:
    flags = (_NA_ROUTER if router else 0) | (_NA_SOLICITED if solicited else 0) | (_NA_OVERRIDE if override else 0)
    return (bytes((flags,)) + _TARGET.pack(_check_address(target))[1:]
            + _mac_option(OPT_TARGET_LINK_ADDRESS, target_mac))


def serialize_rs(source_mac: bytes | None) -> bytes:
    return bytes(4) + _mac_option(OPT_SOURCE_LINK_ADDRESS, source_mac)


def serialize_prefix(info: PrefixInfo) -> bytes:
    flags = (_PREFIX_ON_LINK if info.on_link else 0) | (_PREFIX_AUTONOMOUS if info.autonomous else 0)
    value = _PREFIX.pack(info.prefix_len, flags, info.valid_lifetime, info.preferred_lifetime,
                         _check_address(info.prefix))
    return _option(OPT_PREFIX_INFORMATION, value)


def serialize_ra(message: RouterAdvert) -> bytes:
    """For tests and the conformance peer: we are never a router ourselves."""
    flags = (_RA_MANAGED if message.managed else 0) | (_RA_OTHER if message.other else 0)
    parts: Iterable[bytes] = (
        _RA.pack(message.cur_hop_limit, flags, message.router_lifetime, message.reachable_time,
                 message.retrans_timer),
        _mac_option(OPT_SOURCE_LINK_ADDRESS, message.source_mac),
        b"" if message.mtu is None else _option(OPT_MTU, _MTU.pack(message.mtu)),
        *(serialize_prefix(info) for info in message.prefixes),
    )
    return b"".join(parts)
