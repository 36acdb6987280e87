"""The fuzzing smoke pass of `make test` (issue 18): every committed seed and regression input replays clean,
and every target runs briefly under atheris. The long runs are `make fuzz`.

Bounded, not timed: each target gets a fixed number of executions (and a generous time cap, so a slow machine
runs fewer, never fails); what fails the test is a crash, a property violation or a target that cannot start.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fuzz.campaign import parse_log
from fuzz.registry import TARGETS
from fuzz.replay import inputs, replay
from fuzz.target import ROOT, Target

RUNS = 200
"""Executions per target after its seeds: enough to mutate past the seeds, small enough for CI."""
TIME_CAP = 20
"""Seconds a target may use at most (libFuzzer stops there, successfully): a bound, never an assertion."""


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
def test_seeds_and_regressions_replay(target: Target) -> None:
    assert replay(target, inputs([target.corpus, target.regressions])) >= 1


def _fuzz_briefly(target: Target, scratch: Path) -> tuple[Target, subprocess.CompletedProcess[str]]:
    corpus, crashes = scratch / target.name, scratch / f"crashes-{target.name}"
    corpus.mkdir()
    crashes.mkdir()
    command = [sys.executable, "-m", "fuzz", "run", target.name, f"-runs={RUNS}", f"-max_total_time={TIME_CAP}",
               "-seed=18", "-timeout=120", f"-max_len={target.max_len}", "-print_final_stats=1",
               f"-artifact_prefix={crashes}/", str(corpus), *map(str, target.committed_inputs)]
    return target, subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=900)


def test_every_target_fuzzes_briefly(tmp_path: Path) -> None:
    workers = min(2, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda t: _fuzz_briefly(t, tmp_path), TARGETS))
    failures = []
    for target, result in results:
        stats, _, saved = parse_log(result.stderr)
        # It ran (the seeds themselves are replayed above, without a time cap that a loaded machine could hit).
        if result.returncode != 0 or saved or stats.get("number_of_executed_units", 0) < 1:
            failures.append(f"{target.name}: exit {result.returncode}, saved {saved}\n{result.stderr[-3000:]}")
    assert not failures, "\n\n".join(failures)
