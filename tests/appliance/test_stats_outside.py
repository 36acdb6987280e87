"""Issue 15, "Statistics and page": what outside attackers saw wrong on the statistics page, one test per finding.

Each test drives the statistics through the paths the appliance uses (the ledger's rollovers, the rendered
page, /stats.json), so it holds whatever the internal representation is.
"""

from __future__ import annotations

import datetime
import itertools
import json
import os
import re
from dataclasses import replace
from pathlib import Path

from appliance import ledger_record as rec
from appliance import pki, svg
from appliance.config import DISK_HEADER_BYTES, Limits, Ports
from appliance.disk import Disk
from appliance.http import Request
from appliance.ledger import Ledger, LedgerArea, min_region_bytes
from appliance.stats import Stats
from appliance.vault import Vault
from appliance.web import Site

T0 = 1_800_000_000.0
SMALLEST_REGION = -(-min_region_bytes(Limits()) // 4096) * 4096
LEDGER_LIMITS = replace(Limits(), ledger_batch_records=4, ledger_region_bytes=SMALLEST_REGION)
BOOT = pki.generate(datetime.datetime.now(datetime.UTC), os.urandom)


def _boot(disk: Disk, limits: Limits, *, started: bool) -> tuple[Ledger, Stats]:
    """Recover and commit as the appliance does (appliance.data_disk)."""
    ledger = Ledger(LedgerArea(disk, limits.ledger_region_bytes), limits)
    stats = Stats(limits)
    ledger.open(stats.initial, stats.replay, stats.checkpoint, started=started)
    return ledger, stats


def _append(ledger: Ledger, stats: Stats, event: rec.Event) -> None:
    ledger.append(event, stats.checkpoint)  # as Appliance.record: the ledger before the statistics
    stats.add(event)


def _site(stats: Stats, limits: Limits) -> Site:
    prover = Vault(os.urandom(32), lambda *a: None).prover()
    return Site(prover, BOOT.ca_pem, stats, None, Ports().shifted(5), limits, "t")


def _get(site: Site, target: str) -> bytes:
    response = site.handle(Request("GET", target, "HTTP/1.1", (("host", "x"),), True), T0)
    assert response.status == 200
    return response.body


# -- unique_sources grows by one per active source at every ledger rollover -------------------------------


def test_unique_sources_does_not_grow_per_active_source_at_every_ledger_rollover(tmp_path: Path) -> None:
    """One source attacking through several rollovers is one source: live, after a reboot, and labelled."""
    disk = Disk(tmp_path / "d")
    disk.extend(DISK_HEADER_BYTES + 2 * LEDGER_LIMITS.ledger_region_bytes)
    ledger, stats = _boot(disk, LEDGER_LIMITS, started=False)
    for i in range(4000):  # ~40 bytes each: several rollovers of the smallest region
        _append(ledger, stats, rec.Event(T0 + i, "mutual", "expired", "203.0.113.9", f"r{i}"))
    assert ledger.rollovers >= 3
    assert stats.unique_sources == 1
    ledger.mark_stopped(stats.checkpoint)
    disk.close()
    _, rebooted = _boot(Disk(tmp_path / "d"), LEDGER_LIMITS, started=True)
    assert rebooted.unique_sources == 1
    data = rebooted.as_json()
    assert data["unique_sources"] == 1
    assert data["unique_sources_exact"] is True
    tracked = LEDGER_LIMITS.stats_unique_sources_tracked
    assert data["unique_sources_label"] == f"distinct sources (exact up to {tracked}, estimated beyond)"
    page = _get(_site(rebooted, LEDGER_LIMITS), "/stats")
    assert b"from 1 distinct sources (exact up to" in page


def test_unique_sources_beyond_the_exact_cap_stay_stable_across_rollovers() -> None:
    """Beyond the exact cap the figure is an estimate, but the same sources again never move it."""
    limits = replace(Limits(), stats_unique_sources_tracked=10)
    stats = Stats(limits)
    sources = [f"2001:db8::{i:x}" for i in range(300)]
    for s in sources:
        stats.add(rec.Event(T0, "http", "served", s, "1 requests"))
    first = stats.unique_sources
    assert 270 <= first <= 330  # a sketch: within a few standard errors of 300
    assert stats.as_json()["unique_sources_exact"] is False
    for rollover in range(5):
        restored = Stats(limits)
        restored.restore(stats.checkpoint())
        for s in sources[rollover::7]:
            restored.add(rec.Event(T0 + rollover, "http", "served", s, "1 requests"))
            stats.add(rec.Event(T0 + rollover, "http", "served", s, "1 requests"))
        assert restored.unique_sources == stats.unique_sources == first


# -- the cumulative chart halves its point density, drawing ramps across quiet minutes --------------------


def _segments(chart: str) -> list[tuple[float, float, float, float]]:
    """Every drawn segment of every polyline, in SVG coordinates."""
    out = []
    for points in re.findall(r'<polyline [^>]*points="([^"]*)"', chart):
        xy = [tuple(map(float, p.split(","))) for p in points.split()]
        out += [(x1, y1, x2, y2) for (x1, y1), (x2, y2) in itertools.pairwise(xy)]
    return out


def test_cumulative_chart_draws_bursts_as_bursts_and_quiet_minutes_flat() -> None:
    """200 connections over 200 s, an hour of nothing, then a burst of 20000 in a minute: the curve is flat
    across the quiet hour and rises only where the connections happened."""
    limits = replace(Limits(), stats_series_points=16)
    stats = Stats(limits)
    for i in range(200):
        stats.add(rec.Event(T0 + i, "mutual", "expired", "203.0.113.9", "r"))
    for i in range(20_000):
        stats.add(rec.Event(T0 + 3800 + i * 0.003, "mutual", "expired", "203.0.113.9", "r"))
    page = _get(_site(stats, limits), "/stats").decode()
    chart = page[page.index("<svg"):page.index("</svg>")]
    plot_w = svg.WIDTH - 2 * svg.MARGIN
    segments = _segments(chart)
    assert segments
    long_rising = [s for s in segments if s[2] - s[0] > 0.2 * plot_w and s[3] != s[1]]
    assert long_rising == []  # no ramp drawn across minutes in which nothing happened
    rise = sum(y1 - y2 for _, y1, _, y2 in segments)
    burst = sum(y1 - y2 for x1, y1, x2, y2 in segments if x1 > svg.MARGIN + 0.5 * plot_w)
    assert burst > 0.95 * rise  # the burst is drawn at its time, not spread over the hour before it


def test_chart_buckets_stay_bounded_and_keep_every_connection() -> None:
    limits = replace(Limits(), stats_series_points=16)
    stats = Stats(limits)
    for i in range(5000):
        stats.add(rec.Event(T0 + i * 37.0, "mutual", "expired", "203.0.113.9", "r"))
    points = stats.series["mutual"]
    assert len(points) <= 16
    assert points[-1][1] == 5000
    restored = Stats(limits)
    restored.restore(stats.checkpoint())
    assert restored.series == stats.series


# -- attacker-controlled text in the recent refusals table ------------------------------------------------

BAIT = "SUCCESS - key sent to winner; see https://example.invalid/claim?" + "x" * 80
BAIT_REASON = f"peer certificate: no trusted issuer found for issuer CN={BAIT!r}"


def test_attacker_controlled_text_in_refusals_is_marked_shortened_and_not_authoritative() -> None:
    limits = Limits()
    stats = Stats(limits)
    stats.add(rec.Event(T0, "mutual", "untrusted-chain", "203.0.113.9", BAIT_REASON[: limits.ledger_reason_bytes]))
    page = _get(_site(stats, limits), "/stats").decode()
    row = re.search(r"<tr><td>[^<]*</td><td>mutual</td>(.*?)</tr>", page)
    assert row is not None
    cells = row.group(1)
    assert "<td><b>untrusted-chain</b></td>" in cells  # the category is the outcome
    peer = re.search(r'<span class="peer" title="sent by the peer, unverified">peer sent: <q>([^<]*)</q></span>', cells)
    assert peer is not None, cells
    assert peer.group(1).startswith("SUCCESS - key sent to winner")
    assert len(peer.group(1)) <= limits.stats_peer_text_chars
    assert peer.group(1).endswith("…")
    assert BAIT[: limits.stats_peer_text_chars] not in page  # shortened everywhere on the page
    assert "no trusted issuer found for issuer CN=" in cells  # the appliance's own words stay plain

    recent = json.loads(_get(_site(stats, limits), "/stats.json"))["recent_refused"]
    assert recent[0]["category"] == "untrusted-chain"
    assert "SUCCESS" not in recent[0]["reason"]
    assert recent[0]["reason"].startswith("peer certificate: no trusted issuer found for issuer CN=")
    assert [t.startswith("SUCCESS - key sent to winner") for t in recent[0]["peer_text"]] == [True]
    assert all(len(t) <= limits.stats_peer_text_chars for t in recent[0]["peer_text"])


def test_peer_text_is_still_escaped_and_bytes_literals_count_as_peer_text() -> None:
    limits = Limits()
    stats = Stats(limits)
    stats.add(rec.Event(T0, "mutual", "not-tls", "203.0.113.9", "not TLS: first bytes b'<script>'"))
    stats.add(rec.Event(T0, "mutual", "untrusted-chain", "203.0.113.9",
                        "the certificate's issuer is not the CA: issuer CN=\"it's <b>\""))
    page = _get(_site(stats, limits), "/stats").decode()
    assert "<script>" not in page
    assert "<b>\"" not in page
    assert "peer sent: <q>&lt;script&gt;</q>" in page
    assert "peer sent: <q>it&#x27;s &lt;b&gt;</q>" in page
    assert "the certificate&#x27;s issuer is not the CA" in page  # an apostrophe in our words is not a quote
    recent = stats.as_json()["recent_refused"]
    assert isinstance(recent, list)
    assert [r["peer_text"] for r in recent] == [["it's <b>"], ["<script>"]]
