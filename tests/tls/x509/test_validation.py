"""validate(): good chains for every key type, and one refusal test per rule, each with its category."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier
from hypothesis import given, settings
from hypothesis import strategies as st

from outcomes.category import Category
from tests.tls.psspki import HAVE_OPENSSL, PemPair, PssPki
from tests.tls.x509.factory import (
    NOW,
    DerNode,
    Issued,
    KeyType,
    PrivateKey,
    Spec,
    ca_spec,
    edited,
    extension_nodes,
    issue,
    make_pki,
    new_key,
    resign,
    shared_key,
    tbs_fields,
    tlv,
)
from tls.x509 import DEFAULT_LIMITS, KeyKind, PeerName, Purpose, RsaPssPublicKey, X509Error, validate

SERVER = Purpose.SERVER_AUTH
HOST = PeerName("DNS", "leaf.example.com")


def refused(chain: list[bytes], anchors: list[bytes], *, purpose: Purpose = SERVER,
            name: PeerName | None = HOST, time: object = NOW, **limits: int) -> X509Error:
    with pytest.raises(X509Error) as info:
        validate(chain, anchors=anchors, purpose=purpose, name=name, time=time,  # type: ignore[arg-type]
                 limits=replace(DEFAULT_LIMITS, **limits))
    return info.value


@pytest.mark.parametrize("key_type", ["p256", "p384", "p521", "rsa2048", "ed25519"])
def test_valid_chain_for_each_key_type(key_type: KeyType) -> None:
    pki = make_pki(key_type)
    path = validate(pki.chain, anchors=pki.anchors, purpose=SERVER, name=HOST, time=NOW)
    assert [c.der for c in path.certificates] == [pki.leaf.der, pki.intermediate.der, pki.root.der]
    assert path.leaf.der == pki.leaf.der
    assert path.anchor.der == pki.root.der


def test_rsa_pss_signatures_verify() -> None:
    root = issue(ca_spec("PSS Root", pss=True), key=shared_key("rsa2048", 20))
    leaf = issue(Spec(pss=True), issuer=root, key=shared_key("p256", 21))
    path = validate([leaf.der], anchors=[root.der], purpose=SERVER, name=HOST, time=NOW)
    assert len(path.certificates) == 2


def test_intermediates_in_any_order_and_with_junk() -> None:
    pki = make_pki()
    unrelated = issue(ca_spec("Somebody Else"), key=shared_key("p256", 30))
    chain = [pki.leaf.der, b"\x30\x03\x02\x01\x01", unrelated.der, pki.intermediate.der, pki.root.der]
    path = validate(chain, anchors=pki.anchors, purpose=SERVER, name=HOST, time=NOW)
    assert len(path.certificates) == 3


def test_client_purpose_without_name() -> None:
    pki = make_pki(leaf=Spec(subject="client", eku=(ExtendedKeyUsageOID.CLIENT_AUTH,), dns=("client.example",)))
    path = validate(pki.chain, anchors=pki.anchors, purpose=Purpose.CLIENT_AUTH, name=None, time=NOW)
    assert path.leaf.der == pki.leaf.der


def test_no_certificate() -> None:
    assert refused([], [make_pki().root.der]).category is Category.NO_CERTIFICATE


def test_untrusted_root() -> None:
    pki = make_pki()
    other = issue(ca_spec("Other Root"), key=shared_key("p256", 31))
    assert refused(pki.chain, [other.der]).category is Category.UNTRUSTED_CHAIN


def test_missing_intermediate() -> None:
    pki = make_pki()
    assert refused([pki.leaf.der], pki.anchors).category is Category.UNTRUSTED_CHAIN


def test_self_signed_leaf_is_not_trusted_even_if_it_is_an_anchor() -> None:
    leaf = issue(Spec())
    assert refused([leaf.der], [leaf.der]).category is Category.UNTRUSTED_CHAIN


def test_signature_by_the_wrong_key() -> None:
    pki = make_pki()
    # Same issuer name and AKI as the real intermediate, but signed by another key.
    forged = edited(pki.leaf, new_key("p256"), lambda tree: None)
    assert refused([forged, pki.intermediate.der], pki.anchors).category is Category.CHAIN_SIGNATURE_INVALID


def test_ca_as_leaf() -> None:
    pki = make_pki(leaf=replace(ca_spec("leaf.example.com"), san=True, dns=("leaf.example.com",),
                                eku=(ExtendedKeyUsageOID.SERVER_AUTH,)))
    assert refused(pki.chain, pki.anchors).category is Category.CA_AS_LEAF


@pytest.mark.parametrize(
    ("usage", "reason"),
    [(("key_encipherment",), "digitalSignature"), (("digital_signature", "key_cert_sign"), "CA key usage")],
)
def test_leaf_key_usage(usage: tuple[str, ...], reason: str) -> None:
    pki = make_pki(leaf=Spec(key_usage=usage))
    error = refused(pki.chain, pki.anchors)
    assert error.category is Category.WRONG_KEY_USAGE
    assert reason in error.reason


def test_intermediate_without_key_cert_sign() -> None:
    pki = make_pki(intermediate=ca_spec("Test Intermediate", key_usage=("digital_signature",)))
    assert refused(pki.chain, pki.anchors).category is Category.WRONG_KEY_USAGE


@pytest.mark.parametrize(
    "leaf",
    [
        Spec(eku=(ExtendedKeyUsageOID.CLIENT_AUTH,)),
        Spec(eku=None),
        Spec(eku=(ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE)),
        Spec(eku_critical=True),
    ],
    ids=["client-only", "absent", "any", "critical"],
)
def test_leaf_extended_key_usage(leaf: Spec) -> None:
    pki = make_pki(leaf=leaf)
    assert refused(pki.chain, pki.anchors).category is Category.WRONG_EXTENDED_KEY_USAGE


def test_intermediate_eku_must_allow_the_purpose() -> None:
    pki = make_pki(intermediate=ca_spec("Test Intermediate", eku=(ExtendedKeyUsageOID.CLIENT_AUTH,)))
    assert refused(pki.chain, pki.anchors).category is Category.WRONG_EXTENDED_KEY_USAGE
    allowed = make_pki(intermediate=ca_spec("Test Intermediate", eku=(ExtendedKeyUsageOID.SERVER_AUTH,)))
    validate(allowed.chain, anchors=allowed.anchors, purpose=SERVER, name=HOST, time=NOW)


def test_anchor_with_eku_is_refused() -> None:
    root = issue(ca_spec("EKU Root", eku=(ExtendedKeyUsageOID.SERVER_AUTH,)), key=shared_key("p256", 32))
    leaf = issue(Spec(), issuer=root)
    assert refused([leaf.der], [root.der]).category is Category.WRONG_EXTENDED_KEY_USAGE


@pytest.mark.parametrize("which", ["leaf", "intermediate", "root"])
def test_expired_and_not_yet_valid(which: str) -> None:
    pki = make_pki()
    cert = {"leaf": pki.leaf, "intermediate": pki.intermediate, "root": pki.root}[which]
    assert refused(pki.chain, pki.anchors, time=cert.certificate.not_valid_after_utc + timedelta(seconds=1)).category \
        is Category.EXPIRED
    assert refused(pki.chain, pki.anchors, time=cert.certificate.not_valid_before_utc - timedelta(seconds=1)).category \
        is Category.NOT_YET_VALID


def test_validity_bounds_are_inclusive_at_whole_seconds() -> None:
    pki = make_pki()
    end = pki.leaf.certificate.not_valid_after_utc
    validate(pki.chain, anchors=pki.anchors, purpose=SERVER, name=HOST, time=end + timedelta(microseconds=999))
    assert refused(pki.chain, pki.anchors, time=end + timedelta(seconds=1)).category is Category.EXPIRED


def test_version_1_leaf_is_refused() -> None:
    pki = make_pki()

    def to_v1(tree: DerNode) -> None:
        fields = tbs_fields(tree)
        del fields[0]  # [0] version
        del fields[-1]  # extensions (a v1 certificate cannot have them)

    v1 = edited(pki.leaf, pki.intermediate.key, to_v1)
    assert refused([v1, pki.intermediate.der], pki.anchors).category is Category.NOT_V3


def test_path_length_constraint() -> None:
    root = issue(ca_spec("Root", path_length=0), key=shared_key("p256", 33))
    inter = issue(ca_spec("Inter"), issuer=root, key=shared_key("p256", 34))
    leaf = issue(Spec(), issuer=inter)
    assert refused([leaf.der, inter.der], [root.der]).category is Category.PATH_TOO_LONG


def test_max_chain_depth() -> None:
    pki = make_pki()
    assert refused(pki.chain, pki.anchors, max_chain_depth=0).category is Category.PATH_TOO_LONG
    validate(pki.chain, anchors=pki.anchors, purpose=SERVER, name=HOST, time=NOW,
             limits=replace(DEFAULT_LIMITS, max_chain_depth=1))


def test_too_many_certificates_sent() -> None:
    pki = make_pki()
    chain = pki.chain + [pki.intermediate.der] * DEFAULT_LIMITS.max_chain_certificates
    assert refused(chain, pki.anchors).category is Category.PATH_BUILDING_LIMIT


@pytest.mark.parametrize(
    "peer",
    [PeerName("DNS", "other.example.com"), PeerName("IP", "192.0.2.1"), PeerName("DNS", "bad_name.example.com")],
)
def test_name_mismatch(peer: PeerName) -> None:
    pki = make_pki()
    assert refused(pki.chain, pki.anchors, name=peer).category is Category.NAME_MISMATCH


def test_leaf_without_san_fails_the_name_check_but_not_a_chain_only_check() -> None:
    pki = make_pki(leaf=Spec(san=False))
    assert refused(pki.chain, pki.anchors).category is Category.NAME_MISMATCH
    validate(pki.chain, anchors=pki.anchors, purpose=SERVER, name=None, time=NOW)


def test_ip_name_matches_ip_san_only() -> None:
    pki = make_pki(leaf=Spec(dns=(), ips=("192.0.2.7", "2001:db8::1")))
    validate(pki.chain, anchors=pki.anchors, purpose=SERVER, name=PeerName("IP", "192.0.2.7"), time=NOW)
    validate(pki.chain, anchors=pki.anchors, purpose=SERVER, name=PeerName("IP", "2001:DB8::1"), time=NOW)
    assert refused(pki.chain, pki.anchors, name=PeerName("DNS", "leaf.example.com")).category \
        is Category.NAME_MISMATCH


def test_ip_literal_in_a_dns_san_is_malformed() -> None:
    """x509-limbo rfc5280::san::ip-in-dns: the leaf is refused as malformed whatever name is asked for,
    not merely because an IP peer name is never compared with dNSNames."""
    pki = make_pki(leaf=Spec(dns=("leaf.example.com", "8.8.8.8")))
    for peer in (PeerName("IP", "8.8.8.8"), HOST, None):
        error = refused(pki.chain, pki.anchors, name=peer)
        assert error.category is Category.DECODE_ERROR
        assert "dNSName" in error.reason


def test_name_constraints_permitted_and_excluded() -> None:
    permitted = make_pki(intermediate=ca_spec("NC", permitted=[x509.DNSName("example.com")]))
    validate(permitted.chain, anchors=permitted.anchors, purpose=SERVER, name=HOST, time=NOW)
    outside = make_pki(intermediate=ca_spec("NC", permitted=[x509.DNSName("example.org")]))
    assert refused(outside.chain, outside.anchors).category is Category.NAME_CONSTRAINTS
    excluded = make_pki(intermediate=ca_spec("NC", excluded=[x509.DNSName("leaf.example.com")]))
    assert refused(excluded.chain, excluded.anchors).category is Category.NAME_CONSTRAINTS


def test_name_constraints_on_a_leaf_are_refused() -> None:
    pki = make_pki(leaf=Spec(permitted=[x509.DNSName("example.com")]))
    assert refused(pki.chain, pki.anchors).category is Category.NAME_CONSTRAINTS


WEAK_HASHES = pytest.mark.parametrize(
    ("oid", "digest"),
    [(b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x05", hashes.SHA1()), (b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x04", hashes.MD5())],
    ids=["sha1", "md5"],
)


def _resigned_with(der: bytes, issuer_key: PrivateKey, oid: bytes, digest: hashes.HashAlgorithm) -> bytes:
    """`der` with both of its signature algorithm fields set to RSA with `oid`, signed again with `digest`."""
    tree = DerNode.parse(der)
    algorithm = DerNode.parse(tlv(0x30, tlv(0x06, oid) + b"\x05\x00"))
    assert tree.children is not None
    tree.children[1] = algorithm
    tbs_fields(tree)[2] = algorithm
    return resign(tree, issuer_key, digest)


@WEAK_HASHES
def test_weak_signature_hash_is_refused(oid: bytes, digest: hashes.HashAlgorithm) -> None:
    root_key = shared_key("rsa2048", 35)
    root = issue(ca_spec("Root"), key=root_key)
    leaf = issue(Spec(), issuer=root)
    weak = _resigned_with(leaf.der, root_key, oid, digest)
    error = refused([weak], [root.der])
    assert error.category is Category.WEAK_ALGORITHM
    assert digest.name.upper().replace("SHA1", "SHA-1") in error.reason


def test_small_rsa_keys_are_refused_in_any_position() -> None:
    weak = shared_key("rsa1024", 36)
    root = issue(ca_spec("Weak Root"), key=weak)
    leaf = issue(Spec(), issuer=root)
    assert refused([leaf.der], [root.der]).category is Category.WEAK_ALGORITHM
    good_root = issue(ca_spec("Good Root"), key=shared_key("p256", 37))
    weak_leaf = issue(Spec(), issuer=good_root, key=weak)
    assert refused([weak_leaf.der], [good_root.der]).category is Category.WEAK_ALGORITHM
    # An intermediate with a small key between good root and good leaf: the leaf's signature by the
    # weak key must not be accepted just because both ends of the path are strong.
    weak_intermediate = issue(ca_spec("Weak Intermediate"), issuer=good_root, key=weak)
    good_leaf = issue(Spec(), issuer=weak_intermediate, key=shared_key("p256", 40))
    error = refused([good_leaf.der, weak_intermediate.der], [good_root.der])
    assert error.category is Category.WEAK_ALGORITHM
    assert "1024" in error.reason
    strong_intermediate = issue(ca_spec("Strong Intermediate"), issuer=good_root, key=shared_key("rsa2048", 41))
    strong_leaf = issue(Spec(), issuer=strong_intermediate, key=shared_key("p256", 40))
    validate([strong_leaf.der, strong_intermediate.der], anchors=[good_root.der], purpose=SERVER, name=HOST, time=NOW)


@WEAK_HASHES
def test_weak_signature_hash_on_an_intermediate_link_is_refused(oid: bytes, digest: hashes.HashAlgorithm) -> None:
    """Root (RSA) signs the intermediate with SHA-1/MD5; the leaf and the root are fine. The weak link is
    in the middle of the path, where a validator that only looks at the leaf's algorithm would miss it."""
    root_key = shared_key("rsa2048", 42)
    root = issue(ca_spec("Root"), key=root_key)
    intermediate = issue(ca_spec("Intermediate"), issuer=root, key=shared_key("p256", 43))
    leaf = issue(Spec(), issuer=intermediate, key=shared_key("p256", 44))
    validate([leaf.der, intermediate.der], anchors=[root.der], purpose=SERVER, name=HOST, time=NOW)
    weak = _resigned_with(intermediate.der, root_key, oid, digest)
    error = refused([leaf.der, weak], [root.der])
    assert error.category is Category.WEAK_ALGORITHM
    assert digest.name.upper().replace("SHA1", "SHA-1") in error.reason


UNKNOWN = x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00")


@pytest.mark.parametrize("where", ["leaf", "intermediate", "root"])
def test_unknown_critical_extension_in_the_path(where: str) -> None:
    extra = ((UNKNOWN, True),)
    if where == "root":
        root = issue(ca_spec("Root", extra=extra), key=shared_key("p256", 38))
        leaf = issue(Spec(), issuer=root)
        chain, anchors = [leaf.der], [root.der]
    else:
        pki = make_pki(**{where: (Spec(extra=extra) if where == "leaf" else ca_spec("I", extra=extra))})  # type: ignore[arg-type]
        chain, anchors = pki.chain, pki.anchors
    assert refused(chain, anchors).category is Category.UNSUPPORTED_CRITICAL_EXTENSION


def test_unknown_critical_extension_in_an_unrelated_anchor_is_harmless() -> None:
    pki = make_pki()
    unrelated = issue(ca_spec("Unrelated", extra=((UNKNOWN, True),)), key=shared_key("p256", 39))
    validate(pki.chain, anchors=[unrelated.der, *pki.anchors], purpose=SERVER, name=HOST, time=NOW)


def test_unknown_noncritical_extension_is_ignored() -> None:
    pki = make_pki(leaf=Spec(extra=((UNKNOWN, False),)))
    validate(pki.chain, anchors=pki.anchors, purpose=SERVER, name=HOST, time=NOW)


@pytest.mark.parametrize(
    ("intermediate", "reason"),
    [
        (ca_spec("I", ca=False), "not a CA"),
        (ca_spec("I", ca=None), "not a CA"),
        (ca_spec("I", bc_critical=False), "not critical"),
        (ca_spec("I", ski=False), "subject key identifier"),
        (ca_spec("I", aki=False), "authority key identifier"),
    ],
)
def test_intermediate_profile(intermediate: Spec, reason: str) -> None:
    pki = make_pki(intermediate=intermediate)
    error = refused(pki.chain, pki.anchors)
    assert error.category is Category.UNTRUSTED_CHAIN
    assert reason in error.reason


def test_leaf_without_authority_key_identifier() -> None:
    pki = make_pki(leaf=Spec(aki=False))
    assert "authority key identifier" in refused(pki.chain, pki.anchors).reason


def test_leaf_serial_zero_is_refused_but_not_in_an_anchor() -> None:
    pki = make_pki()

    def zero_serial(tree: DerNode) -> None:
        tbs_fields(tree)[1].content = b"\x00"

    leaf = edited(pki.leaf, pki.intermediate.key, zero_serial)
    assert refused([leaf, pki.intermediate.der], pki.anchors).category is Category.DECODE_ERROR
    root_key = shared_key("p256", 10)
    root = edited(pki.root, root_key, zero_serial)
    validate(pki.chain, anchors=[root], purpose=SERVER, name=HOST, time=NOW)


def test_malformed_leaf_is_a_decode_error() -> None:
    pki = make_pki()
    assert refused([pki.leaf.der + b"\x00", pki.intermediate.der], pki.anchors).category is Category.DECODE_ERROR


def test_backtracks_past_an_expired_intermediate() -> None:
    root = issue(ca_spec("Root"), key=shared_key("p256", 40))
    inter_key = shared_key("p256", 41)
    expired = issue(ca_spec("Inter", not_after=NOW - timedelta(days=1), serial=1), issuer=root, key=inter_key)
    current = issue(ca_spec("Inter", serial=2), issuer=root, key=inter_key)
    leaf = issue(Spec(), issuer=current)
    path = validate([leaf.der, expired.der, current.der], anchors=[root.der], purpose=SERVER, name=HOST, time=NOW)
    assert path.certificates[1].der == current.der
    assert refused([leaf.der, expired.der], [root.der]).category is Category.EXPIRED


def test_duplicate_extension_in_leaf_is_a_decode_error() -> None:
    pki = make_pki()

    def duplicate_eku(tree: DerNode) -> None:
        nodes = extension_nodes(tree)
        nodes.append(nodes[-1])

    leaf = edited(pki.leaf, pki.intermediate.key, duplicate_eku)
    error = refused([leaf, pki.intermediate.der], pki.anchors)
    assert error.category is Category.DECODE_ERROR
    assert "duplicate" in error.reason


def test_naive_time_is_utc() -> None:
    pki = make_pki()
    validate(pki.chain, anchors=pki.anchors, purpose=SERVER, name=HOST, time=NOW.replace(tzinfo=None))


def test_time_in_another_zone_is_the_same_instant() -> None:
    """An aware time that is not UTC is converted, not relabelled: the leaf's last second, written two hours
    ahead, is still inside its validity, and the second after it is not."""
    pki = make_pki()
    end = pki.leaf.certificate.not_valid_after_utc.astimezone(timezone(timedelta(hours=2)))
    validate(pki.chain, anchors=pki.anchors, purpose=SERVER, name=HOST, time=end + timedelta(microseconds=999))
    assert refused(pki.chain, pki.anchors, time=end + timedelta(seconds=1)).category is Category.EXPIRED
    start = pki.leaf.certificate.not_valid_before_utc.astimezone(timezone(timedelta(hours=-5)))
    validate(pki.chain, anchors=pki.anchors, purpose=SERVER, name=HOST, time=start)
    assert refused(pki.chain, pki.anchors, time=start - timedelta(seconds=1)).category is Category.NOT_YET_VALID


def test_memoryview_and_bytearray_inputs() -> None:
    pki = make_pki()
    chain = [memoryview(bytearray(pki.leaf.der)), bytearray(pki.intermediate.der)]
    anchors = [memoryview(pki.root.der)]
    path = validate(chain, anchors=anchors, purpose=SERVER, name=HOST, time=NOW)  # type: ignore[arg-type]
    assert path.leaf.der == pki.leaf.der


def test_non_bytes_input_is_refused() -> None:
    pki = make_pki()
    assert refused([pki.leaf.der, 5], pki.anchors).category is Category.DECODE_ERROR  # type: ignore[list-item]
    assert refused(pki.chain, [5]).category is Category.DECODE_ERROR  # type: ignore[list-item]


FUZZ_PKI = make_pki()


@settings(max_examples=200, deadline=None)
@given(which=st.integers(0, 1), position=st.integers(0, 10_000), value=st.integers(0, 255),
       cut=st.booleans())
def test_mutated_chain_only_ever_raises_x509_error(which: int, position: int, value: int, cut: bool) -> None:
    chain = list(FUZZ_PKI.chain)
    data = bytearray(chain[which])
    position %= len(data)
    if cut:
        del data[position:]
    else:
        data[position] = value
    chain[which] = bytes(data)
    try:
        validate(chain, anchors=FUZZ_PKI.anchors, purpose=SERVER, name=HOST, time=NOW)
    except X509Error as error:
        assert isinstance(error.category, Category)  # noqa: PT017 - any refusal is fine; the type is the point


def test_too_many_anchors_and_oversized_certificates() -> None:
    pki = make_pki()
    assert refused(pki.chain, pki.anchors * 3, max_anchors=2).category is Category.PATH_BUILDING_LIMIT
    error = refused(pki.chain, pki.anchors, max_cert_size=len(pki.intermediate.der) - 1)
    assert error.category is Category.DECODE_ERROR
    assert "larger than" in error.reason


def test_unparsable_intermediate_is_reported_when_no_path_is_found() -> None:
    pki = make_pki()
    error = refused([pki.leaf.der, pki.intermediate.der[:-1]], pki.anchors)
    assert error.category is Category.UNTRUSTED_CHAIN
    assert "set aside" in error.reason


@pytest.fixture(scope="module")
def pss_pki(tmp_path_factory: pytest.TempPathFactory) -> PssPki:
    if not HAVE_OPENSSL:
        pytest.skip("openssl command not installed")
    return PssPki(tmp_path_factory.mktemp("pss-validate"), ca_hash="sha256")


def _as_issuer(pair: PemPair) -> Issued:
    certificate = x509.load_pem_x509_certificate(pair.cert_path.read_bytes())
    key = pair.key
    assert isinstance(key, rsa.RSAPrivateKey)  # cryptography loads RSA-PSS private keys as RSA keys
    return Issued(certificate, key, certificate.subject)


def test_rsa_pss_key_chain_made_by_openssl(pss_pki: PssPki) -> None:
    """A CA with an id-RSASSA-PSS key (restricted to SHA-256) signs a leaf with an unrestricted PSS key."""
    leaf = pss_pki.leaf("leaf", server=True)
    now = datetime.now(UTC)
    path = validate([leaf.der], anchors=[pss_pki.ca.der], purpose=SERVER, name=PeerName("DNS", "localhost"),
                    time=now)
    assert path.anchor.public_key_info.kind is KeyKind.RSA_PSS
    anchor_key = path.anchor.public_key()
    assert isinstance(anchor_key, RsaPssPublicKey)
    assert (anchor_key.hash_name, anchor_key.min_salt_length) == ("sha256", 32)
    leaf_key = path.leaf.public_key()
    assert isinstance(leaf_key, RsaPssPublicKey)
    assert leaf_key.hash_name is None


@pytest.mark.parametrize(("hash_alg", "pss", "category"), [
    (hashes.SHA256(), True, None),
    (hashes.SHA384(), True, Category.CHAIN_SIGNATURE_INVALID),  # outside the CA key's restriction
    (hashes.SHA256(), False, Category.CHAIN_SIGNATURE_INVALID),  # PKCS#1 v1.5 from a PSS key
])
def test_rsa_pss_ca_key_restrictions_apply_to_what_it_signs(pss_pki: PssPki, hash_alg: hashes.HashAlgorithm,
                                                            pss: bool, category: Category | None) -> None:
    now = datetime.now(UTC)
    spec = Spec(hash=hash_alg, pss=pss, dns=("localhost",), not_before=now - timedelta(days=1),
                not_after=now + timedelta(days=1))
    leaf = issue(spec, issuer=_as_issuer(pss_pki.ca), key=shared_key("p256", 30))
    name = PeerName("DNS", "localhost")
    if category is None:
        validate([leaf.der], anchors=[pss_pki.ca.der], purpose=SERVER, name=name, time=now)
    else:
        assert refused([leaf.der], [pss_pki.ca.der], name=name, time=now).category is category


def test_a_refused_anchor_is_cached_without_the_frames_that_refused_it() -> None:
    """A cached exception with its traceback would keep every caller's frame, and their locals, alive for as
    long as the entry lives: the caller's secrets among them."""
    from tls.x509.validation import _AnchorCache

    cache = _AnchorCache(2)

    def caller_with_a_secret() -> object:
        secret = b"a local that must not outlive this call"
        refused = cache.get(b"\x30\x03\x02\x01\x00")  # not a certificate
        del secret
        return refused

    refused = caller_with_a_secret()
    assert isinstance(refused, X509Error)
    assert refused.__traceback__ is None
    assert cache.get(b"\x30\x03\x02\x01\x00") is refused
