"""parse_certificate: round-trips over built certificates, mutation fuzzing, and one test per refusal."""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import ipaddress
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID, ObjectIdentifier
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outcomes.category import Category
from tests.conformance import x509_limbo
from tests.tls.x509.factory import (
    DerNode,
    KeyType,
    Spec,
    ca_spec,
    extension_nodes,
    find_extension,
    issue,
    make_pki,
    shared_key,
    tbs_fields,
    tlv,
)
from tls.x509 import RsaPssPublicKey, X509Error, oids, parse_certificate
from tls.x509.limits import MAX_CERT_SIZE, MAX_EXTENSIONS, MAX_NAME_RDNS, MAX_SAN_ENTRIES
from tls.x509.parse import parse_certificate_data
from tls.x509.peek import peek_certificate

# --- round trips ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", ["p256", "p384", "p521", "rsa2048", "rsa3072", "ed25519"])
def test_round_trip(key_type: KeyType) -> None:
    key = shared_key(key_type, 50)
    root = issue(ca_spec("Round Trip Root", path_length=3), key=shared_key(key_type, 51))
    spec = Spec(dns=("a.example.com", "*.b.example.com"), ips=("192.0.2.1", "2001:db8::1"),
                emails=("me@example.com",), serial=(1 << 159) - 1)
    issued = issue(spec, issuer=root, key=key)
    reference = issued.certificate
    cert = parse_certificate(issued.der)

    assert cert.der == issued.der
    assert cert.tbs_der == reference.tbs_certificate_bytes
    assert cert.signature == reference.signature
    assert cert.version == 3
    assert cert.serial == reference.serial_number
    assert cert.subject.values(oids.COMMON_NAME) == ("leaf.example.com",)
    assert cert.issuer.der == root.certificate.subject.public_bytes()
    assert cert.not_before == reference.not_valid_before_utc
    assert cert.not_after == reference.not_valid_after_utc
    assert cert.validity == (cert.not_before, cert.not_after)
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert cert.spki_der == spki
    public_key = cert.public_key()
    assert not isinstance(public_key, RsaPssPublicKey)
    assert public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == spki
    assert cert.subject_alt_name is not None
    assert cert.subject_alt_name.dns == ("a.example.com", "*.b.example.com")
    addresses = (ipaddress.ip_address("192.0.2.1").packed, ipaddress.ip_address("2001:db8::1").packed)
    assert cert.subject_alt_name.ips == addresses
    assert cert.subject_alt_name.emails == ("me@example.com",)
    assert cert.basic_constraints is not None
    assert not cert.basic_constraints.ca
    assert cert.key_usage == frozenset({"digitalSignature"})
    assert cert.extended_key_usage == (oids.EKU_SERVER_AUTH,)
    ski = reference.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    aki = reference.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    assert cert.subject_key_identifier == ski
    assert cert.authority_key_identifier is not None
    assert cert.authority_key_identifier.key_identifier == aki
    assert cert.signature_algorithm.problem is None
    assert cert.unsupported_critical == ()

    anchor = parse_certificate(root.der)
    assert anchor.is_ca
    assert anchor.basic_constraints is not None
    assert anchor.basic_constraints.path_length == 3
    assert anchor.key_usage == frozenset({"keyCertSign", "cRLSign"})
    assert anchor.self_issued


def test_name_constraints_and_policies_round_trip() -> None:
    spec = ca_spec(
        "NC CA",
        permitted=[x509.DNSName("example.com"), x509.IPAddress(ipaddress.ip_network("10.0.0.0/8")),
                   x509.RFC822Name(".example.com"), x509.DirectoryName(x509.Name([
                       x509.NameAttribute(NameOID.COUNTRY_NAME, "DE")]))],
        excluded=[x509.DNSName("bad.example.com")],
        extra=((x509.CertificatePolicies([x509.PolicyInformation(ObjectIdentifier("2.23.140.1.2.1"), None)]), False),),
    )
    cert = parse_certificate(issue(spec).der)
    constraints = cert.name_constraints
    assert constraints is not None
    assert constraints.permitted is not None
    assert constraints.excluded is not None
    assert constraints.permitted.dns == ("example.com",)
    assert constraints.permitted.ip_ranges == ((b"\x0a\x00\x00\x00", b"\xff\x00\x00\x00"),)
    assert constraints.permitted.emails == (".example.com",)
    assert constraints.permitted.directory_names[0].values(oids.COUNTRY_NAME) == ("DE",)
    assert constraints.excluded.dns == ("bad.example.com",)
    assert cert.certificate_policies == ("2.23.140.1.2.1",)


def test_rsa_pss_algorithm_round_trip() -> None:
    root = issue(ca_spec("PSS", pss=True), key=shared_key("rsa2048", 52))
    algorithm = parse_certificate(root.der).signature_algorithm
    assert (algorithm.scheme, algorithm.hash_name, algorithm.salt_length, algorithm.problem) == (
        "rsa-pss", "sha256", 32, None)


# --- mutation fuzzing ------------------------------------------------------------------------------------


def _samples() -> list[bytes]:
    """Built certificates of several shapes, plus two real web leaves (RSA, SCTs, AIA, policies) from the
    shared x509-limbo data when it is present."""
    pki = make_pki()
    ed = issue(Spec(), key=shared_key("ed25519", 53))
    rsa_ca = issue(ca_spec("RSA", permitted=[x509.DNSName("example.com")]), key=shared_key("rsa2048", 54))
    samples = [pki.leaf.der, pki.intermediate.der, ed.der, rsa_ca.der]
    if x509_limbo.LIMBO.exists():
        web = {c["id"]: c for c in x509_limbo.load_cases() if c["id"] in ("online::google.com", "online::bing.com")}
        samples += [x509_limbo.pem_to_der(case["peer_certificate"]) for case in web.values()]
    return samples


SAMPLES = _samples()


def _length_offsets(der: bytes) -> list[int]:
    """Offsets of every length octet in `der` (where a 'length lie' is told)."""
    offsets: list[int] = []

    def walk(pos: int, end: int) -> None:
        while pos < end:
            tag, first = der[pos], der[pos + 1]
            count = first & 0x7F if first & 0x80 else 0
            offsets.extend(range(pos + 1, pos + 2 + count))
            length = int.from_bytes(der[pos + 2 : pos + 2 + count], "big") if count else first
            start = pos + 2 + count
            if tag & 0x20:
                walk(start, start + length)
            pos = start + length

    walk(0, len(der))
    return offsets


LENGTH_OFFSETS = [_length_offsets(der) for der in SAMPLES]


@pytest.mark.parametrize("der", SAMPLES)
def test_fuzzing_starts_from_valid_certificates(der: bytes) -> None:
    assert parse_certificate(der).der == der


@st.composite
def mutated_der(draw: st.DrawFn) -> bytes:
    index = draw(st.integers(0, len(SAMPLES) - 1))
    data = bytearray(SAMPLES[index])
    kind = draw(st.sampled_from(["truncate", "flip", "lie", "insert", "delete", "append"]))
    if kind == "truncate":
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    if kind == "flip":
        for _ in range(draw(st.integers(1, 3))):
            position = draw(st.integers(0, len(data) - 1))
            data[position] ^= 1 << draw(st.integers(0, 7))
    elif kind == "lie":
        position = draw(st.sampled_from(LENGTH_OFFSETS[index]))
        data[position] = draw(st.integers(0, 255))
    elif kind == "insert":
        position = draw(st.integers(0, len(data)))
        data[position:position] = draw(st.binary(min_size=1, max_size=4))
    elif kind == "delete":
        position = draw(st.integers(0, len(data) - 1))
        del data[position : position + draw(st.integers(1, 4))]
    else:
        data += draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_der())
def test_mutated_der_only_ever_raises_x509_error(data: bytes) -> None:
    refusal_seen: X509Error | None = None
    try:
        cert = parse_certificate(data)
    except X509Error as error:
        refusal_seen = error
    if refusal_seen is not None:
        assert isinstance(refusal_seen.category, Category)
        assert refusal_seen.reason
        return
    # A mutation may survive (e.g. a flipped bit inside a signature or a key identifier) and is then
    # a well-formed certificate: re-parsing gives the same result.
    assert parse_certificate(cert.der).tbs_der == cert.tbs_der


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(X509Error):
        parse_certificate(data)


# --- one test per parse refusal --------------------------------------------------------------------------

LEAF = make_pki().leaf


def mutate(change: Callable[[DerNode], None], issued: object = None) -> bytes:
    """Apply `change` to a copy of a valid leaf's DER tree (signature left as is: parsing ignores it)."""
    tree = DerNode.parse(LEAF.der if issued is None else issued.der)  # type: ignore[attr-defined]
    change(tree)
    return tree.encode()


def refusal(data: object) -> X509Error:
    with pytest.raises(X509Error) as info:
        parse_certificate(data)  # type: ignore[arg-type]
    return info.value


def test_not_bytes() -> None:
    assert refusal("a certificate").category is Category.DECODE_ERROR


def test_oversized() -> None:
    assert "larger than" in refusal(b"\x30\x83" + (MAX_CERT_SIZE).to_bytes(3, "big") + bytes(MAX_CERT_SIZE)).reason


def test_trailing_bytes() -> None:
    assert "trailing" in refusal(LEAF.der + b"\x00").reason


def test_ber_long_form_length() -> None:
    def long_serial_length(tree: DerNode) -> None:
        tbs_fields(tree)[1].long_length = True

    assert "non-minimal" in refusal(mutate(long_serial_length)).reason


def test_explicit_default_criticality() -> None:
    def explicit_false(tree: DerNode) -> None:
        node = find_extension(tree, oids.SUBJECT_ALT_NAME)
        assert node.children is not None
        node.children.insert(1, DerNode(0x01, None, b"\x00"))

    assert refusal(mutate(explicit_false)).category is Category.DECODE_ERROR


def test_explicit_default_inside_an_extension() -> None:
    def ca_false_encoded(tree: DerNode) -> None:
        node = find_extension(tree, oids.BASIC_CONSTRAINTS)
        node[-1].content = tlv(0x30, tlv(0x01, b"\x00"))

    assert "canonical" in refusal(mutate(ca_false_encoded)).reason


@pytest.mark.parametrize("version", [b"\x00", b"\x03"])
def test_bad_version_field(version: bytes) -> None:
    def set_version(tree: DerNode) -> None:
        tbs_fields(tree)[0][0].content = version

    assert refusal(mutate(set_version)).category is Category.DECODE_ERROR


def test_extensions_require_v3() -> None:
    def drop_version(tree: DerNode) -> None:
        del tbs_fields(tree)[0]

    assert refusal(mutate(drop_version)).category is Category.NOT_V3


def test_duplicate_extension() -> None:
    def duplicate(tree: DerNode) -> None:
        nodes = extension_nodes(tree)
        nodes.append(nodes[0])

    assert "duplicate extension" in refusal(mutate(duplicate)).reason


def test_unknown_critical_extension() -> None:
    unknown = x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.55555.7"), b"\x05\x00")
    issued = issue(Spec(extra=((unknown, True),)))
    error = refusal(issued.der)
    assert error.category is Category.UNSUPPORTED_CRITICAL_EXTENSION
    assert "1.3.6.1.4.1.55555.7" in error.reason


@pytest.mark.parametrize(
    ("serial", "reason"),
    [(b"\x80\x01", "negative"), (b"\x01" * 21, "longer than 20"), (b"\x00\x80" + b"\x01" * 20, "longer than 20")],
)
def test_bad_serial(serial: bytes, reason: str) -> None:
    def set_serial(tree: DerNode) -> None:
        tbs_fields(tree)[1].content = serial

    assert reason in refusal(mutate(set_serial)).reason


def test_twenty_octet_serial_with_sign_octet_is_fine() -> None:
    def set_serial(tree: DerNode) -> None:
        tbs_fields(tree)[1].content = b"\x00" + b"\x80" * 20

    assert parse_certificate(mutate(set_serial)).serial == int.from_bytes(b"\x80" * 20, "big")


def _subject_with(attribute: bytes) -> Callable[[DerNode], None]:
    def change(tree: DerNode) -> None:
        tbs_fields(tree)[5] = DerNode.parse(tlv(0x30, tlv(0x31, attribute)))

    return change


def _atv(oid: bytes, value: bytes) -> bytes:
    return tlv(0x30, tlv(0x06, oid) + value)


CN = b"\x55\x04\x03"
COUNTRY = b"\x55\x04\x06"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda tree: tbs_fields(tree).__setitem__(5, DerNode.parse(tlv(0x30, tlv(0x31, b"")))), "empty RDN"),
        (_subject_with(_atv(CN, tlv(0x0C, b"evil.com\x00.example.com"))), "NUL"),
        (_subject_with(_atv(CN, tlv(0x13, b"a@b"))), "PrintableString"),
        (_subject_with(_atv(CN, tlv(0x0C, b"\xff\xfe"))), "badly encoded"),
        (_subject_with(_atv(CN, tlv(0x1E, b"abc"))), "BMPString"),
        (_subject_with(_atv(COUNTRY, tlv(0x13, b"DEU"))), "countryName"),
        (_subject_with(_atv(CN, tlv(0x02, b"\x01"))), "unsupported type"),
        (_subject_with(_atv(CN, tlv(0x0C, b"x" * 2000))), "too long"),
        (lambda tree: tbs_fields(tree).__setitem__(
            5, DerNode.parse(tlv(0x30, tlv(0x31, _atv(CN, tlv(0x0C, b"a"))) * (MAX_NAME_RDNS + 1)))), "too many RDNs"),
        (lambda tree: tbs_fields(tree).__setitem__(3, DerNode.parse(tlv(0x30, b""))), "issuer name is empty"),
    ],
    ids=["empty-rdn", "nul", "printable", "utf8", "bmp", "country", "integer-value", "long", "rdns", "empty-issuer"],
)
def test_malformed_names(change: Callable[[DerNode], None], reason: str) -> None:
    error = refusal(mutate(change))
    assert error.category is Category.DECODE_ERROR
    assert reason in error.reason


def test_nesting_depth_is_bounded_inside_a_name() -> None:
    deep = tlv(0x05, b"")
    for _ in range(20):
        deep = tlv(0x30, deep)
    assert "too deep" in refusal(mutate(_subject_with(_atv(CN, deep)))).reason


def test_too_many_san_entries() -> None:
    issued = issue(Spec(dns=tuple(f"h{i}.io" for i in range(MAX_SAN_ENTRIES + 1))))
    assert "too many subjectAltName" in refusal(issued.der).reason


def _extensions(count: int) -> Spec:
    """A self-signed leaf whose extension list is padded with unknown non-critical ones to `count`."""
    base = len(parse_certificate(issue(Spec()).der).extensions)
    extra = tuple((x509.UnrecognizedExtension(ObjectIdentifier(f"1.3.6.1.4.1.55555.{i}"), b"\x05\x00"), False)
                  for i in range(count - base))
    return Spec(extra=extra)


def test_extension_count_is_bounded() -> None:
    assert len(parse_certificate(issue(_extensions(MAX_EXTENSIONS)).der).extensions) == MAX_EXTENSIONS
    error = refusal(issue(_extensions(MAX_EXTENSIONS + 1)).der)
    assert error.category is Category.DECODE_ERROR
    assert "too many extensions" in error.reason


_IMMUTABLE_VALUES = (str, bytes, int, float, datetime, type(None), enum.Enum)


def _assert_immutable(value: object, where: str) -> int:
    """Walk the parsed model: every object is a frozen dataclass, a named tuple, a tuple/frozenset or an
    immutable value. Returns how many records (dataclass and named tuple instances) were checked, so the walk
    itself is seen to cover the model."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        assert type(value).__dataclass_params__.frozen, f"{where}: {type(value).__name__} is not frozen"  # type: ignore[attr-defined]
        first = dataclasses.fields(value)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, first, getattr(value, first))
        fields = dataclasses.fields(value)
        return 1 + sum(_assert_immutable(getattr(value, f.name), f"{where}.{f.name}") for f in fields)
    names: tuple[str, ...] | None = getattr(type(value), "_fields", None)
    if isinstance(value, tuple) and names:
        with pytest.raises(AttributeError):  # a named tuple's fields are read-only properties
            setattr(value, names[0], getattr(value, names[0]))
        assert not hasattr(value, "__dict__"), f"{where}: {type(value).__name__} takes new attributes"
        return 1 + sum(_assert_immutable(getattr(value, name), f"{where}.{name}") for name in names)
    if isinstance(value, (tuple, frozenset)):
        return sum(_assert_immutable(item, f"{where}[]") for item in value)
    assert isinstance(value, _IMMUTABLE_VALUES), f"{where}: mutable {type(value).__name__}"
    return 0


def test_parsed_model_is_immutable() -> None:
    root = issue(ca_spec("Frozen Root", permitted=[x509.DNSName("example.com"), x509.DirectoryName(
        x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "DE")]))], excluded=[
        x509.IPAddress(ipaddress.ip_network("10.0.0.0/8"))], extra=((x509.CertificatePolicies([
            x509.PolicyInformation(ObjectIdentifier("2.23.140.1.2.1"), None)]), False),)), key=shared_key("p256", 55))
    leaf = issue(Spec(dns=("a.example.com",), ips=("192.0.2.1",), emails=("me@example.com",)), issuer=root,
                 key=shared_key("rsa2048", 56))
    for der in (root.der, leaf.der):
        cert = parse_certificate(der)
        cert.public_key()  # the lazily built key must not open a way to change the model either
        # Certificate, validity/signature algorithm, key info, names and their attributes, extensions
        # and the decoded ones: at least a dozen frozen objects per certificate.
        assert _assert_immutable(cert, "certificate") >= 12
        with pytest.raises(dataclasses.FrozenInstanceError):
            cert.serial = 1  # type: ignore[misc]
        with pytest.raises(AttributeError):
            cert.subject.rdns = ()  # type: ignore[misc]


def _validity(not_before: bytes, not_after: bytes) -> Callable[[DerNode], None]:
    def change(tree: DerNode) -> None:
        tbs_fields(tree)[4] = DerNode.parse(tlv(0x30, not_before + not_after))

    return change


UTC_OK = tlv(0x17, b"260101000000Z")


@pytest.mark.parametrize(
    ("times", "reason"),
    [
        ((tlv(0x18, b"20260101000000Z"), UTC_OK), "before 2050 must be UTCTime"),
        ((tlv(0x17, b"2601010000Z"), UTC_OK), "YYMMDDHHMMSSZ"),
        ((UTC_OK, tlv(0x18, b"20600101000000.5Z")), "YYYYMMDDHHMMSSZ"),
        ((tlv(0x17, b"261301000000Z"), UTC_OK), "out of range"),
        ((tlv(0x17, b"260230000000Z"), UTC_OK), "out of range"),
        ((tlv(0x17, b"260101240000Z"), UTC_OK), "out of range"),
        ((UTC_OK, tlv(0x17, b"261231235960Z")), "out of range"),
        ((tlv(0x18, b"00000101000000Z"), UTC_OK), "out of range"),
        ((tlv(0x17, b"2601010000 0Z"), UTC_OK), "malformed validity time"),
        ((tlv(0x18, b"2O500101000000Z"), UTC_OK), "malformed validity time"),
        ((tlv(0x17, b"26010100000+Z"), UTC_OK), "malformed validity time"),
        ((tlv(0x17, b"2601010000000"), UTC_OK), "malformed validity time"),
        ((tlv(0x0C, b"260101000000Z"), UTC_OK), "X.509 schema"),
    ],
)
def test_validity_time_rules(times: tuple[bytes, bytes], reason: str) -> None:
    assert reason in refusal(mutate(_validity(*times))).reason


def test_validity_years() -> None:
    cert = parse_certificate(mutate(_validity(tlv(0x17, b"500101000000Z"), tlv(0x18, b"20500101000000Z"))))
    assert cert.not_before == datetime(1950, 1, 1, tzinfo=UTC)
    assert cert.not_after == datetime(2050, 1, 1, tzinfo=UTC)


def test_signature_algorithm_mismatch() -> None:
    def change_inner(tree: DerNode) -> None:
        tbs_fields(tree)[2] = DerNode.parse(tlv(0x30, tlv(0x06, bytes.fromhex("2a8648ce3d040303"))))

    assert "differs" in refusal(mutate(change_inner)).reason


def test_unique_identifiers_are_refused() -> None:
    def add_uid(tree: DerNode) -> None:
        tbs_fields(tree).insert(7, DerNode(0x81, None, b"\x00\x01"))

    assert "unique identifiers" in refusal(mutate(add_uid)).reason


def _extension_value(oid: str, value: bytes, critical: bool | None = None) -> Callable[[DerNode], None]:
    def change(tree: DerNode) -> None:
        node = find_extension(tree, oid)
        assert node.children is not None
        node.children[-1].content = value
        if critical is not None:
            node.children[1:-1] = [DerNode(0x01, None, b"\xff")] if critical else []

    return change


def _san(*names: bytes) -> bytes:
    return tlv(0x30, b"".join(names))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (_extension_value(oids.SUBJECT_ALT_NAME, _san(tlv(0x82, b"foo_bar.example.com"))), "not a valid host"),
        (_extension_value(oids.SUBJECT_ALT_NAME, _san(tlv(0x82, b"*.*.example.com"))), "not a valid host"),
        (_extension_value(oids.SUBJECT_ALT_NAME, _san(tlv(0x82, b"f*o.example.com"))), "not a valid host"),
        (_extension_value(oids.SUBJECT_ALT_NAME, _san(tlv(0x82, b"8.8.8.8"))), "not a valid host"),
        (_extension_value(oids.SUBJECT_ALT_NAME, _san(tlv(0x82, b"a.com"), tlv(0x82, b"2001.0xdb8"))),
         "not a valid host"),
        (_extension_value(oids.SUBJECT_ALT_NAME, _san(tlv(0x82, "é.com".encode()))), "subjectAltName malformed"),
        (_extension_value(oids.SUBJECT_ALT_NAME, _san(tlv(0x87, b"\x01\x02\x03"))), "4 or 16"),
        (_extension_value(oids.SUBJECT_ALT_NAME, _san(tlv(0x81, b"a@b@example.com"))), "mailbox"),
        (_extension_value(oids.SUBJECT_ALT_NAME, _san()), "subjectAltName malformed"),
        (_extension_value(oids.SUBJECT_ALT_NAME, _san(tlv(0x82, b"a.com")), critical=True), "if and only if"),
        (_extension_value(oids.AUTHORITY_KEY_IDENTIFIER, tlv(0x30, tlv(0x80, b"\x01")), critical=True), "must not"),
        (_extension_value(oids.SUBJECT_KEY_IDENTIFIER, tlv(0x04, b"\x01"), critical=True), "must not"),
        (_extension_value(oids.AUTHORITY_KEY_IDENTIFIER, tlv(0x30, tlv(0x82, b"\x01"))), "come together"),
        (_extension_value(oids.SUBJECT_KEY_IDENTIFIER, tlv(0x04, b"")), "empty subject key"),
        (_extension_value(oids.KEY_USAGE, tlv(0x03, b"\x00\x80\x00")), "trailing zero"),
        (_extension_value(oids.KEY_USAGE, tlv(0x03, b"\x00")), "no bits"),
        (_extension_value(oids.EXTENDED_KEY_USAGE, tlv(0x30, b"")), "extendedKeyUsage"),
        (_extension_value(oids.BASIC_CONSTRAINTS, tlv(0x30, b"\x01\x01\xff\x02\x01\xff")), "basicConstraints"),
        (_extension_value(oids.EXTENDED_KEY_USAGE, tlv(0x30, tlv(0x06, b"\x2b")) + b"\x00"), "trailing"),
    ],
    ids=["underscore", "double-wildcard", "partial-wildcard", "ip-in-dns", "hex-ip-in-dns", "non-ascii", "ip-length",
         "mailbox", "empty", "critical-with-subject", "critical-aki", "critical-ski", "aki-issuer-only", "empty-ski",
         "ku-trailing-zero", "ku-empty", "eku-empty", "negative-pathlen", "trailing"],
)
def test_malformed_extensions(change: Callable[[DerNode], None], reason: str) -> None:
    error = refusal(mutate(change))
    assert error.category is Category.DECODE_ERROR
    assert reason in error.reason


def test_empty_subject_requires_critical_san() -> None:
    def empty_subject(tree: DerNode) -> None:
        tbs_fields(tree)[5] = DerNode.parse(tlv(0x30, b""))

    assert "if and only if" in refusal(mutate(empty_subject)).reason
    no_san = issue(Spec(san=False))
    assert "without a subjectAltName" in refusal(mutate(empty_subject, no_san)).reason


def _nc(value: bytes) -> Callable[[DerNode], None]:
    return _extension_value(oids.NAME_CONSTRAINTS, value)


NC_CA = issue(ca_spec("NC", permitted=[x509.DNSName("example.com")]))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (tlv(0x30, b""), "neither permitted nor excluded"),
        (tlv(0x30, tlv(0xA0, b"")), "canonical DER"),
        (tlv(0x30, tlv(0xA0, tlv(0x30, tlv(0x82, b".example.com")))), "not a valid host"),
        (tlv(0x30, tlv(0xA0, tlv(0x30, tlv(0x82, b"*.example.com")))), "not a valid host"),
        (tlv(0x30, tlv(0xA0, tlv(0x30, tlv(0x87, b"\x0a\x00\x00\x00\xff\x00\xff\x00")))), "not a prefix"),
        (tlv(0x30, tlv(0xA0, tlv(0x30, tlv(0x87, b"\x0a\x00\x00\x00")))), "8 or 32"),
        (tlv(0x30, tlv(0xA0, tlv(0x30, tlv(0x81, b"a@b@c.com")))), "mailbox"),
        (tlv(0x30, tlv(0xA0, tlv(0x30, tlv(0x82, b"example.com") + tlv(0x81, b"\x01")))), "minimum/maximum"),
    ],
)
def test_malformed_name_constraints(value: bytes, reason: str) -> None:
    error = refusal(mutate(_nc(value), NC_CA))
    assert reason in error.reason


def test_policy_constraints_must_be_critical_and_are_then_unsupported() -> None:
    constraints = x509.PolicyConstraints(require_explicit_policy=0, inhibit_policy_mapping=None)
    assert "must be critical" in refusal(issue(ca_spec("PC", extra=((constraints, False),))).der).reason
    error = refusal(issue(ca_spec("PC", extra=((constraints, True),))).der)
    assert error.category is Category.UNSUPPORTED_CRITICAL_EXTENSION


def test_certificate_policies_duplicate() -> None:
    policy = tlv(0x30, tlv(0x06, b"\x67\x81\x0c\x01\x02\x01"))
    value = tlv(0x30, policy + policy)
    issued = issue(Spec(extra=((x509.CertificatePolicies([x509.PolicyInformation(
        ObjectIdentifier("2.23.140.1.2.1"), None)]), False),)))
    assert "duplicate certificate policy" in refusal(mutate(_extension_value(oids.CERTIFICATE_POLICIES, value),
                                                            issued)).reason


def test_authority_info_access_must_be_well_formed_and_non_critical() -> None:
    access = x509.AuthorityInformationAccess([x509.AccessDescription(
        AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier("http://ca.example/ca.der"))])
    issued = issue(Spec(extra=((access, False),)))
    parse_certificate(issued.der)
    assert "must not be critical" in refusal(issue(Spec(extra=((access, True),))).der).reason
    assert refusal(mutate(_extension_value(oids.AUTHORITY_INFO_ACCESS, tlv(0x30, b"")), issued)).category \
        is Category.DECODE_ERROR


def test_eku_client_only_parses() -> None:
    cert = parse_certificate(issue(Spec(eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))).der)
    assert cert.extended_key_usage == (oids.EKU_CLIENT_AUTH,)


# --- peek_certificate: the bytes path building compares before it parses ------------------------------

def _limbo_certificates() -> list[bytes]:
    cases = x509_limbo.load_cases()[:60]
    return [x509_limbo.pem_to_der(p) for c in cases for p in (c["peer_certificate"], *c["untrusted_intermediates"])]


def test_peek_takes_the_same_bytes_the_parse_takes() -> None:
    """Path building prunes on the peek and uses the parse, so they must agree on every certificate the parse
    accepts: same name encodings, same key bytes, same key identifier."""
    compared = 0
    for der in _limbo_certificates():
        try:
            parsed = parse_certificate_data(der)
        except X509Error:
            continue
        assert peek_certificate(der) == parsed.summary
        compared += 1
    assert compared > 50


def test_summary_is_made_from_the_certificates_own_fields() -> None:
    """The summary is made with the certificate (not read on first use): a certificate made from another by
    `dataclasses.replace` has the summary of its own fields, never a copy of the other's."""
    parsed = parse_certificate(issue(Spec()).der)
    other = parse_certificate(issue(ca_spec("Other CA")).der)
    changed = dataclasses.replace(parsed, subject=other.subject, authority_key_identifier=None,
                                  public_key_info=other.public_key_info)
    assert changed.summary == parsed.summary._replace(subject=other.subject.der, authority_key_identifier=None,
                                                      spki=other.spki_der)
    assert parsed.summary == peek_certificate(parsed.der)


def test_peek_without_a_key_identifier() -> None:
    der = issue(ca_spec(ski=False)).der
    assert peek_certificate(der).subject_key_identifier is None


PEEK_FUZZ_DER = issue(ca_spec()).der


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(position=st.integers(0, 10_000), value=st.integers(0, 255), cut=st.booleans())
def test_peek_of_mutated_bytes_only_ever_raises_x509_error(position: int, value: int, cut: bool) -> None:
    data = bytearray(PEEK_FUZZ_DER)
    position %= len(data)
    if cut:
        del data[position:]
    else:
        data[position] = value
    with contextlib.suppress(X509Error):  # any refusal is fine; anything else escaping is the failure
        peek_certificate(bytes(data))


def test_a_known_key_is_taken_only_for_the_exact_bytes_it_was_decoded_from() -> None:
    """parse_certificate_data's `known_key` (what path building decoded already) stands in for decoding the
    SubjectPublicKeyInfo only when its bytes are the certificate's: another key's decoding is never used."""
    own = issue(Spec(), key=shared_key("p256", 80))
    other = issue(Spec(), key=shared_key("rsa2048", 81))
    own_info = parse_certificate(own.der).public_key_info
    other_info = parse_certificate(other.der).public_key_info
    assert parse_certificate_data(own.der, own_info).public_key_info is own_info
    taken = parse_certificate_data(own.der, other_info).public_key_info
    assert taken is not other_info
    assert taken == own_info
