from __future__ import annotations

import datetime
import json
import os
import re
from dataclasses import replace

import pytest

from appliance import pki
from appliance.config import Limits, Ports
from appliance.http import Request
from appliance.ledger_record import Event
from appliance.stats import Stats
from appliance.vault import Vault
from appliance.web import Site
from tests.appliance.bip137_reference import verify_message

NOW = 1_800_000_000.0
BOOT = pki.generate(datetime.datetime.now(datetime.UTC), os.urandom)


def _site(limits: Limits | None = None, manifest: bytes | None = b"manifest body\n") -> Site:
    limits = limits or Limits()
    stats = Stats(limits)
    stats.add(Event(NOW, "mutual", "not-tls", "198.51.100.7", "<script>alert(1)</script>"))
    stats.add(Event(NOW + 5, "http", "served", "198.51.100.8", "1 requests"))
    prover = Vault(os.urandom(32), lambda *a: None).prover()
    return Site(prover, BOOT.ca_pem, stats, manifest, Ports().shifted(5), limits, "t")


def _get(site: Site, target: str, method: str = "GET", now: float = NOW) -> tuple[int, bytes]:
    response = site.handle(Request(method, target, "HTTP/1.1", (("host", "x"),), True), now)
    return response.status, response.body


def test_index_has_addresses_ports_and_ca() -> None:
    site = _site()
    status, body = _get(site, "/")
    assert status == 200
    assert site.prover.address_p2wpkh.encode() in body
    assert site.prover.address_p2pkh.encode() in body
    assert BOOT.ca_pem in body
    assert b"10005" in body
    assert b"40006" in body
    assert not re.search(rb"(src|href)=\"https?://", body)  # no external resources


def test_stats_page_escapes_reasons_and_draws_svg() -> None:
    status, body = _get(_site(), "/stats")
    assert status == 200
    assert b"<script>" not in body
    assert b"&lt;script&gt;" in body
    assert body.count(b"<svg") == 2
    headings = re.findall(rb"<h2>([^<]*)</h2>", body)
    assert headings == [b"Connections over time, per endpoint (cumulative)", b"Refused connections by category",
                        b"Recent refused attempts", b"Ledger integrity"]
    assert b'http-equiv="refresh"' in body
    assert b"<polyline" in body


def test_ledger_damage_reaches_stats_json_and_the_page() -> None:
    from appliance.ledger_record import Finding, Record

    site = _site()
    site.stats.boot_recovery = {"outcome": "damaged", "records": 41, "lost": 1, "lost_bound": 1}
    site.stats.replay(Record(2, 77, Finding(1, 2, 4104, 4150, 1, 1, torn=False, totals_kept=False, sample=b"<b>")))
    _, raw = _get(site, "/stats.json")
    ledger = json.loads(raw)["ledger"]
    assert ledger["boot_recovery"]["outcome"] == "damaged"
    assert (ledger["damaged"], ledger["records_lost"]) == (1, 1)
    assert ledger["findings"][0]["start"] == 4104
    _, page = _get(site, "/stats")
    assert b"At this boot the ledger was <b>damaged</b>" in page
    assert b"<td>77</td><td>damaged</td><td>1</td><td>4104..4150</td><td>1</td><td>yes</td>" in page


def test_network_counters_reach_stats_json_and_the_page() -> None:
    site = _site()
    counters = {"bad-checksum": 3, "tcp-syn-fin": 1, "tcp-connections": 0, "<b>": 2}
    site.network_counters = lambda: dict(counters)
    status, body = _get(site, "/stats.json")
    assert status == 200
    assert json.loads(body)["network"] == counters
    _, page = _get(site, "/stats")
    assert b"<h2>Network stack counters since boot</h2>" in page
    assert b"<tr><td>bad-checksum</td><td>3</td></tr>" in page
    assert b"tcp-connections" not in page  # zero counters are left off the page
    assert b"<td>&lt;b&gt;</td>" in page
    counters["bad-checksum"] = 4  # read at each request, not captured once
    assert json.loads(_get(site, "/stats.json")[1])["network"]["bad-checksum"] == 4


def test_kernel_mode_has_no_network_counters() -> None:
    status, body = _get(_site(), "/stats.json")
    assert status == 200
    assert json.loads(body)["network"] == {}
    assert b"Network stack counters" not in _get(_site(), "/stats")[1]


def test_stats_json() -> None:
    status, body = _get(_site(), "/stats.json")
    data = json.loads(body)
    assert status == 200
    assert data["connections"] == 2
    assert data["unique_sources"] == 2
    assert data["by_category"] == {"not-tls": 1, "served": 1}
    assert [r["category"] for r in data["recent_refused"]] == ["not-tls"]


def test_ca_and_manifest() -> None:
    assert _get(_site(), "/ca.pem") == (200, BOOT.ca_pem)
    assert _get(_site(), "/manifest.txt") == (200, b"manifest body\n")
    assert _get(_site(manifest=None), "/manifest.txt")[0] == 404


def test_404_and_405() -> None:
    assert _get(_site(), "/secret")[0] == 404
    response = _site().handle(Request("POST", "/", "HTTP/1.1", (), True), NOW)
    assert response.status == 405
    assert ("Allow", "GET, HEAD") in response.extra_headers


@pytest.mark.parametrize(
    ("query", "challenge"),
    [("hello%20world", "hello world"),
     ("hello" + "x" * (Limits().http_max_challenge - 5), "hello" + "x" * (Limits().http_max_challenge - 5))],
    ids=["short", "longest-allowed"],
)
def test_proof_endpoint_verifies_and_binds_the_challenge(query: str, challenge: str) -> None:
    site = _site()
    status, body = _get(site, f"/proof?challenge={query}")
    proof = json.loads(body)
    assert status == 200
    assert f"challenge: {challenge}" in proof["message"]
    assert verify_message(proof["address"], proof["message"], proof["signature"])
    assert verify_message(proof["address_legacy"], proof["message"], proof["signature_legacy"])
    assert not verify_message(proof["address"], proof["message"].replace("hello", "jello"), proof["signature"])


@pytest.mark.parametrize(
    "target", ["/proof", "/proof?challenge=", "/proof?challenge=a&challenge=b", "/proof?challenge=%0a",
               "/proof?challenge=" + "x" * 300, "/proof?challenge=" + "x" * (Limits().http_max_challenge + 1)],
)
def test_proof_refuses_bad_challenges(target: str) -> None:
    assert _get(_site(), target)[0] == 400


def test_proof_is_rate_limited() -> None:
    site = _site(replace(Limits(), proof_rate_per_second=3.0))
    statuses = [_get(site, "/proof?challenge=a", now=NOW)[0] for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    assert _get(site, "/proof?challenge=a", now=NOW + 1)[0] == 200


def test_proof_buckets_are_per_source_within_the_shared_limit_and_bounded() -> None:
    site = _site(replace(Limits(), proof_rate_per_second=5.0, proof_rate_per_source=2.0, proof_sources_tracked=2))

    def proof(source: str) -> int:
        return site.handle(Request("GET", "/proof?challenge=a", "HTTP/1.1", (("host", "x"),), True), NOW,
                           source=source).status

    assert [proof("a") for _ in range(4)] == [200, 200, 429, 429]  # a's own bucket, not everyone's
    assert [proof("b") for _ in range(2)] == [200, 200]
    assert [proof("c"), proof("d")] == [200, 429]  # the shared bucket (5) bounds them all together
    assert len(site._proof_buckets) == 2  # the least recently used sources were forgotten
