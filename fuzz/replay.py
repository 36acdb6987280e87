"""Run saved inputs through a target without atheris: how a crash is reproduced (`python -m fuzz replay NAME
FILE...`), how `make test` replays the seed corpus and the regression inputs, and how coverage is measured.
Exactly the code path the fuzzer ran, under the same per-input time bound, so a failure shows its traceback."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from fuzz.bounds import timed
from fuzz.target import Target


def inputs(directories: Iterable[Path]) -> Iterator[Path]:
    """Every input file in `directories` (missing ones are empty), in a stable order."""
    for directory in directories:
        if directory.is_dir():
            yield from sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))


def replay(target: Target, paths: Iterable[Path]) -> int:
    """Run each file; the first failure raises with its traceback. Returns how many ran."""
    entry = timed(target.entry())
    count = 0
    for path in paths:
        try:
            entry(path.read_bytes())
        except Exception as failure:
            failure.add_note(f"fuzz input: {path} (target {target.name})")
            raise
        count += 1
    return count
