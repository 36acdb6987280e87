"""Our IPv6 addresses: DAD, router solicitation, router advertisements (RFC 4861, RFC 4862, RFC 7217)."""

from __future__ import annotations

import pytest

from netstack.addresses6 import (
    ALL_NODES,
    ALL_ROUTERS,
    LINK_LOCAL_PREFIX,
    UNSPECIFIED,
    ip6_from_text,
    link_local,
    multicast_mac,
    solicited_node,
    stable_iid,
)
from netstack.limits import SlaacLimits
from netstack.ndp import INFINITE_LIFETIME, NeighborSolicit, PrefixInfo, RouterAdvert, RouterSolicit, parse_nd
from netstack.neighbour6 import NdSend
from netstack.reasons import Counters, Drop
from netstack.slaac import AddressConfig

MAC = bytes.fromhex("020000000001")
SECRET = bytes(range(32))
ROUTER = ip6_from_text("fe80::1")
ROUTER_MAC = bytes.fromhex("020000000099")
PREFIX = ip6_from_text("2001:db8:1:2::")
GATEWAY = ip6_from_text("2001:db8:9::1")
STATIC = ip6_from_text("2001:db8:9::5")
LL = link_local(stable_iid(LINK_LOCAL_PREFIX, MAC, b"", 0, SECRET))


class MidRng:
    """uniform() returns the midpoint: every random delay of 0..1 s is exactly 0.5 s."""

    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2


def make(limits: SlaacLimits | None = None, static: tuple[bytes, int, bytes | None] | None = None,
         secret: bytes = SECRET) -> tuple[AddressConfig, Counters]:
    counters = Counters()
    config = AddressConfig(MAC, counters, MidRng(), secret, static=static,
                           limits=limits if limits is not None else SlaacLimits())
    return config, counters


def run(config: AddressConfig, until: float) -> list[tuple[float, NdSend]]:
    """Fire every timer up to `until`, in virtual time; what was sent, with when."""
    sent = []
    while (deadline := config.next_deadline()) is not None and deadline <= until:
        config.timers_expired(deadline)
        sent += [(deadline, message) for message in config.take_outgoing()]
    return sent


def started(limits: SlaacLimits | None = None) -> tuple[AddressConfig, Counters]:
    config, counters = make(limits)
    config.start(0.0)
    run(config, 1.5)  # link-local DAD done
    assert config.addresses() == ((LL, 64),)
    return config, counters


def ra(*prefixes: PrefixInfo, lifetime: int = 1800, mtu: int | None = None, hops: int = 64, reachable: int = 0,
       retrans: int = 0) -> RouterAdvert:
    return RouterAdvert(hops, False, False, lifetime, reachable, retrans, ROUTER_MAC, mtu, prefixes)


def pio(prefix: bytes = PREFIX, valid: int = 86400, preferred: int = 14400, *, length: int = 64,
        on_link: bool = True, autonomous: bool = True) -> PrefixInfo:
    return PrefixInfo(length, on_link, autonomous, valid, preferred, prefix)


def global_address(secret: bytes = SECRET, counter: int = 0, prefix: bytes = PREFIX) -> bytes:
    return prefix[:8] + stable_iid(prefix, MAC, b"", counter, secret)


# --- link-local address and DAD --------------------------------------------------------------------------------


def test_link_local_dad_then_router_solicitations() -> None:
    config, _ = make()
    config.start(0.0)
    assert config.addresses() == ()
    assert config.owns(LL)
    assert config.is_tentative(LL)
    assert not config.assigned(LL)
    assert config.source_for(ALL_ROUTERS) is None  # a tentative address is never a source
    assert config.groups() == {ALL_NODES, solicited_node(LL)}
    sent = run(config, 20.0)
    (when, probe), *solicitations = sent
    assert when == 0.5  # after the random delay
    assert (probe.src, probe.dst, probe.dst_mac) == (UNSPECIFIED, solicited_node(LL), multicast_mac(solicited_node(LL)))
    assert parse_nd(probe.icmp_type, 0, memoryview(probe.body), hop_limit=255, src=probe.src,
                    dst=probe.dst) == NeighborSolicit(LL, None)
    assert config.addresses() == ((LL, 64),)
    assert not config.is_tentative(LL)
    assert config.assigned(LL)
    assert [when for when, _ in solicitations] == [2.0, 6.0, 10.0]  # after DAD: delay, then every 4 s, 3 times
    for _, message in solicitations:
        assert (message.src, message.dst, message.dst_mac) == (LL, ALL_ROUTERS, multicast_mac(ALL_ROUTERS))
        assert parse_nd(message.icmp_type, 0, memoryview(message.body), hop_limit=255, src=LL,
                        dst=ALL_ROUTERS) == RouterSolicit(MAC)
    assert config.next_deadline() is None


def test_stable_across_objects_with_the_same_secret_and_not_with_another() -> None:
    first, _ = started()
    second, _ = started()
    assert first.addresses() == second.addresses()
    other, _ = make(secret=bytes(32))
    other.start(0.0)
    run(other, 1.5)
    assert other.addresses()[0][0] != LL
    for config in (first, other):
        config.router_advert_received(2.0, ra(pio()), ROUTER)
        run(config, 4.0)
    assert first.addresses()[1][0] == global_address()
    assert other.addresses()[1][0] == global_address(bytes(32))
    assert global_address() != global_address(bytes(32))


def test_dad_collision_retries_with_a_new_identifier() -> None:
    config, counters = make()
    config.start(0.0)
    run(config, 0.6)
    config.neighbour_solicit_received(0.7, LL, UNSPECIFIED)  # someone else's DAD probe for it
    assert counters[Drop.ND_DAD_DUPLICATE] == 1
    assert not config.owns(LL)
    retry = link_local(stable_iid(LINK_LOCAL_PREFIX, MAC, b"", 1, SECRET))
    assert config.is_tentative(retry)
    sent = run(config, 3.0)
    assert sent[0][1].dst == solicited_node(retry)
    assert config.addresses() == ((retry, 64),)


def test_ns_from_a_real_address_is_not_a_collision() -> None:
    config, counters = make()
    config.start(0.0)
    config.neighbour_solicit_received(0.1, LL, ROUTER)
    assert counters[Drop.ND_DAD_DUPLICATE] == 0
    assert config.is_tentative(LL)


def test_dad_gives_up_after_the_retries() -> None:
    config, counters = make()
    config.start(0.0)
    for counter in range(4):
        tentative = link_local(stable_iid(LINK_LOCAL_PREFIX, MAC, b"", counter, SECRET))
        assert config.is_tentative(tentative)
        config.neighbour_advert_received(0.1, tentative)
    assert counters[Drop.ND_DAD_DUPLICATE] == 4
    assert counters[Drop.ND_DAD_FAILED] == 1
    assert len(config.take_failed()) == 1
    assert config.take_failed() == []
    assert run(config, 30.0) == []  # no address, so no DAD probe and no router solicitation
    assert config.addresses() == ()
    assert config.groups() == {ALL_NODES}


def test_advert_for_an_address_in_use_is_a_conflict() -> None:
    config, counters = started()
    config.neighbour_advert_received(2.0, LL)
    assert counters[Drop.ND_ADDRESS_CONFLICT] == 1
    assert config.assigned(LL)


def test_static_address_goes_through_dad_and_is_not_regenerated() -> None:
    config, counters = make(static=(STATIC, 64, GATEWAY))
    config.start(0.0)
    assert config.is_tentative(STATIC)
    assert config.default_router() == GATEWAY
    assert config.on_link(ip6_from_text("2001:db8:9::77"))
    assert not config.on_link(ip6_from_text("2001:db8:8::77"))
    run(config, 1.5)
    assert config.addresses() == ((LL, 64), (STATIC, 64))
    assert config.source_for(ip6_from_text("2001:db8:5::1")) == STATIC
    config, counters = make(static=(STATIC, 64, GATEWAY))
    config.start(0.0)
    config.neighbour_advert_received(0.1, STATIC)
    assert counters[Drop.ND_DAD_FAILED] == 1
    assert config.take_failed() == [STATIC]
    assert not config.owns(STATIC)


@pytest.mark.parametrize("static", [(LL, 64, None), (ALL_NODES, 64, None), (STATIC, 0, None), (STATIC, 129, None)])
def test_bad_static_configuration_refused(static: tuple[bytes, int, bytes | None]) -> None:
    with pytest.raises(ValueError, match="static"):
        make(static=static)


def test_short_secret_refused() -> None:
    with pytest.raises(ValueError, match="128 bits"):
        make(secret=bytes(8))


# --- router advertisements -------------------------------------------------------------------------------------


def test_ra_gives_router_prefix_and_address() -> None:
    config, _ = started()
    config.router_advert_received(2.0, ra(pio()), ROUTER)
    assert config.default_router() == ROUTER
    assert config.on_link(PREFIX[:8] + bytes(7) + b"\x42")
    assert not config.on_link(ip6_from_text("2001:db8:1:3::1"))
    address = global_address()
    assert config.is_tentative(address)
    assert config.source_for(ip6_from_text("2001:db8:7::1")) is None  # nothing global yet
    assert config.groups() == {ALL_NODES, solicited_node(LL), solicited_node(address)}
    sent = run(config, 4.0)
    assert [m.dst for _, m in sent] == [solicited_node(address)]  # DAD, and no more RS: a router answered
    assert config.addresses() == ((LL, 64), (address, 64))
    assert config.source_for(ip6_from_text("2001:db8:7::1")) == address
    assert config.source_for(ip6_from_text("fe80::99")) == LL
    assert config.source_for(ip6_from_text("ff02::fb")) == LL


def test_router_lifetime_zero_removes_and_expiry_removes() -> None:
    config, _ = started()
    config.router_advert_received(2.0, ra(lifetime=100), ROUTER)
    assert config.default_router() == ROUTER
    config.router_advert_received(3.0, ra(lifetime=0), ROUTER)
    assert config.default_router() is None
    config.router_advert_received(4.0, ra(lifetime=100), ROUTER)
    run(config, 103.9)
    assert config.default_router() == ROUTER
    run(config, 104.0)
    assert config.default_router() is None


def test_default_router_prefers_known_routers_and_rotates_unreachable_ones() -> None:
    """RFC 4861 §6.3.6: a router the neighbour cache knows first; a router that failed resolution goes last;
    an address that is no router changes nothing; the static gateway wins over all."""
    config, counters = started()
    other = ip6_from_text("fe80::2")
    config.router_advert_received(2.0, ra(lifetime=100), ROUTER)
    config.router_advert_received(2.0, ra(lifetime=100), other)
    assert config.default_router() == ROUTER
    assert config.default_router(lambda a: a == other) == other
    assert config.default_router(lambda a: False) == ROUTER
    config.router_unreachable(ROUTER)
    assert config.routers() == (other, ROUTER)
    assert config.default_router(lambda a: False) == other
    assert counters[Drop.ND_ROUTER_UNREACHABLE] == 1
    config.router_unreachable(ip6_from_text("fe80::77"))  # not a router: nothing moves, nothing counted
    assert config.routers() == (other, ROUTER)
    assert counters[Drop.ND_ROUTER_UNREACHABLE] == 1
    run(config, 102.0)
    assert config.routers() == ()  # the rotation kept each router's expiry
    fixed, _ = make(static=(STATIC, 64, GATEWAY))
    fixed.start(0.0)
    run(fixed, 3.0)
    fixed.router_advert_received(3.0, ra(lifetime=100), ROUTER)
    assert fixed.default_router(lambda a: a == ROUTER) == GATEWAY


def test_address_deprecated_then_removed() -> None:
    config, _ = started()
    config.router_advert_received(2.0, ra(pio(valid=7300, preferred=100)), ROUTER)
    run(config, 101.0)
    address = global_address()
    assert address in dict(config.addresses())
    config.router_advert_received(150.0, ra(pio(PREFIX[:7] + b"\x03" + bytes(8))), ROUTER)
    run(config, 153.0)
    newer = global_address(prefix=PREFIX[:7] + b"\x03" + bytes(8))
    assert config.source_for(PREFIX[:8] + bytes(7) + b"\x01") == newer  # the deprecated one is avoided
    run(config, 7302.0)
    assert address not in dict(config.addresses())
    assert not config.owns(address)
    assert not config.on_link(PREFIX[:8] + bytes(7) + b"\x01")


def test_two_hour_rule() -> None:
    config, counters = started()
    config.router_advert_received(2.0, ra(pio(valid=36000, preferred=3600)), ROUTER)
    run(config, 4.0)
    address = global_address()
    config.router_advert_received(10.0, ra(pio(valid=60, preferred=30)), ROUTER)  # forged: "expire in a minute"
    assert counters[Drop.ND_RA_LIFETIME_LIMITED] == 1
    run(config, 3000.0)
    config.router_advert_received(3000.0, ra(pio(valid=5, preferred=0)), ROUTER)  # under two hours left: ignored
    assert counters[Drop.ND_RA_LIFETIME_LIMITED] == 2
    run(config, 7209.5)
    assert address in dict(config.addresses())  # kept for two hours, not one minute or five seconds
    assert address in dict(config.addresses())
    run(config, 7210.0)
    assert address not in dict(config.addresses())


def test_longer_lifetimes_are_accepted() -> None:
    config, _ = started()
    config.router_advert_received(2.0, ra(pio(valid=100, preferred=50)), ROUTER)
    config.router_advert_received(3.0, ra(pio(valid=1000, preferred=500)), ROUTER)
    run(config, 900.0)
    assert global_address() in dict(config.addresses())


@pytest.mark.parametrize("length", [0, 1, 8, 15])
def test_an_on_link_prefix_shorter_than_the_minimum_is_refused(length: int) -> None:
    """Hardening (SlaacLimits.min_on_link_prefix_len): ::/0 on link would put the whole internet on the link."""
    config, counters = started()
    far = ip6_from_text("2a00:1::1")
    config.router_advert_received(2.0, ra(pio(bytes(16), length=length, autonomous=False)), ROUTER)
    assert config.prefixes() == ()
    assert not config.on_link(far)
    assert counters[Drop.ND_RA_PREFIX_IGNORED] == 1
    config.router_advert_received(2.0, ra(pio(bytes(16), length=16, autonomous=False)), ROUTER)  # the minimum
    assert config.prefixes() == ((bytes(16), 16),)


def test_infinite_lifetime() -> None:
    config, _ = started()
    config.router_advert_received(2.0, ra(pio(valid=INFINITE_LIFETIME, preferred=INFINITE_LIFETIME)), ROUTER)
    run(config, 10**9)
    assert global_address() in dict(config.addresses())


@pytest.mark.parametrize("info", [
    pio(valid=100, preferred=200),  # preferred > valid
    pio(ip6_from_text("fe80::")),  # the link-local prefix
    pio(ip6_from_text("ff02::")),
])
def test_bad_prefixes_ignored(info: PrefixInfo) -> None:
    config, counters = started()
    config.router_advert_received(2.0, ra(info), ROUTER)
    assert counters[Drop.ND_RA_PREFIX_IGNORED] == 1
    assert config.prefixes() == ()
    run(config, 5.0)
    assert config.addresses() == ((LL, 64),)


def test_autonomous_prefix_not_64_bits_is_on_link_only() -> None:
    config, counters = started()
    config.router_advert_received(2.0, ra(pio(length=48)), ROUTER)
    assert counters[Drop.ND_RA_PREFIX_IGNORED] == 1
    assert config.on_link(ip6_from_text("2001:db8:1:ffff::1"))
    run(config, 5.0)
    assert config.addresses() == ((LL, 64),)


def test_new_prefix_with_zero_lifetime_forms_nothing_and_zero_removes_on_link() -> None:
    config, _ = started()
    config.router_advert_received(2.0, ra(pio(valid=0, preferred=0, on_link=False)), ROUTER)
    run(config, 5.0)
    assert config.addresses() == ((LL, 64),)
    config.router_advert_received(6.0, ra(pio(autonomous=False)), ROUTER)
    assert config.prefixes() == ((PREFIX, 64),)
    config.router_advert_received(7.0, ra(pio(valid=0, preferred=0, autonomous=False)), ROUTER)
    assert config.prefixes() == ()


@pytest.mark.parametrize(("mtu", "expected", "refused"), [(1400, 1400, 0), (1280, 1280, 0), (1500, 1500, 0),
                                                          (1279, 1500, 1), (1501, 1500, 1), (9000, 1500, 1)])
def test_mtu_option_bounds(mtu: int, expected: int, refused: int) -> None:
    config, counters = started()
    config.router_advert_received(2.0, ra(mtu=mtu), ROUTER)
    assert config.mtu == expected
    assert counters[Drop.ND_RA_BAD_MTU] == refused


def test_link_parameters_within_bounds() -> None:
    config, counters = started()
    config.router_advert_received(2.0, ra(hops=128, reachable=20000, retrans=2000), ROUTER)
    assert (config.hop_limit, config.base_reachable_time, config.retrans_timer) == (128, 20.0, 2.0)
    config.router_advert_received(3.0, ra(hops=1, reachable=10, retrans=1), ROUTER)
    config.router_advert_received(3.0, ra(hops=0, reachable=3_600_001, retrans=61_000), ROUTER)
    assert counters[Drop.ND_RA_BAD_PARAMETER] == 5
    assert (config.hop_limit, config.base_reachable_time, config.retrans_timer) == (128, 20.0, 2.0)


def test_ra_flood_cannot_grow_any_list() -> None:
    limits = SlaacLimits()
    config, counters = started(limits)
    for i in range(10_000):
        router = ip6_from_text("fe80::")[:8] + i.to_bytes(8, "big")
        prefix = ip6_from_text("2001:db8::")[:4] + i.to_bytes(4, "big") + bytes(8)
        config.router_advert_received(2.0, ra(pio(prefix)), router)
    assert len(config.routers()) == limits.routers
    assert len(config.prefixes()) == limits.prefixes
    assert counters[Drop.ND_ROUTERS_FULL] == 10_000 - limits.routers
    assert counters[Drop.ND_PREFIXES_FULL] == 10_000 - limits.prefixes
    assert counters[Drop.ND_ADDRESSES_FULL] == 10_000 - limits.addresses
    assert len(config.groups()) == 2 + limits.addresses
    sent = run(config, 5.0)
    assert len(sent) == limits.addresses  # one DAD probe per address, nothing else
    assert len(config.addresses()) == 1 + limits.addresses


def test_outgoing_queue_bounded() -> None:
    config, counters = started(SlaacLimits(outgoing_messages=2))
    for i in range(5):
        config.router_advert_received(2.0, ra(pio(PREFIX[:7] + bytes([i]) + bytes(8))), ROUTER)
    config.timers_expired(2.5)
    assert len(config.take_outgoing()) == 2
    assert counters[Drop.ND_OUTGOING_FULL] == 3


def test_start_again_forgets_what_routers_said() -> None:
    config, _ = started()
    config.router_advert_received(2.0, ra(pio(), mtu=1400), ROUTER)
    config.start(10.0)
    assert config.default_router() is None
    assert config.prefixes() == ()
    assert config.mtu == 1500
    assert config.is_tentative(LL)


def test_link_mtu_below_the_ipv6_minimum_refused() -> None:
    with pytest.raises(ValueError, match="1280"):
        AddressConfig(MAC, Counters(), MidRng(), SECRET, link_mtu=1279)


def test_messages_for_addresses_not_ours_change_nothing() -> None:
    config, counters = make()
    config.start(0.0)
    config.neighbour_advert_received(0.1, STATIC)
    config.neighbour_solicit_received(0.1, STATIC, UNSPECIFIED)
    assert counters.as_dict() == {}
    assert config.is_tentative(LL)
