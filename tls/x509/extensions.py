"""Decoders for the extensions the validator processes (RFC 5280 4.2), one function per extension.

Each reads its value straight from DER with the strict reader (tls.x509.der): every header checked, tags
compared exactly, each primitive held to its DER rules, the schema's order and cardinality enforced, and
what DER forbids refused explicitly, which a schema decode followed by a re-encode caught before: a DEFAULT
value encoded (cA FALSE, GeneralSubtree minimum 0), an empty SEQUENCE OF where the schema says SIZE (1..MAX),
trailing bytes. Open types inside (policy qualifiers, otherName values) go through the generic walker
(der.check_der). The decoded result is plain data for the model. Profile rules that are independent of the
certificate's position in a path (criticality, non-empty sequences, name syntax) are enforced here.
"""

from __future__ import annotations

from typing import Final

from tls.x509 import oids
from tls.x509.der import (
    TAG_BIT_STRING,
    TAG_BOOLEAN,
    TAG_INTEGER,
    TAG_OCTET_STRING,
    TAG_OID,
    TAG_SEQUENCE,
    check_bit_string,
    check_boolean,
    check_der,
    check_integer,
    children,
    read_natural,
    read_oid,
    read_single,
)
from tls.x509.errors import decode_error
from tls.x509.general_names import (
    FORM_NAMES,
    TAG_DNS_NAME,
    TAG_RFC822_NAME,
    check_schema_forms,
    read_general_name,
    read_general_names,
)
from tls.x509.hostname import is_dns_name, is_mailbox
from tls.x509.limits import MAX_EKU_PURPOSES, MAX_NAME_CONSTRAINT_SUBTREES, MAX_POLICIES, MAX_SAN_ENTRIES
from tls.x509.model import AuthorityKeyIdentifier, BasicConstraints, GeneralNames, Name, NameConstraints, Subtrees

_TAG_PERMITTED: Final = 0xA0
_TAG_EXCLUDED: Final = 0xA1
_TAG_KEY_IDENTIFIER: Final = 0x80
_TAG_AUTHORITY_ISSUER: Final = 0xA1
_TAG_AUTHORITY_SERIAL: Final = 0x82
# GeneralNames an authorityKeyIdentifier may name, and access descriptions an authorityInfoAccess may hold:
# nobody uses more than one or two.
_MAX_OTHER_NAMES: Final = 16


KEY_USAGE_BITS: Final = (
    "digitalSignature",
    "nonRepudiation",
    "keyEncipherment",
    "dataEncipherment",
    "keyAgreement",
    "keyCertSign",
    "cRLSign",
    "encipherOnly",
    "decipherOnly",
)


def _outer(value: bytes, tag: int, what: str) -> tuple[int, int]:
    """(start, end) of the content of the one value of type `tag` that makes up `value`."""
    found, start, end = read_single(value)
    if found != tag:
        raise decode_error(f"{what} malformed: tag 0x{found:02x}")
    return start, end


def basic_constraints(value: bytes, critical: bool) -> BasicConstraints:
    """BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER (0..MAX) OPTIONAL }"""
    start, end = _outer(value, TAG_SEQUENCE, "basicConstraints")
    parts = children(value, start, end)
    ca = False
    path_length: int | None = None
    if parts and parts[0][0] == TAG_BOOLEAN:
        _, _, bstart, bend = parts.pop(0)
        check_boolean(value, bstart, bend)
        if value[bstart] == 0:
            raise decode_error("basicConstraints is not in canonical DER: cA FALSE is the DEFAULT")
        ca = True
    if parts and parts[0][0] == TAG_INTEGER:
        _, _, istart, iend = parts.pop(0)
        path_length = read_natural(value, istart, iend, "basicConstraints pathLenConstraint")
    if parts:
        raise decode_error("basicConstraints malformed: unexpected field")
    return BasicConstraints(ca, path_length, critical)


# The usages the first octet of a KeyUsage names (bits 0 to 7), for each of its 256 values: a table made once,
# not a generator over the bits for every certificate (two per chain validated). Bit 8, decipherOnly, is the
# only one a second octet can hold.
_FIRST_OCTET_USAGES: Final = tuple(
    frozenset(name for bit, name in enumerate(KEY_USAGE_BITS[:8]) if octet & (0x80 >> bit)) for octet in range(256)
)
_DECIPHER_ONLY: Final = frozenset(KEY_USAGE_BITS[8:])


def key_usage(value: bytes) -> frozenset[str]:
    """KeyUsage ::= BIT STRING { digitalSignature (0), ..., decipherOnly (8) }"""
    start, end = _outer(value, TAG_BIT_STRING, "keyUsage")
    check_bit_string(value, start, end)
    count = 8 * (end - start - 1) - value[start]
    if not count or not value[end - 1] & (1 << value[start]):
        # DER for a named bit list drops trailing zero bits (X.690 11.2.2); no bit at all is meaningless.
        raise decode_error("keyUsage with no bits or trailing zero bits")
    if count > len(KEY_USAGE_BITS):
        raise decode_error("keyUsage with undefined bits")
    # The bits past `count` are padding, zero (check_bit_string); a second octet holds decipherOnly, set.
    usages: frozenset[str] = _FIRST_OCTET_USAGES[value[start + 1]]
    return usages | _DECIPHER_ONLY if count > 8 else usages


def extended_key_usage(value: bytes) -> tuple[str, ...]:
    """ExtKeyUsageSyntax ::= SEQUENCE SIZE (1..MAX) OF KeyPurposeId (an OBJECT IDENTIFIER)"""
    start, end = _outer(value, TAG_SEQUENCE, "extendedKeyUsage")
    parts = children(value, start, end)
    if not parts:
        raise decode_error("extendedKeyUsage malformed: empty")
    if len(parts) > MAX_EKU_PURPOSES:
        raise decode_error("too many extendedKeyUsage purposes")
    purposes: list[str] = []
    for tag, _, ostart, oend in parts:
        if tag != TAG_OID:
            raise decode_error("extendedKeyUsage malformed: a purpose is not an OBJECT IDENTIFIER")
        purposes.append(read_oid(value, ostart, oend))
    return tuple(purposes)


class _Names:
    """The GeneralNames of one list, sorted by the forms the validator interprets, as they are read."""

    def __init__(self) -> None:
        self.dns: list[str] = []
        self.ips: list[bytes] = []
        self.emails: list[str] = []
        self.directory: list[Name] = []
        self.other: set[str] = set()


def subject_alt_name(value: bytes) -> GeneralNames:
    start, end = _outer(value, TAG_SEQUENCE, "subjectAltName")
    names = _Names()
    for form, name in read_general_names(value, start, end, "subjectAltName", MAX_SAN_ENTRIES):
        if isinstance(name, Name):
            names.directory.append(name)
        elif isinstance(name, bytes):
            if len(name) not in (4, 16):
                raise decode_error("subjectAltName iPAddress must be 4 or 16 octets")
            names.ips.append(name)
        elif isinstance(name, str) and form == TAG_DNS_NAME:
            if not is_dns_name(name, allow_wildcard=True):
                raise decode_error("subjectAltName dNSName is not a valid host name")
            names.dns.append(name)
        elif isinstance(name, str) and form == TAG_RFC822_NAME:
            if not is_mailbox(name):
                raise decode_error("subjectAltName rfc822Name is not a valid mailbox")
            names.emails.append(name)
        else:
            names.other.add(FORM_NAMES[form])
    return GeneralNames(tuple(names.dns), tuple(names.ips), tuple(names.emails), tuple(names.directory),
                        frozenset(names.other))


def name_constraints(value: bytes) -> NameConstraints:
    """NameConstraints ::= SEQUENCE { permittedSubtrees [0] GeneralSubtrees OPTIONAL,
    excludedSubtrees [1] GeneralSubtrees OPTIONAL } (implicit tags on SEQUENCE OF: constructed)."""
    start, end = _outer(value, TAG_SEQUENCE, "nameConstraints")
    parts = children(value, start, end)
    permitted = excluded = None
    if parts and parts[0][0] == _TAG_PERMITTED:
        permitted = _subtrees(value, *parts.pop(0)[2:])
    if parts and parts[0][0] == _TAG_EXCLUDED:
        excluded = _subtrees(value, *parts.pop(0)[2:])
    if parts:
        raise decode_error("nameConstraints malformed: unexpected field")
    if permitted is None and excluded is None:
        raise decode_error("nameConstraints with neither permitted nor excluded subtrees")
    count = (permitted.count if permitted else 0) + (excluded.count if excluded else 0)
    if count > MAX_NAME_CONSTRAINT_SUBTREES:
        raise decode_error("too many name constraint subtrees")
    return NameConstraints(permitted, excluded)


def _subtrees(value: bytes, start: int, end: int) -> Subtrees:
    """GeneralSubtrees ::= SEQUENCE SIZE (1..MAX) OF GeneralSubtree, where
    GeneralSubtree ::= SEQUENCE { base GeneralName, minimum [0] DEFAULT 0, maximum [1] OPTIONAL }."""
    subtrees = children(value, start, end)
    if not subtrees:
        raise decode_error("nameConstraints is not in canonical DER: empty GeneralSubtrees")
    if len(subtrees) > MAX_NAME_CONSTRAINT_SUBTREES:
        raise decode_error("too many name constraint subtrees")
    names = _Names()
    ip_ranges: list[tuple[bytes, bytes]] = []
    bases = []
    for tag, _, sstart, send in subtrees:
        if tag != TAG_SEQUENCE:
            raise decode_error("nameConstraints malformed: GeneralSubtree is not a SEQUENCE")
        parts = children(value, sstart, send)
        if not parts:
            raise decode_error("nameConstraints malformed: GeneralSubtree without a base")
        if len(parts) > 1:
            # minimum 0 is the DEFAULT (DER leaves it out), any other minimum or a maximum is refused by
            # the profile: whatever follows the base is a refusal.
            raise decode_error("GeneralSubtree minimum/maximum must be absent (RFC 5280 4.2.1.10)")
        bases.append(parts[0])
    check_schema_forms([base[0] for base in bases], "nameConstraints")
    for element in bases:
        form, base = read_general_name(value, element, "nameConstraints", constraint=True)
        if isinstance(base, bytes):
            ip_ranges.append(_ip_range(base))
        else:
            _add_subtree(form, base, names)
    return Subtrees(tuple(names.dns), tuple(ip_ranges), tuple(names.emails), tuple(names.directory),
                    frozenset(names.other))


def _add_subtree(form: int, base: str | Name | None, names: _Names) -> None:
    if isinstance(base, Name):
        names.directory.append(base)
    elif isinstance(base, str) and form == TAG_DNS_NAME:
        if base and not is_dns_name(base):
            raise decode_error("dNSName constraint is not a valid host name")
        names.dns.append(base)
    elif isinstance(base, str) and form == TAG_RFC822_NAME:
        names.emails.append(_email_constraint(base))
    else:
        names.other.add(FORM_NAMES[form])


def _ip_range(raw: bytes) -> tuple[bytes, bytes]:
    if len(raw) not in (8, 32):
        raise decode_error("iPAddress constraint must be 8 or 32 octets")
    half = len(raw) // 2
    network, mask = raw[:half], raw[half:]
    mask_int = int.from_bytes(mask, "big")
    inverted = ~mask_int & ((1 << (8 * half)) - 1)
    if inverted & (inverted + 1):
        raise decode_error("iPAddress constraint mask is not a prefix")
    return network, mask


def _email_constraint(text: str) -> str:
    """A mailbox, a host, or '.domain' (RFC 5280 4.2.1.10)."""
    if "@" in text:
        if not is_mailbox(text):
            raise decode_error("rfc822Name constraint is not a valid mailbox")
    elif not is_dns_name(text[1:] if text.startswith(".") else text):
        raise decode_error("rfc822Name constraint is not a valid domain")
    return text


def authority_key_identifier(value: bytes) -> AuthorityKeyIdentifier:
    """AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] OCTET STRING OPTIONAL,
    authorityCertIssuer [1] GeneralNames OPTIONAL, authorityCertSerialNumber [2] INTEGER OPTIONAL }"""
    start, end = _outer(value, TAG_SEQUENCE, "authorityKeyIdentifier")
    parts = children(value, start, end)
    key_identifier: bytes | None = None
    if parts and parts[0][0] == _TAG_KEY_IDENTIFIER:
        _, _, kstart, kend = parts.pop(0)
        key_identifier = value[kstart:kend]
        if not key_identifier:
            raise decode_error("empty authority key identifier")
    has_issuer = bool(parts) and parts[0][0] == _TAG_AUTHORITY_ISSUER
    if has_issuer:
        _, _, istart, iend = parts.pop(0)
        read_general_names(value, istart, iend, "authorityKeyIdentifier", _MAX_OTHER_NAMES)
    has_serial = bool(parts) and parts[0][0] == _TAG_AUTHORITY_SERIAL
    if has_serial:
        _, _, nstart, nend = parts.pop(0)
        check_integer(value, nstart, nend)
    if parts:
        raise decode_error("authorityKeyIdentifier malformed: unexpected field")
    if has_issuer != has_serial:
        raise decode_error("authorityKeyIdentifier issuer and serial must come together")
    return AuthorityKeyIdentifier(key_identifier, has_issuer)


def subject_key_identifier(value: bytes) -> bytes:
    start, end = _outer(value, TAG_OCTET_STRING, "subjectKeyIdentifier")
    if start == end:
        raise decode_error("empty subject key identifier")
    return value[start:end]


def certificate_policies(value: bytes) -> tuple[str, ...]:
    """CertificatePolicies ::= SEQUENCE SIZE (1..MAX) OF PolicyInformation, where PolicyInformation ::=
    SEQUENCE { policyIdentifier OID, policyQualifiers SEQUENCE SIZE (1..MAX) OF PolicyQualifierInfo OPTIONAL }
    and PolicyQualifierInfo ::= SEQUENCE { policyQualifierId OID, qualifier ANY }."""
    start, end = _outer(value, TAG_SEQUENCE, "certificatePolicies")
    parts = children(value, start, end)
    if not parts:
        raise decode_error("certificatePolicies malformed: empty")
    if len(parts) > MAX_POLICIES:
        raise decode_error("too many certificate policies")
    policies = tuple(_policy(value, *part) for part in parts)
    if len(set(policies)) != len(policies):
        raise decode_error("duplicate certificate policy")
    return policies


def _policy(value: bytes, tag: int, _header: int, start: int, end: int) -> str:
    fields = children(value, start, end)
    if tag != TAG_SEQUENCE or not 1 <= len(fields) <= 2 or fields[0][0] != TAG_OID:
        raise decode_error("certificatePolicies malformed: PolicyInformation")
    if len(fields) == 2:
        qualifier_tag, _, qstart, qend = fields[1]
        if qualifier_tag != TAG_SEQUENCE:
            raise decode_error("certificatePolicies malformed: policyQualifiers")
        qualifiers = children(value, qstart, qend)
        if not qualifiers:
            raise decode_error("certificatePolicies is not in canonical DER: empty policyQualifiers")
        for qualifier in qualifiers:
            _policy_qualifier(value, qualifier)
    return read_oid(value, fields[0][2], fields[0][3])


def _policy_qualifier(value: bytes, qualifier: tuple[int, int, int, int]) -> None:
    tag, _, start, end = qualifier
    parts = children(value, start, end)
    if tag != TAG_SEQUENCE or len(parts) != 2 or parts[0][0] != TAG_OID:
        raise decode_error("certificatePolicies malformed: PolicyQualifierInfo")
    read_oid(value, parts[0][2], parts[0][3])
    check_der(value[parts[1][1] : parts[1][3]])  # the qualifier is an open type


def authority_info_access(value: bytes) -> None:
    """Checked for well-formedness only: we never fetch anything (sans-I/O, and no AIA chasing).
    AuthorityInfoAccessSyntax ::= SEQUENCE SIZE (1..MAX) OF SEQUENCE { accessMethod OID, accessLocation
    GeneralName }."""
    start, end = _outer(value, TAG_SEQUENCE, "authorityInfoAccess")
    descriptions = children(value, start, end)
    if not descriptions:
        raise decode_error("empty authorityInfoAccess")
    if len(descriptions) > _MAX_OTHER_NAMES:
        raise decode_error("too many authorityInfoAccess entries")
    pairs = []
    for tag, _, dstart, dend in descriptions:
        parts = children(value, dstart, dend)
        if tag != TAG_SEQUENCE or len(parts) != 2 or parts[0][0] != TAG_OID:
            raise decode_error("authorityInfoAccess malformed: AccessDescription")
        pairs.append(parts)
    check_schema_forms([parts[1][0] for parts in pairs], "authorityInfoAccess")
    for parts in pairs:
        read_oid(value, parts[0][2], parts[0][3])
        read_general_name(value, parts[1], "authorityInfoAccess")


# Extensions whose criticality RFC 5280 fixes: oid -> required criticality.
REQUIRED_CRITICALITY: Final[dict[str, bool]] = {
    oids.AUTHORITY_KEY_IDENTIFIER: False,
    oids.SUBJECT_KEY_IDENTIFIER: False,
    oids.AUTHORITY_INFO_ACCESS: False,
    oids.POLICY_CONSTRAINTS: True,
    oids.INHIBIT_ANY_POLICY: True,
}
