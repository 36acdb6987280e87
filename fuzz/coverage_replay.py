"""What a corpus reaches: replay it under coverage.py (branch mode) and sum lines and branch outcomes for the
target's package and for the files it is about. `make fuzz` runs this on each final corpus; the same sums over
the unit tests' data file (build/coverage/.coverage, left by `make test`) give the figures to compare with.

Packages are counted as tests/coverage_report.py counts them: `netstack` without `netstack.tcp`, `tls` without
`tls.x509`, so a target's figure and the unit tests' figure for a package are the same sum.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import coverage

from fuzz.replay import inputs
from fuzz.target import INSTRUMENTED, Target

SUBPACKAGES = ("netstack/tcp", "tls/x509")
"""Directories reported as packages of their own (not in their parent's figure)."""


@dataclass(frozen=True)
class Figure:
    lines: int
    lines_covered: int
    branches: int
    branches_covered: int

    @property
    def line_percent(self) -> float:
        return round(100.0 * self.lines_covered / self.lines, 1) if self.lines else 100.0

    @property
    def branch_percent(self) -> float:
        return round(100.0 * self.branches_covered / self.branches, 1) if self.branches else 100.0

    def as_dict(self) -> dict[str, float | int]:
        return {**asdict(self), "line_percent": self.line_percent, "branch_percent": self.branch_percent}


def relative(path: str) -> str:
    """`path` from its checkout's root (the data may come from another checkout of the same tree)."""
    parts = Path(path).parts
    for index, part in enumerate(parts):
        if part in INSTRUMENTED:
            return "/".join(parts[index:])
    return path


def in_package(path: str, package: str) -> bool:
    directory = package.replace(".", "/")
    if not path.startswith(directory + "/"):
        return False
    return not any(path.startswith(sub + "/") and sub != directory for sub in SUBPACKAGES)


def in_files(path: str, files: Iterable[str]) -> bool:
    return any(path == f or path.startswith(f.rstrip("/") + "/") for f in files)


def _summaries(cov: coverage.Coverage) -> dict[str, dict[str, int]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "coverage.json"
        cov.json_report(outfile=str(out))
        files = json.loads(out.read_text())["files"]
    return {relative(path): entry["summary"] for path, entry in files.items()}


def total(summaries: dict[str, dict[str, int]], wanted: Iterable[str]) -> Figure:
    chosen = [summaries[path] for path in wanted]
    return Figure(
        lines=sum(s["num_statements"] for s in chosen),
        lines_covered=sum(s["covered_lines"] for s in chosen),
        branches=sum(s.get("num_branches", 0) for s in chosen),
        branches_covered=sum(s.get("covered_branches", 0) for s in chosen),
    )


def figures(summaries: dict[str, dict[str, int]], target: Target) -> dict[str, Figure]:
    return {
        "package": total(summaries, [p for p in summaries if in_package(p, target.package)]),
        "files": total(summaries, [p for p in summaries if in_files(p, target.files)]),
    }


def measure(target: Target, directories: Iterable[Path]) -> tuple[int, dict[str, Figure]]:
    """(inputs replayed, figures). Inputs that fail are counted and skipped: coverage is about reach."""
    cov = coverage.Coverage(data_file=None, branch=True, source=list(INSTRUMENTED), config_file=False)
    cov.start()
    count = 0
    try:
        entry = target.entry()
        for path in inputs(directories):
            try:
                entry(path.read_bytes())
            except Exception:  # noqa: BLE001,S112 (a crashing input is reported by the fuzzing run, not here)
                continue
            count += 1
    finally:
        cov.stop()
    return count, figures(_summaries(cov), target)


def unit_test_figures(data_file: Path, target: Target) -> dict[str, Figure] | None:
    """The same figures from the unit tests' coverage data, if `make test` left it."""
    if not data_file.exists():
        return None
    cov = coverage.Coverage(data_file=str(data_file), config_file=False)  # the data may name another checkout
    cov.load()
    return figures(_summaries(cov), target)
