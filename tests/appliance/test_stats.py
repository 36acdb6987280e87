from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import replace

import pytest

from appliance.config import ENDPOINTS, Limits
from appliance.ledger_record import CHECKPOINT_MAX_BYTES, PREFIX, Event
from appliance.stats import Stats

LIMITS = replace(Limits(), stats_series_points=16, stats_recent_refused=5, stats_unique_sources_tracked=10)


def _event(i: int, category: str = "expired") -> Event:
    return Event(float(i), "mutual", category, f"10.0.0.{i}", f"r{i}")


def test_series_is_bounded_and_keeps_the_ends() -> None:
    stats = Stats(LIMITS)
    for i in range(1000):
        stats.add(_event(i))
    points = stats.series["mutual"]
    assert len(points) <= 16
    assert points[-1][1] == 1000
    assert points[0][0] <= 60 * 2 ** 6  # the first bucket holds the first connection
    assert all(a[0] < b[0] and a[1] < b[1] for a, b in itertools.pairwise(points))


def test_recent_list_is_bounded_and_excludes_successes() -> None:
    stats = Stats(LIMITS)
    for i in range(20):
        stats.add(_event(i, "success" if i % 2 else "not-tls"))
    assert len(stats.recent) == 5
    assert {r.category for r in stats.recent} == {"not-tls"}
    assert stats.failures_by_category() == {"not-tls": 10}


def test_unique_sources_beyond_the_tracked_cap_are_estimated() -> None:
    stats = Stats(LIMITS)
    for i in range(9):
        stats.add(_event(i))
    stats.add(_event(3))  # a repeat within the tracked set
    assert stats.unique_sources == 9
    assert stats.as_json()["unique_sources_exact"]
    for i in range(9, 25):
        stats.add(_event(i))
    assert 23 <= stats.unique_sources <= 27
    assert not stats.as_json()["unique_sources_exact"]


def test_checkpoint_restores_counts_and_keeps_sources() -> None:
    stats = Stats(LIMITS)
    for i in range(8):
        stats.add(_event(i))
    state = stats.checkpoint()
    restored = Stats(LIMITS)
    restored.restore(state)
    assert restored.counts == stats.counts
    assert restored.series == stats.series
    assert restored.unique_sources == 8
    restored.add(_event(100))
    assert restored.unique_sources == 9
    assert restored.rolled_over


def test_checkpoint_fits_one_record_even_with_wide_reasons() -> None:
    limits = replace(Limits(), stats_series_points=4096, stats_recent_refused=500)
    stats = Stats(limits)
    for i in range(4000):
        stats.add(Event(1.7e9 + i, ENDPOINTS[i % 5], "not-tls", f"198.51.100.{i % 250}", "☃" * 53))
    state = stats.checkpoint()
    assert len(state) <= CHECKPOINT_MAX_BYTES - PREFIX.size
    restored = Stats(limits)
    restored.restore(state)
    assert restored.total() == 4000
    assert restored.series["mutual"][-1][1] == 800  # thinned, but the curve still ends at the total


def test_ledger_findings_are_counted_listed_boundedly_and_survive_a_checkpoint() -> None:
    from appliance.ledger_record import Finding, Record

    stats = Stats(replace(LIMITS, stats_ledger_findings=3))
    for i in range(5):
        stats.replay(Record(0, 10 + i, Finding(1, 0, 100 * i, 100 * i + 40, 2, 2, torn=i == 4, totals_kept=i == 0,
                                               sample=b"\xde\xad")))
    assert stats.integrity == {"damaged": 4, "torn_tails": 1, "records_lost": 8, "records_lost_bound": 8}
    assert [f["seq"] for f in stats.findings] == [12, 13, 14]
    restored = Stats(LIMITS)
    restored.restore(stats.checkpoint())
    assert restored.integrity == stats.integrity
    assert list(restored.findings) == list(stats.findings)
    shown = stats.as_json()["ledger"]
    assert isinstance(shown, dict)
    assert shown["damaged"] == 4
    assert shown["findings"][0]["sample"] == "dead"


def test_a_format_1_checkpoint_without_integrity_fields_restores() -> None:
    stats = Stats(LIMITS)
    stats.restore(b'{"counts":{},"series":{},"recent":[],"sources_before":0,"rolled_over":false}')
    assert stats.integrity["damaged"] == 0
    assert not stats.findings


# What the code before issue 15 wrote (format 2): cumulative points, and the distinct sources as a bare count.
FORMAT_2 = (
    b'{"counts":{"http":{"served":1},"https":{},"mutual":{"success":3,"expired":3},"callback":{},"reverse":{}},'
    b'"series":{"http":[[1800000500.0,1]],"https":[],"mutual":[[1800000000.0,1],[1800000120.0,3],'
    b'[1800000240.0,5],[1800000300.0,6]],"callback":[],"reverse":[]},"recent":[[1800000060.0,"mutual","expired",'
    b'"peer leaf: x"],[1800000180.0,"mutual","expired","peer leaf: x"],[1800000300.0,"mutual","expired",'
    b'"peer leaf: x"]],"sources_before":4,"rolled_over":true,"findings":[],"integrity":{"damaged":0,"torn_tails":0,'
    b'"records_lost":0,"records_lost_bound":0},"findings_seq":-1}'
)


def test_a_format_2_checkpoint_keeps_its_totals_and_carries_its_source_count() -> None:
    """An upgrade must not lose the totals. The old count cannot say which sources it counted, so it is a
    floor that later sources raise, never a base they are added to (that was the inflation)."""
    stats = Stats(LIMITS)
    stats.restore(FORMAT_2)
    assert stats.total() == 7
    assert stats.counts["mutual"] == {"success": 3, "expired": 3}
    assert stats.series["mutual"][-1][1] == 6
    assert [t for t, _ in stats.series["mutual"]] == [1800000060.0, 1800000180.0, 1800000300.0, 1800000360.0]
    assert len(stats.recent) == 3
    assert stats.unique_sources == 4
    data = stats.as_json()
    assert data["unique_sources_exact"] is False
    assert data["unique_sources_carried"] == 4
    for rollover in range(3):
        stats.add(Event(1800000400.0 + rollover, "mutual", "expired", "198.51.100.1", "r"))
        again = Stats(LIMITS)
        again.restore(stats.checkpoint())
        stats = again
    assert stats.unique_sources == 4
    assert stats.total() == 10
    for i in range(6):
        stats.add(_event(i))
    assert stats.unique_sources == 7  # six new, one seen: more than the old floor


def test_a_new_checkpoint_still_carries_what_the_older_code_requires() -> None:
    """A downgrade reads `sources_before` and `series`: it keeps the totals, though not the chart."""
    stats = Stats(LIMITS)
    for i in range(5):
        stats.add(_event(i))
    data = json.loads(stats.checkpoint())
    assert data["sources_before"] == 5
    assert data["series"] == {}
    assert data["rolled_over"] is True


KEY = b"00" * 16


@pytest.mark.parametrize("sources", [
    b'"x"', b'{"exact":null,"sketch":"!!","known":0,"carried":0,"key":"' + KEY + b'"}',
    b'{"exact":"AAAA","sketch":"","known":0,"carried":0,"key":"' + KEY + b'"}',
    b'{"exact":null,"sketch":"","known":0,"carried":-1,"key":"' + KEY + b'"}',
    b'{"exact":null,"sketch":"","known":-1,"carried":0,"key":"' + KEY + b'"}',
    b'{"exact":null,"sketch":"","carried":0,"key":"' + KEY + b'"}',
    b'{"exact":null,"sketch":"","known":0,"carried":0,"key":"00"}',
    b'{"exact":null,"sketch":"","known":0,"carried":0}',
])
def test_a_malformed_sources_state_is_a_record_error(sources: bytes) -> None:
    from appliance.ledger_record import RecordError

    stats = Stats(LIMITS)
    state = json.dumps({**json.loads(stats.checkpoint()), "sources": json.loads(sources)}).encode()
    with pytest.raises(RecordError):
        stats.restore(state)
    assert stats.unique_sources == 0


def test_a_checkpoint_with_every_source_bound_at_its_largest_fits_one_record() -> None:
    """Default limits: the exact set (2048 sources), the sketch, full buckets and wide reasons together."""
    limits = Limits()
    stats = Stats(limits)
    for i in range(limits.stats_unique_sources_tracked):
        stats.add(Event(1.7e9 + i * 97.0, ENDPOINTS[i % 5], "not-tls", f"2001:db8:{i:x}::1", "☃" * 160))
    state = stats.checkpoint()
    assert len(state) <= CHECKPOINT_MAX_BYTES - PREFIX.size
    restored = Stats(limits)
    restored.restore(state)
    assert restored.unique_sources == limits.stats_unique_sources_tracked
    assert restored.as_json()["unique_sources_exact"] is True
    assert restored.total() == limits.stats_unique_sources_tracked


def test_a_checkpoint_fits_even_with_source_limits_raised_far_beyond_it() -> None:
    limits = replace(Limits(), stats_unique_sources_tracked=100_000, stats_sources_sketch_registers=1 << 20)
    stats = Stats(limits)
    for i in range(6000):
        stats.add(Event(1.7e9 + i, "mutual", "not-tls", f"2001:db8:{i:x}::1", "☃" * 160))
    state = stats.checkpoint()
    assert len(state) <= CHECKPOINT_MAX_BYTES - PREFIX.size
    restored = Stats(limits)
    restored.restore(state)
    assert 5500 <= restored.unique_sources <= 6500
    assert restored.total() == 6000


@pytest.mark.parametrize("buckets", [
    b'{"width":1e400,"origin":0,"counts":{}}', b'{"width":60,"origin":1e400,"counts":{"http":[1]}}',
    b'{"width":60,"origin":0,"counts":{"http":[-1]}}', b'{"width":0,"origin":0,"counts":{}}', b'[]',
])
def test_a_malformed_bucket_state_is_a_record_error(buckets: bytes) -> None:
    from appliance.ledger_record import RecordError

    stats = Stats(LIMITS)
    state = json.dumps({**json.loads(stats.checkpoint()), "buckets": json.loads(buckets)}).encode()
    with pytest.raises(RecordError):
        stats.restore(state)


def _unkeyed_rank(source: str, bits: int) -> tuple[int, int]:
    h = int.from_bytes(hashlib.blake2b(source.encode(), digest_size=8).digest(), "big")
    tail = h & ((1 << (64 - bits)) - 1)
    return h >> (64 - bits), 64 - bits - tail.bit_length() + 1


def test_addresses_chosen_against_a_public_hash_do_not_inflate_the_estimate() -> None:
    """A peer free to pick addresses (an IPv6 prefix) picks, for each register, one whose public hash
    ranks high: 16 such sources would show as ~44000. The keyed sketch sees 16 sources."""
    limits = replace(LIMITS, stats_sources_sketch_registers=16, stats_unique_sources_tracked=4)
    chosen: dict[int, str] = {}
    for i in itertools.count():
        source = f"2001:db8::{i:x}"
        index, rank = _unkeyed_rank(source, 4)
        if rank >= 12 and index not in chosen:
            chosen[index] = source
            if len(chosen) == 16:
                break
    stats = Stats(limits)
    for source in chosen.values():
        stats.add(Event(1.0, "http", "served", source, ""))
    assert stats.unique_sources < 40
