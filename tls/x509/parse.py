"""parse_certificate: DER bytes -> immutable `Certificate`, in one schema-directed pass.

1. Integrity: the size bound, then every TLV header as it is read (tls.x509.der: definite minimal lengths,
   single-byte tags, nothing past its container, no trailing bytes).
2. Parse: the RFC 5280 schema is followed field by field: each tag compared exactly (so a constructed
   encoding of a primitive type, or a field out of order, is refused), each primitive held to its DER rules
   (INTEGER, BOOLEAN, BIT STRING, OBJECT IDENTIFIER), and the values whose type the schema leaves open
   (algorithm parameters, attribute values) walked by the generic DER checker. Fields are taken from the
   original bytes by offset, which keeps the exact encodings needed for signatures and name chaining.
   DEFAULT values encoded explicitly are refused (version v1, criticality FALSE here; inside extensions by
   their decoders, tls.x509.extensions).
3. Sanity: the RFC 5280 profile rules that hold whatever the certificate's role (serial number, version
   and extensions, unique identifiers, signature algorithm agreement, extension criticality).

Why not pyasn1's schema decode here: it, with the re-encode that proved an encoding canonical, was most of
the cost of every handshake, and each rule it enforced is enforced above (tests/tls/x509/test_der_schema.py
checks that whatever this parser accepts, pyasn1 decodes to the same bytes).
"""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

from outcomes.category import Category
from tls.x509 import extensions as ext
from tls.x509 import oids
from tls.x509.der import (
    BYTES_LIKE,
    TAG_BIT_STRING,
    TAG_BOOLEAN,
    TAG_GENERALIZED_TIME,
    TAG_INTEGER,
    TAG_OCTET_STRING,
    TAG_OID,
    TAG_SEQUENCE,
    TAG_UTC_TIME,
    TLV,
    check_bit_string,
    check_boolean,
    check_integer,
    children,
    only_child,
    read_oid,
    read_single,
)
from tls.x509.errors import X509Error, decode_error
from tls.x509.keys import PublicKeyInfo, parse_spki
from tls.x509.limits import MAX_CERT_SIZE, MAX_EXTENSIONS, MAX_SERIAL_OCTETS
from tls.x509.model import (
    AuthorityKeyIdentifier,
    BasicConstraints,
    Certificate,
    Extension,
    GeneralNames,
    NameConstraints,
)
from tls.x509.names import parse_name
from tls.x509.peek import TAG_EXTENSIONS, TAG_VERSION
from tls.x509.signature import parse_signature_algorithm

_TAG_ISSUER_UID = 0x81
_TAG_SUBJECT_UID = 0x82


def parse_certificate(der: bytes) -> Certificate:
    """Parse one DER certificate; refuse it (X509Error) if malformed or if it has a critical extension
    we do not process."""
    certificate = parse_certificate_data(der)
    if certificate.unsupported_critical:
        raise X509Error(
            Category.UNSUPPORTED_CRITICAL_EXTENSION,
            f"unsupported critical extension {certificate.unsupported_critical[0]}",
        )
    return certificate


def parse_certificate_data(der: bytes, known_key: PublicKeyInfo | None = None) -> Certificate:
    """Parse without refusing unknown critical extensions: they are recorded in `unsupported_critical`
    and refused by validation only if the certificate ends up in the path. `known_key` is a key already
    decoded (`keys.parse_spki`) from the bytes this certificate may carry as its SubjectPublicKeyInfo:
    used only if they are exactly those bytes (path building decodes an issuer's key before its parse)."""
    if not isinstance(der, BYTES_LIKE):
        raise decode_error("certificate must be bytes")
    der = bytes(der)
    if len(der) > MAX_CERT_SIZE:
        raise decode_error(f"certificate larger than {MAX_CERT_SIZE} bytes")
    tag, start, end = read_single(der)
    top = children(der, start, end)
    if tag != TAG_SEQUENCE or [t[0] for t in top] != [TAG_SEQUENCE, TAG_SEQUENCE, TAG_BIT_STRING]:
        raise _schema("Certificate is not SEQUENCE { tbs, algorithm, signature }")
    (_, tbs_header, tbs_start, tbs_end), (_, alg_header, _, alg_end), (_, _, sig_start, sig_end) = top
    check_bit_string(der, sig_start, sig_end)
    if der[sig_start] != 0:
        raise decode_error("signature BIT STRING has unused bits")
    signature = der[sig_start + 1 : sig_end]
    return _parse_tbs(der, (tbs_header, tbs_start, tbs_end), der[alg_header:alg_end], signature, known_key)


def _schema(reason: str) -> X509Error:
    return decode_error(f"certificate does not match the X.509 schema: {reason}")


def _parse_tbs(
    der: bytes, tbs: tuple[int, int, int], outer_algorithm: bytes, signature: bytes, known_key: PublicKeyInfo | None
) -> Certificate:
    """TBSCertificate, read from `der` by offset; `tbs` is (header start, content start, content end)."""
    fields = children(der, tbs[1], tbs[2])
    version = 1
    if fields and fields[0][0] == TAG_VERSION:
        version = _version(der, fields.pop(0))
    if len(fields) < 6:
        raise decode_error("TBSCertificate has too few fields")
    serial_f, algorithm_f, issuer_f, validity_f, subject_f, spki_f, *optional = fields
    if serial_f[0] != TAG_INTEGER:
        raise decode_error("serialNumber is not an INTEGER")
    serial = _serial(der, serial_f[2], serial_f[3])
    if der[algorithm_f[1] : algorithm_f[3]] != outer_algorithm:
        raise decode_error("signature algorithm in TBSCertificate differs from the outer one")
    algorithm = parse_signature_algorithm(outer_algorithm)
    if issuer_f[0] != TAG_SEQUENCE or validity_f[0] != TAG_SEQUENCE or subject_f[0] != TAG_SEQUENCE:
        raise _schema("issuer, validity and subject are SEQUENCEs")
    if spki_f[0] != TAG_SEQUENCE:
        raise _schema("subjectPublicKeyInfo is a SEQUENCE")
    issuer = parse_name(der[issuer_f[1] : issuer_f[3]])
    subject = parse_name(der[subject_f[1] : subject_f[3]])
    if issuer.is_empty:
        raise decode_error("issuer name is empty")
    not_before, not_after = _validity(der, validity_f[2], validity_f[3])
    spki = der[spki_f[1] : spki_f[3]]
    public_key_info = known_key if known_key is not None and known_key.der == spki else parse_spki(spki)

    extensions: tuple[Extension, ...] = ()
    for tag, _, cstart, cend in optional:
        if tag in (_TAG_ISSUER_UID, _TAG_SUBJECT_UID):
            raise decode_error("unique identifiers are not allowed (RFC 5280 4.1.2.8)")
        if tag != TAG_EXTENSIONS or extensions:
            raise decode_error("unexpected field in TBSCertificate")
        extensions = _extensions(der, cstart, cend)
        if not extensions:
            raise decode_error("empty extensions")
    if extensions and version != 3:
        raise X509Error(Category.NOT_V3, "certificate has extensions but is not version 3")
    fields_from_extensions = _decode_extensions(extensions, subject_empty=subject.is_empty)
    return Certificate(
        der=der,
        tbs_der=der[tbs[0] : tbs[2]],
        version=version,
        serial=serial,
        signature_algorithm=algorithm,
        signature=signature,
        issuer=issuer,
        subject=subject,
        not_before=not_before,
        not_after=not_after,
        public_key_info=public_key_info,
        extensions=extensions,
        **fields_from_extensions,
    )


def _version(der: bytes, field: TLV) -> int:
    """[0] EXPLICIT Version DEFAULT v1: present only for v2 and v3 (an encoded v1 is the DEFAULT)."""
    _, _, start, end = only_child(der, field[2], field[3], TAG_INTEGER, "version")
    check_integer(der, start, end)
    if der[start:end] not in (b"\x01", b"\x02"):
        raise decode_error("certificate version must be v2 or v3 when present")
    return der[start] + 1


def _serial(der: bytes, start: int, end: int) -> int:
    check_integer(der, start, end)
    raw = der[start:end]
    if raw[0] & 0x80:
        raise decode_error("negative serial number")
    if len(raw) > MAX_SERIAL_OCTETS + (1 if raw[0] == 0 else 0):
        raise decode_error(f"serial number longer than {MAX_SERIAL_OCTETS} octets")
    return int.from_bytes(raw, "big")


def _validity(der: bytes, start: int, end: int) -> tuple[datetime, datetime]:
    times = children(der, start, end)
    if len(times) != 2:
        raise decode_error("validity must hold notBefore and notAfter")
    return _time(der, times[0]), _time(der, times[1])


def _time(tbs: bytes, field: TLV) -> datetime:
    """UTCTime YYMMDDHHMMSSZ for years 1950-2049, GeneralizedTime YYYYMMDDHHMMSSZ otherwise (RFC 5280 4.1.2.5).

    Once the text is known to be exactly fourteen ASCII digits (the century added to a UTCTime) and a Z, it is
    the ISO 8601 basic format, which `datetime.fromisoformat` reads in one call, as aware UTC (the Z), range
    checks included: six int() conversions and the constructor cost twice as much (four times per chain)."""
    tag, _, start, end = field
    text = tbs[start:end]
    if tag == TAG_UTC_TIME:
        if len(text) != 13:
            raise decode_error("UTCTime must be YYMMDDHHMMSSZ")
        century = b"19" if text[:2] >= b"50" else b"20"
        digits = century + text[:12]
    elif tag == TAG_GENERALIZED_TIME:
        if len(text) != 15:
            raise decode_error("GeneralizedTime must be YYYYMMDDHHMMSSZ")
        digits = text[:14]
        if digits.isdigit() and b"1950" <= digits[:4] <= b"2049":
            raise decode_error("dates before 2050 must be UTCTime")
    else:
        raise _schema("validity time is neither UTCTime nor GeneralizedTime")
    if not digits.isdigit() or text[-1:] != b"Z":
        raise decode_error("malformed validity time")
    try:
        iso = digits.decode()
        return datetime.fromisoformat(f"{iso[:8]}T{iso[8:]}Z")
    except ValueError as exc:
        raise decode_error("validity time out of range") from exc


def _extensions(der: bytes, start: int, end: int) -> tuple[Extension, ...]:
    """[3] EXPLICIT Extensions, where Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension and
    Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }."""
    _, _, seq_start, seq_end = only_child(der, start, end, TAG_SEQUENCE, "explicit tag [3]")
    result: list[Extension] = []
    seen: set[str] = set()
    for tag, _, cstart, cend in children(der, seq_start, seq_end):
        if tag != TAG_SEQUENCE:
            raise decode_error("Extension is not a SEQUENCE")
        if len(result) >= MAX_EXTENSIONS:
            raise decode_error("too many extensions")
        parts = children(der, cstart, cend)
        critical = len(parts) == 3 and parts[1][0] == TAG_BOOLEAN
        if critical:
            _, _, bool_start, bool_end = parts.pop(1)
            check_boolean(der, bool_start, bool_end)
            if der[bool_start] != 0xFF:
                raise decode_error("extension criticality FALSE must be omitted (DER DEFAULT)")
        if len(parts) != 2:
            raise decode_error("Extension malformed")
        (oid_tag, _, oid_start, oid_end), (value_tag, _, value_start, value_end) = parts
        if oid_tag != TAG_OID or value_tag != TAG_OCTET_STRING:
            raise decode_error("Extension malformed")
        oid = read_oid(der, oid_start, oid_end)
        if oid in seen:
            raise decode_error(f"duplicate extension {oid}")
        seen.add(oid)
        result.append(Extension(oid, critical, der[value_start:value_end]))
    return tuple(result)


_PROCESSED = frozenset(
    {
        oids.BASIC_CONSTRAINTS,
        oids.KEY_USAGE,
        oids.EXTENDED_KEY_USAGE,
        oids.SUBJECT_ALT_NAME,
        oids.NAME_CONSTRAINTS,
        oids.AUTHORITY_KEY_IDENTIFIER,
        oids.SUBJECT_KEY_IDENTIFIER,
        oids.CERTIFICATE_POLICIES,
        oids.AUTHORITY_INFO_ACCESS,
    }
)


class _ExtensionFields(TypedDict, total=False):
    basic_constraints: BasicConstraints
    key_usage: frozenset[str]
    extended_key_usage: tuple[str, ...]
    extended_key_usage_critical: bool
    subject_alt_name: GeneralNames
    subject_alt_name_critical: bool
    name_constraints: NameConstraints
    authority_key_identifier: AuthorityKeyIdentifier
    subject_key_identifier: bytes
    certificate_policies: tuple[str, ...]
    unsupported_critical: tuple[str, ...]


def _decode_extensions(extensions: tuple[Extension, ...], *, subject_empty: bool) -> _ExtensionFields:
    """Decode the extensions we process into Certificate fields; note unknown critical ones."""
    fields: _ExtensionFields = {}
    unsupported: list[str] = []
    for oid, critical, value in extensions:
        required = ext.REQUIRED_CRITICALITY.get(oid)
        if required is not None and critical != required:
            raise decode_error(f"extension {oid} must {'' if required else 'not '}be critical")
        if oid not in _PROCESSED:
            if critical:
                unsupported.append(oid)
            continue
        if oid == oids.BASIC_CONSTRAINTS:
            fields["basic_constraints"] = ext.basic_constraints(value, critical)
        elif oid == oids.KEY_USAGE:
            fields["key_usage"] = ext.key_usage(value)
        elif oid == oids.EXTENDED_KEY_USAGE:
            fields["extended_key_usage"] = ext.extended_key_usage(value)
            fields["extended_key_usage_critical"] = critical
        elif oid == oids.SUBJECT_ALT_NAME:
            if subject_empty != critical:
                # RFC 5280 4.2.1.6: critical exactly when the subject is empty (then SAN is the identity).
                raise decode_error("subjectAltName must be critical if and only if the subject is empty")
            fields["subject_alt_name"] = ext.subject_alt_name(value)
            fields["subject_alt_name_critical"] = critical
        elif oid == oids.NAME_CONSTRAINTS:
            fields["name_constraints"] = ext.name_constraints(value)
        elif oid == oids.AUTHORITY_KEY_IDENTIFIER:
            fields["authority_key_identifier"] = ext.authority_key_identifier(value)
        elif oid == oids.SUBJECT_KEY_IDENTIFIER:
            fields["subject_key_identifier"] = ext.subject_key_identifier(value)
        elif oid == oids.CERTIFICATE_POLICIES:
            fields["certificate_policies"] = ext.certificate_policies(value)
        else:
            ext.authority_info_access(value)
    if subject_empty and "subject_alt_name" not in fields:
        raise decode_error("empty subject without a subjectAltName")
    fields["unsupported_critical"] = tuple(unsupported)
    return fields
