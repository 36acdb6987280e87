"""The DER of the certificates the boot PKI issues, written directly (RFC 5280 4.1), no X.509 library.

Why not `cryptography.x509.CertificateBuilder`: importing `cryptography.x509` (and the `email`, `calendar`
and name/extension modules it drags in) was about a fifth of the boot's import time in the VM and a few MB
of heap (issue 17), to write four certificates whose shape never changes. This writer covers exactly that
shape and nothing else: names of two UTF8String attributes (O="Piñata", CN), a positive serial, a validity,
a SubjectPublicKeyInfo given as DER, and the six extensions below, signed with ecdsa-with-SHA256 (the boot CA
is always a P-256 key). It also writes the SubjectPublicKeyInfo of the two kinds of key the boot PKI makes,
P-256 and RSA (`subject_public_key_info`): cryptography writes it only through `public_bytes`, whose enums
live in the public `serialization` package, and importing that (`ssh` and what it loads) cost about 50 ms of
the VM's boot (issue 17). Its output is the same bytes cryptography writes for the same inputs (the tests
compare them byte for byte), so the certificates are the ones the boot issued before.

The TLV and OID encoders are `tls.x509.der`'s, the EC point encoder `tls.ec_point`'s; signing stays with
the caller (it holds the key).
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tls.ec_point import uncompressed_point
from tls.x509 import oids
from tls.x509.der import (
    TAG_BIT_STRING,
    TAG_BOOLEAN,
    TAG_GENERALIZED_TIME,
    TAG_INTEGER,
    TAG_NULL,
    TAG_OCTET_STRING,
    TAG_OID,
    TAG_SEQUENCE,
    TAG_SET,
    TAG_UTC_TIME,
    TAG_UTF8_STRING,
    children,
    encode_oid,
    read_single,
    tlv,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

ORGANIZATION: Final = "Piñata"
_ORGANIZATION_NAME: Final = "2.5.4.10"
_COMMON_NAME: Final = "2.5.4.3"
MAX_COMMON_NAME_OCTETS: Final = 64
"""ub-common-name is 64 characters (RFC 5280 A.1); counted here in UTF-8 octets, as cryptography does, which
is never looser."""
MAX_SERIAL_BITS: Final = 159
"""A serial is at most 20 octets (RFC 5280 4.1.2.2) and positive, so 159 bits."""
EARLIEST: Final = datetime.datetime(1950, 1, 1, tzinfo=datetime.UTC)
"""UTCTime's two-digit years start at 1950 (RFC 5280 4.1.2.5.1); nothing earlier has an encoding we write."""
GENERALIZED_TIME_FROM: Final = 2050
"""Validity dates through 2049 are UTCTime, from 2050 GeneralizedTime (RFC 5280 4.1.2.5)."""

# KeyUsage's named bits (RFC 5280 4.2.1.3), the ones the boot PKI sets.
DIGITAL_SIGNATURE: Final = 0
KEY_CERT_SIGN: Final = 5
CRL_SIGN: Final = 6

_VERSION_3: Final = tlv(0xA0, tlv(TAG_INTEGER, b"\x02"))  # [0] EXPLICIT Version v3 (2)
_ECDSA_WITH_SHA256: Final = tlv(TAG_SEQUENCE, tlv(TAG_OID, encode_oid(oids.ECDSA_WITH_SHA256)))  # no parameters
# The AlgorithmIdentifiers of a SubjectPublicKeyInfo: id-ecPublicKey with namedCurve prime256v1 (RFC 5480 2.1.1),
# rsaEncryption with NULL parameters (RFC 3279 2.3.1).
_EC_P256: Final = tlv(
    TAG_SEQUENCE, tlv(TAG_OID, encode_oid(oids.EC_PUBLIC_KEY)) + tlv(TAG_OID, encode_oid(oids.SECP256R1))
)
_RSA_ENCRYPTION: Final = tlv(TAG_SEQUENCE, tlv(TAG_OID, encode_oid(oids.RSA_ENCRYPTION)) + tlv(TAG_NULL, b""))
_EXTENSIONS: Final = 0xA3  # [3] EXPLICIT Extensions
_DNS_NAME: Final = 0x82  # GeneralName [2] IMPLICIT IA5String
_IP_ADDRESS: Final = 0x87  # GeneralName [7] IMPLICIT OCTET STRING
_KEY_ID: Final = 0x80  # AuthorityKeyIdentifier keyIdentifier [0] IMPLICIT OCTET STRING


@dataclass(frozen=True, slots=True)
class Extension:
    """One extension: `value` is the DER that extnValue's OCTET STRING wraps (built by the functions below)."""

    oid: str
    critical: bool
    value: bytes


@dataclass(frozen=True, slots=True)
class TbsCertificate:
    """What a boot PKI certificate says before it is signed. Names are the common names of O="Piñata" names;
    times must carry a time zone (a naive one would be read as local time) and are written to the second."""

    issuer: str
    subject: str
    serial: int
    not_before: datetime.datetime
    not_after: datetime.datetime
    spki: bytes  # SubjectPublicKeyInfo DER, as `subject_public_key_info` writes it
    extensions: tuple[Extension, ...]

    def __post_init__(self) -> None:
        if not 0 < self.serial < 1 << MAX_SERIAL_BITS:
            raise ValueError(f"serial must be positive and at most {MAX_SERIAL_BITS} bits")
        if self.not_before.tzinfo is None or self.not_after.tzinfo is None:
            raise ValueError("validity times must be aware (UTC or with an offset)")
        if not EARLIEST <= self.not_before <= self.not_after:
            raise ValueError("validity must start on or after 1950-01-01 and end no earlier than it starts")
        for common_name in (self.issuer, self.subject):
            if not 0 < len(common_name.encode("utf-8")) <= MAX_COMMON_NAME_OCTETS:
                raise ValueError(f"a common name must be 1 to {MAX_COMMON_NAME_OCTETS} octets of UTF-8")


def tbs_certificate(content: TbsCertificate) -> bytes:
    """The TBSCertificate DER: what the issuer signs (with ECDSA P-256 and SHA-256)."""
    body = (
        _VERSION_3
        + _natural(content.serial)
        + _ECDSA_WITH_SHA256
        + name(content.issuer)
        + tlv(TAG_SEQUENCE, _time(content.not_before) + _time(content.not_after))
        + name(content.subject)
        + content.spki
    )
    if content.extensions:
        body += tlv(_EXTENSIONS, tlv(TAG_SEQUENCE, b"".join(map(_extension, content.extensions))))
    return tlv(TAG_SEQUENCE, body)


def certificate(tbs: bytes, signature: bytes) -> bytes:
    """The whole certificate: `tbs` and the issuer's ECDSA signature over it (the DER ECDSA-Sig-Value that
    `sign(tbs, ECDSA(SHA256()))` returns)."""
    return tlv(TAG_SEQUENCE, tbs + _ECDSA_WITH_SHA256 + tlv(TAG_BIT_STRING, b"\x00" + signature))


def name(common_name: str) -> bytes:
    """The Name O="Piñata", CN=`common_name`, in that order, each one attribute of UTF8String."""
    return tlv(TAG_SEQUENCE, _attribute(_ORGANIZATION_NAME, ORGANIZATION) + _attribute(_COMMON_NAME, common_name))


def subject_public_key_info(public_key: PublicKeyTypes) -> bytes:
    """The SubjectPublicKeyInfo DER of a P-256 or RSA public key (RFC 5480 2, RFC 3279 2.3.1): the same bytes as
    `public_bytes(DER, SubjectPublicKeyInfo)`. Any other key is refused rather than written: the boot PKI makes
    no other, so nothing here was ever checked against one."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if not isinstance(public_key.curve, ec.SECP256R1):
            raise ValueError(f"an EC key on {public_key.curve.name}, not P-256, has no SubjectPublicKeyInfo here")
        return _spki(_EC_P256, uncompressed_point(public_key))
    if isinstance(public_key, rsa.RSAPublicKey):
        numbers = public_key.public_numbers()
        return _spki(_RSA_ENCRYPTION, tlv(TAG_SEQUENCE, _natural(numbers.n) + _natural(numbers.e)))  # RSAPublicKey
    raise TypeError(f"no SubjectPublicKeyInfo for a {type(public_key).__name__}: P-256 and RSA keys only")


def key_identifier(spki: bytes) -> bytes:
    """SHA-1 of the subjectPublicKey BIT STRING's bits, unused-bits octet excluded (RFC 5280 4.2.1.2, method
    1): the SubjectKeyIdentifier of that key, and the AuthorityKeyIdentifier of what it signs."""
    _, start, end = read_single(spki, TAG_SEQUENCE)
    parts = children(spki, start, end)
    if len(parts) != 2 or parts[1][0] != TAG_BIT_STRING or spki[parts[1][2]] != 0:
        raise ValueError("not a SubjectPublicKeyInfo with a whole-octet key")
    _, _, bits_start, bits_end = parts[1]
    return hashlib.sha1(spki[bits_start + 1 : bits_end], usedforsecurity=False).digest()


def basic_constraints(*, ca: bool) -> Extension:
    """Critical; a CA may issue leaves only (pathLenConstraint 0), a leaf is the empty SEQUENCE (cA FALSE is
    the default, which DER leaves out)."""
    value = tlv(TAG_BOOLEAN, b"\xff") + tlv(TAG_INTEGER, b"\x00") if ca else b""
    return Extension(oids.BASIC_CONSTRAINTS, True, tlv(TAG_SEQUENCE, value))


def key_usage(*bits: int) -> Extension:
    """Critical; the named bits set, as a DER BIT STRING: trailing zero bits removed (X.690 11.2.2)."""
    if not bits:
        raise ValueError("a KeyUsage sets at least one bit")
    size = max(bits) // 8 + 1
    value = sum(1 << (8 * size - 1 - bit) for bit in set(bits))  # bit 0 is the first octet's high bit
    unused = (value & -value).bit_length() - 1  # the zero bits after the last one set
    return Extension(oids.KEY_USAGE, True, tlv(TAG_BIT_STRING, bytes((unused,)) + value.to_bytes(size, "big")))


def subject_key_identifier(spki: bytes) -> Extension:
    return Extension(oids.SUBJECT_KEY_IDENTIFIER, False, tlv(TAG_OCTET_STRING, key_identifier(spki)))


def authority_key_identifier(issuer_spki: bytes) -> Extension:
    """keyIdentifier [0] only: the issuer's key identifier, which path building matches against its SKI."""
    key_id = tlv(_KEY_ID, key_identifier(issuer_spki))
    return Extension(oids.AUTHORITY_KEY_IDENTIFIER, False, tlv(TAG_SEQUENCE, key_id))


def extended_key_usage(purposes: Sequence[str]) -> Extension:
    """Not critical; `purposes` are dotted OIDs (`tls.x509.oids.EKU_SERVER_AUTH`, ...), in order."""
    return Extension(
        oids.EXTENDED_KEY_USAGE, False, tlv(TAG_SEQUENCE, b"".join(tlv(TAG_OID, encode_oid(p)) for p in purposes))
    )


def subject_alt_name(names: Sequence[str]) -> Extension:
    """Not critical (the subject has a name); each of `names`, in order, is an iPAddress if it reads as an IPv4
    or IPv6 address, else a dNSName (ASCII: an IDN goes in its A-label form)."""
    if not names:
        raise ValueError("a SubjectAltName has at least one name")
    return Extension(oids.SUBJECT_ALT_NAME, False, tlv(TAG_SEQUENCE, b"".join(map(_general_name, names))))


def _spki(algorithm: bytes, key: bytes) -> bytes:
    """SEQUENCE { AlgorithmIdentifier, subjectPublicKey BIT STRING }: `key` in whole octets (no unused bits)."""
    return tlv(TAG_SEQUENCE, algorithm + tlv(TAG_BIT_STRING, b"\x00" + key))


def _natural(value: int) -> bytes:
    """The INTEGER of a non-negative `value`: minimal octets with the sign bit clear (a leading zero octet when
    the top bit of the first would be set), as X.690 8.3 wants for a serial, a modulus or an exponent."""
    return tlv(TAG_INTEGER, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _general_name(value: str) -> bytes:
    try:
        return tlv(_IP_ADDRESS, ipaddress.ip_address(value).packed)
    except ValueError:
        return tlv(_DNS_NAME, value.encode("ascii"))


def _attribute(oid: str, value: str) -> bytes:
    """One RelativeDistinguishedName of one AttributeTypeAndValue (a SET of one needs no sorting)."""
    pair = tlv(TAG_OID, encode_oid(oid)) + tlv(TAG_UTF8_STRING, value.encode("utf-8"))
    return tlv(TAG_SET, tlv(TAG_SEQUENCE, pair))


def _time(moment: datetime.datetime) -> bytes:
    utc = moment.astimezone(datetime.UTC)
    if utc.year < GENERALIZED_TIME_FROM:
        return tlv(TAG_UTC_TIME, utc.strftime("%y%m%d%H%M%SZ").encode("ascii"))
    return tlv(TAG_GENERALIZED_TIME, f"{utc.year:04d}{utc:%m%d%H%M%S}Z".encode("ascii"))


def _extension(extension: Extension) -> bytes:
    critical = tlv(TAG_BOOLEAN, b"\xff") if extension.critical else b""  # FALSE is the default: left out
    return tlv(
        TAG_SEQUENCE, tlv(TAG_OID, encode_oid(extension.oid)) + critical + tlv(TAG_OCTET_STRING, extension.value)
    )
