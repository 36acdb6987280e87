from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.dhcp.message import (
    BOOTREPLY,
    BOOTREQUEST,
    MAGIC_COOKIE,
    MIN_MESSAGE_LEN,
    OFFER,
    OPT_LEASE_TIME,
    OPT_MESSAGE_TYPE,
    OPT_ROUTER,
    OPT_SERVER_ID,
    DhcpMessage,
    parse_dhcp,
    serialize_dhcp,
)
from netstack.errors import MalformedError
from netstack.reasons import Drop

MAC = bytes.fromhex("020000000001")


def offer() -> DhcpMessage:
    return DhcpMessage(
        BOOTREPLY, 0x1234, MAC,
        {OPT_MESSAGE_TYPE: bytes([OFFER]), OPT_SERVER_ID: bytes([10, 0, 0, 1]),
         OPT_LEASE_TIME: (3600).to_bytes(4, "big"), OPT_ROUTER: bytes([10, 0, 0, 1, 10, 0, 0, 254])},
        yiaddr=bytes([10, 0, 0, 50]),
    )  # fmt: skip


def test_round_trip_and_accessors() -> None:
    data = serialize_dhcp(offer())
    assert len(data) == MIN_MESSAGE_LEN
    message = parse_dhcp(data)
    assert message == offer()
    assert message.message_type == OFFER
    assert message.address_option(OPT_ROUTER) == bytes([10, 0, 0, 1])
    assert message.seconds_option(OPT_LEASE_TIME) == 3600


def test_matches_scapy() -> None:
    from scapy.layers.dhcp import BOOTP, DHCP


    packet = bytes(
        BOOTP(op=2, xid=0x1234, chaddr=MAC, yiaddr="10.0.0.50")
        / DHCP(options=[("message-type", "offer"), ("server_id", "10.0.0.1"), ("lease_time", 3600), "end"])
    )
    message = parse_dhcp(packet)
    assert message.message_type == OFFER
    assert message.address_option(OPT_SERVER_ID) == bytes([10, 0, 0, 1])
    assert message.yiaddr == bytes([10, 0, 0, 50])


def test_long_option_is_split_and_concatenated() -> None:
    message = DhcpMessage(BOOTREQUEST, 1, MAC, {43: bytes(range(256)) * 2})
    assert parse_dhcp(serialize_dhcp(message)).options[43] == bytes(range(256)) * 2


def reason_of(data: bytes) -> Drop:
    with pytest.raises(MalformedError) as info:
        parse_dhcp(data)
    return info.value.reason


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d[:239],  # truncated before the cookie ends
        lambda d: d[:236] + b"\x00\x00\x00\x00" + d[240:],  # no magic cookie
        lambda d: b"\x03" + d[1:],  # op
        lambda d: d[:2] + b"\x10" + d[3:],  # hlen
        lambda d: d.rstrip(b"\x00")[:-1],  # no end option
        lambda d: d.rstrip(b"\x00") + b"\x01",  # garbage after end
        lambda d: d[:240] + b"\x35\x05\x02",  # option overruns
        lambda d: d + bytes(1300),  # bigger than any DHCP message we accept
    ],
)
def test_malformed_refused(mutate: object) -> None:
    data = serialize_dhcp(offer())
    assert reason_of(mutate(data)) is Drop.DHCP_MALFORMED  # type: ignore[operator]


def test_wrong_option_lengths_read_as_absent() -> None:
    message = DhcpMessage(BOOTREPLY, 1, MAC, {OPT_MESSAGE_TYPE: b"\x02\x02", OPT_SERVER_ID: b"\x0a\x00", 51: b"\x01"})
    parsed = parse_dhcp(serialize_dhcp(message))
    assert parsed.message_type is None
    assert parsed.address_option(OPT_SERVER_ID) is None
    assert parsed.seconds_option(51) is None


def test_cookie_constant() -> None:
    assert bytes([99, 130, 83, 99]) == MAGIC_COOKIE


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_random_bytes_parse_or_raise_typed_error(data: bytes) -> None:
    with contextlib.suppress(MalformedError):
        parse_dhcp(serialize_dhcp(offer())[:240] + data)


option_values = st.dictionaries(
    st.integers(1, 254), st.binary(min_size=0, max_size=300), max_size=8
)


@settings(max_examples=200)
@given(st.sampled_from([BOOTREQUEST, BOOTREPLY]), st.integers(0, 2**32 - 1), option_values,
       st.integers(0, 0xFFFF), st.binary(min_size=4, max_size=4))  # fmt: skip
def test_round_trip_property(op: int, xid: int, options: dict[int, bytes], flags: int, yiaddr: bytes) -> None:
    message = DhcpMessage(op, xid, MAC, options, flags=flags, yiaddr=yiaddr)
    data = serialize_dhcp(message)
    if len(data) > 1500:
        with pytest.raises(MalformedError):
            parse_dhcp(data)
        return
    assert parse_dhcp(data) == message
