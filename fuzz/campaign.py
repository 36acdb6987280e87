"""`make fuzz`: every target under atheris for FUZZ_SECONDS each (or until FUZZ_RUNS executions, if set, whichever
comes first), as many at a time as there are cores, then the coverage of each final corpus; writes
build/fuzz/report.json and prints a table.

Naming targets runs only those; their rows in report.json are replaced and the other targets' rows are kept,
each row saying how long and how far it was allowed to run, so a long run of the slow targets completes the
table of a shorter run of all of them.

Each target runs in its own process (`python -m fuzz run`), its log in build/fuzz/logs/NAME.log. New inputs
go to build/fuzz/corpus/NAME (the committed seeds in fuzz/corpus/NAME and the regression inputs are read, never
written). A crash (or a slow input, or one that exhausts memory) is saved in build/fuzz/crashes/NAME/ and the
run prints the one line that reproduces it; once fixed, the input goes to fuzz/regressions/NAME/, which
`make test` replays.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from fuzz.bounds import INPUT_SECONDS
from fuzz.registry import TARGETS, find
from fuzz.target import ROOT, Target

OUT = ROOT / "build" / "fuzz"
UNIT_COVERAGE = ROOT / "build" / "coverage" / ".coverage"
_STAT = re.compile(r"^stat::(\w+):\s+(\d+)", re.MULTILINE)
_RSS = re.compile(r"\brss: (\d+)Mb")
_ARTIFACT = re.compile(r"Test unit written to (\S+)")


@dataclass(frozen=True)
class Budget:
    """How long one target may run: a wall-clock cap and, optionally, a number of executions (libFuzzer's
    -runs) after which it stops early."""

    seconds: int
    runs: int = 0

    def flags(self) -> list[str]:
        return [f"-max_total_time={self.seconds}", *([f"-runs={self.runs}"] if self.runs else [])]


@dataclass
class Outcome:
    target: str
    budget: Budget
    seconds: float = 0.0
    exit_code: int = 0
    stats: dict[str, int] = field(default_factory=dict)
    rss_mb: list[int] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    corpus: int = 0
    coverage: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        executions = self.stats.get("number_of_executed_units", 0)
        return {
            "executions": executions,
            "executions_per_second": round(executions / self.seconds, 1) if self.seconds else 0.0,
            "max_seconds": self.budget.seconds,
            "max_runs": self.budget.runs or None,
            "seconds": round(self.seconds, 1),
            "new_inputs": self.stats.get("new_units_added", 0),
            "corpus_inputs": self.corpus,
            "slowest_input_seconds": self.stats.get("slowest_unit_time_sec", 0),
            "rss_mb": {"first": self.rss_mb[0] if self.rss_mb else None, "last": self.rss_mb[-1] if self.rss_mb
                       else None, "peak": self.stats.get("peak_rss_mb")},
            "crashes": self.crashes,
            "crash_count": len(self.crashes),
            "exit_code": self.exit_code,
            "coverage": self.coverage,
            "log": str((OUT / "logs" / f"{self.target}.log").relative_to(ROOT)),
        }


def fuzz_command(target: Target, budget: Budget) -> list[str]:
    corpus = OUT / "corpus" / target.name
    crashes = OUT / "crashes" / target.name
    corpus.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "fuzz", "run", target.name, *budget.flags(),
               "-print_final_stats=1", f"-timeout={int(2 * INPUT_SECONDS)}", "-rss_limit_mb=2048",
               f"-max_len={target.max_len}", f"-artifact_prefix={crashes}/"]
    if target.dictionary is not None:
        command.append(f"-dict={target.dictionary}")
    return [*command, str(corpus), *map(str, target.committed_inputs)]


def reproduce_line(target: Target, path: Path) -> str:
    """The one command that reruns a saved input, with its traceback (from the checkout's root)."""
    return f".venv/bin/python -m fuzz replay {target.name} {path.relative_to(ROOT)}"


def parse_log(text: str) -> tuple[dict[str, int], list[int], list[str]]:
    """From a libFuzzer log: its final statistics (-print_final_stats), the resident memory of each status
    line in order (growth shows between the first and the last), and the inputs it saved (crash, timeout,
    out of memory)."""
    stats = {name: int(value) for name, value in _STAT.findall(text)}
    return stats, [int(value) for value in _RSS.findall(text)], _ARTIFACT.findall(text)


def run_one(target: Target, budget: Budget) -> Outcome:
    outcome = Outcome(target.name, budget)
    log = OUT / "logs" / f"{target.name}.log"
    start = time.monotonic()
    with log.open("w") as sink:
        result = subprocess.run(fuzz_command(target, budget), cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT,
                                check=False)
    outcome.seconds = time.monotonic() - start
    outcome.exit_code = result.returncode
    outcome.stats, outcome.rss_mb, artifacts = parse_log(log.read_text(errors="replace"))
    outcome.crashes = [str(Path(path).resolve().relative_to(ROOT)) for path in artifacts]
    for path in outcome.crashes:
        print(f"{target.name}: CRASH saved to {path}; reproduce with: {reproduce_line(target, ROOT / path)}",
              flush=True)
    corpus = OUT / "corpus" / target.name
    outcome.corpus = sum(1 for p in corpus.iterdir() if p.is_file()) + sum(1 for p in target.corpus.iterdir())
    outcome.coverage = measure_coverage(target, corpus)
    print(f"{target.name}: {outcome.stats.get('number_of_executed_units', 0)} executions in "
          f"{outcome.seconds:.0f} s, exit {outcome.exit_code}", flush=True)
    return outcome


def measure_coverage(target: Target, corpus: Path) -> dict[str, object]:
    """Coverage of the final corpus, in a process of its own (a clean interpreter: module-level lines count)."""
    result = subprocess.run([sys.executable, "-m", "fuzz", "coverage", target.name, "--json", str(corpus),
                             *map(str, target.committed_inputs)], cwd=ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1:] or ["coverage replay failed"]}
    measured: dict[str, object] = json.loads(result.stdout)
    return measured


def _figure(entry: dict[str, object], *path: str) -> str:
    """A value deep in a report entry, or "-" where the report has none (a failed coverage replay)."""
    value: object = entry
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return "-"
        value = value[key]
    return str(value)


COLUMNS = (("target", 16, ()), ("max s", 5, ("max_seconds",)), ("execs", 9, ("executions",)),
           ("execs/s", 8, ("executions_per_second",)),
           ("corpus", 6, ("corpus_inputs",)), ("pkg lines%", 10, ("coverage", "package", "line_percent")),
           ("pkg branch%", 11, ("coverage", "package", "branch_percent")),
           ("files lines%", 12, ("coverage", "files", "line_percent")),
           ("files branch%", 13, ("coverage", "files", "branch_percent")),
           ("unit-tests branch%", 18, ("coverage", "unit_tests", "files", "branch_percent")),
           ("crashes", 7, ("crash_count",)))


def render(report: dict[str, dict[str, object]]) -> str:
    """The table `make fuzz` prints: per target, what ran, what its corpus covers (the package, then the files
    the target is about, beside the unit tests' figure for the same files), and the crashes."""
    lines = [" ".join(f"{title:>{width}}" for title, width, _ in COLUMNS)]
    for name, entry in report.items():
        cells = [name, *(_figure(entry, *path) for _, _, path in COLUMNS[1:])]
        lines.append(" ".join(f"{cell:>{width}}" for cell, (_, width, _) in zip(cells, COLUMNS, strict=True)))
    return "\n".join(lines)


def merged(previous: dict[str, object], fresh: dict[str, dict[str, object]]) -> dict[str, dict[str, object]]:
    """The rows of an earlier report, in the registry's order, with the targets just run replaced. A report
    file from before rows carried their own budget gets that budget filled in from its header."""
    rows: dict[str, dict[str, object]] = {}
    old = previous.get("targets")
    if isinstance(old, dict):
        for name, row in old.items():
            if isinstance(row, dict):
                rows[name] = {"max_seconds": previous.get("seconds_per_target"), "max_runs": None, **row}
    rows.update(fresh)
    order = {target.name: index for index, target in enumerate(TARGETS)}
    return dict(sorted(rows.items(), key=lambda item: order.get(item[0], len(order))))


def main(seconds: int, jobs: int, names: list[str], runs: int = 0) -> int:
    targets = [find(name) for name in names] if names else list(TARGETS)
    budget = Budget(seconds, runs)
    (OUT / "logs").mkdir(parents=True, exist_ok=True)
    jobs = max(1, jobs or os.cpu_count() or 1)
    limit = f" or {runs} executions" if runs else ""
    print(f"fuzzing {len(targets)} targets for {seconds} s each{limit}, {jobs} at a time", flush=True)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        outcomes = list(pool.map(lambda t: run_one(t, budget), targets))
    fresh = {o.target: o.as_dict() for o in outcomes}
    path = OUT / "report.json"
    previous: dict[str, object] = json.loads(path.read_text()) if names and path.exists() else {}
    report = merged(previous, fresh)
    path.write_text(json.dumps({"jobs": jobs, "targets": report}, indent=2) + "\n")
    print(render(report))
    print(f"report: {path.relative_to(ROOT)}")
    failed = [o.target for o in outcomes if o.crashes or o.exit_code != 0]
    if failed:
        print(f"fuzzing found crashes in: {', '.join(failed)} (see above for how to reproduce each)", file=sys.stderr)
    return 1 if failed else 0
