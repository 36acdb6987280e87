"""Multicast Listener Discovery, host side of MLDv2 (RFC 3810): the Query and Report codecs and `MldHost`, a
state machine that says, time in and reports out, which groups we listen to.

Why a host that only ever needs all-nodes and its solicited-node groups speaks MLD at all: an MLD-snooping
switch forwards a group's frames only to the ports that reported it, so without reports the neighbour
solicitations for our addresses (and other hosts' DAD probes for them) never reach us (RFC 4862 §5.4.2 asks a
node to join those groups before DAD). We listen to every group in EXCLUDE mode with no sources ("any source"),
so our records never carry a source, and the link-scope all-nodes group is never reported (RFC 3810 §6).

Why queries are checked as they are: a querier speaks from its link-local address with hop limit 1 (§5.1.14,
§6.2: anything else came from off the link and is ignored); the Router Alert it must carry (§5) is counted
when missing but not required, as Linux does. What a query can make us send is bounded: one pending response
per kind (general, address-specific), coalesced, and no two responses of one kind closer than
MldLimits.min_response_interval, whatever the query says its Max Response Delay is.

Decided here: MLDv1 queries (the 24-byte form) are parsed and answered with MLDv2 reports; there is no MLDv1
compatibility mode (§8). A querier's Robustness Variable is not adopted: ours stays RFC 3810's default of 2.
A multicast address and source specific query is answered like an address-specific one, with the group's
whole state (EXCLUDE, no sources): true, and what keeps the querier forwarding to us.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from netstack.addresses6 import ALL_NODES, UNSPECIFIED, is_link_local, is_multicast
from netstack.errors import MalformedError
from netstack.limits import MldLimits
from netstack.neighbour6 import Rng
from netstack.reasons import Counters, Drop

QUERY = 130
REPORT_V1 = 131
DONE_V1 = 132
REPORT_V2 = 143
TYPES = frozenset({QUERY, REPORT_V1, DONE_V1, REPORT_V2})
ALL_MLDV2_ROUTERS = bytes.fromhex("ff020000000000000000000000000016")  # where every MLDv2 report goes
HOP_LIMIT = 1
ROUTER_ALERT_OPTION = 5  # RFC 2711
ROUTER_ALERT_MLD = 0  # the option's value for MLD

# record types (§5.2.12)
MODE_IS_INCLUDE = 1
MODE_IS_EXCLUDE = 2
CHANGE_TO_INCLUDE = 3
CHANGE_TO_EXCLUDE = 4
ALLOW_NEW_SOURCES = 5
BLOCK_OLD_SOURCES = 6

ROBUSTNESS_VARIABLE = 2  # §9.1
UNSOLICITED_REPORT_INTERVAL = 1.0  # seconds (§9.11)

DEFAULT_MLD_LIMITS = MldLimits()

_V1_QUERY_BODY = 20  # after type, code, checksum: max response code, reserved, multicast address
_V2_QUERY_FIXED = 24  # ... and S/QRV, QQIC, number of sources
_QUERY = struct.Struct("!H2x16s")
_QUERY_V2 = struct.Struct("!BBH")
_REPORT = struct.Struct("!2xH")
_RECORD = struct.Struct("!BBH16s")
_ADDRESS = 16
_EXPONENTIAL = 0x8000  # a Max Resp Code at or above this is in floating-point form (§5.1.3)
_SUPPRESS = 0x08
_QRV_MASK = 0x07
_OPTION_UNIT = 8


@dataclass(frozen=True, slots=True)
class Query:
    """A Multicast Listener Query. `group` is :: for a general query; a version 1 query has no S flag, QRV,
    QQIC or sources (zero, False, empty)."""

    version: int  # 1: the 24-byte MLDv1 form (RFC 2710); 2: RFC 3810
    max_response_code: int
    group: bytes
    suppress: bool = False  # S: routers' timers are not to be updated (hosts ignore it)
    robustness: int = 0  # QRV
    qqic: int = 0  # Querier's Query Interval Code
    sources: tuple[bytes, ...] = ()
    sources_unread: bool = False  # it named more than MldLimits.sources_per_message: `sources` is empty

    @property
    def general(self) -> bool:
        return self.group == UNSPECIFIED

    @property
    def max_response_delay(self) -> float:
        """Seconds (the field is milliseconds, in floating-point form from 32768 up, §5.1.3)."""
        return decode_max_response_code(self.max_response_code) / 1000

    @property
    def query_interval(self) -> float:
        """The querier's query interval in seconds (§5.1.9)."""
        return float(decode_qqic(self.qqic))


@dataclass(frozen=True, slots=True)
class Record:
    """One Multicast Address Record of an MLDv2 report (no auxiliary data: §5.2.6 defines none)."""

    record_type: int
    group: bytes
    sources: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class Report:
    """An MLDv2 Report (RFC 3810 §5.2): what we send to announce our groups or answer a query, split to at most
    `records_per_report` records. Parsed back only by the fuzzer and the tests: a host does not act on others'."""

    records: tuple[Record, ...]


def decode_max_response_code(code: int) -> int:
    """Milliseconds: below 32768 the code itself, above it mantissa and exponent (§5.1.3)."""
    if code < _EXPONENTIAL:
        return code
    exp, mant = (code >> 12) & 0x7, code & 0xFFF
    return (mant | 0x1000) << (exp + 3)


def decode_qqic(code: int) -> int:
    """Seconds: below 128 the code itself, above it mantissa and exponent (§5.1.9)."""
    if code < 0x80:
        return code
    exp, mant = (code >> 4) & 0x7, code & 0xF
    return (mant | 0x10) << (exp + 3)


# --- queries ------------------------------------------------------------------------------------------------


def parse_query(body: memoryview | bytes, *, hop_limit: int, src: bytes,
                max_sources: int = DEFAULT_MLD_LIMITS.sources_per_message) -> Query:
    """A query's body (after ICMPv6's type, code and checksum; the code is ignored, §5.1.2). Lengths between
    the two forms are invalid (§8.1), and a version 2 query must hold the sources it announces.

    Bytes after the last source are accepted and ignored: a deliberate exception to this codebase's rule of
    refusing trailing bytes (which parse_report keeps). RFC 3810 §5.1.12 calls them Additional Data, which a
    receiver MUST include in the checksum (parse_icmpv6 did, over the whole message) and MUST otherwise ignore,
    and RFC 9279 puts its message extensions there: a querier that uses them would otherwise get no answer, and
    snooping switches would stop forwarding our solicited-node groups. They are never read, so they cost nothing
    beyond the frame that carried them.

    At most `max_sources` sources are read (MldLimits.sources_per_message). A query that names more is not
    refused: it is returned without them (`sources_unread`) and answered as address-specific, since MldHost
    answers every source-specific query with the group's whole state anyway (it never reads them; see the module
    docstring); refusing it would leave the querier to drop us from the group."""
    view = memoryview(body)
    if hop_limit != HOP_LIMIT:
        raise MalformedError(Drop.MLD_BAD_HOP_LIMIT, str(hop_limit))
    if not is_link_local(src):
        raise MalformedError(Drop.MLD_NOT_LINK_LOCAL)
    if len(view) < _V1_QUERY_BODY or _V1_QUERY_BODY < len(view) < _V2_QUERY_FIXED:
        raise MalformedError(Drop.MLD_TRUNCATED, f"query body of {len(view)} bytes")
    code, group = _QUERY.unpack_from(view)
    if group != UNSPECIFIED and not is_multicast(group):
        raise MalformedError(Drop.MLD_BAD_GROUP, "query for a unicast address")
    if len(view) == _V1_QUERY_BODY:
        return Query(1, code, group)
    flags, qqic, count = _QUERY_V2.unpack_from(view, _QUERY.size)
    end = _V2_QUERY_FIXED + count * _ADDRESS  # what follows is Additional Data (§5.1.12): ignored
    if end > len(view):
        raise MalformedError(Drop.MLD_TRUNCATED, f"{end} bytes announced, {len(view)} present")
    if count and group == UNSPECIFIED:
        raise MalformedError(Drop.MLD_BAD_GROUP, "general query naming sources")
    unread = count > max_sources
    sources = () if unread else tuple(bytes(view[i : i + _ADDRESS]) for i in range(_V2_QUERY_FIXED, end, _ADDRESS))
    return Query(2, code, group, bool(flags & _SUPPRESS), flags & _QRV_MASK, qqic, sources, unread)


def serialize_query(query: Query) -> bytes:
    """For tests and the fuzzer's peer: we are never a querier ourselves."""
    if query.sources_unread:
        raise ValueError("a query whose sources were not read cannot be written back")
    if not 0 <= query.max_response_code <= 0xFFFF or len(query.group) != _ADDRESS:
        raise ValueError("query field out of range")
    head = _QUERY.pack(query.max_response_code, query.group)
    if query.version == 1:
        if query.suppress or query.robustness or query.qqic or query.sources:
            raise ValueError("an MLDv1 query has no S flag, QRV, QQIC or sources")
        return head
    if not (0 <= query.robustness <= _QRV_MASK and 0 <= query.qqic <= 0xFF and len(query.sources) <= 0xFFFF):
        raise ValueError("query field out of range")
    flags = (_SUPPRESS if query.suppress else 0) | query.robustness
    return head + _QUERY_V2.pack(flags, query.qqic, len(query.sources)) + _addresses(query.sources)


# --- reports ------------------------------------------------------------------------------------------------


def parse_report(body: memoryview | bytes, *, max_records: int = DEFAULT_MLD_LIMITS.records_per_report,
                 max_sources: int = DEFAULT_MLD_LIMITS.sources_per_message) -> Report:
    """An MLDv2 report's body (after ICMPv6's type, code and checksum). We never act on others' reports (a
    host does not listen to them); this is how the fuzzer and the tests check ours."""
    view = memoryview(body)
    if len(view) < _REPORT.size:
        raise MalformedError(Drop.MLD_TRUNCATED, f"report body of {len(view)} bytes")
    (count,) = _REPORT.unpack_from(view)
    if count > max_records:
        raise MalformedError(Drop.MLD_TOO_MANY_RECORDS, f"{count} records")
    records = []
    offset = _REPORT.size
    for _ in range(count):  # bounded by max_records
        if offset + _RECORD.size > len(view):
            raise MalformedError(Drop.MLD_TRUNCATED, "record header cut short")
        record_type, aux, n, group = _RECORD.unpack_from(view, offset)
        if not MODE_IS_INCLUDE <= record_type <= BLOCK_OLD_SOURCES or aux:
            raise MalformedError(Drop.MLD_BAD_RECORD, f"type {record_type}, {aux} words of auxiliary data")
        if not is_multicast(group):
            raise MalformedError(Drop.MLD_BAD_GROUP, "record for a unicast address")
        if n > max_sources:
            raise MalformedError(Drop.MLD_TOO_MANY_SOURCES, f"{n} sources")
        start = offset + _RECORD.size
        offset = start + n * _ADDRESS
        if offset > len(view):
            raise MalformedError(Drop.MLD_TRUNCATED, "record sources cut short")
        sources = tuple(bytes(view[i : i + _ADDRESS]) for i in range(start, offset, _ADDRESS))
        records.append(Record(record_type, group, sources))
    _check_end(view, offset)
    return Report(tuple(records))


def serialize_report(report: Report) -> bytes:
    if len(report.records) > 0xFFFF:
        raise ValueError("too many records")
    parts = [_REPORT.pack(len(report.records))]
    for record in report.records:
        if not (0 <= record.record_type <= 0xFF and len(record.group) == _ADDRESS and len(record.sources) <= 0xFFFF):
            raise ValueError("record field out of range")
        parts.append(_RECORD.pack(record.record_type, 0, len(record.sources), record.group))
        parts.append(_addresses(record.sources))
    return b"".join(parts)


def _addresses(addresses: Iterable[bytes]) -> bytes:
    out = b"".join(addresses)
    if len(out) % _ADDRESS:
        raise ValueError("IPv6 addresses are 16 bytes")
    return out


def _check_end(view: memoryview, end: int) -> None:
    if end > len(view):
        raise MalformedError(Drop.MLD_TRUNCATED, f"{end} bytes announced, {len(view)} present")
    if end < len(view):
        raise MalformedError(Drop.MLD_TRAILING_BYTES, f"{len(view) - end} bytes")


# --- the hop-by-hop header ----------------------------------------------------------------------------------


def router_alert_header(next_header: int) -> bytes:
    """The 8-byte hop-by-hop header every MLD message carries (§5): Router Alert (MLD), then PadN."""
    return bytes((next_header, 0, ROUTER_ALERT_OPTION, 2)) + struct.pack("!H", ROUTER_ALERT_MLD) + b"\x01\x00"


def has_router_alert(hop_by_hop: memoryview | bytes) -> bool:
    """Whether a hop-by-hop header (its whole bytes, from the next-header byte on) holds a Router Alert for
    MLD. The walk is bounded by the header's length, which its length byte caps at 2048 bytes."""
    view = memoryview(hop_by_hop)
    if len(view) < 2:
        return False
    end = min(len(view), (view[1] + 1) * _OPTION_UNIT)
    i = 2
    while i < end:  # bounded: every turn moves i forward by at least one byte
        kind = view[i]
        if kind == 0:  # Pad1
            i += 1
            continue
        if i + 1 >= end:
            return False
        size = 2 + view[i + 1]
        if kind == ROUTER_ALERT_OPTION and size == 4 and i + size <= end:
            return (view[i + 2] << 8 | view[i + 3]) == ROUTER_ALERT_MLD
        i += size
    return False


# --- the host state machine ---------------------------------------------------------------------------------


def reportable(group: bytes) -> bool:
    """§6: never the link-scope all-nodes group, nor a group of reserved (0) or interface-local (1) scope."""
    return is_multicast(group) and group != ALL_NODES and group[1] & 0x0F > 1


class MldHost:
    """Time in, reports out (`take_reports`). The stack tells it the group set whenever it may have changed
    (`groups_changed`) and hands it every valid query; it sends what comes out, from its link-local address
    (:: while it has none usable, §5.2.13), to ff02::16."""

    __slots__ = ("_change_at", "_changes", "_counters", "_general_at", "_groups", "_last_general", "_last_specific",
                 "_limits", "_outgoing", "_rng", "_specific", "_specific_at")

    def __init__(self, counters: Counters, rng: Rng, limits: MldLimits = DEFAULT_MLD_LIMITS) -> None:
        self._counters = counters
        self._rng = rng
        self._limits = limits
        self._groups: frozenset[bytes] = frozenset()
        self._changes: dict[bytes, tuple[int, int]] = {}  # group -> (record type, transmissions left)
        self._change_at = math.inf
        self._general_at = math.inf
        self._specific: set[bytes] = set()
        self._specific_at = math.inf
        self._last_general = -math.inf
        self._last_specific = -math.inf
        self._outgoing: list[Report] = []

    def reset(self) -> None:
        """The link went down and up: we listen to nothing until told again, and owe no one an answer."""
        self._groups = frozenset()
        self._changes.clear()
        self._specific.clear()
        self._outgoing.clear()
        self._change_at = self._general_at = self._specific_at = math.inf
        self._last_general = self._last_specific = -math.inf

    @property
    def groups(self) -> frozenset[bytes]:
        """The groups we report (all-nodes and other unreportable groups left out)."""
        return self._groups

    # --- state changes (§6.1) ---------------------------------------------------------------------------------

    def groups_changed(self, now: float, groups: Iterable[bytes]) -> None:
        """The stack's group set, after anything that may have changed it: a State Change Report at once for
        what changed, repeated [Robustness Variable] - 1 times at random intervals of up to 1 s."""
        current = frozenset(g for g in groups if reportable(g))
        joined, left = current - self._groups, self._groups - current
        if not joined and not left:
            return
        self._groups = current
        for group in joined:
            self._changes[group] = (CHANGE_TO_EXCLUDE, ROBUSTNESS_VARIABLE)
        for group in left:
            self._changes[group] = (CHANGE_TO_INCLUDE, ROBUSTNESS_VARIABLE)
        self._specific &= current
        self._send_changes(now)

    def _send_changes(self, now: float) -> None:
        """One report of every pending change (§6.1: a new change is sent with the retransmissions still due)."""
        records = []
        for group, (record_type, left) in sorted(self._changes.items()):
            records.append(Record(record_type, group))
            if left > 1:
                self._changes[group] = (record_type, left - 1)
            else:
                del self._changes[group]
        self._report(records)
        self._change_at = now + self._rng.uniform(0, UNSOLICITED_REPORT_INTERVAL) if self._changes else math.inf

    # --- queries (§6.2) ---------------------------------------------------------------------------------------

    def query_received(self, now: float, query: Query) -> None:
        """A valid query from a link-local querier: answer after a random delay up to its Max Response Delay,
        coalesced with an answer already pending and never sooner than min_response_interval after the last
        answer of its kind."""
        delay = self._rng.uniform(0, query.max_response_delay)
        if query.general:
            at = max(now + delay, self._last_general + self._limits.min_response_interval)
            if at > now + delay:
                self._counters.add(Drop.MLD_RESPONSE_RATE_LIMITED)
            if self._general_at <= at:
                self._counters.add(Drop.MLD_QUERY_COALESCED)  # rule 1: the pending answer is sooner
                return
            if self._general_at != math.inf:
                self._counters.add(Drop.MLD_QUERY_COALESCED)  # rule 2: this one replaces the later answer
            self._general_at = at
            return
        if query.group not in self._groups:
            self._counters.add(Drop.MLD_QUERY_NOT_OUR_GROUP)
            return
        at = max(now + delay, self._last_specific + self._limits.min_response_interval)
        if at > now + delay:
            self._counters.add(Drop.MLD_RESPONSE_RATE_LIMITED)
        if self._general_at <= at:
            self._counters.add(Drop.MLD_QUERY_COALESCED)  # the general answer reports this group sooner
            return
        if self._specific_at != math.inf:
            self._counters.add(Drop.MLD_QUERY_COALESCED)
        self._specific.add(query.group)
        self._specific_at = min(self._specific_at, at)

    # --- timers -----------------------------------------------------------------------------------------------

    def timers_expired(self, now: float) -> None:
        if self._change_at <= now:
            self._send_changes(now)
        if self._general_at <= now:
            self._general_at = math.inf
            self._last_general = now
            self._report([Record(MODE_IS_EXCLUDE, g) for g in sorted(self._groups)])
        if self._specific_at <= now:
            groups, self._specific = sorted(self._specific & self._groups), set()
            self._specific_at = math.inf
            self._last_specific = now
            self._report([Record(MODE_IS_EXCLUDE, g) for g in groups])

    def next_deadline(self) -> float | None:
        deadline = min(self._change_at, self._general_at, self._specific_at)
        return None if deadline == math.inf else deadline

    def take_reports(self) -> list[Report]:
        out, self._outgoing = self._outgoing, []
        return out

    def _report(self, records: list[Record]) -> None:
        """Reports of at most records_per_report records each; none for no records. The records come from
        our own group set, bounded by the address limits, so the split is bounded too."""
        size = self._limits.records_per_report
        for i in range(0, len(records), size):
            self._outgoing.append(Report(tuple(records[i : i + size])))
