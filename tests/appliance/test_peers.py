"""One source is an IPv4 address or an IPv6 /64 (appliance.peers), and every per-source limit uses that key:
the gate and the /proof buckets. An attacker rotating the low 64 bits of
its IPv6 address must not multiply its share."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.admission import Gate, Slot
from appliance.config import Limits
from appliance.http import Request
from appliance.ledger_record import Event
from appliance.peers import IPV4, IPV6, OTHER, family, source_of
from appliance.stats import FAMILIES, UNRECORDED, Stats
from netstack.addresses6 import is_link_local
from tests.appliance.test_web import NOW, _site

ROTATING = [f"2001:db8:1:2:{i:x}:{i * 7 % 65536:x}:beef:{i:x}" for i in range(1, 40)]  # one /64


@pytest.mark.parametrize(("peer", "key", "fam"), [
    ("198.51.100.7", "198.51.100.7", IPV4),
    ("2001:db8:1:2::1", "2001:db8:1:2::/64", IPV6),
    ("2001:DB8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64", IPV6),
    ("2001:db8:1:3::1", "2001:db8:1:3::/64", IPV6),
    ("::ffff:198.51.100.7", "198.51.100.7", IPV4),  # a dual-stack kernel socket's name for an IPv4 peer
    ("fe80::1%eth0", "fe80::1", IPV6),  # a link-local peer (zone dropped) is its own source: all share fe80::/64
    ("unknown", "unknown", OTHER),
    ("a", "a", OTHER),
    ("1.2.3", "1.2.3", OTHER),
    ("2001:db8::g", "2001:db8::g", OTHER),
])
def test_source_key_and_family(peer: str, key: str, fam: str) -> None:
    assert source_of(peer) == key
    assert family(peer) == fam


def test_rotating_the_low_64_bits_is_one_source() -> None:
    assert {source_of(p) for p in ROTATING} == {"2001:db8:1:2::/64"}


@given(st.binary(min_size=16, max_size=16), st.binary(min_size=8, max_size=8))
def test_any_two_addresses_of_a_64_share_a_key(address: bytes, low: bytes) -> None:
    import ipaddress

    if address[:12] == bytes(10) + b"\xff\xff" or is_link_local(address):
        return  # IPv4-mapped: an IPv4 host; link-local: each neighbour is its own source (tested above)
    other = address[:8] + low
    assert source_of(str(ipaddress.IPv6Address(address))) == source_of(str(ipaddress.IPv6Address(other)))


def test_ipv4_addresses_stay_one_address_each() -> None:
    assert len({source_of(f"198.51.100.{i}") for i in range(1, 40)}) == 39


def test_the_gate_counts_a_64_as_one_source() -> None:
    gate = Gate(replace(Limits(), max_connections=10, max_connections_per_source=2))
    first, second = (gate.admit(p, 0.0, lambda: None) for p in ROTATING[:2])
    assert isinstance(first, Slot)
    assert isinstance(second, Slot)
    assert first.source == ROTATING[0]  # the address, for the connect-back; the key is for counting
    assert first.key == second.key == "2001:db8:1:2::/64"
    refused = gate.admit(ROTATING[2], 0.0, lambda: None)
    assert isinstance(refused, str)
    assert "one source" in refused
    assert isinstance(gate.admit("2001:db8:1:3::1", 0.0, lambda: None), Slot)  # the next /64 is another
    assert isinstance(gate.admit("198.51.100.1", 0.0, lambda: None), Slot)
    gate.release(first)
    assert isinstance(gate.admit(ROTATING[3], 0.0, lambda: None), Slot)  # its slot came back to the /64
    assert gate.total == 4


def test_a_full_table_displaces_the_biggest_64_not_the_biggest_address() -> None:
    """Four connections from four addresses of one /64 are one holder of four slots: it gives way first."""
    gate = Gate(replace(Limits(), max_connections=5, max_connections_per_source=4))
    withdrawn: list[str] = []
    for peer in ROTATING[:4]:
        slot = gate.admit(peer, 0.0, lambda peer=peer: withdrawn.append(peer))  # type: ignore[misc]
        assert isinstance(slot, Slot)
        slot.idle = True
    assert isinstance(gate.admit("198.51.100.1", 0.0, lambda: None), Slot)
    assert isinstance(gate.admit("198.51.100.2", 0.0, lambda: None), Slot)  # displaces the /64's oldest
    assert withdrawn == [ROTATING[0]]


def test_proof_buckets_are_per_64() -> None:
    site = _site(replace(Limits(), proof_rate_per_second=50.0, proof_rate_per_source=2.0))

    def proof(source: str) -> int:
        return site.handle(Request("GET", "/proof?challenge=a", "HTTP/1.1", (("host", "x"),), True), NOW,
                           source=source).status

    assert [proof(p) for p in ROTATING[:4]] == [200, 200, 429, 429]  # one bucket for the whole /64
    assert proof("2001:db8:1:3::1") == 200
    assert [proof("198.51.100.1"), proof("198.51.100.2")] == [200, 200]  # IPv4: one bucket per address


def _event(source: str, t: float = 1000.0) -> Event:
    return Event(t, "http", "served", source, "1 requests")


def test_stats_count_families_and_distinct_addresses() -> None:
    stats = Stats(Limits())
    for peer in ROTATING[:10]:
        stats.add(_event(peer))
    stats.add(_event("198.51.100.1"))
    stats.add(_event("198.51.100.2"))
    stats.add(_event("::ffff:198.51.100.2"))
    stats.add(_event("unknown"))
    assert stats.families == {IPV4: 3, IPV6: 10, OTHER: 1, UNRECORDED: 0}
    assert stats.unique_sources == 14  # addresses, as before: the /64 key is for the limits
    assert stats.as_json()["by_family"] == stats.families
    assert sum(stats.families.values()) == stats.total()


def test_families_survive_a_checkpoint() -> None:
    stats = Stats(Limits())
    stats.add(_event("2001:db8::1"))
    stats.add(_event("198.51.100.1"))
    restored = Stats(Limits())
    restored.restore(stats.checkpoint())
    assert restored.families == stats.families
    restored.add(_event("2001:db8::2"))
    assert restored.families[IPV6] == 2
    assert restored.unique_sources == 3


def test_a_checkpoint_from_before_families_restores_as_unrecorded() -> None:
    """A checkpoint written by the build before this one has no `families`: its connections are counted as
    unrecorded (nobody knows their family), so the families still add up to the total."""
    old = Stats(Limits())
    for i in range(5):
        old.add(_event(f"198.51.100.{i}"))
    data = json.loads(old.checkpoint())
    del data["families"]
    restored = Stats(Limits())
    restored.restore(json.dumps(data).encode())
    assert restored.total() == 5
    assert restored.families == {IPV4: 0, IPV6: 0, OTHER: 0, UNRECORDED: 5}
    restored.add(_event("2001:db8::1"))
    assert restored.families[IPV6] == 1
    assert sum(restored.families.values()) == restored.total()
    again = Stats(Limits())
    again.restore(restored.checkpoint())
    assert again.families == restored.families


def test_a_format_1_checkpoint_restores_with_no_families() -> None:
    stats = Stats(Limits())
    stats.restore(b'{"counts":{},"series":{},"recent":[],"sources_before":0,"rolled_over":false}')
    assert stats.families == dict.fromkeys(FAMILIES, 0)


@pytest.mark.parametrize("families", ['[1, 2]', '{"ipv4": -1}', '{"ipv6": "x"}', '"ipv4"'])
def test_malformed_families_are_a_record_error(families: str) -> None:
    from appliance.ledger_record import RecordError

    stats = Stats(Limits())
    state = json.dumps({**json.loads(stats.checkpoint()), "families": json.loads(families)}).encode()
    before = dict(stats.families)
    with pytest.raises(RecordError):
        stats.restore(state)
    assert stats.families == before


def test_the_page_and_stats_json_show_families() -> None:
    site = _site()
    site.stats.add(_event("2001:db8::1"))
    page = site.handle(Request("GET", "/stats", "HTTP/1.1", (("host", "x"),), True), NOW).body.decode()
    assert "Connections per address family: 2 over IPv4, 1 over IPv6.</p>" in page  # _site records two IPv4
    site.stats.add(_event("unknown"))
    page = site.handle(Request("GET", "/stats", "HTTP/1.1", (("host", "x"),), True), NOW).body.decode()
    assert "2 over IPv4, 1 over IPv6, 1 no address.</p>" in page
    body = site.handle(Request("GET", "/stats.json", "HTTP/1.1", (("host", "x"),), True), NOW).body
    assert json.loads(body)["by_family"] == {"ipv4": 2, "ipv6": 1, "other": 1, "unrecorded": 0}


def test_text_that_only_looks_numeric_is_not_an_address() -> None:
    """str.isdigit takes '²' and int() refuses it: that must be "not an address", not an exception."""
    assert source_of("1.\u00b2.3.4") == "1.\u00b2.3.4"
    assert family("1.\u00b2.3.4") == OTHER
