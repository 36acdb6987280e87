"""MLDv2 through the whole Stack: the reports on the wire, read by hand, and the queries that reach MldHost."""

from __future__ import annotations

import struct

from netstack.reasons import Drop
from netstack.stack import Stack
from tests.netstack.builders6 import (
    ALL_NODES,
    PREFIX,
    PROTO_HOP,
    PROTO_ICMPV6,
    ROUTER_LL,
    ROUTER_MAC,
    STATIC,
    UNSPECIFIED,
    US_STATIC,
    Sent,
    eth6,
    icmp6,
    ipv6,
    link_local_of,
    mmac,
    na_frame,
    new_stack,
    options_header,
    prefix_option,
    ra_frame,
    ready_stack,
    run_until,
    sent6,
    solicited,
)

MLDV2_ROUTERS = bytes.fromhex("ff020000000000000000000000000016")
REPORT = 143
QUERY = 130
GLOBAL_ROUTER = bytes.fromhex("20010db800010000000000000000000a")


def reports(sent: list[Sent]) -> list[Sent]:
    return [s for s in sent if s.next_header == PROTO_HOP]


def records(report: Sent) -> list[tuple[int, bytes]]:
    """(record type, group) of every record, read by hand (RFC 3810 §5.2), after checking the wire format."""
    assert report.dst_mac == b"\x33\x33\x00\x00\x00\x16"
    assert report.dst == MLDV2_ROUTERS
    assert report.hop_limit == 1
    hop = report.payload[:8]
    assert hop[0] == PROTO_ICMPV6
    assert hop[1] == 0
    assert hop[2:6] == bytes.fromhex("05020000")  # Router Alert, MLD
    icmp = report.payload[8:]
    assert icmp[0] == REPORT
    assert icmp[1] == 0
    checked = Sent(report.dst_mac, report.src_mac, report.hop_limit, PROTO_ICMPV6, report.src, report.dst, icmp)
    assert checked.checksum_ok()
    (count,) = struct.unpack_from("!H", icmp, 6)
    out = []
    offset = 8
    for _ in range(count):
        kind, aux, n, group = struct.unpack_from("!BBH16s", icmp, offset)
        assert aux == 0
        assert n == 0
        out.append((kind, group))
        offset += 20
    assert offset == len(icmp)
    return out


def query_frame(src: bytes, dst: bytes, group: bytes = UNSPECIFIED, *, delay_ms: int = 1000, hop_limit: int = 1,
                router_alert: bool = True, sources: tuple[bytes, ...] = (), extra: bytes = b"") -> bytes:  # fmt: skip
    """`extra`: bytes after the last source (RFC 3810 §5.1.12 Additional Data), inside the checksum."""
    body = struct.pack("!HH16sBBH", delay_ms, 0, group, 2, 125, len(sources)) + b"".join(sources) + extra
    message = icmp6(QUERY, 0, body, src, dst)
    if router_alert:
        packet = ipv6(src, dst, PROTO_HOP, options_header(PROTO_ICMPV6, b"\x05\x02\x00\x00") + message,
                      hop_limit=hop_limit)
    else:
        packet = ipv6(src, dst, PROTO_ICMPV6, message, hop_limit=hop_limit)
    return eth6(mmac(dst), ROUTER_MAC, packet)


def our_groups(stack: Stack) -> set[bytes]:
    assert stack.ipv6 is not None
    return {solicited(a) for a, _ in stack.ipv6.addresses.addresses()}


def test_joins_reported_with_the_first_dad_probe_from_unspecified() -> None:
    stack = new_stack(STATIC)
    stack.start(0.0)
    assert sent6(stack.take_frames(0.0)) == []  # RFC 4862 §5.4.2: the random delay holds the joins too
    _, out = run_until(stack, 3.0)
    sent = sent6(out)
    first = sent[0]
    assert first.next_header == PROTO_HOP  # the report goes before the first probe
    assert first.src == UNSPECIFIED  # §5.2.13: no usable link-local address yet
    ll = link_local_of(stack)
    assert sorted(records(first)) == sorted([(4, solicited(ll)), (4, solicited(US_STATIC))])
    later = reports(sent)[1:]
    assert len(later) == 1  # one retransmission (Robustness Variable 2)
    assert sorted(records(later[0])) == sorted(records(first))
    probes = [s for s in sent if s.next_header == PROTO_ICMPV6 and s.icmp_type == 135]
    assert len(probes) == 2
    _, out = run_until(stack, 100.0, 3.0)
    assert reports(sent6(out)) == []


def test_new_address_reported_from_the_link_local_address() -> None:
    stack = ready_stack()
    ll = link_local_of(stack)
    prefix_ra = _ra_with_prefix()
    stack.frame_received(3.0, prefix_ra)
    sent = reports(sent6(stack.take_frames(3.0)))
    assert len(sent) == 1
    assert sent[0].src == ll
    (record,) = records(sent[0])
    assert record[0] == 4
    assert record[1] != solicited(ll)
    _, out = run_until(stack, 10.0, 3.0)
    assert {g for _, g in records(reports(sent6(out))[0])} <= our_groups(stack) | {record[1]}
    assert record[1] in our_groups(stack)


def _ra_with_prefix() -> bytes:
    return ra_frame(prefix_option(PREFIX))


def test_address_lost_to_dad_is_left_with_to_include() -> None:
    stack = new_stack(STATIC)
    stack.start(0.0)
    run_until(stack, 1.0)
    stack.frame_received(1.0, na_frame(US_STATIC, ALL_NODES, US_STATIC, solicited=False))
    assert stack.counters[Drop.ND_DAD_FAILED] == 1
    sent = reports(sent6(stack.take_frames(1.0)))
    assert sent
    assert (3, solicited(US_STATIC)) in records(sent[0])


def test_general_query_from_link_local_router_answered_within_its_delay() -> None:
    stack = ready_stack(STATIC)
    stack.frame_received(10.0, query_frame(ROUTER_LL, ALL_NODES, delay_ms=2000))
    assert stack.counters[Drop.MLD_NO_ROUTER_ALERT] == 0
    _, out = run_until(stack, 12.0, 10.0)
    (answer,) = reports(sent6(out))
    assert answer.src == link_local_of(stack)
    assert {(k, g) for k, g in records(answer)} == {(2, g) for g in our_groups(stack)}
    _, out = run_until(stack, 100.0, 12.0)
    assert reports(sent6(out)) == []


def test_specific_query_to_our_group_answered_without_router_alert_counted() -> None:
    stack = ready_stack(STATIC)
    group = solicited(US_STATIC)
    stack.frame_received(10.0, query_frame(ROUTER_LL, group, group, router_alert=False))
    assert stack.counters[Drop.MLD_NO_ROUTER_ALERT] == 1
    _, out = run_until(stack, 11.0, 10.0)
    (answer,) = reports(sent6(out))
    assert records(answer) == [(2, group)]


def test_query_with_additional_data_is_answered() -> None:
    """Audit F9, RFC 3810 §5.1.12: Additional Data (RFC 9279 extensions) is ignored, not a reason to refuse."""
    stack = ready_stack(STATIC)
    group = solicited(US_STATIC)
    stack.frame_received(10.0, query_frame(ROUTER_LL, group, group, sources=(ROUTER_LL,), extra=bytes(12)))
    stack.frame_received(10.0, query_frame(ROUTER_LL, ALL_NODES, extra=b"\x01\x04tlv!"))
    _, out = run_until(stack, 12.0, 10.0)
    answers = reports(sent6(out))
    assert {(k, g) for answer in answers for k, g in records(answer)} >= {(2, group)}
    assert len(answers) == 2  # one address-specific answer and one general answer
    assert stack.counters[Drop.MLD_TRAILING_BYTES] == 0


def test_query_naming_more_sources_than_the_limit_is_answered_without_reading_them() -> None:
    """Audit F9: 65 sources (over MldLimits.sources_per_message) were refused; now answered for the group."""
    stack = ready_stack(STATIC)
    group = solicited(US_STATIC)
    sources = tuple(ROUTER_LL[:15] + bytes([i]) for i in range(65))
    stack.frame_received(10.0, query_frame(ROUTER_LL, group, group, sources=sources))
    assert stack.counters[Drop.MLD_QUERY_SOURCES_UNREAD] == 1
    assert stack.counters[Drop.MLD_TOO_MANY_SOURCES] == 0
    _, out = run_until(stack, 11.0, 10.0)
    (answer,) = reports(sent6(out))
    assert records(answer) == [(2, group)]


def test_query_announcing_more_sources_than_it_holds_is_refused() -> None:
    stack = ready_stack(STATIC)
    group = solicited(US_STATIC)
    body = struct.pack("!HH16sBBH", 1000, 0, group, 2, 125, 65) + bytes(16 * 64)  # 65 announced, 64 there
    message = icmp6(QUERY, 0, body, ROUTER_LL, group)  # a valid checksum: only the count is wrong
    packet = ipv6(ROUTER_LL, group, PROTO_HOP, options_header(PROTO_ICMPV6, b"\x05\x02\x00\x00") + message,
                  hop_limit=1)
    stack.frame_received(10.0, eth6(mmac(group), ROUTER_MAC, packet))
    assert stack.counters[Drop.MLD_TRUNCATED] == 1
    assert stack.counters[Drop.MLD_QUERY_SOURCES_UNREAD] == 0
    _, out = run_until(stack, 11.0, 10.0)
    assert reports(sent6(out)) == []


def test_query_from_a_global_source_or_routed_is_ignored() -> None:
    stack = ready_stack(STATIC)
    stack.frame_received(10.0, query_frame(GLOBAL_ROUTER, ALL_NODES))
    stack.frame_received(10.0, query_frame(ROUTER_LL, ALL_NODES, hop_limit=2))
    assert stack.counters[Drop.MLD_NOT_LINK_LOCAL] == 1
    assert stack.counters[Drop.MLD_BAD_HOP_LIMIT] == 1
    _, out = run_until(stack, 100.0, 10.0)
    assert reports(sent6(out)) == []


def test_others_reports_ignored() -> None:
    stack = ready_stack()
    body = struct.pack("!HH", 0, 1) + struct.pack("!BBH16s", 4, 0, 0, ALL_NODES)
    message = icmp6(REPORT, 0, body, ROUTER_LL, ALL_NODES)
    packet = ipv6(ROUTER_LL, ALL_NODES, PROTO_HOP, options_header(PROTO_ICMPV6, b"\x05\x02\x00\x00") + message,
                  hop_limit=1)
    stack.frame_received(10.0, eth6(mmac(ALL_NODES), ROUTER_MAC, packet))
    assert stack.counters[Drop.MLD_REPORT_IGNORED] == 1
    assert sent6(stack.take_frames(10.0)) == []


def test_query_flood_through_the_stack_is_bounded() -> None:
    stack = ready_stack(STATIC)
    now = 10.0
    out: list[bytes] = []
    for _ in range(2000):  # 200 queries a second for 10 s, each asking for an answer at once
        now += 0.005
        stack.frame_received(now, query_frame(ROUTER_LL, ALL_NODES, delay_ms=0))
        _, frames = run_until(stack, now, now)
        out += frames
    answers = reports(sent6(out))
    assert 5 <= len(answers) <= 11
    assert stack.counters[Drop.MLD_QUERY_COALESCED] + stack.counters[Drop.MLD_RESPONSE_RATE_LIMITED] > 0
