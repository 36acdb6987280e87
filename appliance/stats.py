"""Statistics: a pure function of the ledger (rebuilt from it at boot), served on the web pages.

Every structure is bounded (config.Limits), and every one is *idempotent under replay*: the ledger writes
a checkpoint at each rollover and replays checkpoint + later events at boot, so a structure that turned
"what was seen" into a bare count at a checkpoint would count again whatever it saw after it (one source
attacking through nineteen rollovers showed as nineteen sources). So a checkpoint holds the state itself:

- distinct sources: the exact set (64-bit hashes) up to `stats_unique_sources_tracked`, and always a
  HyperLogLog sketch (`stats_sources_sketch_registers`) that takes over beyond the cap. Adding a source
  twice changes neither, so restore + replay cannot double count. Checkpoints from before this format
  hold only a count (`sources_before`); it is carried as a floor, labelled, never added to again.
- the cumulative chart: connections per fixed time bucket (`stats_series_bucket_seconds`), at most
  `stats_series_points` buckets; when history outgrows them, neighbouring buckets merge (the width
  doubles, so buckets stay aligned). Points sampled by connection count drew ramps across quiet minutes.
- refusals: the reason is kept, but the parts the peer sent (quoted literals: X.509 name values, first
  bytes) are told apart from the appliance's words (`reason_parts`), so the page and /stats.json can mark
  them and cut them short; the category is the outcome.
- families: connections per address family of the peer (`appliance.peers.family`). A checkpoint from
  before this count holds connections whose family nobody recorded: they are kept as `unrecorded`, so
  the families always add up to the total.

Distinct sources stay distinct addresses (as the ledger records them), not the per-source limits' key
(`appliance.peers.source_of`, an IPv6 /64): the count says how many addresses were seen, and a /64 rotating
its low bits moves it only as far as the keyed sketch lets addresses chosen blind move it (see Sources).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from appliance.config import ENDPOINTS, Limits
from appliance.ledger_record import CHECKPOINT_MAX_BYTES, PREFIX, Checkpoint, Event, Finding, Record, RecordError
from appliance.peers import IPV4, IPV6, OTHER, family

SUCCESS = "success"
NOT_REFUSED = frozenset({SUCCESS, "served"})  # outcomes that are not an attack that failed
UNRECORDED = "unrecorded"  # connections a checkpoint from before per-family counting holds
FAMILIES = (IPV4, IPV6, OTHER, UNRECORDED)
KEY_BYTES = 16  # the sketch's hash key (see Sources)
HASH_BYTES = 8  # per source: a collision among the default cap of 2048 is ~1e-13 likely
EXACT_IN_CHECKPOINT = CHECKPOINT_MAX_BYTES // 2 // (4 * HASH_BYTES // 3 + 1)
"""Most exact source hashes a checkpoint holds (half its room, base64): a larger exact set (only through
`--limit`) is folded into the sketch at a rollover rather than crowding out the counts."""

# A quoted literal as the TLS and X.509 code quote peer-sent values (Python repr: CN='...', b'\x16...'):
# the opening quote is not inside a word (so "certificate's" is ours), and a literal cut by the ledger's
# reason limit runs to the end.
_PEER_LITERAL = re.compile(r"""(?<![\w'"])b?(?P<q>['"])(?P<body>(?:\\.|(?!(?P=q))[^\\])*)(?:(?P=q)|\\?$)""")


@dataclass(frozen=True)
class Refusal:
    """One row of the "recent refused attempts" list, kept in checkpoints: an event without its source address.
    `reason_parts` marks the values the peer chose, so the page sets them apart from the appliance's words."""

    time: float
    endpoint: str
    category: str
    reason: str

    def reason_parts(self, limit: int) -> list[tuple[str, bool]]:
        """The reason as (text, sent_by_peer) pieces, peer pieces cut to `limit` characters: the reason
        mixes the appliance's words with values the peer chose, which must not read as a verdict."""
        parts: list[tuple[str, bool]] = []
        at = 0
        for match in _PEER_LITERAL.finditer(self.reason):
            if match.start() > at:
                parts.append((self.reason[at:match.start()], False))
            parts.append((shorten(match.group("body"), limit), True))
            at = match.end()
        if at < len(self.reason):
            parts.append((self.reason[at:], False))
        return parts


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


@dataclass(frozen=True)
class Chart:
    """What the cumulative chart draws: per endpoint, (bucket start, bucket end, total after it) for each
    bucket with connections, over [start, end) in buckets of `width` seconds."""

    start: float
    end: float
    width: float
    series: dict[str, list[tuple[float, float, int]]]


class Sources:
    """Distinct sources: exact up to a cap, a HyperLogLog estimate beyond; both unchanged by a repeat.

    The hash is keyed with a secret kept in the checkpoints (on the data disk, never shown): with a public
    hash, a peer free to pick its addresses (an IPv6 prefix) could choose a few hundred whose hashes fill
    every register high and show millions of sources. Addresses chosen blind cost one register each."""

    def __init__(self, tracked: int, registers: int, key: bytes) -> None:
        self.tracked = tracked
        self.key = key
        # A power of two, 16..16384 registers: the largest sketch and the largest exact set a checkpoint
        # holds (EXACT_IN_CHECKPOINT) fit one checkpoint record together.
        self._bits = max(4, min(14, registers.bit_length() - 1))
        self.registers = bytearray(1 << self._bits)
        self.exact: set[int] | None = set()  # None: given up (see drop_exact), the sketch counts
        self.known = 0  # distinct sources known when the exact set was given up: the estimate's floor
        self.carried = 0  # a count from a checkpoint of the format before this one (see module doc)

    def add(self, source: str) -> None:
        h = int.from_bytes(hashlib.blake2b(source.encode(), digest_size=HASH_BYTES, key=self.key).digest(), "big")
        rest = 8 * HASH_BYTES - self._bits
        index, tail = h >> rest, h & ((1 << rest) - 1)
        rank = rest - tail.bit_length() + 1
        self.registers[index] = max(self.registers[index], rank)
        if self.exact is not None and h not in self.exact:
            if len(self.exact) < self.tracked:
                self.exact.add(h)
            else:
                self.drop_exact(len(self.exact) + 1)

    def drop_exact(self, known: int) -> None:
        """Give up the exact set (past the cap, or too large for a checkpoint), keeping what it knew."""
        self.known = max(self.known, known)
        self.exact = None

    def estimate(self) -> int:
        m = len(self.registers)
        alpha = {16: 0.673, 32: 0.697, 64: 0.709}.get(m, 0.7213 / (1 + 1.079 / m))
        raw = alpha * m * m / sum(2.0 ** -r for r in self.registers)
        zeros = self.registers.count(0)
        if raw <= 2.5 * m and zeros:
            raw = m * math.log(m / zeros)  # linear counting: the small-range correction
        return round(raw)

    @property
    def is_exact(self) -> bool:
        return self.exact is not None and not self.carried

    def count(self) -> int:
        seen = len(self.exact) if self.exact is not None else max(self.known, self.estimate())
        return max(seen, self.carried)

    def encode(self) -> dict[str, object]:
        if self.exact is not None and len(self.exact) > EXACT_IN_CHECKPOINT:
            self.drop_exact(len(self.exact))
        exact = None if self.exact is None else b"".join(h.to_bytes(HASH_BYTES, "big") for h in sorted(self.exact))
        return {"exact": None if exact is None else base64.b64encode(exact).decode(),
                "sketch": base64.b64encode(self.registers).decode(), "known": self.known, "carried": self.carried,
                "key": self.key.hex()}

    def decode(self, value: object) -> Sources:
        """A copy holding `value` (a checkpoint's "sources"), checked: it is input from the disk."""
        if not isinstance(value, dict):
            raise TypeError("sources is not an object")
        key = bytes.fromhex(str(value["key"]))
        if len(key) != KEY_BYTES:
            raise ValueError("sketch key")
        out = Sources(self.tracked, len(self.registers), key)
        sketch = base64.b64decode(str(value["sketch"]), validate=True)
        if len(sketch) == len(out.registers):  # a different register count (--limit) starts the sketch over
            out.registers[:] = sketch
        if max(out.registers, default=0) > 8 * HASH_BYTES - out._bits + 1:
            raise ValueError("sketch register out of range")
        exact = value["exact"]
        if exact is not None:
            raw = base64.b64decode(str(exact), validate=True)
            if len(raw) % HASH_BYTES:
                raise ValueError("exact sources")
            hashes = {int.from_bytes(raw[i:i + HASH_BYTES], "big") for i in range(0, len(raw), HASH_BYTES)}
            out.exact = hashes
            if len(hashes) > self.tracked:  # written under a larger --limit
                out.drop_exact(len(hashes))
        else:
            out.exact = None
        known, out.carried = int(value["known"]), int(value["carried"])
        if known < 0 or out.carried < 0:
            raise ValueError("negative source count")
        out.known = max(out.known, known)
        return out


class Series:
    """Connections per endpoint in fixed, aligned time buckets, at most `buckets` of them across all
    endpoints: a burst lands in its bucket, a quiet minute stays empty."""

    def __init__(self, width: float, buckets: int) -> None:
        self.base_width = width
        self.width = width
        self.buckets = max(2, buckets)
        self.counts: dict[str, dict[int, int]] = {e: {} for e in ENDPOINTS}
        self.lo: int | None = None
        self.hi: int | None = None

    def add(self, endpoint: str, time: float, n: int = 1) -> None:
        if not math.isfinite(time):
            return  # counted in the totals; it has no place on a time axis
        index = math.floor(time / self.width)
        self.lo = index if self.lo is None else min(self.lo, index)
        self.hi = index if self.hi is None else max(self.hi, index)
        per = self.counts[endpoint]
        per[index] = per.get(index, 0) + n
        while self.hi - self.lo >= self.buckets:
            self.coarsen()

    def coarsen(self) -> None:
        """Merge neighbouring buckets (floor(t / 2w) == floor(floor(t / w) / 2): they stay aligned)."""
        self.width *= 2
        for endpoint, per in self.counts.items():
            merged: dict[int, int] = {}
            for index, n in per.items():
                merged[index // 2] = merged.get(index // 2, 0) + n
            self.counts[endpoint] = merged
        if self.lo is not None and self.hi is not None:
            self.lo, self.hi = self.lo // 2, self.hi // 2

    def chart(self) -> Chart:
        lo, hi = self.lo or 0, self.hi or 0
        series: dict[str, list[tuple[float, float, int]]] = {}
        for endpoint, per in self.counts.items():
            total, rows = 0, []
            for index in sorted(per):
                total += per[index]
                rows.append((index * self.width, (index + 1) * self.width, total))
            series[endpoint] = rows
        return Chart(lo * self.width, (hi + 1) * self.width, self.width, series)

    def encode(self) -> dict[str, object]:
        lo, hi = self.lo or 0, self.hi or 0
        dense = {e: [per.get(i, 0) for i in range(lo, hi + 1)] for e, per in self.counts.items()}
        for row in dense.values():
            while row and not row[-1]:
                row.pop()
        return {"width": self.width, "origin": lo, "counts": dense}

    def decode(self, value: object) -> Series:
        if not isinstance(value, dict):
            raise TypeError("buckets is not an object")
        out = Series(self.base_width, self.buckets)
        width, origin = float(value["width"]), int(value["origin"])
        if not (math.isfinite(width) and width > 0):
            raise ValueError("bucket width")
        while out.width < width:  # ours, or a narrower --limit than the one that wrote it: merge up to it
            out.width *= 2
        counts = value["counts"]
        for endpoint in ENDPOINTS:
            row = counts.get(endpoint, [])
            for offset, n in enumerate(row):
                if int(n) < 0:
                    raise ValueError("negative bucket")
                if int(n):
                    out.add(endpoint, (origin + offset + 0.5) * width, int(n))
        return out

    @classmethod
    def from_points(cls, width: float, buckets: int, points: dict[str, list[tuple[float, int]]]) -> Series:
        """Buckets from the format before this one (cumulative points sampled by count): each point's
        increase goes to its bucket, so the totals are kept and only the old sampling's detail is not."""
        out = cls(width, buckets)
        for endpoint, pts in points.items():
            before = 0
            for t, n in pts:
                if n > before:
                    out.add(endpoint, t, n - before)
                before = max(before, n)
        return out


class Stats:
    def __init__(self, limits: Limits, random: Callable[[int], bytes] = os.urandom) -> None:
        """`random` keys the distinct-source sketch of a new ledger; a restored checkpoint brings its own."""
        self._limits = limits
        self.counts: dict[str, dict[str, int]] = {e: {} for e in ENDPOINTS}
        self.families: dict[str, int] = dict.fromkeys(FAMILIES, 0)
        self._series = Series(limits.stats_series_bucket_seconds, limits.stats_series_points)
        self.recent: deque[Refusal] = deque(maxlen=limits.stats_recent_refused)
        self._sources = Sources(limits.stats_unique_sources_tracked, limits.stats_sources_sketch_registers,
                                random(KEY_BYTES))
        self.rolled_over = False
        # The ledger's own health: what recovery could not read, as recorded in the ledger (kept across
        # rollovers in the checkpoints), and this boot's outcome (set by the composition root).
        self.findings: deque[dict[str, object]] = deque(maxlen=limits.stats_ledger_findings)
        self.integrity = {"damaged": 0, "torn_tails": 0, "records_lost": 0, "records_lost_bound": 0}
        self.boot_recovery: dict[str, str | int] | None = None
        self.findings_seq = -1  # the seq of the last finding counted

    # -- updates ---------------------------------------------------------------------------------------

    def add(self, event: Event) -> None:
        per_endpoint = self.counts[event.endpoint]
        per_endpoint[event.category] = per_endpoint.get(event.category, 0) + 1
        self._series.add(event.endpoint, event.time)
        if event.category not in NOT_REFUSED:
            self.recent.append(Refusal(event.time, event.endpoint, event.category, event.reason))
        self.families[family(event.source)] += 1
        self._sources.add(event.source)

    def replay(self, record: Record) -> None:
        if isinstance(record.body, Checkpoint):
            self.restore(record.body.state)
        elif isinstance(record.body, Event):
            self.add(record.body)
        elif isinstance(record.body, Finding):
            self.add_finding(record.seq, record.body)

    def add_finding(self, seq: int, finding: Finding) -> None:
        """Count a finding once. A checkpoint may already count findings whose records follow it (written
        so that the write replacing their evidence is itself the record): a seq at or below the last one
        counted is such a finding, replayed."""
        if seq <= self.findings_seq:
            return
        self.findings_seq = seq
        self.integrity["torn_tails" if finding.torn else "damaged"] += 1
        if not finding.totals_kept:
            self.integrity["records_lost"] += finding.records or 0
            self.integrity["records_lost_bound"] += finding.bound
        self.findings.append({
            "seq": seq, "kind": "torn tail" if finding.torn else "damaged", "region": finding.region,
            "epoch": finding.epoch, "start": finding.start, "end": finding.end, "records": finding.records,
            "bound": finding.bound, "totals_kept": finding.totals_kept, "sample": finding.sample.hex(),
        })


    # -- checkpoints -----------------------------------------------------------------------------------

    def checkpoint(self) -> bytes:
        """The state a rollover writes: the whole state, so that restoring it and replaying the events
        after it gives what this object holds (nothing folded, nothing counted twice). Thinned (buckets
        merged, oldest refusals dropped) until it fits one checkpoint record."""
        self.rolled_over = True
        state = self._encode()
        while len(state) > CHECKPOINT_MAX_BYTES - PREFIX.size and (self.recent or self._series.hi != self._series.lo):
            self._series.coarsen()
            for _ in range((len(self.recent) + 1) // 2):
                self.recent.popleft()
            state = self._encode()
        if len(state) > CHECKPOINT_MAX_BYTES - PREFIX.size:  # only with limits raised far beyond the defaults
            self._sources.drop_exact(self.unique_sources)  # the sketch counts on
            state = self._encode()
        return state

    def initial(self) -> bytes:
        return self._encode()

    def _encode(self) -> bytes:
        state = {
            "counts": self.counts,
            "families": self.families,
            "buckets": self._series.encode(),
            "recent": [[r.time, r.endpoint, r.category, r.reason] for r in self.recent],
            "sources": self._sources.encode(),
            "rolled_over": self.rolled_over,
            "findings": list(self.findings),
            "integrity": self.integrity,
            "findings_seq": self.findings_seq,
            # For the code before this format, which requires them (a downgrade keeps the totals):
            "series": {},
            "sources_before": self.unique_sources,
        }
        return json.dumps(state, separators=(",", ":"), ensure_ascii=False).encode()

    def restore(self, state: bytes) -> None:
        """Take a checkpoint's state. Its checksum held, but it is still input: anything that is not the
        shape `_encode` writes (this format or an earlier one) raises RecordError and leaves this object as
        it was."""
        limits = self._limits
        try:
            data = json.loads(state)
            counts = {e: {str(k): int(v) for k, v in data["counts"].get(e, {}).items()} for e in ENDPOINTS}
            if "buckets" in data:
                series = self._series.decode(data["buckets"])
            else:  # format 1 and 2: cumulative points
                points = {e: [(float(t), int(n)) for t, n in data["series"].get(e, [])] for e in ENDPOINTS}
                series = Series.from_points(limits.stats_series_bucket_seconds, limits.stats_series_points, points)
            recent = [Refusal(float(t), str(endpoint), str(category), str(reason))
                      for t, endpoint, category, reason in data["recent"]]
            if "sources" in data:
                sources = self._sources.decode(data["sources"])
            else:  # format 1 and 2: a count that cannot say which sources it counted
                sources = Sources(limits.stats_unique_sources_tracked, limits.stats_sources_sketch_registers,
                                  self._sources.key)
                sources.carried = max(0, int(data["sources_before"]))
            rolled_over = bool(data["rolled_over"])
            findings = [_finding_from_json(f) for f in data.get("findings", [])]  # absent in format 1
            integrity = {k: int(data.get("integrity", {}).get(k, 0)) for k in self.integrity}
            findings_seq = int(data.get("findings_seq", -1))
            families = _families_from_json(data.get("families"), counts)
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError, OverflowError) as exc:
            raise RecordError(f"checkpoint state: {type(exc).__name__}") from exc
        self.counts, self._series, self._sources, self.rolled_over = counts, series, sources, rolled_over
        self.families = families
        self.recent.clear()
        self.recent.extend(recent)
        self.findings.clear()
        self.findings.extend(findings)
        self.integrity, self.findings_seq = integrity, findings_seq

    # -- views -----------------------------------------------------------------------------------------

    @property
    def unique_sources(self) -> int:
        return self._sources.count()

    @property
    def sources_carried(self) -> int:
        """Sources counted by a checkpoint from before this format: a floor of unknown overlap."""
        return self._sources.carried

    @property
    def unique_sources_label(self) -> str:
        return f"distinct sources (exact up to {self._limits.stats_unique_sources_tracked}, estimated beyond)"

    @property
    def series(self) -> dict[str, list[tuple[float, int]]]:
        """Per endpoint, (end of a bucket, total connections by then) for each bucket with connections."""
        return {e: [(end, total) for _, end, total in rows] for e, rows in self._series.chart().series.items()}

    def chart(self) -> Chart:
        return self._series.chart()

    def by_category(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for per_endpoint in self.counts.values():
            for category, n in per_endpoint.items():
                totals[category] = totals.get(category, 0) + n
        return dict(sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])))

    def failures_by_category(self) -> dict[str, int]:
        return {c: n for c, n in self.by_category().items() if c not in NOT_REFUSED}

    def total(self) -> int:
        return sum(sum(c.values()) for c in self.counts.values())

    def refusal_json(self, refusal: Refusal) -> dict[str, object]:
        """The category is the outcome; `reason` is the appliance's words with each peer-sent value replaced
        by a pointer into `peer_text`, which holds those values cut short: a peer's text cannot pose as ours."""
        words: list[str] = []
        peer: list[str] = []
        for text, sent_by_peer in refusal.reason_parts(self._limits.stats_peer_text_chars):
            if sent_by_peer:
                words.append(f"[peer_text {len(peer)}]")
                peer.append(text)
            else:
                words.append(text)
        return {"time": refusal.time, "endpoint": refusal.endpoint, "category": refusal.category,
                "reason": "".join(words), "peer_text": peer}

    def as_json(self) -> dict[str, object]:
        return {
            "connections": self.total(),
            "successes": self.by_category().get(SUCCESS, 0),
            "unique_sources": self.unique_sources,
            "unique_sources_exact": self._sources.is_exact,
            "unique_sources_label": self.unique_sources_label,
            "unique_sources_carried": self._sources.carried,
            "by_endpoint": {e: dict(sorted(c.items())) for e, c in self.counts.items()},
            "by_family": dict(self.families),
            "by_category": self.by_category(),
            "recent_refused_note": "category is the outcome; peer_text is what the peer sent (unverified, cut to "
                                   f"{self._limits.stats_peer_text_chars} characters)",
            "recent_refused": [self.refusal_json(r) for r in reversed(self.recent)],
            "ledger": {
                "boot_recovery": self.boot_recovery,
                **self.integrity,
                "findings": list(reversed(self.findings)),
            },
        }


_FINDING_KINDS = ("torn tail", "damaged")


def _families_from_json(value: object, counts: dict[str, dict[str, int]]) -> dict[str, int]:
    """A checkpoint's per-family counts; absent (a checkpoint from before them), every connection it counts
    is `unrecorded`: before IPv6 they were all IPv4 in production, but a kernel-mode run could not say."""
    if value is None:
        families = dict.fromkeys(FAMILIES, 0)
        families[UNRECORDED] = sum(sum(per.values()) for per in counts.values())
        return families
    if not isinstance(value, dict):
        raise TypeError("families is not an object")
    families = {name: int(value.get(name, 0)) for name in FAMILIES}
    if any(n < 0 for n in families.values()):
        raise ValueError("negative family count")
    return families


def _finding_from_json(value: object) -> dict[str, object]:
    """One finding as `add_finding` stores it, checked field by field (the page prints these)."""
    if not isinstance(value, dict):
        raise TypeError("finding is not an object")
    ints = {k: int(value[k]) for k in ("seq", "region", "epoch", "start", "end", "bound")}
    records = value["records"]
    kind, sample = str(value["kind"]), str(value["sample"])
    if kind not in _FINDING_KINDS:
        raise ValueError("finding kind")
    bytes.fromhex(sample)
    return {**ints, "kind": kind, "records": None if records is None else int(records),
            "totals_kept": bool(value["totals_kept"]), "sample": sample}
