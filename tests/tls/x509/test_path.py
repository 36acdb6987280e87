"""Path building: bounded work (no timings: work is counted), cycles, backtracking, self-issued rules."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from cryptography import x509

import tls.x509.path as path_module
from outcomes.category import Category
from tests.tls.x509.factory import NOW, Issued, Spec, ca_spec, issue, new_key, shared_key
from tls.x509 import DEFAULT_LIMITS, PeerName, Purpose, X509Error, signature, validate

HOST = PeerName("DNS", "leaf.example.com")


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts signature verifications made by the path builder."""
    calls: list[int] = []
    real = signature.verify_signature

    def counting(*args: Any) -> None:
        calls.append(1)
        real(*args)

    monkeypatch.setattr(path_module, "verify_signature", counting)
    return calls


def _pile(root: Issued, count: int, key_id: bytes) -> list[bytes]:
    """`count` CA certificates all named "Pile", all claiming the same key identifier, with distinct keys:
    every one is a candidate issuer for a leaf issued by "Pile", and none of them really signed it."""
    pile = []
    for serial in range(1, count + 1):
        ski = x509.SubjectKeyIdentifier(key_id)
        spec = ca_spec("Pile", ski=False, serial=serial, extra=((ski, False),))
        pile.append(issue(spec, issuer=root, key=new_key("p256")).der)
    return pile


def test_fifty_same_subject_certificates_stop_at_the_candidate_cap(verifications: list[int]) -> None:
    root = issue(ca_spec("Root"), key=shared_key("p256", 60))
    signer = issue(ca_spec("Pile"), issuer=root, key=shared_key("p256", 61))
    leaf = issue(Spec(), issuer=signer)
    key_id = signer.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    pile = _pile(root, 50, key_id)
    limits = replace(DEFAULT_LIMITS, max_chain_certificates=64, max_candidates=32)
    with pytest.raises(X509Error) as info:
        validate([leaf.der, *pile], anchors=[root.der], purpose=Purpose.SERVER_AUTH, name=HOST, time=NOW,
                 limits=limits)
    assert info.value.category is Category.PATH_BUILDING_LIMIT
    assert len(verifications) == 32  # every candidate up to the cap cost one check; none after it

    # With the real issuer among them, a path is found within the cap when it is early enough ...
    verifications.clear()
    found = validate([leaf.der, signer.der, *pile[:10]], anchors=[root.der], purpose=Purpose.SERVER_AUTH,
                     name=HOST, time=NOW, limits=limits)
    assert found.certificates[1].der == signer.der
    assert len(verifications) <= 11 + 1


def test_default_limits_refuse_a_pile_before_any_work(verifications: list[int]) -> None:
    root = issue(ca_spec("Root"), key=shared_key("p256", 60))
    signer = issue(ca_spec("Pile"), issuer=root, key=shared_key("p256", 61))
    leaf = issue(Spec(), issuer=signer)
    pile = [signer.der] * 50
    with pytest.raises(X509Error) as info:
        validate([leaf.der, *pile], anchors=[root.der], purpose=Purpose.SERVER_AUTH, name=HOST, time=NOW)
    assert info.value.category is Category.PATH_BUILDING_LIMIT
    assert verifications == []


def test_each_link_is_verified_once(verifications: list[int]) -> None:
    root = issue(ca_spec("Root"), key=shared_key("p256", 62))
    inter = issue(ca_spec("Inter"), issuer=root, key=shared_key("p256", 63))
    leaf = issue(Spec(), issuer=inter)
    validate([leaf.der, inter.der, root.der], anchors=[root.der], purpose=Purpose.SERVER_AUTH, name=HOST, time=NOW)
    assert len(verifications) == 2  # leaf<-inter, inter<-root; the anchor's self-signature is not checked


def test_cross_signed_cycle_without_anchor_terminates(verifications: list[int]) -> None:
    key_a, key_b = shared_key("p256", 64), shared_key("p256", 65)
    a_self = issue(ca_spec("A"), key=key_a)
    b_self = issue(ca_spec("B"), key=key_b)
    a_by_b = issue(ca_spec("A", serial=2), issuer=b_self, key=key_a)
    b_by_a = issue(ca_spec("B", serial=3), issuer=a_self, key=key_b)
    leaf = issue(Spec(), issuer=a_self)
    unrelated = issue(ca_spec("Unrelated"), key=shared_key("p256", 66))
    with pytest.raises(X509Error) as info:
        validate([leaf.der, a_by_b.der, b_by_a.der], anchors=[unrelated.der], purpose=Purpose.SERVER_AUTH,
                 name=HOST, time=NOW)
    assert info.value.category is Category.UNTRUSTED_CHAIN
    assert len(verifications) <= 2
    # ... and with B trusted, the cycle is the way to it.
    found = validate([leaf.der, a_by_b.der, b_by_a.der], anchors=[b_self.der], purpose=Purpose.SERVER_AUTH,
                     name=HOST, time=NOW)
    assert [c.der for c in found.certificates] == [leaf.der, a_by_b.der, b_self.der]


def test_absolute_path_length_cap() -> None:
    root = issue(ca_spec("Root"), key=shared_key("p256", 67))
    issuer, chain = root, list[bytes]()
    for depth in range(4):
        issuer = issue(ca_spec(f"Level {depth}"), issuer=issuer, key=shared_key("p256", 70 + depth))
        chain.insert(0, issuer.der)
    leaf = issue(Spec(), issuer=issuer)
    limits = replace(DEFAULT_LIMITS, max_path_length=5)
    with pytest.raises(X509Error) as info:
        validate([leaf.der, *chain], anchors=[root.der], purpose=Purpose.SERVER_AUTH, name=HOST, time=NOW,
                 limits=limits)
    assert info.value.category is Category.PATH_TOO_LONG
    found = validate([leaf.der, *chain], anchors=[root.der], purpose=Purpose.SERVER_AUTH, name=HOST, time=NOW,
                     limits=replace(limits, max_path_length=6))
    assert len(found.certificates) == 6


def test_self_issued_intermediate_does_not_count_against_path_length() -> None:
    root = issue(ca_spec("Root", path_length=1), key=shared_key("p256", 80))
    old_key, new = shared_key("p256", 81), shared_key("p256", 82)
    inter_old = issue(ca_spec("Inter", serial=1), issuer=root, key=old_key)
    rollover = issue(ca_spec("Inter", serial=2), issuer=inter_old, key=new)  # self-issued: Inter -> Inter
    leaf = issue(Spec(), issuer=rollover)
    found = validate([leaf.der, rollover.der, inter_old.der], anchors=[root.der], purpose=Purpose.SERVER_AUTH,
                     name=HOST, time=NOW)
    assert len(found.certificates) == 4
    limits = replace(DEFAULT_LIMITS, max_chain_depth=1)
    validate([leaf.der, rollover.der, inter_old.der], anchors=[root.der], purpose=Purpose.SERVER_AUTH,
             name=HOST, time=NOW, limits=limits)


def test_anchor_preferred_over_a_sent_copy_of_the_root() -> None:
    root = issue(ca_spec("Root"), key=shared_key("p256", 83))
    leaf = issue(Spec(), issuer=root)
    found = validate([leaf.der, root.der], anchors=[root.der], purpose=Purpose.SERVER_AUTH, name=HOST, time=NOW)
    assert len(found.certificates) == 2
