"""Distinguished names (RFC 5280 4.1.2.4) and the string types inside them.

Why strict: names are what chaining and name constraints compare, and historic attacks hid NUL bytes or
invalid encodings in them. Every RDN must hold at least one attribute, every value must be a correctly
encoded string of its declared type, and the counts are bounded.
"""

from __future__ import annotations

from typing import Final

from tls.x509 import oids
from tls.x509.der import (
    TAG_BMP_STRING,
    TAG_IA5_STRING,
    TAG_OID,
    TAG_PRINTABLE_STRING,
    TAG_SEQUENCE,
    TAG_SET,
    TAG_TELETEX_STRING,
    TAG_UNIVERSAL_STRING,
    TAG_UTF8_STRING,
    check_der,
    check_set_order,
    children,
    read_oid,
    read_single,
)
from tls.x509.errors import decode_error
from tls.x509.limits import MAX_NAME_ATTRIBUTES, MAX_NAME_RDNS, MAX_NAME_VALUE_SIZE
from tls.x509.model import Attribute, Name

TAG_NUMERIC_STRING: Final = 0x12
_PRINTABLE: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?")
_NUMERIC: Final = frozenset(b"0123456789 ")
_STRING_TAGS: Final = frozenset({TAG_UTF8_STRING, TAG_PRINTABLE_STRING, TAG_IA5_STRING, TAG_NUMERIC_STRING,
                                 TAG_TELETEX_STRING, TAG_BMP_STRING, TAG_UNIVERSAL_STRING})


def parse_name(der: bytes) -> Name:
    """Decode a Name (an RDNSequence) from its DER, every header and value checked here: a Name is read
    straight from the certificate's bytes, with no integrity pass before it."""
    _, start, end = read_single(der, TAG_SEQUENCE)
    rdns: list[bytes] = []
    attributes: list[tuple[Attribute, ...]] = []
    total = 0
    for tag, header, cstart, cend in children(der, start, end):
        if tag != TAG_SET:
            raise decode_error("RDN is not a SET")
        if len(rdns) >= MAX_NAME_RDNS:
            raise decode_error("too many RDNs in a name")
        elements = children(der, cstart, cend)
        if not elements:
            raise decode_error("empty RDN")
        total += len(elements)
        if total > MAX_NAME_ATTRIBUTES:
            raise decode_error("too many attributes in a name")
        if len(elements) > 1:
            check_set_order(der, elements)
        rdn: list[Attribute] = []
        for atv_tag, _, astart, aend in elements:
            if atv_tag != TAG_SEQUENCE:
                raise decode_error("AttributeTypeAndValue is not a SEQUENCE")
            rdn.append(_parse_attribute(der, astart, aend))
        rdns.append(der[header:cend])
        attributes.append(tuple(rdn))
    return Name(der, tuple(rdns), tuple(attributes))


def _parse_attribute(der: bytes, start: int, end: int) -> Attribute:
    parts = children(der, start, end)
    if len(parts) != 2:
        raise decode_error("AttributeTypeAndValue malformed")
    (oid_tag, _, oid_start, oid_end), (tag, header, vstart, vend) = parts
    if oid_tag != TAG_OID:
        raise decode_error("AttributeTypeAndValue malformed")
    oid = read_oid(der, oid_start, oid_end)
    if tag not in _STRING_TAGS:
        check_der(der[header:vend])  # an open type (ANY): whatever it is, it must be DER before it is refused
    value = decode_string(tag, der[vstart:vend])
    if oid == oids.COUNTRY_NAME and (tag != TAG_PRINTABLE_STRING or len(value) != 2):
        raise decode_error("countryName must be a two-letter PrintableString")
    if oid == oids.EMAIL_ADDRESS and tag != TAG_IA5_STRING:
        raise decode_error("emailAddress must be an IA5String")
    return Attribute(oid, value)


def decode_string(tag: int, raw: bytes) -> str:
    """Decode a directory string of the given universal tag, refusing invalid or NUL-bearing content."""
    if len(raw) > MAX_NAME_VALUE_SIZE:
        raise decode_error("name attribute value too long")
    try:
        if tag == TAG_UTF8_STRING:
            text = raw.decode("utf-8")
        elif tag == TAG_PRINTABLE_STRING:
            if not _PRINTABLE.issuperset(raw):
                raise decode_error("invalid character in PrintableString")
            text = raw.decode("ascii")
        elif tag == TAG_IA5_STRING:
            text = raw.decode("ascii")
        elif tag == TAG_NUMERIC_STRING:
            if not _NUMERIC.issuperset(raw):
                raise decode_error("invalid character in NumericString")
            text = raw.decode("ascii")
        elif tag == TAG_TELETEX_STRING:
            text = raw.decode("latin-1")
        elif tag == TAG_BMP_STRING:
            if len(raw) % 2:
                raise decode_error("BMPString of odd length")
            text = raw.decode("utf-16-be")
        elif tag == TAG_UNIVERSAL_STRING:
            if len(raw) % 4:
                raise decode_error("UniversalString length not a multiple of 4")
            text = raw.decode("utf-32-be")
        else:
            raise decode_error(f"name attribute value of unsupported type 0x{tag:02x}")
    except UnicodeDecodeError as exc:
        raise decode_error("badly encoded string in a name") from exc
    if "\x00" in text:
        raise decode_error("NUL character in a name")
    return text
