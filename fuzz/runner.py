"""One target under atheris (libFuzzer): `python -m fuzz run NAME [libFuzzer flags] [corpus dirs]`.

The target's module is imported inside atheris's import hook, so the project's packages are instrumented for
coverage feedback as they load (the libraries are not: their branches are not ours to explore). Every input
runs under the per-input time bound (fuzz/bounds.py): one that takes longer is reported as a crash (SlowInputError)
and saved like one; libFuzzer's own -timeout backs it up for an input that never returns at all.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from fuzz.bounds import timed
from fuzz.registry import find
from fuzz.target import INSTRUMENTED


def run(name: str, flags: list[str]) -> None:
    import atheris  # noqa: PLC0415 (only the runner needs it; replaying and coverage run without it)

    target = find(name)
    with atheris.instrument_imports(include=list(INSTRUMENTED)):
        entry: Callable[[bytes], None] = target.entry()
    atheris.Setup([sys.argv[0], *flags], timed(entry))
    atheris.Fuzz()
