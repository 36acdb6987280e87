"""Neighbour discovery codecs: round trips, RFC 4861 validity checks, and arbitrary bytes."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack import ndp
from netstack.addresses6 import ALL_NODES, ALL_ROUTERS, UNSPECIFIED, ip6_from_text, solicited_node
from netstack.errors import MalformedError
from netstack.ndp import (
    NeighborAdvert,
    NeighborSolicit,
    PrefixInfo,
    RouterAdvert,
    RouterSolicit,
    parse_nd,
    serialize_na,
    serialize_ns,
    serialize_ra,
    serialize_rs,
)
from netstack.reasons import Drop

ROUTER = ip6_from_text("fe80::1")
PEER = ip6_from_text("fe80::2")
US = ip6_from_text("fe80::a")
GLOBAL = ip6_from_text("2001:db8::2")
MAC = bytes.fromhex("020000000002")


def parse(icmp_type: int, body: bytes, *, src: bytes = PEER, dst: bytes = US, code: int = 0,
          hop_limit: int = 255, max_options: int = 64) -> ndp.NdMessage:
    return parse_nd(icmp_type, code, memoryview(body), hop_limit=hop_limit, src=src, dst=dst,
                    max_options=max_options)


def reason(icmp_type: int, body: bytes, **kwargs: object) -> Drop:
    with pytest.raises(MalformedError) as info:
        parse(icmp_type, body, **kwargs)  # type: ignore[arg-type]
    return info.value.reason


def option(kind: int, value: bytes) -> bytes:
    return bytes((kind, (len(value) + 2) // 8)) + value


# --- wire encodings written by hand (RFC 4861 §4) --------------------------------------------------------------


def test_ns_wire_format() -> None:
    body = serialize_ns(US, MAC)
    assert body == bytes(4) + US + b"\x01\x01" + MAC
    assert parse(ndp.NEIGHBOR_SOLICIT, body) == NeighborSolicit(US, MAC)


def test_na_wire_format_and_flags() -> None:
    body = serialize_na(US, MAC, router=True, solicited=True, override=False)
    assert body == b"\xc0\x00\x00\x00" + US + b"\x02\x01" + MAC
    assert parse(ndp.NEIGHBOR_ADVERT, body) == NeighborAdvert(True, True, False, US, MAC)
    body = serialize_na(US, None, router=False, solicited=False, override=True)
    assert body[:4] == b"\x20\x00\x00\x00"


def test_rs_wire_format() -> None:
    assert serialize_rs(None) == bytes(4)
    assert parse(ndp.ROUTER_SOLICIT, serialize_rs(MAC), dst=ALL_ROUTERS) == RouterSolicit(MAC)


def test_ra_wire_format() -> None:
    prefix = ip6_from_text("2001:db8::")
    body = (struct.pack("!BBHII", 64, 0xC0, 1800, 30000, 1000) + option(1, MAC)
            + option(5, struct.pack("!2xI", 1400))
            + option(3, struct.pack("!BBII4x16s", 64, 0xC0, 86400, 14400, prefix)))
    message = parse(ndp.ROUTER_ADVERT, body, src=ROUTER, dst=ALL_NODES)
    assert message == RouterAdvert(64, True, True, 1800, 30000, 1000, MAC, 1400,
                                   (PrefixInfo(64, True, True, 86400, 14400, prefix),))
    assert isinstance(message, RouterAdvert)
    assert serialize_ra(message) == body


def test_unknown_and_misplaced_options_are_skipped() -> None:
    body = serialize_ns(US, MAC) + option(200, bytes(6)) + option(ndp.OPT_TARGET_LINK_ADDRESS, MAC)
    assert parse(ndp.NEIGHBOR_SOLICIT, body) == NeighborSolicit(US, MAC)


# --- validity checks (each one refused) ------------------------------------------------------------------------


def test_redirect_refused_with_its_own_reason() -> None:
    assert reason(ndp.REDIRECT, bytes(36)) is Drop.ND_REDIRECT_IGNORED


def test_other_types_refused() -> None:
    assert reason(128, bytes(8)) is Drop.ND_UNKNOWN_TYPE


@pytest.mark.parametrize("hop_limit", [0, 1, 64, 254])
def test_hop_limit_must_be_255(hop_limit: int) -> None:
    assert reason(ndp.NEIGHBOR_SOLICIT, serialize_ns(US, MAC), hop_limit=hop_limit) is Drop.ND_BAD_HOP_LIMIT


def test_code_must_be_zero() -> None:
    assert reason(ndp.NEIGHBOR_ADVERT, serialize_na(US, MAC, router=False, solicited=True, override=True),
                  code=1) is Drop.ND_BAD_CODE


@pytest.mark.parametrize(("icmp_type", "length"), [(133, 3), (134, 11), (135, 19), (136, 19)])
def test_minimum_lengths(icmp_type: int, length: int) -> None:
    assert reason(icmp_type, bytes(length), src=ROUTER) is Drop.ND_TRUNCATED
    parse(icmp_type, bytes(length + 1), src=ROUTER, dst=solicited_node(bytes(16)))  # one more byte is enough


def test_option_length_zero_refused() -> None:
    assert reason(ndp.NEIGHBOR_SOLICIT, serialize_ns(US, None) + b"\x01\x00" + bytes(6)) is Drop.ND_BAD_OPTION


def test_option_past_the_end_refused() -> None:
    assert reason(ndp.NEIGHBOR_SOLICIT, serialize_ns(US, None) + b"\x01\x02" + MAC) is Drop.ND_BAD_OPTION
    assert reason(ndp.NEIGHBOR_SOLICIT, serialize_ns(US, MAC) + b"\x01") is Drop.ND_BAD_OPTION


def test_number_of_options_bounded() -> None:
    body = serialize_ns(US, None) + option(200, bytes(6)) * 5
    parse(ndp.NEIGHBOR_SOLICIT, body, max_options=5)
    assert reason(ndp.NEIGHBOR_SOLICIT, body, max_options=4) is Drop.ND_TOO_MANY_OPTIONS


def test_duplicate_link_address_refused() -> None:
    body = serialize_ns(US, MAC) + option(1, MAC)
    assert reason(ndp.NEIGHBOR_SOLICIT, body) is Drop.ND_DUPLICATE_OPTION


@pytest.mark.parametrize("value", [bytes.fromhex("333300000001"), bytes(6), bytes(14)])
def test_bad_link_address_refused(value: bytes) -> None:
    assert reason(ndp.NEIGHBOR_SOLICIT, serialize_ns(US, None) + option(1, value)) is Drop.ND_BAD_LINK_ADDRESS


@pytest.mark.parametrize("icmp_type", [ndp.NEIGHBOR_SOLICIT, ndp.NEIGHBOR_ADVERT])
def test_multicast_target_refused(icmp_type: int) -> None:
    body = bytes(4) + ALL_NODES
    assert reason(icmp_type, body) is Drop.ND_MULTICAST_TARGET


def test_dad_probe_must_go_to_a_solicited_node_group() -> None:
    probe = serialize_ns(US, None)
    assert parse(ndp.NEIGHBOR_SOLICIT, probe, src=UNSPECIFIED, dst=solicited_node(US)) == NeighborSolicit(US, None)
    assert reason(ndp.NEIGHBOR_SOLICIT, probe, src=UNSPECIFIED, dst=US) is Drop.ND_DAD_NOT_SOLICITED_NODE
    assert reason(ndp.NEIGHBOR_SOLICIT, probe, src=UNSPECIFIED, dst=ALL_NODES) is Drop.ND_DAD_NOT_SOLICITED_NODE


def test_dad_probe_without_source_link_address() -> None:
    assert reason(ndp.NEIGHBOR_SOLICIT, serialize_ns(US, MAC), src=UNSPECIFIED,
                  dst=solicited_node(US)) is Drop.ND_UNSPECIFIED_SOURCE_OPTION


def test_rs_from_unspecified_without_source_link_address() -> None:
    assert parse(ndp.ROUTER_SOLICIT, serialize_rs(None), src=UNSPECIFIED, dst=ALL_ROUTERS) == RouterSolicit(None)
    assert reason(ndp.ROUTER_SOLICIT, serialize_rs(MAC), src=UNSPECIFIED,
                  dst=ALL_ROUTERS) is Drop.ND_UNSPECIFIED_SOURCE_OPTION


def test_solicited_advert_to_multicast_refused() -> None:
    solicited = serialize_na(US, MAC, router=False, solicited=True, override=True)
    assert reason(ndp.NEIGHBOR_ADVERT, solicited, dst=ALL_NODES) is Drop.ND_SOLICITED_TO_MULTICAST
    unsolicited = serialize_na(US, MAC, router=False, solicited=False, override=True)
    assert parse(ndp.NEIGHBOR_ADVERT, unsolicited, dst=ALL_NODES) == NeighborAdvert(False, False, True, US, MAC)


def test_ra_source_must_be_link_local() -> None:
    body = serialize_ra(RouterAdvert(64, False, False, 1800, 0, 0, None, None, ()))
    assert reason(ndp.ROUTER_ADVERT, body, src=GLOBAL) is Drop.ND_RA_NOT_LINK_LOCAL
    assert reason(ndp.ROUTER_ADVERT, body, src=UNSPECIFIED) is Drop.ND_RA_NOT_LINK_LOCAL


def test_bad_prefix_options_refused() -> None:
    base = serialize_ra(RouterAdvert(64, False, False, 1800, 0, 0, None, None, ()))
    long_prefix = option(3, struct.pack("!BBII4x16s", 129, 0, 1, 1, GLOBAL))
    assert reason(ndp.ROUTER_ADVERT, base + long_prefix, src=ROUTER) is Drop.ND_BAD_PREFIX_OPTION
    short = option(3, bytes(22))
    assert reason(ndp.ROUTER_ADVERT, base + short, src=ROUTER) is Drop.ND_BAD_PREFIX_OPTION


def test_bad_mtu_options_refused() -> None:
    base = serialize_ra(RouterAdvert(64, False, False, 1800, 0, 0, None, None, ()))
    assert reason(ndp.ROUTER_ADVERT, base + option(5, bytes(14)), src=ROUTER) is Drop.ND_BAD_MTU_OPTION
    twice = option(5, struct.pack("!2xI", 1400)) * 2
    assert reason(ndp.ROUTER_ADVERT, base + twice, src=ROUTER) is Drop.ND_DUPLICATE_OPTION


def test_serializers_refuse_wrong_sizes() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        serialize_ns(bytes(4), None)
    with pytest.raises(ValueError, match="6 bytes"):
        serialize_rs(bytes(8))


# --- properties ------------------------------------------------------------------------------------------------

addresses = st.binary(min_size=16, max_size=16)
unicast_targets = addresses.filter(lambda a: a[0] != 0xFF)
macs = st.binary(min_size=6, max_size=6).filter(lambda m: not m[0] & 1 and m != bytes(6))
maybe_macs = st.none() | macs
u32 = st.integers(0, 0xFFFFFFFF)
prefix_infos = st.builds(PrefixInfo, st.integers(0, 128), st.booleans(), st.booleans(), u32, u32, addresses)
router_adverts = st.builds(
    RouterAdvert, st.integers(0, 255), st.booleans(), st.booleans(), st.integers(0, 0xFFFF), u32, u32,
    maybe_macs, st.none() | u32, st.lists(prefix_infos, max_size=8).map(tuple),
)


@settings(max_examples=200)
@given(unicast_targets, maybe_macs)
def test_ns_round_trip(target: bytes, mac: bytes | None) -> None:
    assert parse(ndp.NEIGHBOR_SOLICIT, serialize_ns(target, mac)) == NeighborSolicit(target, mac)


@settings(max_examples=200)
@given(unicast_targets, maybe_macs, st.booleans(), st.booleans(), st.booleans())
def test_na_round_trip(target: bytes, mac: bytes | None, router: bool, solicited: bool, override: bool) -> None:
    body = serialize_na(target, mac, router=router, solicited=solicited, override=override)
    assert parse(ndp.NEIGHBOR_ADVERT, body) == NeighborAdvert(router, solicited, override, target, mac)


@settings(max_examples=100)
@given(maybe_macs)
def test_rs_round_trip(mac: bytes | None) -> None:
    assert parse(ndp.ROUTER_SOLICIT, serialize_rs(mac)) == RouterSolicit(mac)


@settings(max_examples=200)
@given(router_adverts)
def test_ra_round_trip(message: RouterAdvert) -> None:
    assert parse(ndp.ROUTER_ADVERT, serialize_ra(message), src=ROUTER, dst=ALL_NODES) == message


@settings(max_examples=500)
@given(st.sampled_from(sorted(ndp.ND_TYPES)), st.binary(max_size=200), st.sampled_from([UNSPECIFIED, PEER, GLOBAL]),
       st.sampled_from([US, ALL_NODES, solicited_node(US)]), st.tuples(st.integers(0, 255), st.integers(0, 1)))
def test_arbitrary_bytes_only_raise_malformed(icmp_type: int, body: bytes, src: bytes, dst: bytes,
                                             hop_limit_and_code: tuple[int, int]) -> None:
    hop_limit, code = hop_limit_and_code
    with contextlib.suppress(MalformedError):
        parse_nd(icmp_type, code, memoryview(body), hop_limit=hop_limit, src=src, dst=dst)


@settings(max_examples=300)
@given(st.sampled_from([133, 134, 135, 136]), st.binary(min_size=20, max_size=20),
       st.lists(st.tuples(st.sampled_from([1, 2, 3, 5, 99]), st.integers(1, 4), st.integers(0, 255)), max_size=6))
def test_well_framed_options_with_arbitrary_contents(icmp_type: int, fixed: bytes,
                                                     raw: list[tuple[int, int, int]]) -> None:
    """Known and unknown option types of any length, framed correctly: still nothing but MalformedError."""
    options = b"".join(bytes((kind, units)) + bytes([fill]) * (units * 8 - 2) for kind, units, fill in raw)
    with contextlib.suppress(MalformedError):
        parse(icmp_type, fixed[:ndp._MIN_BODY[icmp_type]] + options, src=ROUTER)
