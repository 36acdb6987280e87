from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.errors import MalformedError
from netstack.ethernet import EthernetFrame, build_header, parse_frame, serialize_frame
from netstack.reasons import Drop


def test_parse_whole_frame() -> None:
    frame = bytes.fromhex("ffffffffffff 020000000002 0806") + b"payload"
    parsed = parse_frame(frame)
    assert parsed.dst == b"\xff" * 6
    assert parsed.src == bytes.fromhex("020000000002")
    assert parsed.ethertype == 0x0806
    assert bytes(parsed.payload) == b"payload"


def test_header_only_frame_has_empty_payload() -> None:
    assert len(parse_frame(bytes(12) + b"\x08\x00").payload) == 0


@pytest.mark.parametrize("length", [0, 1, 13])
def test_truncated_frame_refused(length: int) -> None:
    with pytest.raises(MalformedError) as info:
        parse_frame(bytes(length))
    assert info.value.reason is Drop.ETH_TRUNCATED


def test_8023_length_field_refused() -> None:
    with pytest.raises(MalformedError) as info:
        parse_frame(bytes(12) + b"\x05\xdc" + bytes(10))
    assert info.value.reason is Drop.ETH_NOT_ETHERNET_II


def test_build_header_refuses_bad_fields() -> None:
    with pytest.raises(ValueError, match="Ethernet"):
        build_header(bytes(5), bytes(6), 0x0800)
    with pytest.raises(ValueError, match="Ethernet"):
        build_header(bytes(6), bytes(6), 0x05DC)


@settings(max_examples=200)
@given(st.binary(min_size=6, max_size=6), st.binary(min_size=6, max_size=6), st.integers(0x0600, 0xFFFF),
       st.binary(max_size=100))  # fmt: skip
def test_round_trip(dst: bytes, src: bytes, ethertype: int, payload: bytes) -> None:
    frame = serialize_frame(EthernetFrame(dst, src, ethertype, memoryview(payload)))
    parsed = parse_frame(frame)
    assert (parsed.dst, parsed.src, parsed.ethertype, bytes(parsed.payload)) == (dst, src, ethertype, payload)


@settings(max_examples=500)
@given(st.binary(max_size=64))
def test_random_bytes_parse_exactly_or_raise_typed_error(data: bytes) -> None:
    # only two refusals exist: too short for a header, or an 802.3 length where the type should be
    if len(data) < 14 or int.from_bytes(data[12:14], "big") < 0x0600:
        with pytest.raises(MalformedError) as info:
            parse_frame(data)
        assert info.value.reason is (Drop.ETH_TRUNCATED if len(data) < 14 else Drop.ETH_NOT_ETHERNET_II)
        return
    parsed = parse_frame(data)
    assert (parsed.dst, parsed.src, parsed.ethertype) == (data[:6], data[6:12], int.from_bytes(data[12:14], "big"))
    assert bytes(parsed.payload) == data[14:]
