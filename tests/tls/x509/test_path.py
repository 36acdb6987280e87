"""Path building: bounded work (no timings: work is counted), cycles, backtracking, self-issued rules."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tls.x509.path as path_module
from bench.certs import impostor_chain
from outcomes.category import Category
from tests.tls.x509.factory import NOW, Issued, Spec, ca_spec, issue, new_key, shared_key
from tls.x509 import DEFAULT_LIMITS, PeerName, Purpose, X509Error, keys, signature, validate
from tls.x509.work import Work

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
    # The signature budget is lifted here: this test is about the candidate cap (see the budget tests below).
    limits = replace(DEFAULT_LIMITS, max_chain_certificates=64, max_candidates=32, max_signature_checks=64)
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


def _key_id(issued: Issued) -> bytes:
    return issued.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest


def test_impostors_of_the_anchor_are_refused_without_signature_checks_or_parsing(verifications: list[int]) -> None:
    """Issue 15: before, the seven impostors were all parsed and verified against each other until the
    candidate cap (32 checks, path-building-limit). A certificate with the anchor's name and key identifier
    but another key cannot be the anchor, so only the leaf's own link to the anchor is checked."""
    root = issue(ca_spec("Root"), key=shared_key("p256", 90))
    chain = impostor_chain(root.certificate, 7, Spec()).chain
    with pytest.raises(X509Error) as info:
        validate(chain, anchors=[root.der], purpose=Purpose.SERVER_AUTH, name=HOST, time=NOW)
    assert info.value.category is Category.CHAIN_SIGNATURE_INVALID  # the leaf names the anchor, which did not sign it
    assert len(verifications) == 1
    work = Work()
    with pytest.raises(X509Error):
        validate(chain, anchors=[root.der], purpose=Purpose.SERVER_AUTH, name=HOST, time=NOW, work=work)
    assert (work.signature_checks, work.candidates) == (1, 1)
    assert work.certificates_parsed == 1  # the leaf; no impostor was parsed


def test_a_key_rollover_certificate_with_the_anchors_name_is_not_an_impostor() -> None:
    """Same name as the anchor with another key is legitimate when the key identifier is the new key's:
    the anchor's old key certifies its new one (RFC 4210 4.4 "new with old")."""
    old = issue(ca_spec("Root"), key=shared_key("p256", 91))
    new_with_old = issue(ca_spec("Root", serial=2), issuer=old, key=shared_key("p256", 92))
    leaf = issue(Spec(), issuer=new_with_old)
    found = validate([leaf.der, new_with_old.der], anchors=[old.der], purpose=Purpose.SERVER_AUTH, name=HOST,
                     time=NOW)
    assert [c.der for c in found.certificates] == [leaf.der, new_with_old.der, old.der]


def test_the_signature_budget_refuses_when_exceeded(verifications: list[int]) -> None:
    """Same-named CA certificates that pass every cheap comparison each cost a signature check; the budget,
    not the chain, decides how many are made."""
    root = issue(ca_spec("Root"), key=shared_key("p256", 60))
    signer = issue(ca_spec("Pile"), issuer=root, key=shared_key("p256", 61))
    leaf = issue(Spec(), issuer=signer)
    pile = _pile(root, 10, _key_id(signer))
    limits = replace(DEFAULT_LIMITS, max_signature_checks=4)
    work = Work()
    with pytest.raises(X509Error) as info:
        validate([leaf.der, *pile], anchors=[root.der], purpose=Purpose.SERVER_AUTH, name=HOST, time=NOW,
                 limits=limits, work=work)
    assert info.value.category is Category.PATH_BUILDING_LIMIT
    assert "signature checks" in info.value.reason
    assert len(verifications) == work.signature_checks == 4
    assert work.certificates_parsed == 1  # none of the pile verified, so none was parsed
    # The real issuer first: two checks are enough.
    validate([leaf.der, signer.der, *pile], anchors=[root.der], purpose=Purpose.SERVER_AUTH, name=HOST, time=NOW,
             limits=replace(limits, max_signature_checks=2))


def test_the_parse_budget_refuses_when_exceeded() -> None:
    pki_root = issue(ca_spec("Root"), key=shared_key("p256", 62))
    inter = issue(ca_spec("Inter"), issuer=pki_root, key=shared_key("p256", 63))
    leaf = issue(Spec(), issuer=inter)
    needed = len(leaf.der) + len(inter.der)
    work = Work()
    validate([leaf.der, inter.der], anchors=[pki_root.der], purpose=Purpose.SERVER_AUTH, name=HOST, time=NOW,
             limits=replace(DEFAULT_LIMITS, max_parse_bytes=needed), work=work)
    assert (work.parse_bytes, work.certificates_parsed) == (needed, 2)
    for budget in (needed - 1, len(leaf.der) - 1):
        with pytest.raises(X509Error) as info:
            validate([leaf.der, inter.der], anchors=[pki_root.der], purpose=Purpose.SERVER_AUTH, name=HOST,
                     time=NOW, limits=replace(DEFAULT_LIMITS, max_parse_bytes=budget))
        assert info.value.category is Category.PATH_BUILDING_LIMIT
        assert "parse" in info.value.reason


def test_copies_of_one_key_cost_one_check_per_child(verifications: list[int]) -> None:
    """Certificates that differ only in serial carry one key: the leaf's signature is checked against it once
    (before: once per copy). The copies' issuer is not trusted, so no path is found."""
    root = issue(ca_spec("Root"), key=shared_key("p256", 64))
    stranger = issue(ca_spec("Stranger"), key=shared_key("p256", 65))
    inter_key = shared_key("p256", 66)
    copies = [issue(ca_spec("Inter", serial=10 + n), issuer=stranger, key=inter_key) for n in range(5)]
    leaf = issue(Spec(), issuer=copies[0])
    with pytest.raises(X509Error):
        validate([leaf.der, *(c.der for c in copies)], anchors=[root.der], purpose=Purpose.SERVER_AUTH, name=HOST,
                 time=NOW)
    assert len(verifications) == 1


def test_certificates_on_no_path_to_an_anchor_are_never_parsed(verifications: list[int]) -> None:
    """The other shape of issue 15: eleven CA certificates under a name of the attacker's, all holding the key
    that signed the leaf, all claiming the anchor as issuer (name and key identifier) without its signature.
    Each verifies the leaf, so parsing on reaching them cost eleven parses; the search runs on peeked bytes
    and parses only a path whose signatures reach the anchor, which here is none."""
    root = issue(ca_spec("Root"), key=shared_key("p256", 93))
    attacker_key = shared_key("p256", 94)
    forged = Issued(root.certificate, attacker_key, root.name)  # the anchor's name and key id, another key
    fakes = [
        issue(ca_spec("Evil", serial=200 + n, aki=False,
                      extra=((x509.AuthorityKeyIdentifier(_key_id(root), None, None), False),)),
              issuer=forged, key=attacker_key)
        for n in range(11)
    ]
    leaf = issue(Spec(), issuer=fakes[0])
    chain = [leaf.der, *(f.der for f in fakes)]
    work = Work()
    roomy = replace(DEFAULT_LIMITS, max_signature_checks=16)  # room for every link: the search ends on its own
    with pytest.raises(X509Error) as info:
        validate(chain, anchors=[root.der], purpose=Purpose.SERVER_AUTH, name=HOST, time=NOW, limits=roomy,
                 work=work)
    assert info.value.category is Category.CHAIN_SIGNATURE_INVALID
    assert work.certificates_parsed == 1  # the leaf
    assert len(verifications) == work.signature_checks == 1 + 11  # leaf <- the one key; each fake <- anchor
    verifications.clear()
    work = Work()
    with pytest.raises(X509Error) as info:  # the default budget ends it sooner (issue 17: its cost was 4x)
        validate(chain, anchors=[root.der], purpose=Purpose.SERVER_AUTH, name=HOST, time=NOW, work=work)
    assert info.value.category is Category.PATH_BUILDING_LIMIT
    assert work.certificates_parsed == 1
    assert len(verifications) == work.signature_checks == DEFAULT_LIMITS.max_signature_checks


def test_a_link_refused_after_the_anchor_is_reached_unwinds_to_its_depth(verifications: list[int]) -> None:
    """Role rules run once a path's signatures reach the anchor. The first intermediate here lacks
    keyCertSign: the refusal is found at the top, and the search goes back down to the leaf's link and
    takes the other certificate for the same key; links above it were verified once, not twice."""
    root = issue(ca_spec("Root"), key=shared_key("p256", 95))
    mid = issue(ca_spec("Mid"), issuer=root, key=shared_key("p256", 96))
    inter_key = shared_key("p256", 97)
    bad = issue(ca_spec("Inter", serial=1, key_usage=("digital_signature",)), issuer=mid, key=inter_key)
    good = issue(ca_spec("Inter", serial=2), issuer=mid, key=inter_key)
    leaf = issue(Spec(), issuer=good)
    found = validate([leaf.der, bad.der, good.der, mid.der], anchors=[root.der], purpose=Purpose.SERVER_AUTH,
                     name=HOST, time=NOW)
    assert [c.der for c in found.certificates] == [leaf.der, good.der, mid.der, root.der]
    assert len(verifications) == 4  # leaf<-Inter key, bad<-Mid, good<-Mid, Mid<-Root
    with pytest.raises(X509Error) as info:
        validate([leaf.der, bad.der, mid.der], anchors=[root.der], purpose=Purpose.SERVER_AUTH, name=HOST, time=NOW)
    assert info.value.category is Category.WRONG_KEY_USAGE


_NAMES = ("Root", "A", "B")
_KEYS = (0, 1, 2, 3)  # 0 is the anchor's key


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_NAMES), st.sampled_from(_KEYS), st.sampled_from(_NAMES),
                          st.sampled_from(_KEYS), st.booleans()), min_size=1, max_size=11),
       st.tuples(st.sampled_from(_NAMES), st.sampled_from(_KEYS)))
def test_any_graph_of_ca_certificates_stays_within_the_work_limits(
    cas: list[tuple[str, int, str, int, bool]], leaf_issuer: tuple[str, int]
) -> None:
    """Whatever names, keys and key identifiers a peer combines, validation ends in a path or a refusal
    after at most the budgeted work (the meter refuses before spending past a limit)."""
    keys = [shared_key("p256", 110 + k) for k in _KEYS]
    root = issue(ca_spec("Root"), key=keys[0])

    def signer(name: str, key: int) -> Issued:
        return Issued(root.certificate, keys[key], x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)]))

    peer = []
    for serial, (subject, key, issuer, signing_key, claim_anchor_id) in enumerate(cas, start=10):
        extra = ((x509.SubjectKeyIdentifier(_key_id(root)), False),) if claim_anchor_id else ()
        spec = ca_spec(subject, serial=serial, ski=not claim_anchor_id, extra=extra)
        peer.append(issue(spec, issuer=signer(issuer, signing_key), key=keys[key]).der)
    leaf = issue(Spec(), issuer=signer(*leaf_issuer))
    limits = replace(DEFAULT_LIMITS, max_signature_checks=8, max_parse_bytes=len(leaf.der) + 2000)
    work = Work()
    try:
        validate([leaf.der, *peer], anchors=[root.der], purpose=Purpose.SERVER_AUTH, name=HOST, time=NOW,
                 limits=limits, work=work)
    except X509Error as error:
        assert isinstance(error.category, Category)  # noqa: PT017 - any refusal is fine; the bounds are the point
    assert work.signature_checks <= limits.max_signature_checks
    assert work.parse_bytes <= limits.max_parse_bytes
    assert work.candidates <= limits.max_candidates


def test_an_intermediate_key_decoded_for_its_signature_is_not_decoded_again_by_its_parse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The intermediate's key is decoded to verify the leaf before the intermediate is parsed; its parse takes
    that decoding (same bytes) instead of decoding its SubjectPublicKeyInfo a second time."""
    decoded: list[bytes] = []
    real = keys.parse_spki

    def counting(der: bytes) -> Any:
        decoded.append(der)
        return real(der)

    monkeypatch.setattr(path_module, "parse_spki", counting)
    monkeypatch.setattr("tls.x509.parse.parse_spki", counting)
    root = issue(ca_spec("Root"), key=shared_key("rsa2048", 70))
    inter = issue(ca_spec("Inter"), issuer=root, key=shared_key("rsa2048", 71))
    leaf = issue(Spec(), issuer=inter, key=shared_key("p256", 72))
    path = validate([leaf.der, inter.der], anchors=[root.der], purpose=Purpose.SERVER_AUTH, name=HOST, time=NOW)
    inter_spki = path.certificates[1].spki_der
    assert decoded.count(inter_spki) == 1
    assert len(decoded) == len(set(decoded))  # no key decoded twice (the anchor's, new here, once in its parse)
    assert path.certificates[0].spki_der in decoded
    assert path.certificates[1].public_key_info == real(inter_spki)
