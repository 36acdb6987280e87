from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.addresses6 import LOOPBACK, UNSPECIFIED, ip6_from_text
from netstack.errors import MalformedError
from netstack.icmpv6 import (
    DEST_UNREACHABLE,
    ECHO_REPLY,
    ECHO_REQUEST,
    ERROR_TYPES,
    MAX_QUOTE,
    PACKET_TOO_BIG,
    PARAMETER_PROBLEM,
    TIME_EXCEEDED,
    Icmp6Message,
    error_allowed,
    error_body,
    is_error,
    packet_too_big_mtu,
    parse_icmpv6,
    quoted_packet,
    serialize_icmpv6,
    suppresses_errors,
)
from netstack.reasons import Drop
from tests.netstack.builders import textbook_sum
from tests.netstack.test_ipv6 import GROUP6, PEER6, US6, packet6


def pseudo6(data: bytes, src: bytes = PEER6, dst: bytes = US6) -> bytes:
    """The RFC 8200 §8.1 pseudo-header, by hand."""
    return src + dst + struct.pack("!I", len(data)) + bytes(3) + b"\x3a"


def hand_built(type_: int, code: int, body: bytes, src: bytes = PEER6, dst: bytes = US6) -> bytes:
    message = struct.pack("!BBH", type_, code, 0) + body
    value = ~textbook_sum(pseudo6(message, src, dst) + message) & 0xFFFF
    return message[:2] + struct.pack("!H", value) + message[4:]


def reason_of(data: bytes) -> Drop:
    with pytest.raises(MalformedError) as info:
        parse_icmpv6(data, PEER6, US6)
    return info.value.reason


def test_parse_echo_request() -> None:
    message = parse_icmpv6(hand_built(ECHO_REQUEST, 0, b"\x12\x34\x00\x01ping"), PEER6, US6)
    assert (message.type, message.code, bytes(message.body)) == (ECHO_REQUEST, 0, b"\x12\x34\x00\x01ping")


def test_serialize_matches_hand_built_and_scapy() -> None:
    from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6

    assert serialize_icmpv6(ECHO_REQUEST, 0, b"\x12\x34\x00\x01ping", PEER6, US6) == hand_built(
        ECHO_REQUEST, 0, b"\x12\x34\x00\x01ping")  # fmt: skip
    packet = bytes(IPv6(src="2001:db8::1", dst="2001:db8::2") / ICMPv6EchoRequest(id=0x1234, seq=1, data=b"ping"))
    assert serialize_icmpv6(ECHO_REQUEST, 0, b"\x12\x34\x00\x01ping", PEER6, US6) == packet[40:]


def test_bad_checksum_refused() -> None:
    data = bytearray(hand_built(ECHO_REPLY, 0, bytes(8)))
    data[-1] ^= 1
    assert reason_of(bytes(data)) is Drop.ICMPV6_BAD_CHECKSUM
    # the pseudo-header binds the message to its addresses
    with pytest.raises(MalformedError):
        parse_icmpv6(hand_built(ECHO_REPLY, 0, bytes(8)), PEER6, GROUP6)


def test_truncated_refused() -> None:
    assert reason_of(hand_built(ECHO_REPLY, 0, bytes(4))[:7]) is Drop.ICMPV6_TRUNCATED
    assert reason_of(b"") is Drop.ICMPV6_TRUNCATED
    assert parse_icmpv6(hand_built(ECHO_REPLY, 0, bytes(4)), PEER6, US6).body == bytes(4)


def test_serialize_refuses_out_of_range_lengths() -> None:
    with pytest.raises(ValueError, match="length"):
        serialize_icmpv6(ECHO_REPLY, 0, b"abc", PEER6, US6)
    with pytest.raises(ValueError, match="length"):
        serialize_icmpv6(ECHO_REPLY, 0, bytes(65532), PEER6, US6)


def test_error_body_keeps_the_error_within_the_minimum_mtu() -> None:
    invoking = packet6(17, bytes(2000))
    body = error_body(7, invoking)
    assert body[:4] == b"\x00\x00\x00\x07"
    assert body[4:] == invoking[: 1280 - 48]
    assert 40 + 4 + len(body) == 1280
    assert MAX_QUOTE == 1232
    short = packet6(17, b"abc")
    assert error_body(0, short) == bytes(4) + short


def test_packet_too_big_and_quote() -> None:
    invoking = packet6(17, bytes(1400))
    message = parse_icmpv6(serialize_icmpv6(PACKET_TOO_BIG, 0, error_body(1400, invoking), US6, PEER6), US6, PEER6)
    assert packet_too_big_mtu(message) == 1400
    assert bytes(quoted_packet(message)) == invoking[:MAX_QUOTE]
    # an MTU below the IPv6 minimum is ignored (RFC 8201 §4)
    # below the minimum: passed on as it is, for TCP to ignore and count (RFC 8201 §4)
    assert packet_too_big_mtu(Icmp6Message(PACKET_TOO_BIG, 0, memoryview(struct.pack("!I", 1279)))) == 1279
    assert packet_too_big_mtu(Icmp6Message(PACKET_TOO_BIG, 0, memoryview(struct.pack("!I", 1280)))) == 1280
    assert packet_too_big_mtu(Icmp6Message(TIME_EXCEEDED, 0, memoryview(struct.pack("!I", 1400)))) is None
    with pytest.raises(ValueError, match="not an error"):
        quoted_packet(Icmp6Message(ECHO_REQUEST, 0, memoryview(bytes(8))))


def test_error_classification() -> None:
    assert {DEST_UNREACHABLE, PACKET_TOO_BIG, TIME_EXCEEDED, PARAMETER_PROBLEM} == ERROR_TYPES
    assert all(is_error(t) for t in (*ERROR_TYPES, 0, 100, 127))
    assert not is_error(ECHO_REQUEST)
    assert suppresses_errors(137)  # redirect
    assert suppresses_errors(TIME_EXCEEDED)
    assert not suppresses_errors(ECHO_REQUEST)
    assert not suppresses_errors(135)


def allowed(error_type: int = DEST_UNREACHABLE, *, src: bytes = PEER6, dst: bytes = US6, link_multicast: bool = False,
            is_error: bool = False, exempt: bool = False) -> bool:  # fmt: skip
    return error_allowed(invoking_src=src, invoking_dst=dst, link_multicast=link_multicast,
                         invoking_is_error=is_error, error_type=error_type, multicast_exempt=exempt)  # fmt: skip


def test_error_allowed_rules() -> None:
    assert allowed()
    assert allowed(PARAMETER_PROBLEM)
    # never about an error (or a redirect)
    assert not allowed(is_error=True)
    assert not allowed(PACKET_TOO_BIG, is_error=True)
    # never to a multicast destination or a link-layer multicast/broadcast frame ...
    for where in ({"dst": GROUP6}, {"link_multicast": True}):
        assert not allowed(DEST_UNREACHABLE, **where)
        assert not allowed(PARAMETER_PROBLEM, **where)
        assert not allowed(TIME_EXCEEDED, exempt=True, **where)
        # ... except Packet Too Big and the Parameter Problem an option asks for
        assert allowed(PACKET_TOO_BIG, **where)
        assert allowed(PARAMETER_PROBLEM, exempt=True, **where)
    # never to a source that is not a unicast host
    for source in (UNSPECIFIED, LOOPBACK, GROUP6, ip6_from_text("::ffff:10.0.0.1"), ip6_from_text("::10.0.0.1")):
        assert not allowed(src=source)
        assert not allowed(PACKET_TOO_BIG, src=source)
        assert not allowed(PARAMETER_PROBLEM, src=source, exempt=True)


@settings(max_examples=300)
@given(st.integers(0, 255), st.integers(0, 255), st.binary(min_size=4, max_size=200))
def test_round_trip(type_: int, code: int, body: bytes) -> None:
    message = parse_icmpv6(serialize_icmpv6(type_, code, body, PEER6, US6), PEER6, US6)
    assert (message.type, message.code, bytes(message.body)) == (type_, code, body)


@settings(max_examples=500)
@given(st.binary(max_size=40), st.booleans())
def test_random_bytes_parse_exactly_or_raise_typed_error(data: bytes, fix: bool) -> None:
    if fix and len(data) >= 4:
        data = hand_built(data[0], data[1], data[4:])
    checksum_ok = textbook_sum(pseudo6(data) + data) == 0xFFFF
    expected = (Drop.ICMPV6_TRUNCATED if len(data) < 8 else
                Drop.ICMPV6_BAD_CHECKSUM if not checksum_ok else
                None)  # fmt: skip
    if expected is not None:
        assert reason_of(data) is expected
        return
    message = parse_icmpv6(data, PEER6, US6)
    assert (message.type, message.code, bytes(message.body)) == (data[0], data[1], data[4:])
