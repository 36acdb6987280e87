"""Run benchmarks, write `bench/results/NAME.json`, print a table.

A benchmark is a module `bench/NAME.py` with `run(quick: bool) -> dict[str, Figure]`. `quick` asks for a
short run (used by the harness's own test so that every benchmark is at least exercised); the real
figures come from `make bench`.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
# helpers shared by benchmarks and tests, and tools that measure without a reference (boot_profile)
NOT_BENCHMARKS = frozenset({"harness", "__main__", "timing", "lab", "certs", "boot_profile"})


@dataclass(frozen=True)
class Figure:
    """One measured value and the reference it is judged against (same unit, same run)."""

    value: float
    unit: str
    reference: float

    @property
    def ratio(self) -> float:
        return self.value / self.reference if self.reference else float("nan")

    def as_json(self) -> dict[str, float | str]:
        return {"value": self.value, "unit": self.unit, "reference": self.reference, "ratio": self.ratio}


Figures = dict[str, Figure]
Benchmark = Callable[[bool], Figures]


def available() -> list[str]:
    """Every benchmark module in this package, by name."""
    package_dir = Path(__file__).resolve().parent
    return sorted(
        info.name for info in pkgutil.iter_modules([str(package_dir)])
        if info.name not in NOT_BENCHMARKS and not info.name.startswith("_")
    )


def load(name: str) -> Benchmark:
    if name not in available():
        raise SystemExit(f"unknown benchmark {name!r}; available: {', '.join(available()) or 'none'}")
    module = importlib.import_module(f"bench.{name}")
    run: Benchmark = module.run
    return run


def run_one(name: str, quick: bool = False, results_dir: Path = RESULTS) -> Figures:
    started = time.monotonic()
    figures = load(name)(quick)
    elapsed = time.monotonic() - started
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}.json"
    path.write_text(json.dumps({k: f.as_json() for k, f in figures.items()}, indent=2) + "\n")
    print(render_table(name, figures, elapsed))
    return figures


def render_table(name: str, figures: Figures, elapsed: float) -> str:
    rows = [("figure", "value", "reference", "unit", "ratio")]
    rows += [(k, f"{f.value:.4g}", f"{f.reference:.4g}", f.unit, f"{f.ratio:.3f}") for k, f in figures.items()]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [f"== {name} ({elapsed:.1f} s)"]
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                               for i, cell in enumerate(row)))
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
