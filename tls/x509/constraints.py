"""NameConstraints (RFC 5280 4.2.1.10) applied the way the web PKI does it.

Each CA's constraints are checked independently against every name of every certificate below it in the
path (except self-issued intermediates), which is equivalent to RFC 5280's running intersection of
permitted subtrees and union of excluded ones. Interpreted forms: dNSName, iPAddress, rfc822Name,
directoryName (also applied to the subject DN and its emailAddress attributes). A constraint on any other
form makes a certificate carrying a name of that form unacceptable, as the RFC requires of names a
validator cannot process. Wildcard SANs are judged by every name they could stand for (CVE-2025-61727).

Work is bounded: every name x subtree comparison is charged to a budget that the caller owns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from outcomes.category import Category
from tls.x509 import oids
from tls.x509.errors import X509Error
from tls.x509.hostname import mailbox_equal
from tls.x509.model import Certificate, Name, NameConstraints

N = TypeVar("N")
C = TypeVar("C")


@dataclass
class Budget:
    """Comparisons left for this validation; spending past zero is a refusal, not a slowdown."""

    remaining: int

    def spend(self, amount: int) -> None:
        self.remaining -= amount
        if self.remaining < 0:
            raise X509Error(Category.PATH_BUILDING_LIMIT, "name constraint work limit reached")


def check_name_constraints(constraints: NameConstraints, certificate: Certificate, budget: Budget) -> None:
    """Raise name-constraints unless every name in `certificate` satisfies `constraints`."""
    san = certificate.subject_alt_name
    dns = san.dns if san else ()
    ips = san.ips if san else ()
    emails = (san.emails if san else ()) + certificate.subject.values(oids.EMAIL_ADDRESS)
    directories: tuple[Name, ...] = (san.directory_names if san else ()) + (
        () if certificate.subject.is_empty else (certificate.subject,)
    )
    other_forms = san.other_forms if san else frozenset()
    for subtrees, permitted in ((constraints.permitted, True), (constraints.excluded, False)):
        if subtrees is None:
            continue
        unprocessable = other_forms & subtrees.other_forms
        if unprocessable:
            raise X509Error(
                Category.NAME_CONSTRAINTS, f"constraint on name form {sorted(unprocessable)[0]} cannot be evaluated"
            )
        _check_form(dns, subtrees.dns, permitted, _dns_within, form="DNS", budget=budget)
        _check_form(ips, subtrees.ip_ranges, permitted, _ip_within, form="IP", budget=budget)
        _check_form(emails, subtrees.emails, permitted, _email_within, form="email", budget=budget)
        _check_form(
            directories, subtrees.directory_names, permitted, _directory_within, form="directory", budget=budget
        )


def _check_form(
    names: tuple[N, ...],
    subtrees: tuple[C, ...],
    permitted: bool,
    within: Callable[[N, C, bool], bool],
    *,
    form: str,
    budget: Budget,
) -> None:
    if not names or not subtrees:
        return
    budget.spend(len(names) * len(subtrees))
    for name in names:
        if permitted:
            if not any(within(name, subtree, True) for subtree in subtrees):
                raise X509Error(Category.NAME_CONSTRAINTS, f"{form} name outside the permitted subtrees")
        elif any(within(name, subtree, False) for subtree in subtrees):
            raise X509Error(Category.NAME_CONSTRAINTS, f"{form} name inside an excluded subtree")


def _dns_within(name: str, constraint: str, permitted: bool) -> bool:
    """Is `name` (maybe a wildcard) inside `constraint`? For exclusion a wildcard counts if ANY name it
    matches is inside; for permission only if ALL are."""
    name = name.lower()
    constraint = constraint.lower()
    if not constraint:
        return True
    if name.startswith("*."):
        base = name[2:]
        if _suffix_within(base, constraint):
            return True
        if permitted:
            return False
        # A single-label wildcard over `base` matches `constraint` itself when it is one label below base.
        return constraint.endswith("." + base) and constraint.count(".") == base.count(".") + 1
    return _suffix_within(name, constraint)


def _suffix_within(name: str, constraint: str) -> bool:
    return name == constraint or name.endswith("." + constraint)


def _ip_within(address: bytes, network_mask: tuple[bytes, bytes], permitted: bool) -> bool:
    network, mask = network_mask
    if len(address) != len(network):
        return False
    return all((a & m) == (n & m) for a, n, m in zip(address, network, mask, strict=True))


def _email_within(mailbox: str, constraint: str, permitted: bool) -> bool:
    if "@" in constraint:
        return mailbox_equal(mailbox, constraint)
    domain = mailbox.rpartition("@")[2].lower()
    constraint = constraint.lower()
    if constraint.startswith("."):
        return domain.endswith(constraint)
    return domain == constraint


def _directory_within(name: Name, constraint: Name, permitted: bool) -> bool:
    return name.rdns[: len(constraint.rdns)] == constraint.rdns
