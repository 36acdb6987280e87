"""Where the shared conformance data lives (read in place, never copied into the repository).

The workspace keeps it beside the checkout (`../shared/conformance`); CI's clean clone may sit elsewhere on
the same machine, so the workspace's fixed location is the fallback, and PINATA_CONFORMANCE_DIR overrides
both. Missing data fails the conformance tests rather than skipping them: a suite that silently stops
running would hide every regression it exists to catch.
"""

from __future__ import annotations

import os
from pathlib import Path

_CANDIDATES = (
    Path(__file__).resolve().parents[3] / "shared" / "conformance",
    Path("/work/shared/conformance"),
)


def conformance_dir() -> Path:
    override = os.environ.get("PINATA_CONFORMANCE_DIR")
    if override:
        return Path(override)
    for candidate in _CANDIDATES:
        if candidate.is_dir():
            return candidate
    return _CANDIDATES[0]


CONFORMANCE = conformance_dir()
