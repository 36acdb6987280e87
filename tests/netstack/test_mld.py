"""MLDv2 codecs and the MldHost state machine (RFC 3810 host side), with virtual time and a seeded RNG."""

from __future__ import annotations

import contextlib
import itertools
import random
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netstack import mld
from netstack.errors import MalformedError
from netstack.limits import MldLimits
from netstack.mld import (
    CHANGE_TO_EXCLUDE,
    CHANGE_TO_INCLUDE,
    MODE_IS_EXCLUDE,
    MldHost,
    Query,
    Record,
    Report,
    parse_query,
    parse_report,
    serialize_query,
    serialize_report,
)
from netstack.reasons import Counters, Drop

ROUTER_LL = bytes.fromhex("fe80000000000000000000000000000a")
GLOBAL = bytes.fromhex("20010db8000100000000000000000002")
ALL_NODES = bytes.fromhex("ff020000000000000000000000000001")
G1 = bytes.fromhex("ff0200000000000000000001ff000001")
G2 = bytes.fromhex("ff0200000000000000000001ff000002")
G3 = bytes.fromhex("ff0200000000000000000001ff000003")
SOURCE = bytes.fromhex("fe800000000000000000000000000009")


def query_body(code: int, group: bytes, sources: list[bytes] | None = None, *, flags: int = 2,
               qqic: int = 125) -> bytes:  # fmt: skip
    """Built by hand (RFC 3810 §5.1): max resp code, reserved, group, then S|QRV, QQIC, N, sources."""
    head = struct.pack("!HH16s", code, 0, group)
    if sources is None:
        return head
    return head + struct.pack("!BBH", flags, qqic, len(sources)) + b"".join(sources)


def parse(body: bytes, *, hop_limit: int = 1, src: bytes = ROUTER_LL, max_sources: int = 64) -> Query:
    return parse_query(body, hop_limit=hop_limit, src=src, max_sources=max_sources)


# --- the query codec ----------------------------------------------------------------------------------------


def test_v1_and_v2_queries_by_hand() -> None:
    v1 = parse(query_body(10000, bytes(16)))
    assert (v1.version, v1.general, v1.max_response_delay) == (1, True, 10.0)
    v2 = parse(query_body(1000, G1, [SOURCE], flags=0x08 | 3, qqic=125))
    assert (v2.version, v2.group, v2.suppress, v2.robustness, v2.query_interval) == (2, G1, True, 3, 125.0)
    assert v2.sources == (SOURCE,)
    assert v2.max_response_delay == 1.0
    assert not v2.general


def test_exponential_codes() -> None:
    # §5.1.3: 0x8000 | exp 0 | mant 0 = 0x1000 << 3 ms; 0xFFFF = (0x1FFF) << 10 ms
    assert mld.decode_max_response_code(0x7FFF) == 0x7FFF
    assert mld.decode_max_response_code(0x8000) == 0x1000 << 3
    assert mld.decode_max_response_code(0xFFFF) == 0x1FFF << 10
    assert mld.decode_qqic(127) == 127
    assert mld.decode_qqic(0x80) == 0x10 << 3
    assert mld.decode_qqic(0xFF) == 0x1F << 10


@pytest.mark.parametrize(("body", "kwargs", "reason"), [
    (query_body(1, bytes(16), []), {"hop_limit": 2}, Drop.MLD_BAD_HOP_LIMIT),
    (query_body(1, bytes(16), []), {"hop_limit": 255}, Drop.MLD_BAD_HOP_LIMIT),
    (query_body(1, bytes(16), []), {"src": GLOBAL}, Drop.MLD_NOT_LINK_LOCAL),
    (query_body(1, bytes(16))[:19], {}, Drop.MLD_TRUNCATED),
    (query_body(1, bytes(16), [])[:23], {}, Drop.MLD_TRUNCATED),  # between the two forms (§8.1)
    (query_body(1, bytes(16), [])[:21], {}, Drop.MLD_TRUNCATED),
    (query_body(1, G1, [SOURCE])[:-1], {}, Drop.MLD_TRUNCATED),
    (query_body(1, G1, [SOURCE, SOURCE])[:-1], {"max_sources": 1}, Drop.MLD_TRUNCATED),  # unread, still there
    (query_body(1, bytes(16), [SOURCE]) + bytes(8), {}, Drop.MLD_BAD_GROUP),
    (query_body(1, bytes(16), [SOURCE] * 2), {"max_sources": 1}, Drop.MLD_BAD_GROUP),
    (query_body(1, GLOBAL, []), {}, Drop.MLD_BAD_GROUP),
    (query_body(1, GLOBAL), {}, Drop.MLD_BAD_GROUP),
    (query_body(1, bytes(16), [SOURCE]), {}, Drop.MLD_BAD_GROUP),  # a general query names no source
])  # fmt: skip
def test_query_refusals(body: bytes, kwargs: dict[str, object], reason: Drop) -> None:
    with pytest.raises(MalformedError) as caught:
        parse(body, **kwargs)  # type: ignore[arg-type]
    assert caught.value.reason is reason


def test_more_sources_than_announced_bytes_is_truncated() -> None:
    body = query_body(1, G1, [])[:-2] + struct.pack("!H", 0xFFFF)
    with pytest.raises(MalformedError) as caught:
        parse(body)
    assert caught.value.reason is Drop.MLD_TRUNCATED


def test_additional_data_after_the_last_source_is_ignored() -> None:
    """RFC 3810 §5.1.12 (audit F9): bytes after the sources are Additional Data, in the checksum but otherwise
    ignored; RFC 9279 extensions live there. The deliberate exception to refusing trailing bytes."""
    plain = parse(query_body(1000, G1, [SOURCE]))
    for extra in (b"\x00", bytes(8), b"\x01\x02extension TLVs" * 20):
        assert parse(query_body(1000, G1, [SOURCE]) + extra) == plain
    assert parse(query_body(1000, bytes(16), []) + bytes(8)) == parse(query_body(1000, bytes(16), []))
    assert parse(query_body(1000, bytes(16), []) + bytes(8)).general


def test_more_sources_than_the_limit_are_not_read_and_the_query_stays_address_specific() -> None:
    """Audit F9: refused before; now the sources are left unread and the query answered for its group."""
    sources = [bytes([0xFE, 0x80]) + bytes(13) + bytes([i]) for i in range(3)]
    query = parse(query_body(1000, G1, sources) + bytes(4), max_sources=2)
    assert (query.version, query.group, query.sources, query.sources_unread) == (2, G1, (), True)
    assert not query.general
    at_limit = parse(query_body(1000, G1, sources), max_sources=3)
    assert (at_limit.sources, at_limit.sources_unread) == (tuple(sources), False)
    with pytest.raises(ValueError, match="not read"):
        serialize_query(query)


addresses = st.binary(min_size=16, max_size=16)
groups = st.binary(min_size=15, max_size=15).map(lambda b: b"\xff" + b)


@st.composite
def queries(draw: st.DrawFn) -> Query:
    group = draw(st.one_of(st.just(bytes(16)), groups))
    if draw(st.booleans()):
        return Query(1, draw(st.integers(0, 0xFFFF)), group)
    sources = tuple(draw(st.lists(addresses, max_size=4))) if group != bytes(16) else ()
    return Query(2, draw(st.integers(0, 0xFFFF)), group, draw(st.booleans()), draw(st.integers(0, 7)),
                 draw(st.integers(0, 255)), sources)


@given(queries())
def test_query_round_trip(query: Query) -> None:
    assert parse(serialize_query(query)) == query


@given(st.binary(max_size=200), st.integers(0, 255), st.sampled_from([ROUTER_LL, GLOBAL, bytes(16)]))
def test_query_arbitrary_bytes_only_malformed(data: bytes, hop_limit: int, src: bytes) -> None:
    with contextlib.suppress(MalformedError):
        parse(data, hop_limit=hop_limit, src=src, max_sources=4)


# --- the report codec ---------------------------------------------------------------------------------------


def record_bytes(record_type: int, group: bytes, sources: list[bytes] | None = None, aux: int = 0) -> bytes:
    srcs = sources or []
    return struct.pack("!BBH16s", record_type, aux, len(srcs), group) + b"".join(srcs) + bytes(4 * aux)


def report_body(*records: bytes, count: int | None = None) -> bytes:
    return struct.pack("!HH", 0, len(records) if count is None else count) + b"".join(records)


def test_report_by_hand() -> None:
    body = report_body(record_bytes(CHANGE_TO_EXCLUDE, G1), record_bytes(1, G2, [SOURCE]))
    assert parse_report(body) == Report((Record(CHANGE_TO_EXCLUDE, G1), Record(1, G2, (SOURCE,))))
    assert serialize_report(parse_report(body)) == body


@pytest.mark.parametrize(("body", "reason"), [
    (b"\x00\x00\x00", Drop.MLD_TRUNCATED),
    (report_body(count=1), Drop.MLD_TRUNCATED),
    (report_body(record_bytes(2, G1, [SOURCE]))[:-1], Drop.MLD_TRUNCATED),
    (report_body(record_bytes(2, G1)) + b"\x00", Drop.MLD_TRAILING_BYTES),
    (report_body(record_bytes(0, G1)), Drop.MLD_BAD_RECORD),
    (report_body(record_bytes(7, G1)), Drop.MLD_BAD_RECORD),
    (report_body(record_bytes(2, G1, aux=1)), Drop.MLD_BAD_RECORD),
    (report_body(record_bytes(2, GLOBAL)), Drop.MLD_BAD_GROUP),
    (report_body(record_bytes(2, G1, [SOURCE] * 3)), Drop.MLD_TOO_MANY_SOURCES),
    (report_body(count=0xFFFF), Drop.MLD_TOO_MANY_RECORDS),
])  # fmt: skip
def test_report_refusals(body: bytes, reason: Drop) -> None:
    with pytest.raises(MalformedError) as caught:
        parse_report(body, max_records=8, max_sources=2)
    assert caught.value.reason is reason


records = st.builds(Record, st.integers(1, 6), groups, st.lists(addresses, max_size=3).map(tuple))


@given(st.lists(records, max_size=5).map(tuple))
def test_report_round_trip(recs: tuple[Record, ...]) -> None:
    report = Report(recs)
    assert parse_report(serialize_report(report)) == report


@given(st.binary(max_size=200))
def test_report_arbitrary_bytes_only_malformed(data: bytes) -> None:
    with contextlib.suppress(MalformedError):
        parse_report(data, max_records=4, max_sources=4)


# --- the hop-by-hop header ----------------------------------------------------------------------------------


def test_router_alert_header() -> None:
    header = mld.router_alert_header(58)
    assert header == bytes.fromhex("3a00050200000100")
    assert mld.has_router_alert(header)
    assert mld.has_router_alert(bytes.fromhex("3a00 00 00 05020000 00").replace(b" ", b"")[:8])
    assert not mld.has_router_alert(bytes.fromhex("3a00050200010100"))  # RSVP's value, not MLD's
    assert not mld.has_router_alert(bytes.fromhex("3a00010400000000"))  # padding only
    assert not mld.has_router_alert(b"\x3a")


@given(st.binary(max_size=64))
def test_router_alert_scan_never_raises(data: bytes) -> None:
    mld.has_router_alert(data)


# --- MldHost ------------------------------------------------------------------------------------------------


DEFAULT_LIMITS = MldLimits()


class Harness:
    def __init__(self, limits: MldLimits = DEFAULT_LIMITS, seed: int = 3) -> None:
        self.counters = Counters()
        self.host = MldHost(self.counters, random.Random(seed), limits)
        self.sent: list[tuple[float, Report]] = []

    def run(self, until: float) -> None:
        self.sent += [(-1.0, r) for r in self.host.take_reports()]
        while (deadline := self.host.next_deadline()) is not None and deadline <= until:
            self.host.timers_expired(deadline)
            self.sent += [(deadline, r) for r in self.host.take_reports()]

    def take(self) -> list[tuple[float, Report]]:
        out, self.sent = self.sent, []
        return out


def general(delay_ms: int = 10000) -> Query:
    return Query(2, delay_ms, bytes(16), robustness=2, qqic=125)


def test_join_reported_at_once_then_repeated_within_a_second() -> None:
    h = Harness()
    h.host.groups_changed(5.0, {ALL_NODES, G1, G2, bytes.fromhex("ff01" + "00" * 13 + "01")})
    assert h.host.take_reports() == [Report((Record(CHANGE_TO_EXCLUDE, G1), Record(CHANGE_TO_EXCLUDE, G2)))]
    deadline = h.host.next_deadline()
    assert deadline is not None
    assert 5.0 <= deadline <= 6.0
    h.run(100.0)
    (repeat,) = h.take()  # Robustness Variable 2: one more, then nothing
    assert repeat == (deadline, Report((Record(CHANGE_TO_EXCLUDE, G1), Record(CHANGE_TO_EXCLUDE, G2))))
    assert h.host.next_deadline() is None
    assert h.host.groups == frozenset({G1, G2})


def test_all_nodes_alone_is_never_reported() -> None:
    h = Harness()
    h.host.groups_changed(0.0, {ALL_NODES})
    assert h.host.take_reports() == []
    assert h.host.next_deadline() is None


def test_leaving_sends_to_include_and_merges_pending_retransmissions() -> None:
    h = Harness()
    h.host.groups_changed(0.0, {G1, G2})
    h.host.take_reports()
    h.host.groups_changed(0.1, {G1, G3})  # G2 left (DAD failed or lifetime ended), G3 joined
    (report,) = h.host.take_reports()
    assert report.records == (Record(CHANGE_TO_EXCLUDE, G1), Record(CHANGE_TO_INCLUDE, G2),
                              Record(CHANGE_TO_EXCLUDE, G3))  # G1's retransmission goes along (§6.1)
    h.run(10.0)
    (repeat,) = [r for _, r in h.take()]
    assert repeat.records == (Record(CHANGE_TO_INCLUDE, G2), Record(CHANGE_TO_EXCLUDE, G3))
    assert h.host.next_deadline() is None


def test_unchanged_set_sends_nothing() -> None:
    h = Harness()
    h.host.groups_changed(0.0, {G1})
    h.run(5.0)
    h.take()
    h.host.groups_changed(6.0, {G1, ALL_NODES})
    assert h.host.take_reports() == []
    assert h.host.next_deadline() is None


def test_general_query_answered_with_every_group_within_the_delay() -> None:
    for seed in range(20):
        h = Harness(seed=seed)
        h.host.groups_changed(0.0, {ALL_NODES, G1, G2})
        h.run(10.0)
        h.take()
        h.host.query_received(20.0, general(2000))
        h.run(100.0)
        ((at, report),) = h.take()
        assert 20.0 <= at <= 22.0
        assert report.records == (Record(MODE_IS_EXCLUDE, G1), Record(MODE_IS_EXCLUDE, G2))


def test_specific_query_answered_for_our_group_only() -> None:
    h = Harness()
    h.host.groups_changed(0.0, {G1, G2})
    h.run(10.0)
    h.take()
    h.host.query_received(20.0, Query(2, 1000, G3))
    assert h.counters[Drop.MLD_QUERY_NOT_OUR_GROUP] == 1
    assert h.host.next_deadline() is None
    h.host.query_received(20.0, Query(1, 1000, G2))
    h.host.query_received(20.0, Query(2, 1000, G1, sources=(SOURCE,)))  # coalesced into the pending answer
    h.run(100.0)
    ((at, report),) = h.take()
    assert 20.0 <= at <= 21.0
    assert report.records == (Record(MODE_IS_EXCLUDE, G1), Record(MODE_IS_EXCLUDE, G2))
    assert h.counters[Drop.MLD_QUERY_COALESCED] == 1


def test_specific_query_covered_by_a_sooner_general_answer() -> None:
    h = Harness()
    h.host.groups_changed(0.0, {G1})
    h.run(10.0)
    h.take()
    h.host.query_received(20.0, general(0))  # answered at 20.0
    h.host.query_received(20.0, Query(2, 5000, G1))
    h.run(100.0)
    assert len(h.take()) == 1
    assert h.counters[Drop.MLD_QUERY_COALESCED] == 1


def test_query_flood_bounded_to_one_answer_per_interval() -> None:
    limits = MldLimits(min_response_interval=1.0)
    h = Harness(limits)
    h.host.groups_changed(0.0, {G1, G2})
    h.run(10.0)
    h.take()
    now = 10.0
    for _ in range(10000):  # a query every millisecond for 10 s, each asking for an answer at once
        now += 0.001
        h.host.query_received(now, general(0))
        h.host.query_received(now, Query(2, 0, G1))
        h.run(now)
    h.run(30.0)
    sent = h.take()
    answers_general = [at for at, r in sent if len(r.records) == 2]
    answers_specific = [at for at, r in sent if len(r.records) == 1]
    assert 5 <= len(answers_general) <= 11
    assert len(answers_specific) <= 11
    assert h.counters[Drop.MLD_RESPONSE_RATE_LIMITED] > 0
    assert h.counters[Drop.MLD_QUERY_COALESCED] > 0


def test_flood_answers_of_one_kind_at_least_an_interval_apart() -> None:
    h = Harness(MldLimits(min_response_interval=2.0))
    h.host.groups_changed(0.0, {G1})
    h.run(10.0)
    h.take()
    now = 10.0
    for _ in range(1000):
        now += 0.01
        h.host.query_received(now, general(0))
        h.run(now)
    h.run(30.0)
    times = [at for at, _ in h.take()]
    assert len(times) >= 4
    assert all(b - a >= 2.0 - 1e-9 for a, b in itertools.pairwise(times))


def test_large_group_set_is_split_by_the_record_limit() -> None:
    h = Harness(MldLimits(records_per_report=2))
    many = {bytes.fromhex("ff0200000000000000000001ff0000") + bytes((i,)) for i in range(5)}
    h.host.groups_changed(0.0, many)
    reports = h.host.take_reports()
    assert [len(r.records) for r in reports] == [2, 2, 1]
    assert {r.group for rep in reports for r in rep.records} == many


def test_reset_forgets_groups_and_pending_answers() -> None:
    h = Harness()
    h.host.groups_changed(0.0, {G1})
    h.host.query_received(0.5, general(5000))
    h.host.reset()
    assert h.host.next_deadline() is None
    assert h.host.take_reports() == []
    assert h.host.groups == frozenset()
    h.host.groups_changed(1.0, {G1})
    assert h.host.take_reports() == [Report((Record(CHANGE_TO_EXCLUDE, G1),))]


def test_group_left_before_a_pending_answer_is_not_reported() -> None:
    h = Harness()
    h.host.groups_changed(0.0, {G1, G2})
    h.run(10.0)
    h.take()
    h.host.query_received(20.0, Query(2, 1000, G2))
    h.host.groups_changed(20.0, {G1})
    h.run(100.0)
    reports = [r for _, r in h.take()]
    assert all(Record(MODE_IS_EXCLUDE, G2) not in r.records for r in reports)
