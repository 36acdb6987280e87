"""The per-input time bound: an input that takes longer than this is a finding (a hang, or work an attacker
could repeat per packet), reported as SlowInputError and saved like a crash.

Generous on purpose (the slowest targets take milliseconds per input; a loaded CI machine must not turn noise
into findings); `PINATA_FUZZ_INPUT_SECONDS` overrides it. libFuzzer's -timeout (twice this) catches an input
that never returns at all.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from fuzz.errors import SlowInputError

INPUT_SECONDS = float(os.environ.get("PINATA_FUZZ_INPUT_SECONDS", "10"))


def timed(entry: Callable[[bytes], None], bound: float = INPUT_SECONDS) -> Callable[[bytes], None]:
    def one_input(data: bytes) -> None:
        start = time.perf_counter()
        entry(data)
        elapsed = time.perf_counter() - start
        if elapsed > bound:
            raise SlowInputError(f"one input took {elapsed:.1f} s (bound {bound:.1f} s)")

    return one_input
