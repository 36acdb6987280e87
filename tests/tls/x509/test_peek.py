"""peek_certificate's own refusals and its reading of the key identifiers (what path building prunes on)."""

from __future__ import annotations

import pytest
from cryptography import x509

from tests.tls.x509.factory import DerNode, Spec, ca_spec, extension_nodes, issue, tbs_fields, tlv
from tls.x509 import X509Error
from tls.x509.der import tlv as der_tlv
from tls.x509.limits import MAX_EXTENSIONS
from tls.x509.peek import peek_certificate

CA = issue(ca_spec("Peek CA"))
SKI = CA.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest


def _edited(change: object) -> bytes:
    tree = DerNode.parse(CA.der)
    assert callable(change)
    change(tree)
    return tree.encode()


def _drop_fields(tree: DerNode) -> None:
    del tbs_fields(tree)[3:]


def _unused_bits(tree: DerNode) -> None:
    tree[2].content = b"\x01" + tree[2].content[1:]


@pytest.mark.parametrize(("change", "reason"), [
    (lambda tree: (tree.children or []).pop(), "not SEQUENCE"),
    (_unused_bits, "unused bits"),
    (_drop_fields, "too few fields"),
])
def test_refusals(change: object, reason: str) -> None:
    with pytest.raises(X509Error, match=reason):
        peek_certificate(_edited(change))


def _ski_first(tree: DerNode) -> list[DerNode]:
    nodes = extension_nodes(tree)
    nodes.sort(key=lambda node: node[0].content != b"\x55\x1d\x0e")
    return nodes


def test_key_identifiers_past_the_extension_limit_are_not_read() -> None:
    def pad(tree: DerNode) -> None:
        nodes = extension_nodes(tree)
        ski = [n for n in nodes if n[0].content == b"\x55\x1d\x0e"]
        nodes[:] = [DerNode.parse(tlv(0x30, tlv(0x06, bytes([0x2B, 6, 1, 4, 1, n])) + tlv(0x04, b"")))
                     for n in range(MAX_EXTENSIONS)] + ski

    assert peek_certificate(_edited(pad)).subject_key_identifier is None


def test_the_first_key_identifier_counts_and_unreadable_framing_stops_the_reading() -> None:
    def twice_then_junk(tree: DerNode) -> None:
        nodes = _ski_first(tree)
        nodes.insert(1, DerNode.parse(tlv(0x30, tlv(0x06, b"\x55\x1d\x0e") + tlv(0x04, tlv(0x04, b"other")))))
        nodes.append(DerNode(0x30, None, b"\x06"))  # an extension whose OID header is cut short

    assert peek_certificate(_edited(twice_then_junk)).subject_key_identifier == SKI


def test_a_key_identifier_extension_without_a_value_stops_the_reading() -> None:
    def bare(tree: DerNode) -> None:
        extension_nodes(tree).insert(0, DerNode.parse(tlv(0x30, tlv(0x06, b"\x55\x1d\x0e"))))

    assert peek_certificate(_edited(bare)).subject_key_identifier is None


def test_an_authority_key_identifier_without_a_key_id_filters_nothing() -> None:
    leaf = issue(Spec(aki=False, extra=((x509.AuthorityKeyIdentifier(None, None, None), False),)), issuer=CA)
    assert peek_certificate(leaf.der).authority_key_identifier is None


@pytest.mark.parametrize("size", [0, 1, 127, 128, 255, 256, 70000])
def test_der_tlv_writes_minimal_lengths(size: int) -> None:
    assert der_tlv(0x04, bytes(size)) == tlv(0x04, bytes(size))
