"""Run the FreeBSD tcp-testsuite packetdrill scripts against our stack (see packetdrill.py).

Two suites: the IPv4 scripts (every script in the three directories the TCP issue named, plus rcv-icmp) and the
IPv6 scripts (`--ip_version=ipv6`, kept in a directory of their own). Every script is run once and its verdict
cached. Each suite's checked-in list of expected failures and skips, each with its reason, is compared with the
measured verdicts, so both a regression (a passing script starts failing) and a silent fix (a listed script
starts passing) fail.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conformance.packetdrill import Outcome, outcome
from tests.conformance.shared import CONFORMANCE

VERDICTS = ("fail", "skip")


@dataclass(frozen=True)
class Suite:
    name: str
    root: Path
    directories: tuple[str, ...]
    expected_file: Path
    minimum_scripts: int  # a suite that shrank (data missing or moved) fails test_suite_present
    minimum_secure: int


SUITES = {
    "ipv4": Suite("ipv4", CONFORMANCE / "tcp-testsuite", ("state-event-engine", "rcv-data-segments", "snd-syn",
                                                          "rcv-icmp"),
                  Path(__file__).with_name("tcp_packetdrill_expected_failures.txt"), 500, 190),
    "ipv6": Suite("ipv6", CONFORMANCE / "tcp-testsuite-ipv6", ("state-event-engine", "snd-syn", "rcv-icmp"),
                  Path(__file__).with_name("tcp_packetdrill_ipv6_expected_failures.txt"), 320, 190),
}


def expected_verdicts(suite: Suite) -> dict[str, tuple[str, str]]:
    """path -> (verdict, reason) for every script listed as failing or skipped."""
    out: dict[str, tuple[str, str]] = {}
    for line in suite.expected_file.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            path, verdict, reason = (part.strip() for part in line.split("|", 2))
            out[path] = (verdict, reason)
    return out


def scripts(suite: Suite) -> list[str]:
    if not suite.root.is_dir():
        return []
    return [str(p.relative_to(suite.root)) for d in suite.directories for p in sorted((suite.root / d).rglob("*.pkt"))]


EXPECTED = {name: expected_verdicts(suite) for name, suite in SUITES.items()}
SCRIPTS = {name: scripts(suite) for name, suite in SUITES.items()}
CASES = [pytest.param(name, script, id=f"{name}:{script}") for name, listed in SCRIPTS.items() for script in listed]


@functools.cache
def verdict(suite: str, script: str) -> Outcome:
    return outcome(SUITES[suite].root / script)


def is_secure_state_event(script: str) -> bool:
    """The RFC 5961 variants: every state-event-engine script that does not select RFC 793 (`-insecure`)."""
    return script.startswith("state-event-engine/") and "-insecure" not in script


@pytest.mark.parametrize("name", SUITES)
def test_suite_present(name: str) -> None:
    suite = SUITES[name]
    assert suite.root.is_dir(), f"conformance data missing at {suite.root}"
    assert len(SCRIPTS[name]) >= suite.minimum_scripts


@pytest.mark.parametrize("name", SUITES)
def test_expected_file_is_well_formed(name: str) -> None:
    missing = sorted(set(EXPECTED[name]) - set(SCRIPTS[name]))
    assert not missing, f"listed scripts that do not exist: {missing}"
    bad = sorted(path for path, (kind, reason) in EXPECTED[name].items() if kind not in VERDICTS or not reason)
    assert not bad, f"entries without a verdict (fail/skip) and a reason: {bad}"


@pytest.mark.parametrize(("name", "script"), CASES)
def test_script(name: str, script: str) -> None:
    result = verdict(name, script)
    listed = EXPECTED[name].get(script)
    if result.status == "pass":
        assert listed is None, f"{script} now passes: remove it from {SUITES[name].expected_file.name}"
        return
    assert listed is not None, f"{script} {result.status}s: {result.detail}"
    assert listed[0] == result.status, f"{script} is listed as {listed[0]} but {result.status}s: {result.detail}"


@pytest.mark.parametrize("name", SUITES)
def test_pass_counts(name: str) -> None:
    """Print the measured table (visible with -s), every skip and unchecked command, and hold the line."""
    suite = SUITES[name]
    listed_scripts = SCRIPTS[name]
    counts: dict[str, Counter[str]] = {d: Counter() for d in suite.directories}
    unchecked: Counter[str] = Counter()
    adapted: Counter[str] = Counter()
    for script in listed_scripts:
        result = verdict(name, script)
        counts[script.split("/", 1)[0]][result.status] += 1
        unchecked.update(set(result.unchecked))
        adapted.update(set(result.adapted))
    print(f"\npacketdrill results, {name} (measured)")
    print(f"{'directory':<22}{'pass':>6}{'fail':>6}{'skip':>6}{'total':>7}")
    for directory, c in counts.items():
        print(f"{directory:<22}{c['pass']:>6}{c['fail']:>6}{c['skip']:>6}{sum(c.values()):>7}")
    secure = [s for s in listed_scripts if is_secure_state_event(s)]
    secure_pass = sum(1 for s in secure if verdict(name, s).status == "pass")
    print(f"state-event-engine RFC 5961 variants: {secure_pass}/{len(secure)} pass")
    for script in listed_scripts:
        if verdict(name, script).status == "skip":
            print(f"skipped {script}: {verdict(name, script).detail}")
    print("commands not checked (scripts using each):")
    for command, n in sorted(unchecked.items()):
        print(f"  {n:4} {command}")
    print("expectations adapted to our stack (scripts):")
    for note, n in sorted(adapted.items()):
        print(f"  {n:4} {note}")
    failing = {s for s in listed_scripts if verdict(name, s).status == "fail"}
    skipped = {s for s in listed_scripts if verdict(name, s).status == "skip"}
    listed_fail = {s for s, (kind, _) in EXPECTED[name].items() if kind == "fail"}
    listed_skip = {s for s, (kind, _) in EXPECTED[name].items() if kind == "skip"}
    assert failing == listed_fail, (f"unexpected failures {sorted(failing - listed_fail)}, "
                                    f"unexpected passes {sorted(listed_fail - failing)}")
    assert skipped == listed_skip, f"skips differ: {sorted(skipped ^ listed_skip)}"


@pytest.mark.parametrize("name", SUITES)
def test_state_event_engine_secure_variants_all_pass(name: str) -> None:
    """The TCP issue's goal, over both families: every RFC 5961 state-event-engine script passes, none of them
    is excused."""
    secure = [s for s in SCRIPTS[name] if is_secure_state_event(s)]
    assert len(secure) >= SUITES[name].minimum_secure
    listed = sorted(s for s in secure if s in EXPECTED[name])
    assert not listed, (f"RFC 5961 state-event-engine scripts must not be listed in "
                        f"{SUITES[name].expected_file.name}: {listed}")
    failing = sorted(s for s in secure if verdict(name, s).status != "pass")
    assert not failing, f"{len(failing)} of {len(secure)} RFC 5961 state-event-engine scripts fail: {failing}"
