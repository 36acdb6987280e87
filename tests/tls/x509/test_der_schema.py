"""Our DER parsers against pyasn1, the project's reference ASN.1 library: nothing they accept is weaker.

The certificate and its extensions are read by our own schema-directed DER parser (tls/x509/parse.py,
extensions.py, general_names.py), not by pyasn1's schema decoder followed by a re-encode, as they were
before. These properties keep the old guarantee: whatever our parser accepts, pyasn1 decodes against the
RFC 5280 schema and re-encodes to exactly the same bytes (so it is DER, of the right type, with no encoded
DEFAULT and nothing trailing). Inputs are mutations of real certificates (x509-limbo's web chains and our
built ones) and of the extension values inside them. Where our parser is stricter than the schema (a
hostname's syntax, a Name's string types, a universal tag 0, ...), it refuses and the property holds
trivially; the other direction (the schema refusing what we accept) is the failure this file looks for.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID, ObjectIdentifier
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyasn1.codec.der import decoder as der_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1_modules import rfc5280

from tests.tls.x509.factory import DerNode, Spec, ca_spec, issue
from tests.tls.x509.test_parse import SAMPLES, mutated_der
from tls.x509 import X509Error, oids
from tls.x509 import extensions as ext
from tls.x509.parse import parse_certificate_data

# The extensions we decode, with pyasn1's schema for each.
DECODERS: dict[str, tuple[Any, Any]] = {
    oids.BASIC_CONSTRAINTS: (lambda value: ext.basic_constraints(value, True), rfc5280.BasicConstraints),
    oids.KEY_USAGE: (ext.key_usage, rfc5280.KeyUsage),
    oids.EXTENDED_KEY_USAGE: (ext.extended_key_usage, rfc5280.ExtKeyUsageSyntax),
    oids.SUBJECT_ALT_NAME: (ext.subject_alt_name, rfc5280.SubjectAltName),
    oids.NAME_CONSTRAINTS: (ext.name_constraints, rfc5280.NameConstraints),
    oids.AUTHORITY_KEY_IDENTIFIER: (ext.authority_key_identifier, rfc5280.AuthorityKeyIdentifier),
    oids.SUBJECT_KEY_IDENTIFIER: (ext.subject_key_identifier, rfc5280.SubjectKeyIdentifier),
    oids.CERTIFICATE_POLICIES: (ext.certificate_policies, rfc5280.CertificatePolicies),
    oids.AUTHORITY_INFO_ACCESS: (ext.authority_info_access, rfc5280.AuthorityInfoAccessSyntax),
}


def pyasn1_canonical(value: bytes, spec: Any) -> bool:
    """pyasn1 decodes `value` against `spec`, with nothing left over, and re-encodes it to the same bytes."""
    try:
        decoded, rest = der_decoder.decode(value, asn1Spec=spec)
        return not rest and der_encoder.encode(decoded) == value
    except Exception:  # noqa: BLE001 - whatever pyasn1 raises on hostile input is a refusal here
        return False


def _shapes() -> bytes:
    """A CA certificate with the shapes the samples lack: name constraints of several forms, policies with
    qualifiers, AIA, alternative names of every common form, an authorityKeyIdentifier with issuer and
    serial, and a multi-valued RDN (a SET OF with two elements, whose order DER fixes)."""
    access = x509.AuthorityInformationAccess([x509.AccessDescription(
        AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier("http://ca.example/ca.der"))])
    policies = x509.CertificatePolicies([x509.PolicyInformation(ObjectIdentifier("2.23.140.1.2.1"), [
        "https://cps.example/", x509.UserNotice(x509.NoticeReference("Org", [1, 2]), "text")])])
    directory = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "x")])
    names = [x509.DNSName("a.example"), x509.RFC822Name("me@example.com"), x509.UniformResourceIdentifier("u:x"),
             x509.OtherName(ObjectIdentifier("1.3.6.1.4.1.311.20.2.3"), b"\x0c\x03a@b"),
             x509.RegisteredID(ObjectIdentifier("1.2.3.4")), x509.DirectoryName(directory)]
    authority = x509.AuthorityKeyIdentifier(b"\x01\x02", [x509.DirectoryName(directory)], 0x1234)
    subject = x509.Name([x509.RelativeDistinguishedName([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Shapes"),
                                                         x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "O")])])
    return issue(ca_spec(subject, permitted=names[:1] + names[5:], excluded=[x509.RFC822Name(".example.com")],
                         aki=False, extra=((access, False), (policies, False), (x509.SubjectAlternativeName(names),
                                                                                False), (authority, False)))).der


SHAPES = _shapes()


def _extension_samples() -> list[tuple[str, bytes]]:
    """Every processed extension value in the samples and in SHAPES."""
    samples: list[tuple[str, bytes]] = []
    for der in (*SAMPLES, SHAPES, issue(Spec(emails=("me@example.com",), ips=("192.0.2.1",))).der):
        samples += [(e.oid, e.value) for e in parse_certificate_data(der).extensions if e.oid in DECODERS]
    return list(dict.fromkeys(samples))


EXTENSION_SAMPLES = _extension_samples()


def test_the_samples_cover_every_decoder() -> None:
    assert {oid for oid, _ in EXTENSION_SAMPLES} == set(DECODERS)


@pytest.mark.parametrize("der", [*SAMPLES, SHAPES])
def test_accepted_samples_are_canonical_for_pyasn1(der: bytes) -> None:
    parse_certificate_data(der)
    assert pyasn1_canonical(der, rfc5280.Certificate())


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_der())
def test_a_mutated_certificate_we_accept_is_canonical_der_for_pyasn1(data: bytes) -> None:
    try:
        certificate = parse_certificate_data(data)
    except X509Error:
        return
    assert pyasn1_canonical(data, rfc5280.Certificate())
    for extension in certificate.extensions:
        if extension.oid in DECODERS:
            assert pyasn1_canonical(extension.value, DECODERS[extension.oid][1]())


def _nodes(node: DerNode) -> list[DerNode]:
    """`node` and every node below it, in document order."""
    found = [node]
    for child in node.children or ():
        found += _nodes(child)
    return found


# Tag and content octets that DER gives a meaning to (types, classes, the constructed bit, signs, lengths).
_TAGS = (0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0C, 0x13, 0x16, 0x17, 0x18, 0x20, 0x24, 0x30, 0x31, 0x80,
         0x81, 0x82, 0x83, 0x86, 0x87, 0x88, 0x89, 0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5)
_OCTETS = (0x00, 0x01, 0x07, 0x08, 0x2A, 0x7F, 0x80, 0x81, 0xFF)
# Values a schema may or may not allow at a place: an encoded DEFAULT (FALSE, 0), a NULL, an OID, ...
_INSERTS = (DerNode(0x01, None, b"\x00"), DerNode(0x01, None, b"\xff"), DerNode(0x02, None, b"\x00"),
            DerNode(0x05, None, b""), DerNode(0x06, None, b"\x2b"), DerNode(0x04, None, b""),
            DerNode(0x80, None, b"\x00"), DerNode(0x30, []))


def _edits(node: DerNode) -> list[Any]:
    """Every single edit of one node, as functions that apply it in place."""
    edits: list[Any] = [lambda n, t=tag: setattr(n, "tag", t) for tag in _TAGS]
    edits.append(lambda n: setattr(n, "long_length", True))
    edits += [lambda n, w=wrap: _wrap(n, w) for wrap in (0x30, 0x31, 0xA0, 0xA4)]
    if node.children is None:
        edits += [lambda n, p=pad: setattr(n, "content", p + n.content) for pad in (b"\x00", b"\xff")]
        edits.append(lambda n: setattr(n, "content", b""))
        if node.content:
            edits += [lambda n, o=octet, i=index: setattr(n, "content", n.content[:i] + bytes([o]) + n.content[i + 1:])
                      for octet in _OCTETS for index in {0, len(node.content) - 1}]
        return edits
    edits.append(lambda n: setattr(n, "children", []))
    edits += [lambda n, x=extra, i=index: n.children.insert(i, DerNode.parse(x.encode()))
              for extra in _INSERTS for index in {0, 1, len(node.children)}]
    for index in range(len(node.children)):
        edits.append(lambda n, i=index: n.children.pop(i))
        edits.append(lambda n, i=index: n.children.insert(i, DerNode.parse(n.children[i].encode())))
        edits.append(lambda n, i=index: n.children.insert(0, n.children.pop(i)))
        edits.append(lambda n, i=index: _unwrap(n, i))
    return edits


def _wrap(node: DerNode, tag: int) -> None:
    inner = DerNode(node.tag, node.children, node.content, node.long_length)
    node.tag, node.children, node.content, node.long_length = tag, [inner], b"", False


def _unwrap(node: DerNode, index: int) -> None:
    assert node.children is not None
    child = node.children[index]
    node.tag, node.children, node.content, node.long_length = child.tag, child.children, child.content, False


def single_edits(der: bytes) -> list[bytes]:
    """`der` with each single structural edit DER forbids or a schema constrains, applied to each of its
    values in turn: a changed tag, a long-form length, a sign or padding octet, a changed first or last
    octet, an emptied, dropped, duplicated, moved, inserted, wrapped or unwrapped value."""
    mutants: set[bytes] = set()
    for position in range(len(_nodes(DerNode.parse(der)))):
        for index in range(len(_edits(_nodes(DerNode.parse(der))[position]))):
            tree = DerNode.parse(der)
            node = _nodes(tree)[position]
            _edits(node)[index](node)
            mutants.add(tree.encode())
    mutants.discard(der)
    return sorted(mutants)


@pytest.mark.parametrize("der", [*SAMPLES[:4], SHAPES])
def test_every_single_edit_of_a_certificate_we_accept_is_canonical_der_for_pyasn1(der: bytes) -> None:
    accepted = 0
    for mutant in single_edits(der):
        try:
            parse_certificate_data(mutant)
        except X509Error:
            continue
        accepted += 1
        assert pyasn1_canonical(mutant, rfc5280.Certificate()), mutant.hex()
    assert accepted  # some edits are harmless (a changed serial octet, a flipped key bit): the check ran


def test_every_single_edit_of_an_extension_value_we_accept_is_canonical_der_for_pyasn1() -> None:
    accepted = 0
    for oid, value in EXTENSION_SAMPLES:
        decode, spec = DECODERS[oid]
        for mutant in single_edits(value):
            try:
                decode(mutant)
            except X509Error:
                continue
            accepted += 1
            assert pyasn1_canonical(mutant, spec()), (oid, mutant.hex())
    assert accepted


@st.composite
def mutated_extension(draw: st.DrawFn) -> tuple[str, bytes]:
    """A sample extension value with bytes set to DER-significant values, flipped, inserted, cut or added."""
    oid, value = draw(st.sampled_from(EXTENSION_SAMPLES))
    data = bytearray(value)
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["set", "flip", "insert", "delete"]))
        if kind == "set":
            data[position] = draw(st.sampled_from(_TAGS + _OCTETS))
        elif kind == "flip":
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=3))
        elif len(data) > 1:
            del data[position]
    if draw(st.booleans()):
        data += draw(st.binary(max_size=2))
    return oid, bytes(data)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_extension())
def test_a_mutated_extension_value_we_accept_is_canonical_der_for_pyasn1(sample: tuple[str, bytes]) -> None:
    oid, value = sample
    decode, spec = DECODERS[oid]
    try:
        decode(value)
    except X509Error:
        return
    assert pyasn1_canonical(value, spec())
