"""What a target raises when a property fails: the fuzzer reports it as a crash and saves the input.

Why not `assert`: assertions vanish under `python -O`, and a check that can be switched off is not a check.
Everything else a target lets escape is a crash too (an exception the code under test should have turned
into its own typed refusal); `PropertyViolationError` marks the ones the harness itself found wrong.
"""

from __future__ import annotations


class PropertyViolationError(AssertionError):
    """A stated property of the code under test does not hold for this input."""


class SlowInputError(PropertyViolationError):
    """One input took longer than the per-input time bound (a hang, or work an attacker could multiply)."""


def require(condition: bool, what: str) -> None:
    """Raise PropertyViolationError(`what`) unless `condition` holds."""
    if not condition:
        raise PropertyViolationError(what)
