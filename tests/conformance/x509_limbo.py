"""Runner for the C2SP x509-limbo cases against `tls.x509.validate` (used by test_x509_limbo.py).

Reads x509-limbo.json in place (found by tests/conformance/shared.py), runs every case under the validator,
and returns results in the upstream harness format: {version: 1, harness, results: [{id, actual_result, context}]}.
Run as a script (`.venv/bin/python -m tests.conformance.x509_limbo`) to print the table without pytest.
"""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.conformance.shared import CONFORMANCE
from tls.x509 import DEFAULT_LIMITS, PeerName, Purpose, X509Error, validate

LIMBO = CONFORMANCE / "x509-limbo.json"
EXPECTATIONS = Path(__file__).resolve().parent / "x509_limbo_expectations.json"
RESULTS = Path(__file__).resolve().parents[2] / "build" / "x509-limbo-results.json"
HARNESS = "pinata-tls-x509"
# The cryptography package's verifier on the same file (README beside the data).
REFERENCE_CORRECT = 164

_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.DOTALL)
_PURPOSES = {"serverAuth": Purpose.SERVER_AUTH, "clientAuth": Purpose.CLIENT_AUTH}


@dataclass(frozen=True)
class Outcome:
    case_id: str
    expected: str  # SUCCESS | FAILURE
    actual: str  # SUCCESS | FAILURE | SKIPPED
    context: str
    namespace: str
    features: tuple[str, ...]

    @property
    def verdict(self) -> str:
        """correct | wrong | skipped"""
        if self.actual == "SKIPPED":
            return "skipped"
        return "correct" if self.actual == self.expected else "wrong"


def load_cases(path: Path = LIMBO) -> list[dict[str, Any]]:
    data = json.loads(path.read_text())
    cases: list[dict[str, Any]] = data["testcases"]
    return cases


def pem_to_der(pem: str) -> bytes:
    match = _PEM.search(pem.encode())
    if match is None:
        raise ValueError("no PEM certificate")
    return base64.b64decode(b"".join(match.group(1).split()), validate=True)


def skip_reason(case: dict[str, Any]) -> str | None:
    """Cases outside what the validator does by design (the appliance has no revocation: short-lived certs)."""
    if case["crls"]:
        return "CRL revocation checking is not implemented"
    return None


def run_case(case: dict[str, Any]) -> Outcome:
    case_id = case["id"]
    namespace = case_id.split("::", 1)[0]
    features = tuple(case.get("features") or ())
    reason = skip_reason(case)
    if reason is not None:
        return Outcome(case_id, case["expected_result"], "SKIPPED", reason, namespace, features)
    purpose = _purpose(case)
    peer = case.get("expected_peer_name")
    name = PeerName(peer["kind"], peer["value"]) if peer and case["validation_kind"] == "SERVER" else None
    limits = DEFAULT_LIMITS
    if case.get("max_chain_depth") is not None:
        limits = replace(limits, max_chain_depth=case["max_chain_depth"])
    try:
        chain = [pem_to_der(case["peer_certificate"])] + [pem_to_der(p) for p in case["untrusted_intermediates"]]
        anchors = [pem_to_der(p) for p in case["trusted_certs"]]
    except ValueError as exc:
        return Outcome(case_id, case["expected_result"], "FAILURE", f"PEM: {exc}", namespace, features)
    time = datetime.fromisoformat(case["validation_time"]) if case.get("validation_time") else datetime.now()
    try:
        path = validate(chain, anchors=anchors, purpose=purpose, name=name, time=time, limits=limits)
    except X509Error as error:
        return Outcome(case_id, case["expected_result"], "FAILURE", str(error), namespace, features)
    return Outcome(
        case_id, case["expected_result"], "SUCCESS", f"path of {len(path.certificates)}", namespace, features
    )


def _purpose(case: dict[str, Any]) -> Purpose:
    for usage in case.get("extended_key_usage") or ():
        if usage in _PURPOSES:
            return _PURPOSES[usage]
    return Purpose.CLIENT_AUTH if case["validation_kind"] == "CLIENT" else Purpose.SERVER_AUTH


def run_all(cases: Iterable[dict[str, Any]]) -> list[Outcome]:
    return [run_case(case) for case in cases]


def harness_results(outcomes: list[Outcome]) -> dict[str, Any]:
    return {
        "version": 1,
        "harness": HARNESS,
        "results": [{"id": o.case_id, "actual_result": o.actual, "context": o.context} for o in outcomes],
    }


def write_results(outcomes: list[Outcome], path: Path = RESULTS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(harness_results(outcomes), indent=1) + "\n")
    return path


def table(outcomes: list[Outcome]) -> str:
    """Per-namespace and per-feature counts, and the summary line."""
    rows: dict[str, Counter[str]] = {}
    for outcome in outcomes:
        for key in (outcome.namespace, *(f"  feature:{f}" for f in outcome.features)):
            rows.setdefault(key, Counter())[outcome.verdict] += 1
    width = max(len(k) for k in rows)
    lines = [f"{'x509-limbo':<{width}}  correct  wrong  skipped"]
    for key in sorted(rows, key=lambda k: (k.startswith("  "), k)):
        counts = rows[key]
        lines.append(f"{key:<{width}}  {counts['correct']:7}  {counts['wrong']:5}  {counts['skipped']:7}")
    lines.append(summary(outcomes))
    return "\n".join(lines)


def summary(outcomes: list[Outcome]) -> str:
    totals = Counter(o.verdict for o in outcomes)
    return f"x509-limbo: {totals['correct']} correct, {totals['wrong']} wrong, {totals['skipped']} skipped"


def load_expectations(path: Path = EXPECTATIONS) -> dict[str, dict[str, str]]:
    data: dict[str, dict[str, str]] = json.loads(path.read_text())["cases"]
    return data


if __name__ == "__main__":
    results = run_all(load_cases())
    print(table(results))
    for result in results:
        if result.verdict != "correct":
            print(f"{result.verdict:8} {result.expected:7} {result.case_id}  {result.context}")
