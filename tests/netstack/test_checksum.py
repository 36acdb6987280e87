from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.checksum import checksum, ones_sum, pseudo_header_sum
from tests.netstack.builders import textbook_sum


def test_rfc1071_example() -> None:
    # RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert ones_sum(data) == 0xDDF2
    assert checksum(data) == 0x220D


def test_message_with_its_checksum_verifies_to_zero() -> None:
    data = bytes.fromhex("4500003c1c4640004006") + b"\x00\x00" + bytes.fromhex("ac100a63ac100a0c")
    value = checksum(data)
    assert checksum(data[:10] + value.to_bytes(2, "big") + data[12:]) == 0


def test_all_zero_input_is_not_mistaken_for_all_ones() -> None:
    assert ones_sum(bytes(20)) == 0
    assert ones_sum(b"\xff\xff") == 0xFFFF


def test_pseudo_header_sum_is_the_sum_of_its_bytes() -> None:
    expected = textbook_sum(bytes([10, 0, 0, 1, 10, 0, 0, 2, 0, 17, 0, 12]))
    assert pseudo_header_sum(bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), 17, 12) == expected


@settings(max_examples=300)
@given(st.binary(max_size=200), st.integers(0, 0xFFFF))
def test_matches_the_word_by_word_definition(data: bytes, initial: int) -> None:
    expected = textbook_sum(data) + initial
    expected = (expected & 0xFFFF) + (expected >> 16)
    assert ones_sum(data, initial) == expected
    assert ones_sum(memoryview(data)) == textbook_sum(data)


def test_ipv6_pseudo_header_sum_is_the_sum_of_its_bytes() -> None:
    # RFC 8200 §8.1: source, destination, 32-bit upper-layer length, three zero bytes, next header
    src, dst = bytes(range(16)), bytes(range(100, 116))
    expected = textbook_sum(src + dst + (70000).to_bytes(4, "big") + bytes(3) + bytes([58]))
    assert pseudo_header_sum(src, dst, 58, 70000) == expected
    assert pseudo_header_sum(src, dst, 17, 12) == textbook_sum(src + dst + bytes([0, 0, 0, 12, 0, 0, 0, 17]))


@pytest.mark.parametrize(("src", "dst"), [(bytes(4), bytes(16)), (bytes(16), bytes(4)), (bytes(5), bytes(5))])
def test_pseudo_header_refuses_mixed_or_odd_address_lengths(src: bytes, dst: bytes) -> None:
    with pytest.raises(ValueError, match="4 or both 16"):
        pseudo_header_sum(src, dst, 17, 8)
