"""Name constraints on every name form we interpret, wildcard SANs, unknown forms, and the work budget."""

from __future__ import annotations

import ipaddress

import pytest
from cryptography import x509

from outcomes.category import Category
from tests.tls.x509.factory import Spec, ca_spec, issue, shared_key
from tls.x509 import X509Error, parse_certificate
from tls.x509.constraints import Budget, check_name_constraints
from tls.x509.model import Certificate, NameConstraints, Subtrees
from tls.x509.names import parse_name


def leaf(**changes: object) -> Certificate:
    return parse_certificate(issue(Spec(**changes)).der)  # type: ignore[arg-type]


def check(constraints: NameConstraints, certificate: Certificate, budget: int = 10_000) -> None:
    check_name_constraints(constraints, certificate, Budget(budget))


def refused(constraints: NameConstraints, certificate: Certificate) -> X509Error:
    with pytest.raises(X509Error) as info:
        check(constraints, certificate)
    return info.value


def permit(**subtrees: object) -> NameConstraints:
    return NameConstraints(Subtrees(**subtrees), None)  # type: ignore[arg-type]


def exclude(**subtrees: object) -> NameConstraints:
    return NameConstraints(None, Subtrees(**subtrees))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("dns", "constraint", "allowed"),
    [
        ("example.com", "example.com", True),
        ("www.example.com", "example.com", True),
        ("wwwexample.com", "example.com", False),
        ("Example.COM", "example.com", True),
        ("*.example.com", "example.com", True),
        ("*.example.com", "foo.example.com", False),
        ("example.org", "example.com", False),
        ("anything.test", "", True),
    ],
)
def test_dns_permitted(dns: str, constraint: str, allowed: bool) -> None:
    certificate = leaf(dns=(dns,), subject="x")
    if allowed:
        check(permit(dns=(constraint,)), certificate)
    else:
        assert refused(permit(dns=(constraint,)), certificate).category is Category.NAME_CONSTRAINTS


@pytest.mark.parametrize(
    ("dns", "constraint", "hit"),
    [
        ("bad.example.com", "bad.example.com", True),
        ("x.bad.example.com", "bad.example.com", True),
        ("good.example.com", "bad.example.com", False),
        ("*.example.com", "bad.example.com", True),  # CVE-2025-61727: the wildcard would cover the excluded name
        ("*.example.com", "x.bad.example.com", False),
        ("*.bad.example.com", "bad.example.com", True),
    ],
)
def test_dns_excluded(dns: str, constraint: str, hit: bool) -> None:
    certificate = leaf(dns=(dns,), subject="x")
    if hit:
        assert refused(exclude(dns=(constraint,)), certificate).category is Category.NAME_CONSTRAINTS
    else:
        check(exclude(dns=(constraint,)), certificate)


def _range(network: str) -> tuple[bytes, bytes]:
    net = ipaddress.ip_network(network)
    return net.network_address.packed, net.netmask.packed


def test_ip_constraints() -> None:
    v4 = leaf(dns=(), ips=("192.0.2.10",), subject="x")
    check(permit(ip_ranges=(_range("192.0.2.0/24"),)), v4)
    assert refused(permit(ip_ranges=(_range("198.51.100.0/24"),)), v4).category is Category.NAME_CONSTRAINTS
    assert refused(exclude(ip_ranges=(_range("192.0.0.0/8"),)), v4).category is Category.NAME_CONSTRAINTS
    # An IPv6 range neither permits nor excludes an IPv4 address.
    check(exclude(ip_ranges=(_range("::/0"),)), v4)
    assert refused(permit(ip_ranges=(_range("::/0"),)), v4).category is Category.NAME_CONSTRAINTS


def test_constraint_of_another_form_does_not_apply() -> None:
    check(permit(ip_ranges=(_range("192.0.2.0/24"),)), leaf(subject="x"))


@pytest.mark.parametrize(
    ("constraint", "allowed"),
    [("me@example.com", True), ("ME@example.com", False), ("example.com", True), (".example.com", False),
     ("sub.example.com", False), ("**@example.com", False)],
)
def test_email_constraints(constraint: str, allowed: bool) -> None:
    certificate = leaf(dns=(), emails=("me@example.com",), subject="x")
    if allowed:
        check(permit(emails=(constraint,)), certificate)
    else:
        refused(permit(emails=(constraint,)), certificate)


def test_email_constraint_on_subdomains() -> None:
    check(permit(emails=(".example.com",)), leaf(dns=(), emails=("me@mail.example.com",), subject="x"))


def test_email_address_in_the_subject_dn_is_constrained_too() -> None:
    subject = x509.Name([x509.NameAttribute(x509.NameOID.EMAIL_ADDRESS, "me@evil.test")])
    certificate = leaf(subject=subject, dns=("leaf.example.com",))
    assert refused(permit(emails=("example.com",)), certificate).category is Category.NAME_CONSTRAINTS


def _dn(*parts: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in parts])


def test_directory_name_constraints_are_prefixes() -> None:
    org = _dn((x509.NameOID.COUNTRY_NAME, "DE"), (x509.NameOID.ORGANIZATION_NAME, "Pinata"))
    inside = leaf(subject=_dn((x509.NameOID.COUNTRY_NAME, "DE"), (x509.NameOID.ORGANIZATION_NAME, "Pinata"),
                              (x509.NameOID.COMMON_NAME, "leaf")))
    outside = leaf(subject=_dn((x509.NameOID.COUNTRY_NAME, "DE"), (x509.NameOID.ORGANIZATION_NAME, "Other")))
    constraint = parse_name(org.public_bytes())
    check(permit(directory_names=(constraint,)), inside)
    assert refused(permit(directory_names=(constraint,)), outside).category is Category.NAME_CONSTRAINTS
    assert refused(exclude(directory_names=(constraint,)), inside).category is Category.NAME_CONSTRAINTS


def test_unprocessable_form_with_that_form_present_is_refused() -> None:
    uri = x509.SubjectAlternativeName([x509.DNSName("leaf.example.com"),
                                       x509.UniformResourceIdentifier("https://leaf.example.com/")])
    root = issue(ca_spec("Root"), key=shared_key("p256", 90))
    certificate = parse_certificate(issue(Spec(san=False, extra=((uri, False),)), issuer=root).der)
    error = refused(exclude(other_forms=frozenset({"uniformResourceIdentifier"})), certificate)
    assert "cannot be evaluated" in error.reason
    # Without such a name in the certificate the unknown constraint form is irrelevant.
    check(exclude(other_forms=frozenset({"uniformResourceIdentifier"})), leaf())


def test_budget_is_charged_and_bounded() -> None:
    certificate = leaf(dns=tuple(f"h{i}.example.com" for i in range(10)), subject="x")
    constraints = permit(dns=(*(f"c{i}.example.com" for i in range(9)), "example.com"))
    budget = Budget(1000)
    check_name_constraints(constraints, certificate, budget)
    assert budget.remaining == 1000 - 10 * 10
    with pytest.raises(X509Error) as info:
        check_name_constraints(constraints, certificate, Budget(99))
    assert info.value.category is Category.PATH_BUILDING_LIMIT
