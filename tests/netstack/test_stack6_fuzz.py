"""Property: nothing an attacker puts in an IPv6 frame makes the stack raise or count internal-error."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netstack.reasons import Drop
from netstack.stack import Stack
from tests.netstack.builders import PEER_MAC, US_MAC
from tests.netstack.builders6 import (
    ALL_NODES,
    PEER6,
    PREFIX,
    PROTO_DEST,
    PROTO_FRAGMENT,
    PROTO_TCP,
    UNSPECIFIED,
    US_STATIC,
    echo_frame,
    eth6,
    fragment_header,
    ipv6,
    mmac,
    na_frame,
    ns_frame,
    options_header,
    prefix_option,
    ra_frame,
    ready_with_peer,
    run_until,
    solicited,
    upper_checksum,
)
from tests.netstack.test_stack import FakeTcp

_SYN = upper_checksum(PEER6, US_STATIC, PROTO_TCP,
                      struct.pack("!HHIIBBHHH", 5555, 443, 1, 0, 0x50, 0x02, 65535, 0, 0), 16)
VALID = [
    echo_frame(PEER6, US_STATIC),
    echo_frame(PEER6, ALL_NODES, dst_mac=mmac(ALL_NODES)),
    ns_frame(PEER6, US_STATIC),
    ns_frame(UNSPECIFIED, US_STATIC, None),
    na_frame(PEER6, US_STATIC, PEER6),
    ra_frame(prefix_option(PREFIX)),
    eth6(US_MAC, PEER_MAC, ipv6(PEER6, US_STATIC, PROTO_TCP, _SYN)),
    eth6(US_MAC, PEER_MAC, ipv6(PEER6, US_STATIC, PROTO_DEST, options_header(PROTO_TCP, bytes((0x9E, 0))) + _SYN)),
    eth6(US_MAC, PEER_MAC, ipv6(PEER6, US_STATIC, PROTO_FRAGMENT, fragment_header(PROTO_TCP, 0, True, 3)
                                + _SYN + bytes(4))),
]
DST_MACS = [US_MAC, mmac(ALL_NODES), mmac(solicited(US_STATIC))]


def _feed(stack: Stack, frame: bytes) -> None:
    stack.frame_received(3.0, frame)  # raising here fails the property
    stack.take_frames(3.0)
    run_until(stack, 40.0, 3.0)  # and every timer the frame started, reassembly timeouts included
    assert stack.counters[Drop.INTERNAL_ERROR] == 0, stack.faults


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(DST_MACS), st.binary(max_size=200))
def test_arbitrary_bytes_after_an_ipv6_ethertype(dst_mac: bytes, payload: bytes) -> None:
    _feed(ready_with_peer(FakeTcp()), eth6(dst_mac, PEER_MAC, payload))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=160))
def test_arbitrary_bytes_behind_a_valid_ipv6_header(payload: bytes) -> None:
    stack = ready_with_peer(FakeTcp())
    for next_header in (0, 43, 44, 58, 60, 6, 17):
        _feed(stack, eth6(US_MAC, PEER_MAC, ipv6(PEER6, US_STATIC, next_header, payload)))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID), st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=6),
       st.integers(0, 2000))
def test_mutations_of_valid_frames(frame: bytes, flips: list[tuple[int, int]], cut: int) -> None:
    mutated = bytearray(frame)
    for position, value in flips:
        if 14 <= position < len(mutated):
            mutated[position] = value
    _feed(ready_with_peer(FakeTcp()), bytes(mutated[: max(14, len(mutated) - cut % 64)]))
