"""The benchmark harness: result format, table, and that every benchmark at least runs (quick mode)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench import harness
from bench.harness import Figure


def test_ratio_is_value_over_reference() -> None:
    assert Figure(30.0, "MB/s", 40.0).ratio == pytest.approx(0.75)
    assert math.isnan(Figure(1.0, "x", 0.0).ratio)


def test_table_lists_every_figure() -> None:
    table = harness.render_table("demo", {"a": Figure(1, "op/s", 2), "bb": Figure(3, "op/s", 3)}, 0.5)
    assert "demo" in table
    assert "0.500" in table
    assert "1.000" in table
    assert len(table.splitlines()) == 5


def test_unknown_benchmark_is_refused() -> None:
    with pytest.raises(SystemExit, match="unknown benchmark"):
        harness.load("no-such-benchmark")


@pytest.mark.parametrize("name", harness.available())
def test_every_benchmark_runs_quick_and_writes_its_results(name: str, tmp_path: Path) -> None:
    figures = harness.run_one(name, quick=True, results_dir=tmp_path)
    assert figures, f"{name} reported no figures"
    written = json.loads((tmp_path / f"{name}.json").read_text())
    assert written.keys() == figures.keys()
    for key, entry in written.items():
        assert set(entry) == {"value", "unit", "reference", "ratio"}, key
        assert entry["value"] > 0, key
        assert entry["reference"] > 0, key
        assert entry["ratio"] == pytest.approx(entry["value"] / entry["reference"]), key
