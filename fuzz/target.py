"""A fuzz target's description, and the interface every module in `fuzz/targets/` implements.

A target module defines `fuzz_one(data: bytes) -> None`, which feeds one input to the real code path and
raises (PropertyViolationError or the unexpected exception itself) when something that must hold does not, and
`seeds() -> dict[str, bytes]`, its starting inputs made with the project's own encoders.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, cast

ROOT = Path(__file__).resolve().parent.parent
FUZZ_DIR = ROOT / "fuzz"
CORPUS_DIR = FUZZ_DIR / "corpus"
DICTS_DIR = FUZZ_DIR / "dicts"
REGRESSIONS_DIR = FUZZ_DIR / "regressions"
INSTRUMENTED = ("appliance", "adapters", "netstack", "outcomes", "tls")
"""The project's packages: what atheris instruments for coverage feedback (never the libraries)."""


class TargetModule(Protocol):
    def fuzz_one(self, data: bytes) -> None: ...

    def seeds(self) -> dict[str, bytes]: ...


@dataclass(frozen=True)
class Target:
    name: str
    module: str
    """Module name under `fuzz.targets`."""
    summary: str
    """What it feeds and what must hold (shown by `python -m fuzz list`)."""
    package: str
    """The package whose coverage the report shows (as tests/coverage_report.py groups them)."""
    files: tuple[str, ...]
    """The source files the target is about, relative to the checkout: the report's second coverage figure."""
    max_len: int = 4096
    """libFuzzer's -max_len: the longest input it makes."""

    @property
    def corpus(self) -> Path:
        return CORPUS_DIR / self.name

    @property
    def regressions(self) -> Path:
        return REGRESSIONS_DIR / self.name

    @property
    def committed_inputs(self) -> list[Path]:
        """The committed directories of inputs that exist (seeds; regressions once a crash was fixed): what
        libFuzzer reads and never writes (it refuses a directory that does not exist)."""
        return [d for d in (self.corpus, self.regressions) if d.is_dir()]

    @property
    def dictionary(self) -> Path | None:
        path = DICTS_DIR / f"{self.name}.dict"
        return path if path.exists() else None

    def load(self) -> TargetModule:
        """Import the target's module. By name on purpose: the runner must import the code under test
        inside atheris's import hook so that it is instrumented as it loads; a static import at the top of
        the runner would load it before the hook exists."""
        return cast(TargetModule, importlib.import_module(f"fuzz.targets.{self.module}"))

    def entry(self) -> Callable[[bytes], None]:
        return self.load().fuzz_one
