"""Run the FreeBSD tcp-testsuite packetdrill scripts against our stack (see packetdrill.py).

Every script in the three directories the issue names, plus rcv-icmp, is run once and its verdict cached. The
checked-in list of expected failures and skips, each with its reason, is compared with the measured verdicts, so
both a regression (a passing script starts failing) and a silent fix (a listed script starts passing) fail.
"""

from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path

import pytest

from tests.conformance.packetdrill import Outcome, outcome
from tests.conformance.shared import CONFORMANCE

SUITE = CONFORMANCE / "tcp-testsuite"
DIRECTORIES = ("state-event-engine", "rcv-data-segments", "snd-syn", "rcv-icmp")
EXPECTED_FILE = Path(__file__).with_name("tcp_packetdrill_expected_failures.txt")
VERDICTS = ("fail", "skip")


def expected_verdicts() -> dict[str, tuple[str, str]]:
    """path -> (verdict, reason) for every script listed as failing or skipped."""
    out: dict[str, tuple[str, str]] = {}
    for line in EXPECTED_FILE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            path, verdict, reason = (part.strip() for part in line.split("|", 2))
            out[path] = (verdict, reason)
    return out


def scripts() -> list[str]:
    if not SUITE.is_dir():
        return []
    return [str(p.relative_to(SUITE)) for d in DIRECTORIES for p in sorted((SUITE / d).rglob("*.pkt"))]


EXPECTED = expected_verdicts()
SCRIPTS = scripts()


@functools.cache
def verdict(script: str) -> Outcome:
    return outcome(SUITE / script)


def is_secure_state_event(script: str) -> bool:
    """The RFC 5961 variants: every state-event-engine script that does not select RFC 793 (`-insecure`)."""
    return script.startswith("state-event-engine/") and "-insecure" not in script


def test_suite_present() -> None:
    assert SUITE.is_dir(), f"conformance data missing at {SUITE}"
    assert len(SCRIPTS) >= 500


def test_expected_file_is_well_formed() -> None:
    missing = sorted(set(EXPECTED) - set(SCRIPTS))
    assert not missing, f"listed scripts that do not exist: {missing}"
    bad = sorted(path for path, (kind, reason) in EXPECTED.items() if kind not in VERDICTS or not reason)
    assert not bad, f"entries without a verdict (fail/skip) and a reason: {bad}"


@pytest.mark.parametrize("script", SCRIPTS)
def test_script(script: str) -> None:
    result = verdict(script)
    listed = EXPECTED.get(script)
    if result.status == "pass":
        assert listed is None, f"{script} now passes: remove it from {EXPECTED_FILE.name}"
        return
    assert listed is not None, f"{script} {result.status}s: {result.detail}"
    assert listed[0] == result.status, f"{script} is listed as {listed[0]} but {result.status}s: {result.detail}"


def test_pass_counts() -> None:
    """Print the measured table (visible with -s), every skip and unchecked command, and hold the line."""
    counts: dict[str, Counter[str]] = {d: Counter() for d in DIRECTORIES}
    unchecked: Counter[str] = Counter()
    adapted: Counter[str] = Counter()
    for script in SCRIPTS:
        result = verdict(script)
        counts[script.split("/", 1)[0]][result.status] += 1
        unchecked.update(set(result.unchecked))
        adapted.update(set(result.adapted))
    print("\npacketdrill results (measured)")
    print(f"{'directory':<22}{'pass':>6}{'fail':>6}{'skip':>6}{'total':>7}")
    for directory, c in counts.items():
        print(f"{directory:<22}{c['pass']:>6}{c['fail']:>6}{c['skip']:>6}{sum(c.values()):>7}")
    secure = [s for s in SCRIPTS if is_secure_state_event(s)]
    secure_pass = sum(1 for s in secure if verdict(s).status == "pass")
    print(f"state-event-engine RFC 5961 variants: {secure_pass}/{len(secure)} pass")
    for script in SCRIPTS:
        if verdict(script).status == "skip":
            print(f"skipped {script}: {verdict(script).detail}")
    print("commands not checked (scripts using each):")
    for command, n in sorted(unchecked.items()):
        print(f"  {n:4} {command}")
    print("expectations adapted to our stack (scripts):")
    for note, n in sorted(adapted.items()):
        print(f"  {n:4} {note}")
    failing = {s for s in SCRIPTS if verdict(s).status == "fail"}
    skipped = {s for s in SCRIPTS if verdict(s).status == "skip"}
    listed_fail = {s for s, (kind, _) in EXPECTED.items() if kind == "fail"}
    listed_skip = {s for s, (kind, _) in EXPECTED.items() if kind == "skip"}
    assert failing == listed_fail, (f"unexpected failures {sorted(failing - listed_fail)}, "
                                    f"unexpected passes {sorted(listed_fail - failing)}")
    assert skipped == listed_skip, f"skips differ: {sorted(skipped ^ listed_skip)}"


def test_state_event_engine_secure_variants_all_pass() -> None:
    """The issue's goal: every RFC 5961 state-event-engine script passes, none of them is excused."""
    secure = [s for s in SCRIPTS if is_secure_state_event(s)]
    assert len(secure) >= 190
    listed = sorted(s for s in secure if s in EXPECTED)
    assert not listed, f"RFC 5961 state-event-engine scripts must not be listed in {EXPECTED_FILE.name}: {listed}"
    failing = sorted(s for s in secure if verdict(s).status != "pass")
    assert not failing, f"{len(failing)} of {len(secure)} RFC 5961 state-event-engine scripts fail: {failing}"
