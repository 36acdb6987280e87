"""Role-dependent rules not covered through whole chains in test_validation.py: CA profile details."""

from __future__ import annotations

from dataclasses import replace

import pytest

from outcomes.category import Category
from tests.tls.x509.factory import NOW, Spec, ca_spec, issue, make_pki, shared_key
from tls.x509 import Purpose, X509Error, parse_certificate
from tls.x509.checks import check_ca, check_leaf
from tls.x509.model import AuthorityKeyIdentifier, Certificate, Name

SERVER = Purpose.SERVER_AUTH


def ca() -> Certificate:
    return parse_certificate(make_pki().intermediate.der)


def refused_ca(certificate: Certificate, *, anchor: bool = False) -> X509Error:
    with pytest.raises(X509Error) as info:
        check_ca(certificate, SERVER, NOW, anchor=anchor)
    return info.value


def test_a_good_ca_passes() -> None:
    check_ca(ca(), SERVER, NOW, anchor=False)
    check_ca(parse_certificate(make_pki().root.der), SERVER, NOW, anchor=True)


def test_ca_with_empty_subject() -> None:
    error = refused_ca(replace(ca(), subject=Name(b"\x30\x00", (), ())))
    assert (error.category, error.reason) == (Category.UNTRUSTED_CHAIN, "intermediate has an empty subject")


def test_ca_authority_key_identifier_without_key_id() -> None:
    error = refused_ca(replace(ca(), authority_key_identifier=AuthorityKeyIdentifier(None, True)))
    assert "has no keyIdentifier" in error.reason


def test_self_signed_anchor_with_inconsistent_aki() -> None:
    root = parse_certificate(make_pki().root.der)
    assert root.subject_key_identifier is not None
    wrong = replace(root, authority_key_identifier=AuthorityKeyIdentifier(b"\x01\x02", False))
    assert "inconsistent" in refused_ca(wrong, anchor=True).reason
    with_issuer = replace(root, authority_key_identifier=AuthorityKeyIdentifier(root.subject_key_identifier, True))
    assert "inconsistent" in refused_ca(with_issuer, anchor=True).reason
    check_ca(replace(root, authority_key_identifier=AuthorityKeyIdentifier(root.subject_key_identifier, False)),
             SERVER, NOW, anchor=True)


def test_anchor_needs_no_aki_but_an_intermediate_does() -> None:
    cross = issue(ca_spec("Cross", aki=False), issuer=make_pki().root, key=shared_key("p256", 99))
    certificate = parse_certificate(cross.der)
    check_ca(certificate, SERVER, NOW, anchor=True)
    assert "authority key identifier" in refused_ca(certificate).reason


def test_intermediate_serial_zero() -> None:
    assert refused_ca(replace(ca(), serial=0)).category is Category.DECODE_ERROR


def test_leaf_checks_pass_for_a_good_leaf_and_client_purpose_is_checked() -> None:
    leaf = parse_certificate(make_pki().leaf.der)
    check_leaf(leaf, SERVER, None, NOW)
    with pytest.raises(X509Error) as info:
        check_leaf(leaf, Purpose.CLIENT_AUTH, None, NOW)
    assert info.value.category is Category.WRONG_EXTENDED_KEY_USAGE
    assert parse_certificate(issue(Spec()).der).self_issued
