"""The DER rules of the certificate parser, one refusal each, on an otherwise valid leaf.

Before the parser read certificates itself, pyasn1's schema decode refused these (or the DER walker run over
the whole certificate did, before it): a wrong type at a place, a field too many, a non-minimal INTEGER, a
non-canonical BOOLEAN or OBJECT IDENTIFIER, an open type (algorithm parameters, an attribute value) that is
not DER. Each rule is now in the parser (tls/x509/parse.py and the readers it calls), and tested here.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from outcomes.category import Category
from tests.tls.x509.factory import DerNode, extension_nodes, find_extension, tbs_fields, tlv
from tests.tls.x509.test_parse import CN, mutate, refusal
from tls.x509 import oids, parse_certificate

Change = Callable[[DerNode], None]

ECDSA_SHA256 = bytes.fromhex("2a8648ce3d040302")
EC_KEY = bytes.fromhex("2a8648ce3d0201")
P256 = bytes.fromhex("2a8648ce3d030107")


def _set(index: int, der: bytes) -> Change:
    def change(tree: DerNode) -> None:
        tbs_fields(tree)[index] = DerNode.parse(der)

    return change


def _both_algorithms(der: bytes) -> Change:
    """The same AlgorithmIdentifier inside and outside the TBSCertificate (they must agree)."""
    def change(tree: DerNode) -> None:
        tbs_fields(tree)[2] = DerNode.parse(der)
        assert tree.children is not None
        tree.children[1] = DerNode.parse(der)

    return change


def _top(*tags: int) -> Change:
    def change(tree: DerNode) -> None:
        assert tree.children is not None
        for node, tag in zip(tree.children, tags, strict=False):
            node.tag = tag

    return change


def _extension(oid: str, change_node: Callable[[DerNode], None]) -> Change:
    def change(tree: DerNode) -> None:
        change_node(find_extension(tree, oid))

    return change


def _spki(algorithm: bytes, key: bytes = b"\x00\x04" + bytes(64)) -> bytes:
    return tlv(0x30, tlv(0x30, algorithm) + tlv(0x03, key))


def _name(*rdns: bytes) -> bytes:
    return tlv(0x30, b"".join(tlv(0x31, rdn) for rdn in rdns))


def _atv(oid: bytes, value: bytes) -> bytes:
    return tlv(0x30, tlv(0x06, oid) + value)


def _version(content: bytes) -> Change:
    def change(tree: DerNode) -> None:
        tbs_fields(tree)[0] = DerNode.parse(tlv(0xA0, content))

    return change


def _append_field(der: bytes) -> Change:
    def change(tree: DerNode) -> None:
        tbs_fields(tree).append(DerNode.parse(der))

    return change


def _extensions_wrapper(tree: DerNode) -> None:
    tbs_fields(tree)[-1][0].tag = 0x31  # [3] wraps a SET instead of a SEQUENCE


def _two_sequences_in_extensions(tree: DerNode) -> None:
    wrapper = tbs_fields(tree)[-1]
    assert wrapper.children is not None
    wrapper.children.append(DerNode(0x30, []))


def _empty_extensions(tree: DerNode) -> None:
    tbs_fields(tree)[-1][0].children = []


def _criticality(octet: bytes) -> Callable[[DerNode], None]:
    def change(node: DerNode) -> None:
        assert node.children is not None
        node.children[1:-1] = [DerNode(0x01, None, octet)]

    return change


def _value_tag(tag: int) -> Callable[[DerNode], None]:
    def change(node: DerNode) -> None:
        node[-1].tag = tag
        if tag & 0x20:
            node[-1].children, node[-1].content = [DerNode(0x04, None, node[-1].content)], b""

    return change


def _extension_oid(content: bytes) -> Callable[[DerNode], None]:
    def change(node: DerNode) -> None:
        node[0].content = content

    return change


def _criticality_after_value(node: DerNode) -> None:
    assert node.children is not None
    node.children.append(DerNode(0x01, None, b"\xff"))


def _extension_not_a_sequence(tree: DerNode) -> None:
    extension_nodes(tree)[0].tag = 0x31


REFUSALS: dict[str, tuple[Change, str]] = {
    "certificate is a SET": (lambda tree: setattr(tree, "tag", 0x31), "X.509 schema"),
    "signature is an OCTET STRING": (_top(0x30, 0x30, 0x04), "X.509 schema"),
    "algorithm is a SET": (_top(0x30, 0x31, 0x03), "X.509 schema"),
    "a fourth element": (lambda tree: (tree.children or []).append(DerNode(0x05, None, b"")), "X.509 schema"),
    "signature BIT STRING unused bits > 7": (
        lambda tree: setattr(tree[2], "content", b"\x08" + tree[2].content[1:]), "unused-bit count"),
    "signature BIT STRING with unused bits": (
        lambda tree: setattr(tree[2], "content", b"\x01" + tree[2].content[1:-1] + b"\x00"), "unused bits"),
    "version INTEGER not minimal": (_version(tlv(0x02, b"\x00\x02")), "INTEGER not minimally encoded"),
    "version [0] with two values": (_version(tlv(0x02, b"\x02") * 2), "exactly one value"),
    "version [0] holding an OCTET STRING": (_version(tlv(0x04, b"\x02")), "exactly one value"),
    "serial INTEGER not minimal": (lambda tree: setattr(tbs_fields(tree)[1], "content", b"\x00\x01"),
                                   "INTEGER not minimally encoded"),
    "serial constructed": (lambda tree: setattr(tbs_fields(tree)[1], "tag", 0x22), "serialNumber"),
    "algorithm OID not canonical": (_both_algorithms(tlv(0x30, tlv(0x06, b"\x2a\x80\x86\x48\xce\x3d\x04\x03\x02"))),
                                    "not minimally encoded"),
    "algorithm NULL with content": (_both_algorithms(tlv(0x30, tlv(0x06, ECDSA_SHA256) + tlv(0x05, b"\x00"))),
                                    "NULL with content"),
    "algorithm parameters not DER": (
        _both_algorithms(tlv(0x30, tlv(0x06, ECDSA_SHA256) + tlv(0x30, tlv(0x01, b"\x01")))), "BOOLEAN not DER"),
    "algorithm parameters end-of-contents": (
        _both_algorithms(tlv(0x30, tlv(0x06, ECDSA_SHA256) + tlv(0x00, b""))), "end-of-contents"),
    "algorithm with two parameters": (
        _both_algorithms(tlv(0x30, tlv(0x06, ECDSA_SHA256) + tlv(0x05, b"") * 2)), "AlgorithmIdentifier malformed"),
    "issuer is a SET": (lambda tree: setattr(tbs_fields(tree)[3], "tag", 0x31), "X.509 schema"),
    "validity is a SET": (lambda tree: setattr(tbs_fields(tree)[4], "tag", 0x31), "X.509 schema"),
    "validity time constructed": (_set(4, tlv(0x30, tlv(0x37, tlv(0x17, b"260101000000Z")) * 2)), "X.509 schema"),
    "subject is a SEQUENCE of SEQUENCE": (_set(5, tlv(0x30, tlv(0x30, _atv(CN, tlv(0x0C, b"x"))))), "not a SET"),
    "subjectPublicKeyInfo is a SET": (lambda tree: setattr(tbs_fields(tree)[6], "tag", 0x31), "X.509 schema"),
    "key parameters not DER": (_set(6, _spki(tlv(0x06, EC_KEY) + tlv(0x30, tlv(0x02, b"\x00\x01")))),
                               "INTEGER not minimally"),
    "key curve OID not canonical": (_set(6, _spki(tlv(0x06, EC_KEY) + tlv(0x06, b"\x2a\x80" + P256[1:]))),
                                    "not minimally encoded"),
    "key BIT STRING unused bits > 7": (_set(6, _spki(tlv(0x06, EC_KEY) + tlv(0x06, P256), b"\x09\x04")),
                                       "unused-bit count"),
    "key BIT STRING empty": (_set(6, _spki(tlv(0x06, EC_KEY) + tlv(0x06, P256), b"")), "empty BIT STRING"),
    "attribute type OID not canonical": (_set(5, _name(_atv(b"\x55\x80\x04\x03", tlv(0x0C, b"x")))),
                                         "not minimally encoded"),
    "attribute value not DER": (_set(5, _name(_atv(CN, tlv(0x30, tlv(0x01, b"\x01"))))), "BOOLEAN not DER"),
    "attribute value end-of-contents": (_set(5, _name(_atv(CN, tlv(0x00, b"x")))), "end-of-contents"),
    "multi-valued RDN out of order": (
        _set(5, _name(_atv(CN, tlv(0x0C, b"b")) + _atv(CN, tlv(0x0C, b"a")))), "SET OF elements not in DER order"),
    "attribute with three parts": (_set(5, _name(tlv(0x30, tlv(0x06, CN) + tlv(0x0C, b"x") * 2))), "malformed"),
    "extensions [3] wraps a SET": (_extensions_wrapper, "exactly one value"),
    "extensions [3] wraps two values": (_two_sequences_in_extensions, "exactly one value"),
    "extensions empty": (_empty_extensions, "empty extensions"),
    "extensions twice": (_append_field(tlv(0xA3, tlv(0x30, tlv(0x30, tlv(0x06, b"\x2b") + tlv(0x04, b""))))),
                         "unexpected field"),
    "an unknown TBSCertificate field": (_append_field(tlv(0xA4, b"")), "unexpected field"),
    "Extension is a SET": (_extension_not_a_sequence, "not a SEQUENCE"),
    "criticality BOOLEAN 0x01": (_extension(oids.KEY_USAGE, _criticality(b"\x01")), "BOOLEAN not DER"),
    "criticality after the value": (_extension(oids.SUBJECT_ALT_NAME, _criticality_after_value),
                                    "Extension malformed"),
    "extnValue constructed": (_extension(oids.SUBJECT_ALT_NAME, _value_tag(0x24)), "Extension malformed"),
    "extnID not canonical": (_extension(oids.SUBJECT_ALT_NAME, _extension_oid(b"\x55\x80\x1d\x11")),
                             "not minimally encoded"),
}


@pytest.mark.parametrize(("change", "reason"), REFUSALS.values(), ids=REFUSALS.keys())
def test_der_and_schema_refusals(change: Change, reason: str) -> None:
    error = refusal(mutate(change))
    assert error.category is Category.DECODE_ERROR
    assert reason in error.reason


def test_a_multi_valued_rdn_in_der_order_is_accepted() -> None:
    cert = parse_certificate(mutate(_set(5, _name(_atv(CN, tlv(0x0C, b"a")) + _atv(CN, tlv(0x0C, b"b"))))))
    assert cert.subject.values(oids.COMMON_NAME) == ("a", "b")


def test_an_attribute_value_of_an_unknown_type_is_checked_as_der_then_refused() -> None:
    assert "unsupported type" in refusal(mutate(_set(5, _name(_atv(CN, tlv(0x30, tlv(0x05, b""))))))).reason
