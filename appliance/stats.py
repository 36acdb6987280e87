"""Statistics: a pure function of the ledger (rebuilt from it at boot), served on the web pages.

Every structure is bounded (config.Limits): the cumulative series is halved when it reaches its point
budget, the recent list is a fixed-size deque, and distinct sources are remembered exactly up to a cap
and only counted beyond it. At a ledger rollover the distinct-source set is folded into a plain count
(the checkpoint cannot hold every address), so a source seen both before and after a rollover is counted
twice; the page says "at least" for that reason only when a rollover happened.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass

from appliance.config import ENDPOINTS, Limits
from appliance.ledger_record import CHECKPOINT_MAX_BYTES, PREFIX, Checkpoint, Event, Finding, Record, RecordError

SUCCESS = "success"
NOT_REFUSED = frozenset({SUCCESS, "served"})  # outcomes that are not an attack that failed


@dataclass(frozen=True)
class Refusal:
    time: float
    endpoint: str
    category: str
    reason: str


class Stats:
    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self.counts: dict[str, dict[str, int]] = {e: {} for e in ENDPOINTS}
        self.series: dict[str, list[tuple[float, int]]] = {e: [] for e in ENDPOINTS}
        self.recent: deque[Refusal] = deque(maxlen=limits.stats_recent_refused)
        self._sources: set[str] = set()
        self.sources_before = 0  # distinct sources folded into a count at a rollover
        self.sources_untracked = 0  # arrivals after the exact set reached its cap
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
        self._add_point(event.endpoint, event.time)
        if event.category not in NOT_REFUSED:
            self.recent.append(Refusal(event.time, event.endpoint, event.category, event.reason))
        if event.source not in self._sources:
            if len(self._sources) < self._limits.stats_unique_sources_tracked:
                self._sources.add(event.source)
            else:
                self.sources_untracked += 1

    def _add_point(self, endpoint: str, time: float) -> None:
        points = self.series[endpoint]
        total = points[-1][1] + 1 if points else 1
        points.append((time, total))
        if len(points) > self._limits.stats_series_points:
            # Keep the first and the last point and every other one between: the curve keeps its shape.
            self.series[endpoint] = points[::2] + ([points[-1]] if len(points) % 2 == 0 else [])

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
        """The state a rollover writes; also folds the exact source set into a count (see module doc).
        Thinned (series halved, oldest refusals dropped) until it fits one checkpoint record."""
        self.sources_before = self.unique_sources
        self._sources.clear()
        self.sources_untracked = 0
        self.rolled_over = True
        state = self._encode()
        while len(state) > CHECKPOINT_MAX_BYTES - PREFIX.size and (self.recent or any(self.series.values())):
            for endpoint, points in self.series.items():
                self.series[endpoint] = points[::2] + ([points[-1]] if len(points) % 2 == 0 else [])
            for _ in range((len(self.recent) + 1) // 2):
                self.recent.popleft()
            state = self._encode()
        return state

    def initial(self) -> bytes:
        return self._encode()

    def _encode(self) -> bytes:
        state = {
            "counts": self.counts,
            "series": {e: [[round(t, 3), n] for t, n in pts] for e, pts in self.series.items()},
            "recent": [[r.time, r.endpoint, r.category, r.reason] for r in self.recent],
            "sources_before": self.sources_before,
            "rolled_over": self.rolled_over,
            "findings": list(self.findings),
            "integrity": self.integrity,
            "findings_seq": self.findings_seq,
        }
        return json.dumps(state, separators=(",", ":"), ensure_ascii=False).encode()

    def restore(self, state: bytes) -> None:
        """Take a checkpoint's state. Its checksum held, but it is still input: anything that is not the
        shape `_encode` writes raises RecordError and leaves this object as it was."""
        try:
            data = json.loads(state)
            counts = {e: {str(k): int(v) for k, v in data["counts"].get(e, {}).items()} for e in ENDPOINTS}
            series = {e: [(float(t), int(n)) for t, n in data["series"].get(e, [])] for e in ENDPOINTS}
            recent = [Refusal(float(t), str(endpoint), str(category), str(reason))
                      for t, endpoint, category, reason in data["recent"]]
            sources_before = int(data["sources_before"])
            rolled_over = bool(data["rolled_over"])
            findings = [_finding_from_json(f) for f in data.get("findings", [])]  # absent in format 1
            integrity = {k: int(data.get("integrity", {}).get(k, 0)) for k in self.integrity}
            findings_seq = int(data.get("findings_seq", -1))
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise RecordError(f"checkpoint state: {type(exc).__name__}") from exc
        self.counts, self.series, self.sources_before, self.rolled_over = counts, series, sources_before, rolled_over
        self.recent.clear()
        self.recent.extend(recent)
        self.findings.clear()
        self.findings.extend(findings)
        self.integrity, self.findings_seq = integrity, findings_seq
        self._sources.clear()
        self.sources_untracked = 0

    # -- views -----------------------------------------------------------------------------------------

    @property
    def unique_sources(self) -> int:
        return self.sources_before + len(self._sources) + self.sources_untracked

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

    def as_json(self) -> dict[str, object]:
        return {
            "connections": self.total(),
            "successes": self.by_category().get(SUCCESS, 0),
            "unique_sources": self.unique_sources,
            "unique_sources_exact": not self.rolled_over and self.sources_untracked == 0,
            "by_endpoint": {e: dict(sorted(c.items())) for e, c in self.counts.items()},
            "by_category": self.by_category(),
            "recent_refused": [
                {"time": r.time, "endpoint": r.endpoint, "category": r.category, "reason": r.reason}
                for r in reversed(self.recent)
            ],
            "ledger": {
                "boot_recovery": self.boot_recovery,
                **self.integrity,
                "findings": list(reversed(self.findings)),
            },
        }


_FINDING_KINDS = ("torn tail", "damaged")


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
