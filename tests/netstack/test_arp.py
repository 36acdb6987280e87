from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.arp import OP_REPLY, OP_REQUEST, ArpCache, ArpPacket, parse_arp, serialize_arp
from netstack.errors import MalformedError
from netstack.reasons import Counters, Drop
from tests.netstack.builders import PEER, PEER_MAC, US, arp


def test_parse_request() -> None:
    packet = parse_arp(arp(1, PEER_MAC, PEER, bytes(6), US))
    assert packet == ArpPacket(OP_REQUEST, PEER_MAC, PEER, bytes(6), US)


def test_serialize_matches_hand_built_bytes() -> None:
    assert serialize_arp(ArpPacket(OP_REPLY, PEER_MAC, PEER, b"\x01" * 6, US)) == arp(
        2, PEER_MAC, PEER, b"\x01" * 6, US
    )


@pytest.mark.parametrize("data", [b"", bytes(27), arp(1, PEER_MAC, PEER, bytes(6), US) + b"\x00"])
def test_wrong_length_refused(data: bytes) -> None:
    with pytest.raises(MalformedError) as info:
        parse_arp(data)
    assert info.value.reason is Drop.ARP_MALFORMED


@pytest.mark.parametrize(
    ("offset", "value"),
    [(1, 6), (2, 0x86), (4, 16), (5, 16), (7, 3), (7, 0)],
    ids=["htype", "ptype", "hlen", "plen", "rarp-op", "op-zero"],
)
def test_unsupported_fields_refused(offset: int, value: int) -> None:
    data = bytearray(arp(1, PEER_MAC, PEER, bytes(6), US))
    data[offset] = value
    with pytest.raises(MalformedError) as info:
        parse_arp(bytes(data))
    assert info.value.reason is Drop.ARP_UNSUPPORTED


@settings(max_examples=200)
@given(st.sampled_from([OP_REQUEST, OP_REPLY]), *(st.binary(min_size=n, max_size=n) for n in (6, 4, 6, 4)))
def test_round_trip(op: int, smac: bytes, sip: bytes, tmac: bytes, tip: bytes) -> None:
    packet = ArpPacket(op, smac, sip, tmac, tip)
    assert parse_arp(serialize_arp(packet)) == packet


@settings(max_examples=300)
@given(st.binary(max_size=40))
def test_random_bytes_parse_or_raise_typed_error(data: bytes) -> None:
    with contextlib.suppress(MalformedError):
        parse_arp(data)


def test_cache_is_bounded_and_evicts_the_oldest() -> None:
    counters = Counters()
    cache = ArpCache(3, 60.0, counters)
    for i in range(5):
        cache.store(bytes([10, 0, 0, i]), bytes([2, 0, 0, 0, 0, i]), float(i))
    assert len(cache) == 3
    assert cache.lookup(bytes([10, 0, 0, 0]), 5.0) is None
    assert cache.lookup(bytes([10, 0, 0, 1]), 5.0) is None
    assert cache.lookup(bytes([10, 0, 0, 4]), 5.0) == bytes([2, 0, 0, 0, 0, 4])
    assert counters[Drop.ARP_CACHE_EVICTED] == 2


def test_refresh_protects_an_entry_from_eviction() -> None:
    cache = ArpCache(2, 60.0, Counters())
    cache.store(b"a", b"A", 0.0)
    cache.store(b"b", b"B", 1.0)
    cache.store(b"a", b"A", 2.0)
    cache.store(b"c", b"C", 3.0)
    assert cache.lookup(b"a", 3.0) == b"A"
    assert cache.lookup(b"b", 3.0) is None


def test_entries_expire() -> None:
    cache = ArpCache(8, 10.0, Counters())
    cache.store(b"a", b"A", 0.0)
    cache.store(b"b", b"B", 5.0)
    assert cache.next_deadline() == 10.0
    assert cache.lookup(b"a", 9.9) == b"A"
    assert cache.lookup(b"a", 10.0) is None
    cache.expire(12.0)
    assert len(cache) == 1
    assert cache.next_deadline() == 15.0
