"""GeneralName (RFC 5280 4.2.1.6), read straight from DER for every extension that holds one: subjectAltName,
nameConstraints, authorityKeyIdentifier and authorityInfoAccess.

Why not the schema decoder: these are in almost every certificate, and the schema decode plus the re-encode
that proved it canonical cost most of a parse. The forms certificates use are simple (an IA5String, an
OCTET STRING, a Name, an OBJECT IDENTIFIER, an otherName wrapping one value), so each is read here with its
DER rules: exact tag octets (a constructed encoding of a primitive form is refused), ASCII for the IA5String
forms, a canonical OBJECT IDENTIFIER, an explicit tag wrapping exactly one value, and DER for whatever an
otherName holds. The two forms nobody issues (x400Address, ediPartyName) have large schemas of their own;
they still go through pyasn1 with the re-encode check (`asn1.decode_strict`), which is as strict as before
but costs about as much per name as a whole ordinary certificate's parse: so a list of names may hold at most
MAX_SCHEMA_FORMS_PER_LIST of them (`check_schema_forms`), and the leaf, parsed before any signature is
checked, cannot buy hundreds of schema decodes with one certificate.
"""

from __future__ import annotations

from typing import Final

from tls.x509.asn1 import decode_strict
from tls.x509.der import TAG_OID, TAG_SEQUENCE, TLV, check_der, children, only_child, read_oid
from tls.x509.errors import decode_error
from tls.x509.model import Name
from tls.x509.names import parse_name

TAG_OTHER_NAME: Final = 0xA0
TAG_RFC822_NAME: Final = 0x81
TAG_DNS_NAME: Final = 0x82
TAG_X400_ADDRESS: Final = 0xA3
TAG_DIRECTORY_NAME: Final = 0xA4
TAG_EDI_PARTY_NAME: Final = 0xA5
TAG_URI: Final = 0x86
TAG_IP_ADDRESS: Final = 0x87
TAG_REGISTERED_ID: Final = 0x88

FORM_NAMES: Final = {
    TAG_OTHER_NAME: "otherName",
    TAG_RFC822_NAME: "rfc822Name",
    TAG_DNS_NAME: "dNSName",
    TAG_X400_ADDRESS: "x400Address",
    TAG_DIRECTORY_NAME: "directoryName",
    TAG_EDI_PARTY_NAME: "ediPartyName",
    TAG_URI: "uniformResourceIdentifier",
    TAG_IP_ADDRESS: "iPAddress",
    TAG_REGISTERED_ID: "registeredID",
}
_IA5_FORMS: Final = frozenset({TAG_RFC822_NAME, TAG_DNS_NAME, TAG_URI})
SCHEMA_FORMS: Final = frozenset({TAG_X400_ADDRESS, TAG_EDI_PARTY_NAME})
MAX_SCHEMA_FORMS_PER_LIST: Final = 1
"""x400Address and ediPartyName names one list may hold (see the module docstring): nobody issues any."""


def check_schema_forms(forms: list[int], what: str) -> None:
    """Refuse a list of names (by their form tags) that holds more schema-decoded forms than allowed, before any
    of them is decoded."""
    if sum(1 for form in forms if form in SCHEMA_FORMS) > MAX_SCHEMA_FORMS_PER_LIST:
        raise decode_error(f"{what} malformed: more than {MAX_SCHEMA_FORMS_PER_LIST} x400Address or ediPartyName")

GeneralName = tuple[int, str | bytes | Name | None]
"""(form tag, value): text for the IA5String forms, octets for iPAddress, a Name for directoryName, None for
the forms no rule here interprets (they are only named, by FORM_NAMES)."""


def read_general_names(data: bytes, start: int, end: int, what: str, limit: int) -> list[GeneralName]:
    """GeneralNames ::= SEQUENCE SIZE (1..MAX) OF GeneralName, the content in data[start:end]; more than
    `limit` names are refused before any is decoded."""
    elements = children(data, start, end)
    if not elements:
        raise decode_error(f"{what} malformed: no GeneralName")
    if len(elements) > limit:
        raise decode_error(f"too many {what} entries")
    check_schema_forms([element[0] for element in elements], what)
    return [read_general_name(data, element, what) for element in elements]


def read_general_name(data: bytes, element: TLV, what: str, *, constraint: bool = False) -> GeneralName:
    """One GeneralName, refused unless it is the DER of one of the nine forms. An empty one names nothing
    (RFC 5280 4.2.1.6: "MUST NOT issue ... empty GeneralName fields"), except as a name constraint, where
    an empty dNSName or directoryName stands for every name of its form (RFC 5280 4.2.1.10)."""
    tag, header, start, end = element
    if start == end and not constraint:
        raise decode_error(f"{what} malformed: empty {FORM_NAMES.get(tag, 'GeneralName')}")
    if tag in _IA5_FORMS:
        return tag, _ascii(data[start:end], what, tag)
    if tag == TAG_IP_ADDRESS:
        return tag, data[start:end]
    if tag == TAG_DIRECTORY_NAME:
        _, name_header, name_start, name_end = only_child(data, start, end, TAG_SEQUENCE, f"{what} directoryName")
        if name_start == name_end and not constraint:
            raise decode_error(f"{what} malformed: empty directoryName")
        return tag, parse_name(data[name_header:name_end])
    if tag == TAG_OTHER_NAME:
        _other_name(data, start, end, what)
    elif tag == TAG_REGISTERED_ID:
        read_oid(data, start, end)
    elif tag in SCHEMA_FORMS:
        from pyasn1_modules import rfc5280  # noqa: PLC0415 - forms nobody issues: imported when one comes

        decode_strict(data[header:end], rfc5280.GeneralName(), what)
    else:
        raise decode_error(f"{what} malformed: GeneralName with tag 0x{tag:02x}")
    return tag, None


def _other_name(data: bytes, start: int, end: int, what: str) -> None:
    """AnotherName ::= SEQUENCE { type-id OBJECT IDENTIFIER, value [0] EXPLICIT ANY } (implicitly tagged [0]).
    The value is an open type: one value, strict DER, whatever it is."""
    parts = children(data, start, end)
    if len(parts) != 2 or parts[0][0] != TAG_OID or parts[1][0] != TAG_OTHER_NAME:
        raise decode_error(f"{what} malformed: otherName")
    read_oid(data, parts[0][2], parts[0][3])
    value = children(data, parts[1][2], parts[1][3])
    if len(value) != 1:
        raise decode_error(f"{what} malformed: otherName value must be exactly one value")
    check_der(data[value[0][1] : value[0][3]])


def _ascii(raw: bytes, what: str, tag: int) -> str:
    """An IA5String's content: ASCII only (X.680 41: IA5 is the 128 characters of ISO 646)."""
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise decode_error(f"{what} malformed: {FORM_NAMES[tag]} is not ASCII") from exc
