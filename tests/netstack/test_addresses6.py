"""IPv6 address helpers: text forms, classes of address, multicast mappings, prefixes, stable identifiers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netstack import addresses6 as a6


def test_text_round_trips_in_canonical_form() -> None:
    assert a6.ip6_to_text(a6.ip6_from_text("2001:DB8:0:0:0:0:0:1")) == "2001:db8::1"
    assert a6.ip6_from_text("::ffff:192.0.2.1")[-4:] == bytes([192, 0, 2, 1])


@pytest.mark.parametrize("text", ["fe80::1%eth0", "2001:db8::/64", "1.2.3.4", "2001:db8::1::2", "", "g::1"])
def test_text_that_is_not_one_address_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="IPv6"):
        a6.ip6_from_text(text)


def test_to_text_refuses_a_wrong_length() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        a6.ip6_to_text(bytes(4))


@pytest.mark.parametrize(("text", "martian"), [
    ("::", True), ("::1", True), ("ff02::1", True), ("::ffff:10.0.0.1", True), ("::10.0.0.1", True),
    ("fe80::1", False), ("2001:db8::1", False), ("fd00::1", False),
])  # fmt: skip
def test_martian_sources(text: str, martian: bool) -> None:
    address = a6.ip6_from_text(text)
    assert a6.is_martian_source(address) is martian
    assert a6.is_unicast_host(address) is not martian


def test_classes() -> None:
    assert a6.is_link_local(a6.ip6_from_text("febf::1"))
    assert not a6.is_link_local(a6.ip6_from_text("fec0::1"))
    assert a6.is_multicast(a6.ALL_NODES)
    assert a6.is_multicast(a6.ALL_ROUTERS)


def test_solicited_node_group_and_its_mac() -> None:
    address = a6.ip6_from_text("2001:db8::1234:5678")
    group = a6.solicited_node(address)
    assert a6.ip6_to_text(group) == "ff02::1:ff34:5678"
    assert a6.multicast_mac(group) == bytes.fromhex("3333ff345678")


def test_prefix_matching_looks_at_exactly_the_prefix_bits() -> None:
    a = a6.ip6_from_text("2001:db8:ab00::1")
    b = a6.ip6_from_text("2001:db8:abff::2")
    assert a6.prefix_matches(a, b, 40)
    assert not a6.prefix_matches(a, b, 41)
    assert a6.prefix_matches(a, b, 0)
    assert a6.network(a, 40) == a6.ip6_from_text("2001:db8:ab00::")


@given(st.binary(min_size=16, max_size=16), st.integers(0, 128))
def test_an_address_matches_its_own_network(address: bytes, prefix_len: int) -> None:
    assert a6.prefix_matches(address, a6.network(address, prefix_len), prefix_len)


def test_a_source_is_a_slash_64_for_ipv6_and_one_address_for_ipv4() -> None:
    one = a6.ip6_from_text("2001:db8:1:2::1")
    other = a6.ip6_from_text("2001:db8:1:2:ffff::9")
    assert a6.source_key(one) == a6.source_key(other)
    assert a6.source_key(one) != a6.source_key(a6.ip6_from_text("2001:db8:1:3::1"))
    assert a6.source_key(bytes([10, 0, 0, 1])) == bytes([10, 0, 0, 1])


def test_each_link_local_neighbour_is_its_own_source() -> None:
    """fe80::/64 is every neighbour's: as one source, one host on the link would take the share of all."""
    one = a6.ip6_from_text("fe80::1")
    assert a6.source_key(one) == one
    assert a6.source_key(one) != a6.source_key(a6.ip6_from_text("fe80::2"))


SECRET = bytes(range(32))


def test_stable_identifiers_depend_on_every_input_but_nothing_else() -> None:
    prefix = a6.ip6_from_text("2001:db8:1:2::")
    base = a6.stable_iid(prefix, b"eth0", b"", 0, SECRET)
    assert base == a6.stable_iid(prefix, b"eth0", b"", 0, SECRET)
    assert len(base) == a6.IID_LEN
    assert base != a6.stable_iid(a6.ip6_from_text("2001:db8:1:3::"), b"eth0", b"", 0, SECRET)
    assert base != a6.stable_iid(prefix, b"eth1", b"", 0, SECRET)
    assert base != a6.stable_iid(prefix, b"eth0", b"net", 0, SECRET)
    assert base != a6.stable_iid(prefix, b"eth0", b"", 1, SECRET)
    assert base != a6.stable_iid(prefix, b"eth0", b"", 0, bytes(32))
    # only the prefix's 64 bits count: the low half of what is passed is ignored
    assert base == a6.stable_iid(prefix[:8] + b"\xff" * 8, b"eth0", b"", 0, SECRET)


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="128 bits"):
        a6.stable_iid(bytes(16), b"eth0", b"", 0, bytes(15))


def test_a_reserved_identifier_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    digests = iter([bytes(32), bytes.fromhex("fdffffffffffff80") + bytes(24), bytes.fromhex("0102030405060708") * 4])

    class FakeHash:
        def __init__(self, _data: bytes) -> None:
            self._digest = next(digests)

        def digest(self) -> bytes:
            return self._digest

    monkeypatch.setattr("netstack.addresses6.hashlib.sha256", FakeHash)
    assert a6.stable_iid(bytes(16), b"eth0", b"", 0, SECRET) == bytes.fromhex("0102030405060708")


def test_link_local_from_an_identifier() -> None:
    assert a6.ip6_to_text(a6.link_local(bytes.fromhex("0000000000000001"))) == "fe80::1"
    with pytest.raises(ValueError, match="8 bytes"):
        a6.link_local(bytes(4))


@pytest.mark.parametrize(("text", "packed"), [
    ("10.9.0.2", bytes([10, 9, 0, 2])), ("2001:db8::2", a6.ip6_from_text("2001:db8::2")),
    ("::ffff:10.9.0.2", bytes([10, 9, 0, 2])),  # an IPv4-mapped address is its IPv4 host
])  # fmt: skip
def test_an_address_of_either_family_from_and_to_text(text: str, packed: bytes) -> None:
    assert a6.address_from_text(text) == packed
    assert a6.address_from_text(a6.address_to_text(packed)) == packed


@pytest.mark.parametrize("text", ["1.\u00b2.3.4", "010.9.0.0002", "2001:db8::g", "fe80::1%eth0", ""])
def test_text_of_neither_family_is_refused_with_a_message_naming_one(text: str) -> None:
    with pytest.raises(ValueError, match=r"IPv4|IPv6"):
        a6.address_from_text(text)
