"""The DER and schema rules of the extension decoders and the GeneralName reader, one refusal each.

pyasn1 (schema decode, then a re-encode compared with the input) used to refuse these; the decoders read
DER themselves now (tls/x509/extensions.py, general_names.py), so each rule is tested here on its own:
exact tags (a constructed encoding of a primitive form, an implicit tag in the wrong form), field order
and cardinality, SIZE (1..MAX), encoded DEFAULT values, minimal INTEGERs, canonical OBJECT IDENTIFIERs,
ASCII IA5Strings, and DER inside open types.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from outcomes.category import Category
from tests.tls.x509.factory import tlv
from tls.x509 import X509Error, general_names
from tls.x509 import extensions as ext
from tls.x509.model import GeneralNames

OID = tlv(0x06, b"\x2b\x06\x01")
BAD_OID = tlv(0x06, b"\x2b\x80\x06")
CN_NAME = tlv(0x30, tlv(0x31, tlv(0x30, tlv(0x06, b"\x55\x04\x03") + tlv(0x0C, b"x"))))
NOT_DER = tlv(0x30, tlv(0x01, b"\x01"))  # a BOOLEAN that is neither 0x00 nor 0xFF


def seq(*parts: bytes) -> bytes:
    return tlv(0x30, b"".join(parts))


def san(*names: bytes) -> bytes:
    return seq(*names)


def other_name(*parts: bytes) -> bytes:
    return tlv(0xA0, b"".join(parts))


def subtrees(tag: int, *bases: bytes) -> bytes:
    return tlv(tag, b"".join(seq(base) for base in bases))


def _basic(value: bytes) -> object:
    return ext.basic_constraints(value, True)


Decoder = Callable[[bytes], object]

REFUSALS: dict[str, tuple[Decoder, bytes, str]] = {
    # basicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER (0..MAX) OPTIONAL }
    "bc-set": (_basic, tlv(0x31, b""), "basicConstraints malformed"),
    "bc-order": (_basic, seq(tlv(0x02, b"\x01"), tlv(0x01, b"\xff")), "basicConstraints malformed"),
    "bc-extra": (_basic, seq(tlv(0x01, b"\xff"), tlv(0x02, b"\x01"), tlv(0x05, b"")), "basicConstraints malformed"),
    "bc-boolean-01": (_basic, seq(tlv(0x01, b"\x01")), "BOOLEAN not DER"),
    "bc-pathlen-not-minimal": (_basic, seq(tlv(0x01, b"\xff"), tlv(0x02, b"\x00\x01")), "INTEGER not minimally"),
    "bc-pathlen-empty": (_basic, seq(tlv(0x01, b"\xff"), tlv(0x02, b"")), "empty INTEGER"),
    "bc-trailing": (_basic, seq() + b"\x00", "trailing"),
    # KeyUsage ::= BIT STRING
    "ku-octet-string": (ext.key_usage, tlv(0x04, b"\x07\x80"), "keyUsage malformed"),
    "ku-constructed": (ext.key_usage, tlv(0x23, tlv(0x03, b"\x07\x80")), "keyUsage malformed"),
    "ku-unused-8": (ext.key_usage, tlv(0x03, b"\x08\x80"), "unused-bit count"),
    "ku-padding": (ext.key_usage, tlv(0x03, b"\x06\x81"), "padding bits"),
    "ku-empty-content": (ext.key_usage, tlv(0x03, b""), "empty BIT STRING"),
    # ExtKeyUsageSyntax ::= SEQUENCE SIZE (1..MAX) OF OBJECT IDENTIFIER
    "eku-set": (ext.extended_key_usage, tlv(0x31, OID), "extendedKeyUsage malformed"),
    "eku-not-oid": (ext.extended_key_usage, seq(tlv(0x04, b"\x2b")), "not an OBJECT IDENTIFIER"),
    "eku-oid-not-canonical": (ext.extended_key_usage, seq(BAD_OID), "not minimally encoded"),
    "eku-oid-truncated": (ext.extended_key_usage, seq(tlv(0x06, b"\x2b\x86")), "truncated OBJECT IDENTIFIER"),
    # GeneralNames in a subjectAltName
    "san-set": (ext.subject_alt_name, tlv(0x31, tlv(0x82, b"a.example")), "subjectAltName malformed"),
    "san-uri-not-ascii": (ext.subject_alt_name, san(tlv(0x86, b"https://\xff/")), "not ASCII"),
    "san-email-not-ascii": (ext.subject_alt_name, san(tlv(0x81, "é@example.com".encode())), "not ASCII"),
    "san-dns-constructed": (ext.subject_alt_name, san(tlv(0xA2, tlv(0x16, b"a.example"))), "tag 0xa2"),
    "san-ip-constructed": (ext.subject_alt_name, san(tlv(0xA7, tlv(0x04, b"\x01\x02\x03\x04"))), "tag 0xa7"),
    "san-unknown-form": (ext.subject_alt_name, san(tlv(0x89, b"x")), "tag 0x89"),
    "san-universal-tag": (ext.subject_alt_name, san(tlv(0x16, b"a.example")), "tag 0x16"),
    "san-registered-id-not-canonical": (ext.subject_alt_name, san(tlv(0x88, b"\x2b\x80\x06")), "not minimally"),
    "san-registered-id-empty": (ext.subject_alt_name, san(tlv(0x88, b"")), "empty registeredID"),
    "san-registered-id-constructed": (ext.subject_alt_name, san(tlv(0xA8, OID)), "tag 0xa8"),
    "othername-primitive": (ext.subject_alt_name, san(tlv(0x80, OID + tlv(0xA0, tlv(0x0C, b"v")))), "tag 0x80"),
    "othername-no-value": (ext.subject_alt_name, san(other_name(OID)), "otherName"),
    "othername-value-untagged": (ext.subject_alt_name, san(other_name(OID, tlv(0x0C, b"v"))), "otherName"),
    "othername-type-not-oid": (ext.subject_alt_name, san(other_name(tlv(0x04, b"\x2b"), tlv(0xA0, tlv(0x0C, b"v")))),
                               "otherName"),
    "othername-type-not-canonical": (ext.subject_alt_name, san(other_name(BAD_OID, tlv(0xA0, tlv(0x0C, b"v")))),
                                     "not minimally"),
    "othername-value-empty": (ext.subject_alt_name, san(other_name(OID, tlv(0xA0, b""))), "exactly one value"),
    "othername-two-values": (ext.subject_alt_name, san(other_name(OID, tlv(0xA0, tlv(0x0C, b"v") * 2))),
                             "exactly one value"),
    "othername-value-not-der": (ext.subject_alt_name, san(other_name(OID, tlv(0xA0, NOT_DER))), "BOOLEAN not DER"),
    "othername-value-end-of-contents": (ext.subject_alt_name, san(other_name(OID, tlv(0xA0, tlv(0x20, b"")))),
                                        "end-of-contents"),
    "directory-name-set": (ext.subject_alt_name, san(tlv(0xA4, tlv(0x31, b""))), "exactly one value"),
    "directory-name-two": (ext.subject_alt_name, san(tlv(0xA4, CN_NAME * 2)), "exactly one value"),
    "directory-name-absent": (ext.subject_alt_name, san(tlv(0xA4, b"")), "empty directoryName"),
    "directory-name-empty": (ext.subject_alt_name, san(tlv(0xA4, seq())), "empty directoryName"),
    "san-uri-empty": (ext.subject_alt_name, san(tlv(0x86, b"")), "empty uniformResourceIdentifier"),
    "aki-issuer-empty-name": (ext.authority_key_identifier, seq(tlv(0xA1, tlv(0xA4, seq())), tlv(0x82, b"\x01")),
                              "empty directoryName"),
    "aia-location-empty": (ext.authority_info_access, seq(seq(OID, tlv(0x86, b""))), "empty"),
    "x400-address-malformed": (ext.subject_alt_name, san(tlv(0xA3, b"")), "subjectAltName malformed"),
    "edi-party-name-primitive-party": (ext.subject_alt_name, san(tlv(0xA5, tlv(0x81, b"x"))),
                                       "subjectAltName malformed"),
    # NameConstraints ::= SEQUENCE { permittedSubtrees [0] OPTIONAL, excludedSubtrees [1] OPTIONAL }
    "nc-permitted-primitive": (ext.name_constraints, seq(tlv(0x80, seq(tlv(0x82, b"a.example")))),
                               "nameConstraints malformed"),
    "nc-excluded-first": (ext.name_constraints, seq(subtrees(0xA1, tlv(0x82, b"b.example")),
                                                    subtrees(0xA0, tlv(0x82, b"a.example"))),
                          "nameConstraints malformed"),
    "nc-unknown-field": (ext.name_constraints, seq(subtrees(0xA2, tlv(0x82, b"a.example"))),
                         "nameConstraints malformed"),
    "nc-empty-excluded": (ext.name_constraints, seq(tlv(0xA1, b"")), "canonical DER"),
    "nc-minimum-default": (ext.name_constraints, seq(tlv(0xA0, seq(tlv(0x82, b"a.example"), tlv(0x80, b"\x00")))),
                           "minimum/maximum"),
    "nc-subtree-set": (ext.name_constraints, seq(tlv(0xA0, tlv(0x31, tlv(0x82, b"a.example")))),
                       "not a SEQUENCE"),
    "nc-subtree-empty": (ext.name_constraints, seq(tlv(0xA0, seq())), "without a base"),
    "nc-base-unknown-form": (ext.name_constraints, seq(subtrees(0xA0, tlv(0x89, b"x"))), "tag 0x89"),
    "nc-base-not-ascii": (ext.name_constraints, seq(subtrees(0xA0, tlv(0x82, b"\xe9.example"))), "not ASCII"),
    # AuthorityKeyIdentifier ::= SEQUENCE { [0] keyIdentifier, [1] GeneralNames, [2] INTEGER } (all OPTIONAL)
    "aki-set": (ext.authority_key_identifier, tlv(0x31, tlv(0x80, b"\x01")), "authorityKeyIdentifier malformed"),
    "aki-key-id-constructed": (ext.authority_key_identifier, seq(tlv(0xA0, tlv(0x04, b"\x01"))),
                               "authorityKeyIdentifier malformed"),
    "aki-serial-not-minimal": (ext.authority_key_identifier,
                               seq(tlv(0xA1, tlv(0xA4, CN_NAME)), tlv(0x82, b"\x00\x01")), "INTEGER not minimally"),
    "aki-serial-empty": (ext.authority_key_identifier, seq(tlv(0xA1, tlv(0xA4, CN_NAME)), tlv(0x82, b"")),
                         "empty INTEGER"),
    "aki-issuer-primitive": (ext.authority_key_identifier, seq(tlv(0x81, b"x"), tlv(0x82, b"\x01")),
                             "authorityKeyIdentifier malformed"),
    "aki-issuer-empty": (ext.authority_key_identifier, seq(tlv(0xA1, b""), tlv(0x82, b"\x01")), "no GeneralName"),
    "aki-issuer-bad-name": (ext.authority_key_identifier, seq(tlv(0xA1, tlv(0x82, b"\xff")), tlv(0x82, b"\x01")),
                            "not ASCII"),
    "aki-order": (ext.authority_key_identifier, seq(tlv(0x82, b"\x01"), tlv(0x80, b"\x01")),
                  "authorityKeyIdentifier malformed"),
    "aki-unknown-field": (ext.authority_key_identifier, seq(tlv(0x80, b"\x01"), tlv(0x83, b"\x01")),
                          "authorityKeyIdentifier malformed"),
    "aki-trailing": (ext.authority_key_identifier, seq(tlv(0x80, b"\x01")) + b"\x00", "trailing"),
    # SubjectKeyIdentifier ::= OCTET STRING
    "ski-constructed": (ext.subject_key_identifier, tlv(0x24, tlv(0x04, b"\x01")), "subjectKeyIdentifier malformed"),
    "ski-bit-string": (ext.subject_key_identifier, tlv(0x03, b"\x00\x01"), "subjectKeyIdentifier malformed"),
    # CertificatePolicies ::= SEQUENCE SIZE (1..MAX) OF PolicyInformation
    "cp-policy-set": (ext.certificate_policies, seq(tlv(0x31, OID)), "PolicyInformation"),
    "cp-policy-not-oid": (ext.certificate_policies, seq(seq(tlv(0x04, b"\x2b"))), "PolicyInformation"),
    "cp-policy-oid-not-canonical": (ext.certificate_policies, seq(seq(BAD_OID)), "not minimally"),
    "cp-policy-three-fields": (ext.certificate_policies, seq(seq(OID, seq(seq(OID, NOT_DER[2:])), tlv(0x05, b""))),
                               "PolicyInformation"),
    "cp-qualifiers-empty": (ext.certificate_policies, seq(seq(OID, seq())), "canonical DER"),
    "cp-qualifiers-set": (ext.certificate_policies, seq(seq(OID, tlv(0x31, seq(OID, tlv(0x16, b"x"))))),
                          "policyQualifiers"),
    "cp-qualifier-without-value": (ext.certificate_policies, seq(seq(OID, seq(seq(OID)))), "PolicyQualifierInfo"),
    "cp-qualifier-two-values": (ext.certificate_policies,
                                seq(seq(OID, seq(seq(OID, tlv(0x16, b"x"), tlv(0x16, b"y"))))), "PolicyQualifierInfo"),
    "cp-qualifier-id-not-canonical": (ext.certificate_policies, seq(seq(OID, seq(seq(BAD_OID, tlv(0x16, b"x"))))),
                                      "not minimally"),
    "cp-qualifier-not-der": (ext.certificate_policies, seq(seq(OID, seq(seq(OID, NOT_DER)))), "BOOLEAN not DER"),
    # AuthorityInfoAccessSyntax ::= SEQUENCE SIZE (1..MAX) OF SEQUENCE { OID, GeneralName }
    "aia-description-set": (ext.authority_info_access, seq(tlv(0x31, OID + tlv(0x86, b"u"))), "AccessDescription"),
    "aia-three-parts": (ext.authority_info_access, seq(seq(OID, tlv(0x86, b"u"), tlv(0x86, b"v"))),
                        "AccessDescription"),
    "aia-method-not-oid": (ext.authority_info_access, seq(seq(tlv(0x04, b"\x2b"), tlv(0x86, b"u"))),
                           "AccessDescription"),
    "aia-method-not-canonical": (ext.authority_info_access, seq(seq(BAD_OID, tlv(0x86, b"u"))), "not minimally"),
    "aia-location-unknown-form": (ext.authority_info_access, seq(seq(OID, tlv(0x89, b"u"))), "tag 0x89"),
    "aia-location-not-ascii": (ext.authority_info_access, seq(seq(OID, tlv(0x86, b"\xff"))), "not ASCII"),
}


@pytest.mark.parametrize(("decode", "value", "reason"), REFUSALS.values(), ids=REFUSALS.keys())
def test_refusals(decode: Decoder, value: bytes, reason: str) -> None:
    with pytest.raises(X509Error) as info:
        decode(value)
    assert info.value.category is Category.DECODE_ERROR
    assert reason in info.value.reason


def test_every_general_name_form_is_read() -> None:
    edi = tlv(0xA5, tlv(0xA1, tlv(0x0C, b"party")))
    names = ext.subject_alt_name(san(
        tlv(0x82, b"a.example"), tlv(0x87, b"\x0a\x00\x00\x01"), tlv(0x81, b"me@example.com"), tlv(0xA4, CN_NAME),
        tlv(0x86, b"https://x.example/"), other_name(OID, tlv(0xA0, tlv(0x0C, b"v"))), tlv(0x88, b"\x2b\x06"), edi))
    assert isinstance(names, GeneralNames)
    assert (names.dns, names.ips, names.emails) == (("a.example",), (b"\x0a\x00\x00\x01",), ("me@example.com",))
    assert names.directory_names[0].values("2.5.4.3") == ("x",)
    assert names.other_forms == frozenset({"uniformResourceIdentifier", "otherName", "registeredID", "ediPartyName"})


def test_an_empty_name_constraint_stands_for_every_name_of_its_form() -> None:
    constraints = ext.name_constraints(seq(subtrees(0xA0, tlv(0x82, b""), tlv(0xA4, seq()))))
    assert constraints.permitted is not None
    assert constraints.permitted.dns == ("",)
    assert constraints.permitted.directory_names[0].is_empty


def test_encoded_values_that_are_not_defaults_are_kept() -> None:
    constraints = ext.basic_constraints(seq(tlv(0x01, b"\xff"), tlv(0x02, b"\x00\x80")), True)
    assert (constraints.ca, constraints.path_length) == (True, 128)
    assert ext.basic_constraints(seq(tlv(0x02, b"\x03")), False).path_length == 3  # pathLen without cA: kept
    aki = ext.authority_key_identifier(seq(tlv(0x80, b"\x01"), tlv(0xA1, tlv(0xA4, CN_NAME)), tlv(0x82, b"\xff")))
    assert (aki.key_identifier, aki.has_issuer_and_serial) == (b"\x01", True)  # a negative serial is the issuer's
    assert ext.certificate_policies(seq(seq(OID, seq(seq(OID, tlv(0x16, b"https://cps/")))))) == ("1.3.6.1",)


EDI = tlv(0xA5, tlv(0xA1, tlv(0x0C, b"party")))  # an ediPartyName: one of the two forms pyasn1's schema decodes


@pytest.mark.parametrize(("decode", "value", "what"), [
    (ext.subject_alt_name, san(EDI, EDI), "subjectAltName"),
    (ext.name_constraints, seq(subtrees(0xA0, EDI, EDI)), "nameConstraints"),
    (ext.authority_info_access, seq(seq(OID, EDI), seq(OID, EDI)), "authorityInfoAccess"),
    (ext.authority_key_identifier, seq(tlv(0xA1, EDI + EDI), tlv(0x82, b"\x01")),
     "authorityKeyIdentifier"),
], ids=["san", "name-constraints", "aia", "aki"])
def test_a_list_holds_at_most_one_schema_decoded_name_and_none_is_decoded_when_it_holds_more(
        monkeypatch: pytest.MonkeyPatch, decode: Decoder, value: bytes, what: str) -> None:
    """Each x400Address or ediPartyName costs a pyasn1 decode and re-encode, about a whole ordinary parse: a
    leaf full of them (parsed before any signature check) cost 86 ms to refuse (found by review)."""
    decoded: list[bytes] = []
    monkeypatch.setattr(general_names, "decode_strict", lambda data, *_: decoded.append(data))
    with pytest.raises(X509Error, match=f"{what} malformed: more than 1 x400Address or ediPartyName"):
        decode(value)
    assert decoded == []


def test_one_schema_decoded_name_is_still_read() -> None:
    assert ext.subject_alt_name(san(tlv(0x82, b"a.example"), EDI)).other_forms == frozenset({"ediPartyName"})


def test_authority_info_access_holds_at_most_sixteen_descriptions() -> None:
    location = tlv(0x86, b"http://x.example/")
    ext.authority_info_access(seq(*[seq(OID, location)] * 16))
    with pytest.raises(X509Error, match="too many authorityInfoAccess entries"):
        ext.authority_info_access(seq(*[seq(OID, location)] * 17))
