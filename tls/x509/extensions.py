"""Decoders for the extensions the validator processes (RFC 5280 4.2), one function per extension.

Each extension value goes through the same integrity pass as the certificate (strict DER walker), then
pyasn1 with the RFC 5280 schema, then re-encoding to prove the encoding was canonical. The decoded result
is plain data for the model. Profile rules that are independent of the certificate's position in a path
(criticality, non-empty sequences, name syntax) are enforced here.
"""

from __future__ import annotations

from typing import Any, Final

from pyasn1.codec.der import encoder as der_encoder
from pyasn1_modules import rfc5280

from tls.x509 import oids
from tls.x509.asn1 import PYASN1_ERRORS, decode_strict
from tls.x509.der import read_single
from tls.x509.errors import decode_error
from tls.x509.hostname import is_dns_name, is_mailbox
from tls.x509.limits import MAX_EKU_PURPOSES, MAX_NAME_CONSTRAINT_SUBTREES, MAX_POLICIES, MAX_SAN_ENTRIES
from tls.x509.model import AuthorityKeyIdentifier, BasicConstraints, GeneralNames, Name, NameConstraints, Subtrees
from tls.x509.names import parse_name

_TAG_DIRECTORY_NAME: Final = 0xA4


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


def basic_constraints(value: bytes, critical: bool) -> BasicConstraints:
    decoded = decode_strict(value, rfc5280.BasicConstraints(), "basicConstraints")
    ca = bool(decoded["cA"])
    path = decoded["pathLenConstraint"]
    path_length = int(path) if path.isValue else None
    if path_length is not None and path_length < 0:
        raise decode_error("negative pathLenConstraint")
    return BasicConstraints(ca, path_length, critical)


def key_usage(value: bytes) -> frozenset[str]:
    decoded = decode_strict(value, rfc5280.KeyUsage(), "keyUsage")
    bits = tuple(decoded)
    if not bits or bits[-1] != 1:
        # DER for a named bit list drops trailing zero bits (X.690 11.2.2); no bit at all is meaningless.
        raise decode_error("keyUsage with no bits or trailing zero bits")
    if len(bits) > len(KEY_USAGE_BITS):
        raise decode_error("keyUsage with undefined bits")
    return frozenset(KEY_USAGE_BITS[i] for i, bit in enumerate(bits) if bit)


def extended_key_usage(value: bytes) -> tuple[str, ...]:
    decoded = decode_strict(value, rfc5280.ExtKeyUsageSyntax(), "extendedKeyUsage")
    purposes = tuple(str(oid) for oid in decoded)
    if not purposes:
        raise decode_error("empty extendedKeyUsage")
    if len(purposes) > MAX_EKU_PURPOSES:
        raise decode_error("too many extendedKeyUsage purposes")
    return purposes


def subject_alt_name(value: bytes) -> GeneralNames:
    decoded = decode_strict(value, rfc5280.SubjectAltName(), "subjectAltName")
    if len(decoded) == 0:
        raise decode_error("empty subjectAltName")
    if len(decoded) > MAX_SAN_ENTRIES:
        raise decode_error("too many subjectAltName entries")
    dns: list[str] = []
    ips: list[bytes] = []
    emails: list[str] = []
    directory: list[Name] = []
    other: set[str] = set()
    for general_name in decoded:
        form = general_name.getName()
        component = general_name.getComponent()
        if form == "dNSName":
            name = _ascii(component.asOctets(), "dNSName")
            if not is_dns_name(name, allow_wildcard=True):
                raise decode_error("subjectAltName dNSName is not a valid host name")
            dns.append(name)
        elif form == "iPAddress":
            address = component.asOctets()
            if len(address) not in (4, 16):
                raise decode_error("subjectAltName iPAddress must be 4 or 16 octets")
            ips.append(address)
        elif form == "rfc822Name":
            mailbox = _ascii(component.asOctets(), "rfc822Name")
            if not is_mailbox(mailbox):
                raise decode_error("subjectAltName rfc822Name is not a valid mailbox")
            emails.append(mailbox)
        elif form == "directoryName":
            directory.append(_directory_name(component))
        else:
            other.add(form)
    return GeneralNames(tuple(dns), tuple(ips), tuple(emails), tuple(directory), frozenset(other))


def name_constraints(value: bytes) -> NameConstraints:
    decoded = decode_strict(value, rfc5280.NameConstraints(), "nameConstraints")
    permitted_raw = decoded["permittedSubtrees"]
    excluded_raw = decoded["excludedSubtrees"]
    permitted = _subtrees(permitted_raw) if permitted_raw.isValue else None
    excluded = _subtrees(excluded_raw) if excluded_raw.isValue else None
    if permitted is None and excluded is None:
        raise decode_error("nameConstraints with neither permitted nor excluded subtrees")
    count = (permitted.count if permitted else 0) + (excluded.count if excluded else 0)
    if count > MAX_NAME_CONSTRAINT_SUBTREES:
        raise decode_error("too many name constraint subtrees")
    return NameConstraints(permitted, excluded)


def _subtrees(raw: Any) -> Subtrees:
    if len(raw) == 0:
        raise decode_error("empty GeneralSubtrees")
    if len(raw) > MAX_NAME_CONSTRAINT_SUBTREES:
        raise decode_error("too many name constraint subtrees")
    dns: list[str] = []
    ip_ranges: list[tuple[bytes, bytes]] = []
    emails: list[str] = []
    directory: list[Name] = []
    other: set[str] = set()
    for subtree in raw:
        if subtree["maximum"].isValue or int(subtree["minimum"]) != 0:
            raise decode_error("GeneralSubtree minimum/maximum must be absent (RFC 5280 4.2.1.10)")
        base = subtree["base"]
        form = base.getName()
        component = base.getComponent()
        if form == "dNSName":
            name = _ascii(component.asOctets(), "dNSName constraint")
            if name and not is_dns_name(name):
                raise decode_error("dNSName constraint is not a valid host name")
            dns.append(name)
        elif form == "iPAddress":
            ip_ranges.append(_ip_range(component.asOctets()))
        elif form == "rfc822Name":
            emails.append(_email_constraint(_ascii(component.asOctets(), "rfc822Name constraint")))
        elif form == "directoryName":
            directory.append(_directory_name(component))
        else:
            other.add(form)
    return Subtrees(tuple(dns), tuple(ip_ranges), tuple(emails), tuple(directory), frozenset(other))


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
    decoded = decode_strict(value, rfc5280.AuthorityKeyIdentifier(), "authorityKeyIdentifier")
    key_id = decoded["keyIdentifier"]
    has_issuer = decoded["authorityCertIssuer"].isValue
    has_serial = decoded["authorityCertSerialNumber"].isValue
    if has_issuer != has_serial:
        raise decode_error("authorityKeyIdentifier issuer and serial must come together")
    key_identifier = key_id.asOctets() if key_id.isValue else None
    if key_identifier is not None and not key_identifier:
        raise decode_error("empty authority key identifier")
    return AuthorityKeyIdentifier(key_identifier, has_issuer)


def subject_key_identifier(value: bytes) -> bytes:
    decoded = decode_strict(value, rfc5280.SubjectKeyIdentifier(), "subjectKeyIdentifier")
    key_id: bytes = decoded.asOctets()
    if not key_id:
        raise decode_error("empty subject key identifier")
    return key_id


def certificate_policies(value: bytes) -> tuple[str, ...]:
    decoded = decode_strict(value, rfc5280.CertificatePolicies(), "certificatePolicies")
    if len(decoded) == 0:
        raise decode_error("empty certificatePolicies")
    if len(decoded) > MAX_POLICIES:
        raise decode_error("too many certificate policies")
    policies = tuple(str(info["policyIdentifier"]) for info in decoded)
    if len(set(policies)) != len(policies):
        raise decode_error("duplicate certificate policy")
    return policies


def authority_info_access(value: bytes) -> None:
    """Checked for well-formedness only: we never fetch anything (sans-I/O, and no AIA chasing)."""
    decoded = decode_strict(value, rfc5280.AuthorityInfoAccessSyntax(), "authorityInfoAccess")
    if len(decoded) == 0:
        raise decode_error("empty authorityInfoAccess")


def _ascii(raw: bytes, what: str) -> str:
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise decode_error(f"{what} is not ASCII") from exc


def _directory_name(component: Any) -> Name:
    """GeneralName's directoryName is [4] EXPLICIT Name: unwrap the tag to get the Name's own DER."""
    try:
        der = der_encoder.encode(component)
    except PYASN1_ERRORS as exc:
        raise decode_error("directoryName malformed") from exc
    _, start, end = read_single(der)
    return parse_name(der[start:end] if der[0] == _TAG_DIRECTORY_NAME else der)


# Extensions whose criticality RFC 5280 fixes: oid -> required criticality.
REQUIRED_CRITICALITY: Final[dict[str, bool]] = {
    oids.AUTHORITY_KEY_IDENTIFIER: False,
    oids.SUBJECT_KEY_IDENTIFIER: False,
    oids.AUTHORITY_INFO_ACCESS: False,
    oids.POLICY_CONSTRAINTS: True,
    oids.INHIBIT_ANY_POLICY: True,
}
