"""x509-limbo conformance: every case through `tls.x509.validate`, compared with the checked-in expectations.

A case that was right and becomes wrong fails (regression); a listed case that becomes right also fails,
so that x509_limbo_expectations.json is kept exact. The per-feature table and the summary line print with
`pytest -s`; results in the upstream harness format go to build/x509-limbo-results.json.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

import tls.x509.path as path_module
from tests.conformance import x509_limbo
from tls.x509 import DEFAULT_LIMITS
from tls.x509 import signature as signature_module


@pytest.fixture(scope="module")
def outcomes() -> list[x509_limbo.Outcome]:
    results = x509_limbo.run_all(x509_limbo.load_cases())
    path = x509_limbo.write_results(results)
    print()
    print(x509_limbo.table(results))
    print(f"results written to {path}")
    return results


def test_every_case_ran_and_results_use_the_harness_format(outcomes: list[x509_limbo.Outcome]) -> None:
    cases = x509_limbo.load_cases()
    assert len(outcomes) == len(cases) == 208
    written = json.loads(x509_limbo.RESULTS.read_text())
    assert written["version"] == 1
    assert {r["actual_result"] for r in written["results"]} <= {"SUCCESS", "FAILURE", "SKIPPED"}
    assert [r["id"] for r in written["results"]] == [c["id"] for c in cases]


def test_at_least_as_good_as_the_cryptography_verifier(outcomes: list[x509_limbo.Outcome]) -> None:
    correct = sum(o.verdict == "correct" for o in outcomes)
    assert correct >= x509_limbo.REFERENCE_CORRECT, x509_limbo.summary(outcomes)


def test_no_regression_against_expectations(outcomes: list[x509_limbo.Outcome]) -> None:
    expected = x509_limbo.load_expectations()
    regressions = [
        f"{o.case_id}: expected {o.expected}, got {o.actual} ({o.context})"
        for o in outcomes
        if o.verdict != "correct" and o.case_id not in expected
    ]
    assert not regressions, "cases that are now wrong or skipped:\n" + "\n".join(regressions)


def test_expectations_file_is_exact(outcomes: list[x509_limbo.Outcome]) -> None:
    expected = x509_limbo.load_expectations()
    by_id = {o.case_id: o for o in outcomes}
    unknown = sorted(set(expected) - set(by_id))
    assert not unknown, f"expectations list cases that do not exist: {unknown}"
    improved = [case_id for case_id in expected if by_id[case_id].verdict == "correct"]
    assert not improved, f"now correct, remove from x509_limbo_expectations.json: {improved}"
    changed = [
        case_id for case_id, entry in expected.items() if by_id[case_id].verdict != entry["result"]
    ]
    assert not changed, f"verdict differs from the expectations file: {changed}"
    assert all(entry["reason"].strip() for entry in expected.values())


def test_denial_of_service_cases_stay_bounded_without_the_peer_count_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """No case may hang: lift the 'certificates sent' limit so the 100-certificate piles reach the path
    builder, and count signature checks (the expensive step) instead of timing anything."""
    checks: list[int] = []
    real = signature_module.verify_signature

    def counting(*args: object) -> None:
        checks.append(1)
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(path_module, "verify_signature", counting)
    limits = replace(DEFAULT_LIMITS, max_chain_certificates=256)
    monkeypatch.setattr(x509_limbo, "DEFAULT_LIMITS", limits)
    cases = [c for c in x509_limbo.load_cases() if "denial-of-service" in (c.get("features") or ())]
    assert len(cases) == 7
    for case in cases:
        checks.clear()
        outcome = x509_limbo.run_case(case)
        assert outcome.actual == "FAILURE", outcome
        assert len(checks) <= limits.max_candidates, (case["id"], len(checks))
