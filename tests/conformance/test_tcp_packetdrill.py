"""Run the FreeBSD tcp-testsuite packetdrill scripts against our TCP layer (see packetdrill.py).

Every script in the three directories the issue names, plus rcv-icmp, is run. The checked-in list of expected failures,
each with its reason, makes both regressions (a passing script starts failing) and silent fixes (a listed
script starts passing) fail the suite.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conformance.packetdrill import ScriptError, run_script
from tests.conformance.shared import CONFORMANCE

SUITE = CONFORMANCE / "tcp-testsuite"
DIRECTORIES = ("state-event-engine", "rcv-data-segments", "snd-syn", "rcv-icmp")
EXPECTED_FILE = Path(__file__).with_name("tcp_packetdrill_expected_failures.txt")


def expected_failures() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in EXPECTED_FILE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            path, _, reason = line.partition("|")
            out[path.strip()] = reason.strip()
    return out


def scripts() -> list[str]:
    if not SUITE.is_dir():
        return []
    return [str(p.relative_to(SUITE)) for d in DIRECTORIES for p in sorted((SUITE / d).rglob("*.pkt"))]


EXPECTED = expected_failures()
SCRIPTS = scripts()


def test_suite_present() -> None:
    assert SUITE.is_dir(), f"conformance data missing at {SUITE}"
    assert len(SCRIPTS) >= 500


def test_expected_failures_exist() -> None:
    missing = sorted(set(EXPECTED) - set(SCRIPTS))
    assert not missing, f"listed scripts that do not exist: {missing}"


@pytest.mark.parametrize("script", SCRIPTS)
def test_script(script: str) -> None:
    try:
        run_script(SUITE / script)
    except ScriptError as error:
        if script in EXPECTED:
            return
        raise AssertionError(f"{script}: {error}") from None
    assert script not in EXPECTED, f"{script} now passes: remove it from {EXPECTED_FILE.name}"


def test_pass_counts(capsys: pytest.CaptureFixture[str]) -> None:
    """Report per-directory pass counts (visible with -s) and hold the line on state-event-engine."""
    counts: dict[str, list[int]] = {d: [0, 0] for d in DIRECTORIES}
    for script in SCRIPTS:
        directory = script.split("/", 1)[0]
        counts[directory][1] += 1
        if script not in EXPECTED:
            counts[directory][0] += 1
    with capsys.disabled():
        for directory, (passed, total) in counts.items():
            print(f"\npacketdrill {directory}: {passed}/{total} pass")
    assert counts["state-event-engine"][0] == counts["state-event-engine"][1]
