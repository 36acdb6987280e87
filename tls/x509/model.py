"""The immutable certificate model that parsing produces and validation reads.

Everything is decoded once, at parse time, into plain values (str, bytes, int, frozen dataclasses and
named tuples), so that validation never goes back to ASN.1 and a `Certificate` can be shared freely. Only the
public key object is built lazily, because most certificates in a handshake (the anchors and intermediates)
are used through their key for verification while the leaf's key is needed only by TLS CertificateVerify.

Why some records are named tuples: a frozen dataclass sets each field through `object.__setattr__`, which
made a small record cost about twice what a tuple does, and a parse makes a dozen per certificate (an
`Extension` for each extension, an `Attribute` and a `Name` per name, ...). The small, plain records are
`NamedTuple`s: immutable, equal and hashed by their values as before. `Certificate` stays a frozen dataclass
(its key is built lazily, its equality is its DER's), and so do `GeneralNames` and `Subtrees`, whose `count`
a tuple's own method would shadow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import NamedTuple

from tls.x509.keys import PublicKey, PublicKeyInfo, load_public_key
from tls.x509.peek import CertificateSummary


class Attribute(NamedTuple):
    """One AttributeTypeAndValue of a distinguished name; `value` is the decoded text."""

    oid: str
    value: str


class Name(NamedTuple):
    """A distinguished name. Chaining compares `der` exactly; name constraints compare `rdns` prefixes."""

    der: bytes
    rdns: tuple[bytes, ...]
    attributes: tuple[tuple[Attribute, ...], ...]

    @property
    def is_empty(self) -> bool:
        return not self.rdns

    def values(self, oid: str) -> tuple[str, ...]:
        return tuple(a.value for rdn in self.attributes for a in rdn if a.oid == oid)

    def __str__(self) -> str:
        """A short, log-safe rendering (RFC 4514-like, most significant RDN last, truncated)."""
        parts = ["+".join(f"{_SHORT.get(a.oid, a.oid)}={a.value!r}" for a in rdn) for rdn in reversed(self.attributes)]
        text = ",".join(parts) or "<empty>"
        return text if len(text) <= 120 else text[:117] + "..."


_SHORT = {"2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU"}


@dataclass(frozen=True)
class GeneralNames:
    """The name forms we interpret; any other form present is listed by name in `other_forms`."""

    dns: tuple[str, ...] = ()
    ips: tuple[bytes, ...] = ()
    emails: tuple[str, ...] = ()
    directory_names: tuple[Name, ...] = ()
    other_forms: frozenset[str] = frozenset()

    @property
    def count(self) -> int:
        return len(self.dns) + len(self.ips) + len(self.emails) + len(self.directory_names)


@dataclass(frozen=True)
class Subtrees:
    """One side (permitted or excluded) of a NameConstraints extension. IP ranges are (network, mask)."""

    dns: tuple[str, ...] = ()
    ip_ranges: tuple[tuple[bytes, bytes], ...] = ()
    emails: tuple[str, ...] = ()
    directory_names: tuple[Name, ...] = ()
    other_forms: frozenset[str] = frozenset()

    @property
    def count(self) -> int:
        return len(self.dns) + len(self.ip_ranges) + len(self.emails) + len(self.directory_names)


@dataclass(frozen=True)
class NameConstraints:
    """RFC 5280 §4.2.1.10, from a CA certificate: names in the certificates below it must fall within `permitted`
    and outside `excluded`. A side the extension leaves out is None and constrains nothing."""

    permitted: Subtrees | None
    excluded: Subtrees | None


class BasicConstraints(NamedTuple):
    """RFC 5280 §4.2.1.9. `critical` is kept because a CA's basicConstraints must be critical (`checks.check_ca`
    refuses it otherwise); `path_length` caps the intermediates below the CA in a path (None: no cap)."""

    ca: bool
    path_length: int | None
    critical: bool


class AuthorityKeyIdentifier(NamedTuple):
    """RFC 5280 §4.2.1.1, reduced to what validation reads: the keyIdentifier, which path building matches against
    the issuer's subject key identifier, and whether issuer and serial were named (a self-signed anchor's AKI
    must not name them)."""

    key_identifier: bytes | None
    has_issuer_and_serial: bool


class Extension(NamedTuple):
    """An extension as it appeared; `value` is the extnValue content (DER of the extension's own type)."""

    oid: str
    critical: bool
    value: bytes


@dataclass(frozen=True)
class SignatureAlgorithm:
    """An AlgorithmIdentifier for a signature. `problem` is set when we refuse to verify with it."""

    der: bytes
    oid: str
    scheme: str | None = None  # "rsa-pkcs1", "rsa-pss", "ecdsa", "ed25519"
    hash_name: str | None = None  # "sha256", "sha384", "sha512"
    salt_length: int = 0
    problem: str | None = None


@dataclass(frozen=True, eq=False)
class Certificate:
    """One parsed X.509 certificate. Equality is identity of the DER (see __eq__)."""

    der: bytes
    tbs_der: bytes
    version: int  # 1, 2 or 3
    serial: int
    signature_algorithm: SignatureAlgorithm
    signature: bytes
    issuer: Name
    subject: Name
    not_before: datetime
    not_after: datetime
    public_key_info: PublicKeyInfo
    extensions: tuple[Extension, ...]
    basic_constraints: BasicConstraints | None = None
    key_usage: frozenset[str] | None = None
    extended_key_usage: tuple[str, ...] | None = None
    extended_key_usage_critical: bool = False
    subject_alt_name: GeneralNames | None = None
    subject_alt_name_critical: bool = False
    name_constraints: NameConstraints | None = None
    authority_key_identifier: AuthorityKeyIdentifier | None = None
    subject_key_identifier: bytes | None = None
    certificate_policies: tuple[str, ...] | None = None
    # Critical extensions we do not process; parse_certificate refuses these, validation refuses them
    # only when the certificate is used in a path (an unrelated anchor may carry anything).
    unsupported_critical: tuple[str, ...] = field(default=())
    # What path building compares, as `peek.peek_certificate` reads it from the bytes (see __post_init__).
    summary: CertificateSummary = field(init=False, repr=False)

    def __post_init__(self) -> None:
        """Make the summary with the certificate, from its own fields: path building reads it from every
        certificate it is given parsed (the leaf, the anchors) and compares it with the peek of every one it
        parses, so it is always needed; made on first use (a cached_property) it cost a lock each time."""
        aki = self.authority_key_identifier
        summary = CertificateSummary(
            der=self.der,
            tbs=self.tbs_der,
            signature_algorithm=self.signature_algorithm.der,
            signature=self.signature,
            issuer=self.issuer.der,
            subject=self.subject.der,
            spki=self.public_key_info.der,
            subject_key_identifier=self.subject_key_identifier,
            authority_key_identifier=aki.key_identifier if aki is not None else None,
        )
        object.__setattr__(self, "summary", summary)

    @property
    def validity(self) -> tuple[datetime, datetime]:
        """(notBefore, notAfter), both inclusive, timezone-aware UTC."""
        return self.not_before, self.not_after

    @property
    def spki_der(self) -> bytes:
        return self.public_key_info.der

    @property
    def is_ca(self) -> bool:
        return self.basic_constraints is not None and self.basic_constraints.ca

    @property
    def self_issued(self) -> bool:
        """RFC 5280 6.1: subject and issuer are the same name (key rollover certificates, roots)."""
        return self.subject.der == self.issuer.der

    @cached_property
    def _key(self) -> PublicKey:
        return load_public_key(self.public_key_info)

    def public_key(self) -> PublicKey:
        """The subject's key as a `cryptography` object (raises X509Error for keys we refuse to use)."""
        return self._key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Certificate) and other.der == self.der

    def __hash__(self) -> int:
        return hash(self.der)

    def describe(self) -> str:
        """Log-safe one-line identification of the certificate."""
        return f"subject {self.subject}"
