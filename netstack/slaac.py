"""Our IPv6 addresses and what routers tell us: stateless autoconfiguration (RFC 4862) with stable, private
interface identifiers (RFC 7217), duplicate address detection, router solicitation and the host's part of
router discovery (RFC 4861 §6.3.4: default routers, on-link prefixes, link parameters).

Why every address goes through DAD, the static one included (RFC 4862 §5.4): an address used while someone
else holds it splits the traffic meant for either host, silently. A tentative address is owned (NSs for it
matter: they are the other claimant's DAD) but never used as a source and never answered for.

Why routers cannot make us do much: an RA comes from any host on the link that forges a link-local source
(the codec checked that it was not routed, nothing more), so the lists it feeds are bounded and counted when
full, the timer values it carries are only accepted within bounds (a hop limit of 1 or a retransmission timer
of a millisecond would be a denial of service), the MTU may only lower the link's, and RFC 4862 §5.5.3(e)
keeps an unauthenticated RA from cutting an address's remaining valid lifetime below two hours.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum

from netstack.addresses6 import (
    ALL_NODES,
    ALL_ROUTERS,
    IID_LEN,
    LINK_LOCAL_PREFIX,
    UNSPECIFIED,
    is_link_local,
    is_multicast,
    is_unicast_host,
    link_local,
    multicast_mac,
    network,
    prefix_matches,
    solicited_node,
    stable_iid,
)
from netstack.ipv6 import MIN_MTU
from netstack.limits import SlaacLimits
from netstack.ndp import (
    INFINITE_LIFETIME,
    NEIGHBOR_SOLICIT,
    ROUTER_SOLICIT,
    PrefixInfo,
    RouterAdvert,
    serialize_ns,
    serialize_rs,
)
from netstack.neighbour6 import REACHABLE_TIME, RETRANS_TIMER, NdSend, Rng
from netstack.reasons import Counters, Drop

DEFAULT_SLAAC_LIMITS = SlaacLimits()

# RFC 4861 §10, RFC 4862 §5.1, RFC 7217 §7
MAX_RTR_SOLICITATION_DELAY = 1.0  # also the random delay before the first DAD probe (RFC 4862 §5.4.2)
RTR_SOLICITATION_INTERVAL = 4.0
MAX_RTR_SOLICITATIONS = 3
DUP_ADDR_DETECT_TRANSMITS = 1
IDGEN_RETRIES = 3  # new identifiers tried after a collision before giving up on an address
IDGEN_DELAY = 1.0
TWO_HOURS = 7200.0
MAX_REACHABLE_TIME = 3600.0
MIN_LINK_MTU = MIN_MTU  # RFC 8200 §5
DEFAULT_HOP_LIMIT = 64
AUTOCONF_PREFIX_LEN = 64  # prefix + our 64-bit identifier must make 128 bits (RFC 4862 §5.5.3(d))


class AddressState(Enum):
    TENTATIVE = "tentative"  # DAD running: owned, not usable
    PREFERRED = "preferred"
    DEPRECATED = "deprecated"  # preferred lifetime over: still valid, avoided for new connections
    DUPLICATE = "duplicate"  # DAD failed and we gave up: kept (not owned) so an RA does not restart DAD


class Origin(Enum):
    LINK_LOCAL = "link-local"
    STATIC = "static"
    AUTOCONF = "autoconf"


@dataclass(slots=True)
class _Address:
    """One address of ours and where it is in its life: tentative while DAD runs (RFC 4862 §5.4), then preferred,
    deprecated or duplicate, with its lifetimes (§5.5.4). Mutable: DAD and each RA update it in place."""

    address: bytes
    prefix_len: int
    origin: Origin
    state: AddressState
    dad_counter: int
    dad_at: float  # while TENTATIVE: the next probe or, with no probe left, the end of DAD
    probes_left: int
    valid_until: float = math.inf
    preferred_until: float = math.inf

    @property
    def owned(self) -> bool:
        return self.state is not AddressState.DUPLICATE

    @property
    def usable(self) -> bool:
        return self.state in (AddressState.PREFERRED, AddressState.DEPRECATED)


def _lifetime(value: int) -> float:
    return math.inf if value == INFINITE_LIFETIME else float(value)


def _common_prefix_len(a: bytes, b: bytes) -> int:
    return 128 - (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_length()


class AddressConfig:
    """Time in, messages out (`take_outgoing`): the stack routes received DAD-relevant NS/NA and RAs here,
    sends what comes out, and asks the queries below on every packet it sends or accepts."""

    __slots__ = ("_autoconf", "_counters", "_failed", "_interface", "_limits", "_link_local", "_link_mtu", "_mac",
                 "_network_id", "_outgoing", "_prefixes", "_rng", "_routers", "_rs_at", "_rs_left", "_secret",
                 "_static", "_static_config", "base_reachable_time", "hop_limit", "mtu",
                 "retrans_timer")

    def __init__(self, mac: bytes, counters: Counters, rng: Rng, secret: bytes, *, interface: bytes | None = None,
                 network_id: bytes = b"", link_mtu: int = 1500, static: tuple[bytes, int, bytes | None] | None = None,
                 limits: SlaacLimits = DEFAULT_SLAAC_LIMITS) -> None:
        if len(secret) < 16:
            raise ValueError("RFC 7217 asks for a secret of at least 128 bits")
        if link_mtu < MIN_LINK_MTU:
            raise ValueError(f"IPv6 needs a link MTU of at least {MIN_LINK_MTU}")
        if static is not None and (not is_unicast_host(static[0]) or not 0 < static[1] <= 128
                                   or is_link_local(static[0])):
            raise ValueError("the static IPv6 address must be a global unicast address with a prefix length 1..128")
        self._mac = mac
        self._counters = counters
        self._rng = rng
        self._secret = secret
        self._interface = mac if interface is None else interface
        self._network_id = network_id
        self._link_mtu = link_mtu
        self._limits = limits
        self._static_config = static
        self.mtu = link_mtu
        self.hop_limit = DEFAULT_HOP_LIMIT
        self.base_reachable_time = REACHABLE_TIME  # for Neighbours6.configure when it changes
        self.retrans_timer = RETRANS_TIMER
        self._link_local: _Address | None = None
        self._static: _Address | None = None
        self._autoconf: dict[bytes, _Address] = {}  # by /64 prefix
        self._routers: dict[bytes, float] = {}  # default routers, learned order but unreachable last: -> expiry
        self._prefixes: dict[tuple[bytes, int], float] = {}  # on-link prefixes: (network, length) -> expiry
        self._outgoing: list[NdSend] = []
        self._failed: list[bytes] = []
        self._rs_at = math.inf
        self._rs_left = 0

    # --- starting and DAD ---------------------------------------------------------------------------------------

    def start(self, now: float) -> None:
        """The link came up: forget what routers said, and start DAD on the link-local (and static) address."""
        self._autoconf.clear()
        self._routers.clear()
        self._prefixes.clear()
        self._outgoing.clear()
        self._rs_at, self._rs_left = math.inf, 0
        self.mtu = self._link_mtu
        self._link_local = self._tentative(now, LINK_LOCAL_PREFIX, Origin.LINK_LOCAL, 0)
        self._static = None
        if self._static_config is not None:
            address, prefix_len, _ = self._static_config
            self._static = _Address(address, prefix_len, Origin.STATIC, AddressState.TENTATIVE, 0,
                                    now + self._rng.uniform(0, MAX_RTR_SOLICITATION_DELAY), DUP_ADDR_DETECT_TRANSMITS)

    def _tentative(self, now: float, prefix: bytes, origin: Origin, dad_counter: int) -> _Address:
        iid = stable_iid(prefix, self._interface, self._network_id, dad_counter, self._secret)
        address = link_local(iid) if origin is Origin.LINK_LOCAL else prefix[:IID_LEN] + iid
        delay = self._rng.uniform(0, IDGEN_DELAY if dad_counter else MAX_RTR_SOLICITATION_DELAY)
        return _Address(address, AUTOCONF_PREFIX_LEN, origin, AddressState.TENTATIVE, dad_counter, now + delay,
                        DUP_ADDR_DETECT_TRANSMITS)

    def _all(self) -> Iterator[_Address]:
        if self._link_local is not None:
            yield self._link_local
        if self._static is not None:
            yield self._static
        yield from self._autoconf.values()

    def _find(self, address: bytes) -> _Address | None:
        """Three lookups, not a scan: the stack asks this for both ends of every packet. An autoconfigured
        address is its /64 prefix (the key of `_autoconf`) and one identifier, so the prefix finds it."""
        for fixed in (self._link_local, self._static):
            if fixed is not None and fixed.address == address:
                return fixed
        found = self._autoconf.get(address[:IID_LEN])
        return found if found is not None and found.address == address else None

    def state_of(self, address: bytes) -> AddressState | None:
        """The state of one of our addresses (tentative, preferred, ...), None for an address not ours."""
        found = self._find(address)
        return found.state if found is not None else None

    def neighbour_solicit_received(self, now: float, target: bytes, src: bytes) -> None:
        """An NS from :: for a tentative address of ours is another host's DAD for it (RFC 4862 §5.4.3)."""
        found = self._find(target)
        if found is not None and found.state is AddressState.TENTATIVE and src == UNSPECIFIED:
            self._duplicate(now, found)

    def neighbour_advert_received(self, now: float, target: bytes) -> None:
        """An NA for an address of ours: a collision during DAD, a conflict after it (RFC 4862 §5.4.4)."""
        found = self._find(target)
        if found is None:
            return
        if found.state is AddressState.TENTATIVE:
            self._duplicate(now, found)
        elif found.usable:
            self._counters.add(Drop.ND_ADDRESS_CONFLICT)

    def _duplicate(self, now: float, found: _Address) -> None:
        """Retry with the next RFC 7217 identifier (the static address has no other), or give up."""
        self._counters.add(Drop.ND_DAD_DUPLICATE)
        if found.origin is Origin.STATIC or found.dad_counter >= IDGEN_RETRIES:
            found.state, found.dad_at = AddressState.DUPLICATE, math.inf
            self._counters.add(Drop.ND_DAD_FAILED)
            if len(self._failed) < self._limits.addresses + 2:
                self._failed.append(found.address)
            return
        prefix = found.address[:IID_LEN]
        retry = self._tentative(now, prefix, found.origin, found.dad_counter + 1)
        found.address, found.dad_counter, found.dad_at = retry.address, retry.dad_counter, retry.dad_at
        found.probes_left = DUP_ADDR_DETECT_TRANSMITS

    def _dad_step(self, now: float, found: _Address) -> None:
        if found.state is not AddressState.TENTATIVE or found.dad_at > now:
            return
        if found.probes_left > 0:
            found.probes_left -= 1
            found.dad_at = now + self.retrans_timer
            group = solicited_node(found.address)
            self._send(NdSend(UNSPECIFIED, group, multicast_mac(group), NEIGHBOR_SOLICIT,
                              serialize_ns(found.address, None)))
            return
        found.dad_at = math.inf
        found.state = AddressState.PREFERRED if found.preferred_until > now else AddressState.DEPRECATED
        if found.origin is Origin.LINK_LOCAL:  # RFC 4861 §6.3.7: now we may ask for routers
            self._rs_at = now + self._rng.uniform(0, MAX_RTR_SOLICITATION_DELAY)
            self._rs_left = MAX_RTR_SOLICITATIONS

    def _send(self, message: NdSend) -> None:
        if len(self._outgoing) >= self._limits.outgoing_messages:
            self._counters.add(Drop.ND_OUTGOING_FULL)
            return
        self._outgoing.append(message)

    # --- router advertisements ----------------------------------------------------------------------------------

    def router_advert_received(self, now: float, message: RouterAdvert, src: bytes) -> None:
        """A valid RA (the codec checked §6.1.2) from the link-local address `src`."""
        if message.router_lifetime:
            self._rs_at, self._rs_left = math.inf, 0  # §6.3.7: a router answered, stop soliciting
        self._parameters(message)
        self._router(now, src, message.router_lifetime)
        if message.mtu is not None:
            if MIN_LINK_MTU <= message.mtu <= self._link_mtu:
                self.mtu = message.mtu
            else:
                self._counters.add(Drop.ND_RA_BAD_MTU)
        for info in message.prefixes:
            self._prefix(now, info)

    def _parameters(self, message: RouterAdvert) -> None:
        """§6.3.4: Cur Hop Limit, ReachableTime and RetransTimer, when specified and within bounds."""
        limits = self._limits
        if message.cur_hop_limit:
            if message.cur_hop_limit >= limits.min_hop_limit:
                self.hop_limit = message.cur_hop_limit
            else:
                self._counters.add(Drop.ND_RA_BAD_PARAMETER)
        if message.reachable_time:
            if limits.min_reachable_time <= message.reachable_time / 1000 <= MAX_REACHABLE_TIME:
                self.base_reachable_time = message.reachable_time / 1000
            else:
                self._counters.add(Drop.ND_RA_BAD_PARAMETER)
        if message.retrans_timer:
            if limits.min_retrans_timer <= message.retrans_timer / 1000 <= limits.max_retrans_timer:
                self.retrans_timer = message.retrans_timer / 1000
            else:
                self._counters.add(Drop.ND_RA_BAD_PARAMETER)

    def _router(self, now: float, src: bytes, lifetime: int) -> None:
        if lifetime == 0:  # §6.3.4: no longer (or never) a default router
            self._routers.pop(src, None)
        elif src in self._routers or len(self._routers) < self._limits.routers:
            self._routers[src] = now + lifetime
        else:
            self._counters.add(Drop.ND_ROUTERS_FULL)

    def router_withdrawn(self, address: bytes) -> None:
        """An NA whose IsRouter flag is clear for `address`: if it is a default router, it is one no longer and
        leaves the list (RFC 4861 §7.2.5: a change from TRUE to FALSE MUST remove it; a router on the list has
        told us TRUE by its RA). It can only take a router away, which a forged RA with lifetime 0 can too."""
        if self._routers.pop(address, None) is not None:
            self._counters.add(Drop.ND_ROUTER_WITHDRAWN)

    def _prefix(self, now: float, info: PrefixInfo) -> None:
        if is_link_local(info.prefix) or is_multicast(info.prefix) or info.preferred_lifetime > info.valid_lifetime:
            self._counters.add(Drop.ND_RA_PREFIX_IGNORED)  # RFC 4861 §6.3.4, RFC 4862 §5.5.3(b, c)
            return
        if info.on_link:
            self._on_link_prefix(now, info)
        if info.autonomous:
            if info.prefix_len == AUTOCONF_PREFIX_LEN:
                self._autonomous(now, info)
            else:
                self._counters.add(Drop.ND_RA_PREFIX_IGNORED)

    def _on_link_prefix(self, now: float, info: PrefixInfo) -> None:
        if info.prefix_len < self._limits.min_on_link_prefix_len:  # SlaacLimits.min_on_link_prefix_len says why
            self._counters.add(Drop.ND_RA_PREFIX_IGNORED)
            return
        key = (network(info.prefix, info.prefix_len), info.prefix_len)
        if info.valid_lifetime == 0:
            self._prefixes.pop(key, None)
        elif key in self._prefixes or len(self._prefixes) < self._limits.prefixes:
            self._prefixes[key] = now + _lifetime(info.valid_lifetime)
        else:
            self._counters.add(Drop.ND_PREFIXES_FULL)

    def _autonomous(self, now: float, info: PrefixInfo) -> None:
        """RFC 4862 §5.5.3(d, e): form an address for a new prefix, or update the lifetimes of ours."""
        prefix = info.prefix[:IID_LEN]
        valid, preferred = _lifetime(info.valid_lifetime), _lifetime(info.preferred_lifetime)
        found = self._autoconf.get(prefix)
        if found is None:
            if valid == 0:
                return
            if len(self._autoconf) >= self._limits.addresses:
                self._counters.add(Drop.ND_ADDRESSES_FULL)
                return
            found = self._tentative(now, prefix, Origin.AUTOCONF, 0)
            found.valid_until, found.preferred_until = now + valid, now + preferred
            self._autoconf[prefix] = found
            return
        found.preferred_until = now + preferred
        remaining = found.valid_until - now
        if valid > TWO_HOURS or valid > remaining:
            found.valid_until = now + valid
        elif remaining > TWO_HOURS:
            found.valid_until = now + TWO_HOURS  # the two-hour rule: an RA may not cut it shorter
            self._counters.add(Drop.ND_RA_LIFETIME_LIMITED)
        else:
            self._counters.add(Drop.ND_RA_LIFETIME_LIMITED)  # already under two hours: left alone
        if found.usable:
            found.state = AddressState.PREFERRED if found.preferred_until > now else AddressState.DEPRECATED

    # --- timers -------------------------------------------------------------------------------------------------

    def timers_expired(self, now: float) -> None:
        for prefix in [p for p, a in self._autoconf.items() if a.valid_until <= now]:
            del self._autoconf[prefix]
        for found in self._all():
            if found.state is AddressState.PREFERRED and found.preferred_until <= now:
                found.state = AddressState.DEPRECATED
            self._dad_step(now, found)
        for router in [r for r, expiry in self._routers.items() if expiry <= now]:
            del self._routers[router]
        for key in [k for k, expiry in self._prefixes.items() if expiry <= now]:
            del self._prefixes[key]
        if self._rs_left and self._rs_at <= now:
            self._rs_left -= 1
            self._rs_at = now + RTR_SOLICITATION_INTERVAL if self._rs_left else math.inf
            source = self._link_local
            if source is not None and source.usable:
                self._send(NdSend(source.address, ALL_ROUTERS, multicast_mac(ALL_ROUTERS), ROUTER_SOLICIT,
                                  serialize_rs(self._mac)))

    def next_deadline(self) -> float | None:
        deadlines = [self._rs_at, *self._routers.values(), *self._prefixes.values()]
        for found in self._all():
            deadlines += [found.dad_at, found.valid_until]
            if found.state is AddressState.PREFERRED:
                deadlines.append(found.preferred_until)
        deadline = min(deadlines)
        return None if deadline == math.inf else deadline

    def take_outgoing(self) -> list[NdSend]:
        out, self._outgoing = self._outgoing, []
        return out

    def take_failed(self) -> list[bytes]:
        """Addresses given up on after DAD found them taken, since the last call: for the caller to log."""
        out, self._failed = self._failed, []
        return out

    # --- queries ------------------------------------------------------------------------------------------------

    def addresses(self) -> tuple[tuple[bytes, int], ...]:
        """Usable addresses (not tentative) with their prefix lengths: link-local first."""
        return tuple((a.address, a.prefix_len) for a in self._all() if a.usable)

    def owns(self, address: bytes) -> bool:
        """Preferred, deprecated or tentative: tentative addresses are never a source, but NSs for them matter."""
        found = self._find(address)
        return found is not None and found.owned

    def assigned(self, address: bytes) -> bool:
        """Ours and usable: what Neighbours6.solicitation_received answers for."""
        found = self._find(address)
        return found is not None and found.usable

    def is_tentative(self, address: bytes) -> bool:
        found = self._find(address)
        return found is not None and found.state is AddressState.TENTATIVE

    def source_for(self, dst: bytes) -> bytes | None:
        """RFC 6724 simplified: the link-local address for link-scoped destinations; otherwise a global address,
        preferred over deprecated (rule 3), then the longest prefix shared with the destination (rule 8)."""
        if is_link_local(dst) or (is_multicast(dst) and dst[1] & 0x0F <= 2):
            ll = self._link_local
            return ll.address if ll is not None and ll.usable else None
        candidates = [a for a in self._all() if a.usable and a.origin is not Origin.LINK_LOCAL]
        if not candidates:
            return None
        best = max(candidates, key=lambda a: (a.state is AddressState.PREFERRED, _common_prefix_len(a.address, dst)))
        return best.address

    def solicitation_source(self, target: bytes) -> bytes | None:
        """The source of a neighbour solicitation for `target` when the packet that prompted it no longer has one
        of ours (RFC 4861 §7.2.2: "any one of the addresses assigned to the interface"): source selection's pick,
        else the link-local address, since ND never leaves the link and a global target is no reason to stay
        silent once our last global address expired. None only without a usable address at all."""
        return self.source_for(target) or self.source_for(ALL_NODES)

    def default_router(self, known: Callable[[bytes], bool] | None = None) -> bytes | None:
        """The configured gateway, else an advertised router still valid, chosen as RFC 4861 §6.3.6 says: the
        first one `known` calls reachable or probably reachable (a neighbour cache entry in any state but
        INCOMPLETE), else the first of the list, which `router_unreachable` rotates (the round-robin of §6.3.6
        when none is known reachable). Without it, one forged RA with a long lifetime and a MAC nobody owns,
        learned before the real router's, took all off-link traffic for up to 18 hours."""
        gateway = self._static_config[2] if self._static is not None and self._static_config is not None else None
        if gateway is not None:
            return gateway
        if known is not None:
            for router in self._routers:
                if known(router):
                    return router
        return next(iter(self._routers), None)

    def router_unreachable(self, address: bytes) -> None:
        """Resolution of `address` failed (no answer to the multicast solicitations, or to the unicast probes of
        a cached entry): if it is a default router, it goes to the end of the list, so the next off-link packet
        tries another (RFC 4861 §6.3.6, §7.3.3). It stays on the list: a router that comes back is used again
        once the others have failed in turn."""
        expiry = self._routers.pop(address, None)
        if expiry is not None:
            self._routers[address] = expiry
            self._counters.add(Drop.ND_ROUTER_UNREACHABLE)

    def routers(self) -> tuple[bytes, ...]:
        return tuple(self._routers)

    def prefixes(self) -> tuple[tuple[bytes, int], ...]:
        """The on-link prefixes learned from routers."""
        return tuple(self._prefixes)

    def on_link(self, address: bytes) -> bool:
        """§5.2 next-hop determination: link-local, inside an advertised on-link prefix, or the static prefix."""
        if is_link_local(address):
            return True
        if self._static is not None and prefix_matches(address, self._static.address, self._static.prefix_len):
            return True
        return any(prefix_matches(address, net, length) for net, length in self._prefixes)

    def is_subnet_anycast(self, address: bytes) -> bool:
        """The Subnet-Router anycast address (RFC 4291 §2.6.1: the prefix with an all-zero interface identifier)
        of a prefix of ours: link-local, static, autoconfigured or advertised on-link. RFC 4443 §2.4(e.6) sends
        no error to it (it names no single node). Not for /127 and /128, which have none (RFC 6164)."""
        prefixes = [(LINK_LOCAL_PREFIX + bytes(IID_LEN), AUTOCONF_PREFIX_LEN), *self._prefixes]
        prefixes += [(a.address, a.prefix_len) for a in self._all() if a.origin is not Origin.LINK_LOCAL]
        return any(length < 127 and address == network(net, length) and prefix_matches(address, net, length)
                   for net, length in prefixes)

    def groups(self) -> frozenset[bytes]:
        """The multicast groups the stack must accept: all-nodes and the solicited-node group of every owned
        address (tentative ones included: the other claimant's DAD probe comes there)."""
        return frozenset({ALL_NODES, *(solicited_node(a.address) for a in self._all() if a.owned)})
