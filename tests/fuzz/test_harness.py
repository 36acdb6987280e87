"""The fuzz harness itself: its checks bite (a bug in the code under test becomes a finding, not a pass), its
input format round-trips, and the campaign reads libFuzzer's log right."""

from __future__ import annotations

import pytest

from fuzz import chunks
from fuzz.bounds import timed
from fuzz.campaign import Budget, fuzz_command, merged, parse_log, reproduce_line
from fuzz.errors import PropertyViolationError, SlowInputError
from fuzz.registry import TARGETS, find
from fuzz.target import ROOT
from fuzz.targets import net_stack, tls_server_auth
from fuzz.tls_target import play
from tls.events import HandshakeComplete
from tls.server import ServerConnection


def test_chunks_read_back_what_join_wrote() -> None:
    script = [(0, b""), (5, b"body"), (2, bytes(300))]
    assert list(chunks.split(chunks.join(script), 8)) == script
    assert list(chunks.split(b"\x09\x00\x05ab", 8)) == [(1, b"ab")]  # kinds wrap, short bodies end the input


def _seed(target: str, name: str) -> bytes:
    return (find(target).corpus / name).read_bytes()


def test_a_completed_handshake_is_held_to_the_vaults_check() -> None:
    data = _seed("tls-server-auth", "tls13-client-cert")
    tls_server_auth.fuzz_one(data)  # the real check accepts the seed's client

    def refuse(event: HandshakeComplete) -> None:
        raise PropertyViolationError("refused")

    with pytest.raises(PropertyViolationError, match="refused"):
        play(tls_server_auth.new_engine(), refuse, data)


def test_an_engine_bug_is_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine turns its own exceptions into an internal-error refusal; the harness reports that."""

    def broken(*_: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(ServerConnection, "_choose_version", broken)
    with pytest.raises(PropertyViolationError, match="internal error"):
        tls_server_auth.fuzz_one(_seed("tls-server-auth", "tls13-client-cert"))


def test_a_stack_bug_is_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("netstack.stack.parse_arp", broken)
    with pytest.raises(PropertyViolationError, match="internal error"):
        net_stack.fuzz_one(_seed("net-stack", "arp-request"))


def test_an_input_over_the_time_bound_is_a_finding() -> None:
    with pytest.raises(SlowInputError):
        timed(lambda data: None, bound=-1.0)(b"")


def test_the_campaign_reads_libfuzzers_log() -> None:
    log = ("#2\tINITED cov: 10 ft: 10 corp: 1/1b exec/s: 0 rss: 50Mb\n"
           "#512\tpulse  cov: 12 ft: 14 corp: 2/3b lim: 4 exec/s: 256 rss: 57Mb\n"
           "artifact_prefix='build/fuzz/crashes/http/'; Test unit written to build/fuzz/crashes/http/crash-ab12\n"
           "stat::number_of_executed_units: 1234\nstat::peak_rss_mb:              57\n")
    stats, rss, saved = parse_log(log)
    assert stats == {"number_of_executed_units": 1234, "peak_rss_mb": 57}
    assert rss == [50, 57]
    assert saved == ["build/fuzz/crashes/http/crash-ab12"]
    line = reproduce_line(find("http"), ROOT / "build/fuzz/crashes/http/crash-ab12")
    assert line == ".venv/bin/python -m fuzz replay http build/fuzz/crashes/http/crash-ab12"


def test_a_run_limit_reaches_libfuzzer_only_when_set() -> None:
    target = find("http")
    assert "-max_total_time=60" in fuzz_command(target, Budget(60))
    assert not any(flag.startswith("-runs=") for flag in fuzz_command(target, Budget(60)))
    assert "-runs=1000000" in fuzz_command(target, Budget(60, runs=1_000_000))


def test_a_partial_campaign_replaces_only_its_own_rows_in_registry_order() -> None:
    previous: dict[str, object] = {"seconds_per_target": 300, "jobs": 2,
                "targets": {"tcp": {"executions": 5}, "http": {"executions": 7}, "x509-der": {"executions": 9}}}
    fresh: dict[str, dict[str, object]] = {"tcp": {"executions": 1_000_001, "max_seconds": 2400, "max_runs": 1_000_000}}
    rows = merged(previous, fresh)
    assert rows["tcp"] == fresh["tcp"]
    assert rows["http"] == {"max_seconds": 300, "max_runs": None, "executions": 7}
    names = [target.name for target in TARGETS]
    assert list(rows) == sorted(rows, key=names.index)
    assert merged({}, fresh) == fresh
