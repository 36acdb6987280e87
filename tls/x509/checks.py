"""Per-certificate rules that depend on the certificate's role in the path: leaf, intermediate, anchor.

Rules that hold whatever the role live in parse.py; the ones here need to know how the certificate is
being used (an end-entity key for TLS, or a CA key signing the certificate below it).
"""

from __future__ import annotations

from datetime import datetime

from outcomes.category import Category
from tls.x509 import oids
from tls.x509.errors import X509Error
from tls.x509.hostname import check_peer_name
from tls.x509.keys import key_problem
from tls.x509.model import Certificate
from tls.x509.purpose import PeerName, Purpose


def check_common(certificate: Certificate, time: datetime, role: str) -> None:
    """Rules for every certificate used in a path."""
    if certificate.unsupported_critical:
        raise X509Error(
            Category.UNSUPPORTED_CRITICAL_EXTENSION,
            f"{role} has unsupported critical extension {certificate.unsupported_critical[0]}",
        )
    if certificate.version != 3:
        raise X509Error(Category.NOT_V3, f"{role} is not an X.509 version 3 certificate")
    if time < certificate.not_before:
        raise X509Error(Category.NOT_YET_VALID, f"{role} is not valid before {certificate.not_before.isoformat()}")
    if time > certificate.not_after:
        raise X509Error(Category.EXPIRED, f"{role} expired at {certificate.not_after.isoformat()}")
    problem = key_problem(certificate.public_key_info)
    if problem is not None:
        raise X509Error(Category.WEAK_ALGORITHM, f"{role} key refused: {problem}")


def check_leaf(certificate: Certificate, purpose: Purpose, name: PeerName | None, time: datetime) -> None:
    """The end-entity certificate must be usable for TLS in `purpose` and, if given, hold `name`."""
    check_common(certificate, time, "end-entity certificate")
    _check_issued_serial(certificate, "end-entity certificate")
    if certificate.is_ca:
        raise X509Error(Category.CA_AS_LEAF, "end-entity certificate is a CA certificate")
    usage = certificate.key_usage
    if usage is not None:
        if "keyCertSign" in usage or "cRLSign" in usage:
            raise X509Error(Category.WRONG_KEY_USAGE, "end-entity certificate asserts a CA key usage")
        if "digitalSignature" not in usage:
            raise X509Error(Category.WRONG_KEY_USAGE, "end-entity key usage lacks digitalSignature (TLS signs)")
    eku = certificate.extended_key_usage
    if eku is None:
        raise X509Error(Category.WRONG_EXTENDED_KEY_USAGE, "end-entity certificate has no extendedKeyUsage")
    if purpose.eku_oid not in eku:
        raise X509Error(Category.WRONG_EXTENDED_KEY_USAGE, f"end-entity certificate is not for {purpose.value}")
    if oids.EKU_ANY in eku:
        raise X509Error(Category.WRONG_EXTENDED_KEY_USAGE, "end-entity certificate asserts anyExtendedKeyUsage")
    if certificate.extended_key_usage_critical:
        raise X509Error(Category.WRONG_EXTENDED_KEY_USAGE, "end-entity extendedKeyUsage is critical (CABF 7.1.2.7.10)")
    if certificate.name_constraints is not None:
        raise X509Error(Category.NAME_CONSTRAINTS, "end-entity certificate carries nameConstraints")
    if certificate.authority_key_identifier is None or certificate.authority_key_identifier.key_identifier is None:
        raise X509Error(Category.UNTRUSTED_CHAIN, "end-entity certificate lacks an authority key identifier")
    if name is not None:
        check_peer_name(certificate.subject_alt_name, name)


def _check_issued_serial(certificate: Certificate, role: str) -> None:
    """RFC 5280 4.1.2.2: positive serials. Enforced on what the path's CAs issued, not on the anchors,
    which are configuration (some long-trusted roots carry serial 0)."""
    if certificate.serial == 0:
        raise X509Error(Category.DECODE_ERROR, f"{role} has serial number zero")


def check_ca(certificate: Certificate, purpose: Purpose, time: datetime, *, anchor: bool) -> None:
    """A certificate whose key signs the certificate below it in the path."""
    role = "trust anchor" if anchor else "intermediate"
    check_common(certificate, time, role)
    if not anchor:
        _check_issued_serial(certificate, role)
    constraints = certificate.basic_constraints
    if constraints is None or not constraints.ca:
        raise X509Error(Category.UNTRUSTED_CHAIN, f"{role} is not a CA (basicConstraints cA)")
    if not constraints.critical:
        raise X509Error(Category.UNTRUSTED_CHAIN, f"{role} basicConstraints is not critical")
    if certificate.key_usage is None or "keyCertSign" not in certificate.key_usage:
        raise X509Error(Category.WRONG_KEY_USAGE, f"{role} key usage lacks keyCertSign")
    if certificate.subject.is_empty:
        raise X509Error(Category.UNTRUSTED_CHAIN, f"{role} has an empty subject")
    if certificate.subject_key_identifier is None:
        raise X509Error(Category.UNTRUSTED_CHAIN, f"{role} lacks a subject key identifier")
    aki = certificate.authority_key_identifier
    if aki is None:
        # RFC 5280 4.2.1.1 requires the AKI on everything but self-signed certificates. An anchor is trusted
        # by configuration, so its own issuer linkage is not needed (x509-limbo cve-2024-0567).
        if not certificate.self_issued and not anchor:
            raise X509Error(Category.UNTRUSTED_CHAIN, f"{role} lacks an authority key identifier")
    elif aki.key_identifier is None:
        raise X509Error(Category.UNTRUSTED_CHAIN, f"{role} authority key identifier has no keyIdentifier")
    elif anchor and certificate.self_issued and (
        aki.has_issuer_and_serial or aki.key_identifier != certificate.subject_key_identifier
    ):
        raise X509Error(Category.UNTRUSTED_CHAIN, "self-signed trust anchor has an inconsistent authority key id")
    eku = certificate.extended_key_usage
    if eku is not None and anchor:
        raise X509Error(Category.WRONG_EXTENDED_KEY_USAGE, "trust anchor carries extendedKeyUsage (CABF 7.1.2.1)")
    if eku is not None and purpose.eku_oid not in eku and oids.EKU_ANY not in eku:
        raise X509Error(Category.WRONG_EXTENDED_KEY_USAGE, f"{role} extendedKeyUsage excludes {purpose.value}")
