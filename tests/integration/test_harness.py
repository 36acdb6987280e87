"""The suite's own machinery, without a VM: the test-image overlay, the secret guard and the soak verdict."""

from __future__ import annotations

import stat
from dataclasses import replace
from pathlib import Path

import pytest

from image import cpio
from tests.integration import testimage
from tests.integration.lab import SECRET_FORMS, SecretLeakedError, assert_no_secret
from tests.integration.soak import (
    BATCH_RECORDS,
    SMALLEST_EVENT_RECORD,
    Kill,
    LedgerFigures,
    Sample,
    kill_times,
    memory_trend,
    minimum_rollovers,
    report,
    summary,
    verdict,
)


def test_overlay_is_one_executable_init_that_compiles() -> None:
    entries = cpio.parse(testimage.overlay(("idle_timeout=3",)))
    assert [e.path for e in entries] == ["init"]
    init = entries[0]
    assert stat.S_ISREG(init.mode)
    assert init.mode & 0o111
    first, _, body = init.data.partition(b"\n")
    assert first.startswith(b"#!/usr/bin/python3")
    compile(body, "init", "exec")
    assert b"'--limit', 'idle_timeout=3'" in body
    assert b"--test-pki" in body


def test_test_initramfs_keeps_every_production_byte(tmp_path: Path) -> None:
    production = tmp_path / "production.cpio"
    production.write_bytes(cpio.serialize([cpio.regular("init", b"#!/bin/true\n", 0o755)]) + b"\0\0")
    written = testimage.write_test_initramfs(production, tmp_path / "test.cpio", ())
    data = written.read_bytes()
    assert data.startswith(production.read_bytes())
    assert len(production.read_bytes()) % 4 == 2  # the overlay still starts 4-byte aligned
    assert data[len(data) - len(testimage.overlay(())) :] == testimage.overlay(())
    assert (len(data) - len(testimage.overlay(()))) % 4 == 0


@pytest.mark.parametrize("form", SECRET_FORMS)
def test_the_secret_guard_catches_every_form(form: bytes) -> None:
    assert_no_secret(b"nothing to see", "a clean answer")
    with pytest.raises(SecretLeakedError):
        assert_no_secret(b"\x17\x03\x03" + form + b"\n", "a leaky answer")


REGION = 16 * 1024


def _ledger(appended: int = 100, epoch: int = 0, **changes: int) -> LedgerFigures:
    figures = {"region": epoch % 2, "epoch": epoch, "records": 10, "bytes": 500, "region_bytes": REGION,
               "appended": appended, "past_bound": 0, **changes}
    return LedgerFigures(**figures)


def _run(rss: list[int], ledgers: list[LedgerFigures] | None = None, per_sample: int = 100) -> list[Sample]:
    """One sample per RSS figure, `per_sample` connections apart."""
    ledgers = ledgers or [_ledger(appended=10 * i) for i in range(len(rss))]
    pairs = enumerate(zip(rss, ledgers, strict=True))
    return [Sample(5.0 * i, r, per_sample * (i + 1), ledger) for i, (r, ledger) in pairs]


NOISY_FLAT = [30_000 + (150 if i % 2 else -150) for i in range(20)]


def test_soak_verdict_passes_a_bounded_run_with_warm_up_and_noise() -> None:
    warm_up = [20_000 + 1000 * i for i in range(10)]
    assert verdict(_run(warm_up + NOISY_FLAT[:10]), REGION) == []
    assert verdict(_run(NOISY_FLAT), REGION) == []


def test_soak_verdict_catches_a_slow_leak_that_a_peak_comparison_misses() -> None:
    """0.4 KiB per connection on 30 MiB: the second half's peak is 1.3% over the first's, and the last
    samples only 400 KiB over the half's start; the slope is what shows it."""
    leak = [30_000 + int(0.4 * 100 * i) for i in range(20)]
    assert max(leak[10:]) < 1.1 * max(leak[:10])
    problems = verdict(_run(leak), REGION)
    assert len(problems) == 1
    assert "memory trends up" in problems[0]


def test_soak_verdict_catches_growth_late_in_the_run() -> None:
    step = NOISY_FLAT[:17] + [33_000] * 3
    assert any("memory grew" in p for p in verdict(_run(step), REGION))


def test_soak_report_shows_the_anonymous_part_apart() -> None:
    """RSS flat, its anonymous part (the heap) rising while file pages are dropped: the report shows the
    heap's slope on its own line, from the anonymous figures, not from RSS."""
    rss = NOISY_FLAT
    anon = [12_000 + 40 * i for i in range(20)]
    samples = [replace(s, anon_kib=a) for s, a in zip(_run(rss), anon, strict=True)]
    figures = report(samples, verdict(samples, REGION), target="vm", seconds=100, provisioned_region_bytes=REGION,
                     rounds=1, secrets_received=0)
    trend = memory_trend(samples, anonymous=True)
    assert trend is not None
    assert trend.slope_kib_per_1000_connections == pytest.approx(400.0)
    anonymous = figures["anonymous_memory_kib"]
    assert isinstance(anonymous, dict)
    assert (anonymous["first"], anonymous["last"]) == (12_000, 12_760)
    lines = summary(figures)
    assert any(line.startswith("anonymous memory (RssAnon)") and "400.0 KiB per 1000" in line for line in lines)
    assert lines[-1] == "BOUNDED"  # shown, not judged: the verdict is RSS's


def test_soak_verdict_needs_memory_samples() -> None:
    rss: list[int | None] = [None] * 20
    samples = [Sample(5.0 * i, r, 100 * (i + 1), _ledger(appended=i)) for i, r in enumerate(rss)]
    assert any("too few memory samples" in p for p in verdict(samples, REGION))


def test_soak_verdict_holds_the_ledger_to_its_provisioned_bound() -> None:
    ledgers = [_ledger(appended=i) for i in range(20)]
    assert verdict(_run(NOISY_FLAT, ledgers), REGION) == []
    mismatch = verdict(_run(NOISY_FLAT, ledgers), 4096)
    assert any("16384-byte ledger regions, 4096 were provisioned" in p for p in mismatch)
    spilled = [*ledgers[:-1], _ledger(appended=19, past_bound=12)]
    assert any("12 bytes were written past" in p for p in verdict(_run(NOISY_FLAT, spilled), REGION))
    reset = [*ledgers[:-1], _ledger(appended=3)]
    assert any("lost history" in p for p in verdict(_run(NOISY_FLAT, reset), REGION))


def test_soak_verdict_requires_the_rollovers_the_appended_records_imply() -> None:
    many = 3 * (REGION // SMALLEST_EVENT_RECORD + 1)
    assert minimum_rollovers(0, REGION) == 0
    assert minimum_rollovers(REGION // SMALLEST_EVENT_RECORD, REGION) == 0
    assert minimum_rollovers(many, REGION) == 2
    stuck = [_ledger(appended=many * i // 19) for i in range(20)]
    assert any("at least 2 times, but its epoch is 0" in p for p in verdict(_run(NOISY_FLAT, stuck), REGION))
    rolled = [_ledger(appended=many * i // 19, epoch=2 * i // 19) for i in range(20)]
    assert verdict(_run(NOISY_FLAT, rolled), REGION) == []


def test_soak_verdict_needs_traffic() -> None:
    assert verdict(_run(NOISY_FLAT, per_sample=0), REGION) == ["no traffic was recorded"]


def _kill(recorded: int = 500, recovered: int = 480, outcome: str = "torn tail", lost: int = 0,
          lost_bound: int = BATCH_RECORDS) -> Kill:
    return Kill(elapsed=30.0, burst=20, in_flight=3, recorded=recorded, recovered=recovered, outcome=outcome, lost=lost,
                lost_bound=lost_bound, findings=1, reboot_seconds=3.0)


def test_soak_kill_cycles_pass_a_torn_tail_within_a_batch_and_its_bound() -> None:
    kills = [_kill(), _kill(recovered=500, outcome="clean", lost_bound=0), _kill(recovered=500 - BATCH_RECORDS)]
    assert verdict(_run(NOISY_FLAT), REGION, kills) == []


@pytest.mark.parametrize(("kill", "problem"), [
    (_kill(outcome="damaged"), "reported 'damaged'"),
    (_kill(recovered=500 - BATCH_RECORDS - 1, lost_bound=1000), "more than one batch"),
    (_kill(recovered=490, lost_bound=5), "reported at most 5"),
    (_kill(recovered=500, outcome="clean", lost=0, lost_bound=0), None),
    (_kill(recovered=499, outcome="clean", lost=0, lost_bound=0), "reported at most 0"),
    (_kill(recovered=495, lost=8), "reported 8 events lost, only 5 were"),
    (_kill(recovered=501), "not exact"),
])
def test_soak_kill_cycles_catch_damage_and_unreported_loss(kill: Kill, problem: str | None) -> None:
    problems = verdict(_run(NOISY_FLAT), REGION, [kill])
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1
        assert problem in problems[0]


def test_soak_kills_are_in_the_first_half_and_memory_is_judged_on_the_last_boot() -> None:
    assert kill_times(300, 0) == []
    assert kill_times(300, 3) == [37.5, 75.0, 112.5]
    # A reboot drops RSS; warming up again after it must not read as a leak, nor hide one in the last boot.
    warm = [20_000 + 1000 * i for i in range(10)]
    rss = warm + warm + NOISY_FLAT
    ledgers = [_ledger(appended=i) for i in range(len(rss))]
    samples = [replace(s, boot=0 if i < 10 else 1) for i, s in enumerate(_run(rss, ledgers))]
    assert verdict(samples, REGION) == []
    trend = memory_trend(samples)
    assert trend is not None
    assert trend.samples == 15  # the second half of the last boot's 30 samples
    leak = warm + warm + [30_000 + int(0.4 * 100 * i) for i in range(20)]
    leaking = [replace(s, boot=0 if i < 10 else 1) for i, s in enumerate(_run(leak, ledgers))]
    assert any("memory trends up" in p for p in verdict(leaking, REGION))


def test_soak_report_lists_each_kill() -> None:
    kills = [_kill(), _kill(recovered=470)]
    figures = report(_run(NOISY_FLAT), [], target="image", seconds=100, provisioned_region_bytes=REGION, rounds=1,
                     secrets_received=0, kills=kills)
    listed = figures["kills"]
    assert isinstance(listed, list)
    assert [k["actual_lost"] for k in listed] == [20, 30]
    lines = summary(figures)
    assert any(line.startswith("kill -9 cycles: 2") for line in lines)
    row = next(line for line in lines if line.split()[:2] == ["2", "30"])
    assert row.split()[3:9] == ["500", "470", "30", "torn", "tail", "0"]
