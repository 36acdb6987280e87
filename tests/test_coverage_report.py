"""The coverage table: files land in the most specific package, and a core under its floor fails the run."""

from __future__ import annotations

import pytest

from tests import coverage_report
from tests.coverage_report import Totals, below_floor, package_of, totals_by_package


def summary(statements: int, missing: int, branches: int, covered_branches: int) -> dict[str, dict[str, int]]:
    return {"summary": {"num_statements": statements, "missing_lines": missing, "num_branches": branches,
                        "num_partial_branches": 0, "covered_branches": covered_branches}}


@pytest.mark.parametrize(
    ("path", "package"),
    [
        ("netstack/ipv4.py", "netstack"),
        ("netstack/link/tap.py", "netstack"),
        ("netstack/dhcp/client.py", "netstack"),
        ("netstack/tcp/connection.py", "netstack.tcp"),
        ("tls/record.py", "tls"),
        ("tls/x509/path.py", "tls.x509"),
        ("outcomes/category.py", "outcomes"),
        ("tests/netstack/test_ipv4.py", None),
        ("tlsx/thing.py", None),
    ],
)
def test_a_file_belongs_to_the_most_specific_package(path: str, package: str | None) -> None:
    assert package_of(path) == package


def test_the_judged_figure_is_branch_outcomes_taken() -> None:
    # every line ran, but only half the branch outcomes were taken: 50 %, not the 100 % of lines.
    totals = totals_by_package({"tls/record.py": summary(10, 0, 10, 5)})
    assert totals["tls"].branch_percent == pytest.approx(50.0)
    assert totals["tls"].line_percent == pytest.approx(100.0)
    assert totals["tls.x509"].branch_percent == pytest.approx(100.0)  # nothing to cover is not a failure


def test_subpackages_do_not_count_towards_their_parent() -> None:
    totals = totals_by_package({"tls/record.py": summary(10, 0, 4, 4), "tls/x509/path.py": summary(10, 10, 4, 0)})
    assert totals["tls"].branch_percent == pytest.approx(100.0)
    assert totals["tls.x509"].branch_percent == pytest.approx(0.0)


def test_a_core_below_its_floor_is_reported_and_one_at_it_is_not() -> None:
    totals = {"tls": Totals(branches=1000, covered_branches=950),
              "netstack": Totals(branches=1000, covered_branches=949)}
    failures = below_floor(totals, {"tls": 95.0, "netstack": 95.0})
    assert len(failures) == 1
    assert failures[0].startswith("netstack: branch coverage 94.9 %")


def test_every_floor_names_a_reported_package() -> None:
    assert set(coverage_report.FLOORS) <= set(coverage_report.PACKAGES)
