"""SubjectPublicKeyInfo: decode it ourselves, then hand exact numbers to `cryptography`.

We decode the SPKI with our own strict reader so that the key policy (which curves, how many RSA bits,
no explicit curve parameters) is decided on what the certificate says, not on what a library tolerates.
Unsupported keys still parse (an unrelated trust anchor may use anything); they are refused when used.
An id-RSASSA-PSS key (RFC 4055) is RSA numbers plus a promise to sign only with PSS, optionally with one
hash and a minimum salt: `cryptography` has no such key type, so we hand out `RsaPssPublicKey`, which keeps
the restriction next to the RSA key and is checked by every verifier (X.509 and TLS).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final, NamedTuple

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from outcomes.category import Category
from tls.x509 import oids
from tls.x509.der import (
    NULL_DER,
    TAG_BIT_STRING,
    TAG_INTEGER,
    TAG_NULL,
    TAG_OID,
    TAG_SEQUENCE,
    TLV,
    check_bit_string,
    check_der,
    check_integer,
    children,
    read_oid,
    read_single,
)
from tls.x509.errors import X509Error, decode_error
from tls.x509.pss import HASH_SIZES, parse_pss_params


class KeyKind(Enum):
    RSA = "rsa"
    RSA_PSS = "rsa-pss"
    EC = "ec"
    ED25519 = "ed25519"
    UNSUPPORTED = "unsupported"


_RSA_KINDS: Final = (KeyKind.RSA, KeyKind.RSA_PSS)
"""The kinds the RSA policy applies to. A module constant because reading a member off an Enum class is slow
(its metaclass has a __getattr__), and key_problem and verify_cost run for every certificate in a path."""


class PublicKeyInfo(NamedTuple):
    """SubjectPublicKeyInfo, decoded. `problem` says why an UNSUPPORTED key cannot be used. A named tuple, not a
    frozen dataclass: one is made for every certificate parsed, and it holds plain values only."""

    der: bytes
    kind: KeyKind
    key_bits: int
    curve: str | None = None
    rsa_modulus: int = 0
    rsa_exponent: int = 0
    key_bytes: bytes = b""  # EC point or Ed25519 key
    problem: str | None = None
    pss_hash: str | None = None  # RSA_PSS with parameters: the only hash it may sign with
    pss_min_salt: int = 0


@dataclass(frozen=True)
class RsaPssPublicKey:
    """An id-RSASSA-PSS public key: `key` verifies, `hash_name`/`min_salt_length` restrict what it may verify.

    `hash_name` None means the SPKI had no parameters: PSS with any hash we allow, any salt length."""

    key: rsa.RSAPublicKey
    hash_name: str | None = None
    min_salt_length: int = 0

    def permits(self, hash_name: str, salt_length: int) -> bool:
        """Whether a PSS signature with this hash (MGF1 over the same hash) and salt fits the key."""
        if self.hash_name is not None and hash_name != self.hash_name:
            return False
        return salt_length >= self.min_salt_length


PublicKey = rsa.RSAPublicKey | RsaPssPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


def verify_cost(info: PublicKeyInfo) -> int:
    """What verifying one signature with this key costs, in units of one RSA-2048/e=65537 or P-256 verification.

    Why: a work budget that counts every check as one lets a peer pick the dearest key there is. RSA
    verification grows with the square of the modulus and linearly with the exponent's length, so a peer's
    8192-bit key with a 32-bit exponent costs 32 checks of the usual kind (and a chain of them, signed or
    not, would otherwise cost tens of milliseconds per handshake); curves cost one. Read from the decoded
    numbers, not the key object: asking `cryptography` for them again cost a microsecond per check."""
    if info.kind not in _RSA_KINDS:
        return 1
    size = -(-info.key_bits // 2048)
    return size * size * max(1, -(-info.rsa_exponent.bit_length() // 17))

# Key policy. Below 2048 bits RSA is refused (issue 5); above 8192 bits verification gets expensive enough
# to be a denial-of-service lever, and nobody issues such keys.
MIN_RSA_BITS: Final = 2048
MAX_RSA_BITS: Final = 8192
MAX_RSA_EXPONENT: Final = (1 << 32) - 1

_CURVES: Final = {
    oids.SECP256R1: ("P-256", 256, 65),
    oids.SECP384R1: ("P-384", 384, 97),
    oids.SECP521R1: ("P-521", 521, 133),
}
_CURVE_OBJECTS: Final[dict[str, ec.EllipticCurve]] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
}


def parse_spki(der: bytes) -> PublicKeyInfo:
    """Decode a SubjectPublicKeyInfo, every value checked here (the parameters are an open type: whatever
    they hold must be DER, even for a key that is then refused)."""
    _, start, end = read_single(der, TAG_SEQUENCE)
    parts = children(der, start, end)
    if len(parts) != 2 or parts[0][0] != TAG_SEQUENCE or parts[1][0] != TAG_BIT_STRING:
        raise decode_error("SubjectPublicKeyInfo malformed")
    _, _, alg_start, alg_end = parts[0]
    alg = children(der, alg_start, alg_end)
    if not alg or alg[0][0] != TAG_OID or len(alg) > 2:
        raise decode_error("SubjectPublicKeyInfo algorithm malformed")
    algorithm = read_oid(der, alg[0][2], alg[0][3])
    params = alg[1] if len(alg) == 2 else None
    if params is not None:
        _check_parameters(der, params)
    _, _, key_start, key_end = parts[1]
    check_bit_string(der, key_start, key_end)
    if der[key_start] != 0:
        raise decode_error("subject public key has unused bits")
    key = der[key_start + 1 : key_end]
    if algorithm == oids.RSA_ENCRYPTION:
        if params is None or params[0] != TAG_NULL:
            raise decode_error("RSA key parameters must be NULL")
        return _parse_rsa(der, key)
    if algorithm == oids.RSASSA_PSS:
        return _parse_rsa_pss(der, key, None if params is None else der[params[1] : params[3]])
    if algorithm == oids.EC_PUBLIC_KEY:
        if params is None:
            raise decode_error("EC key without curve parameters")
        if params[0] != TAG_OID:
            return PublicKeyInfo(der, KeyKind.UNSUPPORTED, 0, problem="explicit EC curve parameters")
        curve_oid = read_oid(der, params[2], params[3])
        if curve_oid not in _CURVES:
            return PublicKeyInfo(der, KeyKind.UNSUPPORTED, 0, problem=f"EC curve {curve_oid} not allowed")
        curve, bits, point_size = _CURVES[curve_oid]
        if len(key) != point_size or key[0] != 0x04:
            raise decode_error("EC public key is not an uncompressed point of the curve's size")
        return PublicKeyInfo(der, KeyKind.EC, bits, curve=curve, key_bytes=key)
    if algorithm == oids.ED25519:
        if params is not None:
            raise decode_error("Ed25519 key with parameters")
        if len(key) != 32:
            raise decode_error("Ed25519 public key must be 32 bytes")
        return PublicKeyInfo(der, KeyKind.ED25519, 256, key_bytes=key)
    return PublicKeyInfo(der, KeyKind.UNSUPPORTED, 0, problem=f"public key algorithm {algorithm} not allowed")


def _check_parameters(der: bytes, params: TLV) -> None:
    """Algorithm parameters are an open type: a curve's OID, NULL, or anything else, which must be DER."""
    tag, header, start, end = params
    if tag == TAG_OID:
        read_oid(der, start, end)
    elif der[header:end] != NULL_DER:
        check_der(der[header:end])


def _parse_rsa_pss(der: bytes, key: bytes, params: bytes | None) -> PublicKeyInfo:
    """id-RSASSA-PSS: the same RSAPublicKey, with absent parameters (no restriction) or RSASSA-PSS-params
    (RFC 4055 §3.1), whose saltLength is the minimum any signature must use."""
    rsa_info = _parse_rsa(der, key)
    if params is None:
        return rsa_info._replace(kind=KeyKind.RSA_PSS)
    decoded = parse_pss_params(params)
    if decoded.problem is not None or decoded.hash_name is None:
        return PublicKeyInfo(der, KeyKind.UNSUPPORTED, rsa_info.key_bits, problem=decoded.problem)
    if decoded.salt_length < HASH_SIZES[decoded.hash_name]:
        return PublicKeyInfo(der, KeyKind.UNSUPPORTED, rsa_info.key_bits,
                             problem="RSASSA-PSS key salt length shorter than its hash")
    return rsa_info._replace(kind=KeyKind.RSA_PSS, pss_hash=decoded.hash_name, pss_min_salt=decoded.salt_length)


def _parse_rsa(der: bytes, key: bytes) -> PublicKeyInfo:
    _, start, end = read_single(key, TAG_SEQUENCE)
    parts = children(key, start, end)
    if len(parts) != 2 or parts[0][0] != TAG_INTEGER or parts[1][0] != TAG_INTEGER:
        raise decode_error("RSAPublicKey malformed")
    for _, _, number_start, number_end in parts:
        check_integer(key, number_start, number_end)
    if key[parts[0][2]] & 0x80 or key[parts[1][2]] & 0x80:
        raise decode_error("RSA modulus or exponent negative")
    modulus = int.from_bytes(key[parts[0][2] : parts[0][3]], "big")
    exponent = int.from_bytes(key[parts[1][2] : parts[1][3]], "big")
    return PublicKeyInfo(der, KeyKind.RSA, modulus.bit_length(), rsa_modulus=modulus, rsa_exponent=exponent)


def key_problem(info: PublicKeyInfo) -> str | None:
    """Why this key must not be used for anything, or None when it meets the policy."""
    if info.kind in _RSA_KINDS:
        if info.key_bits < MIN_RSA_BITS:
            return f"RSA key of {info.key_bits} bits (minimum {MIN_RSA_BITS})"
        if info.key_bits > MAX_RSA_BITS:
            return f"RSA key of {info.key_bits} bits (maximum {MAX_RSA_BITS})"
        if info.key_bits % 8:
            return f"RSA modulus of {info.key_bits} bits is not a whole number of octets"
        if info.rsa_exponent < 3 or not info.rsa_exponent & 1 or info.rsa_exponent > MAX_RSA_EXPONENT:
            return "RSA public exponent out of range"
    elif info.kind is KeyKind.UNSUPPORTED:
        return info.problem or "unsupported public key"
    return None


def load_public_key(info: PublicKeyInfo) -> PublicKey:
    """Build the `cryptography` key object from the decoded numbers, after the key policy allows it."""
    problem = key_problem(info)
    if problem is not None:
        raise X509Error(Category.WEAK_ALGORITHM, problem)
    try:
        if info.kind is KeyKind.RSA:
            return rsa.RSAPublicNumbers(info.rsa_exponent, info.rsa_modulus).public_key()
        if info.kind is KeyKind.RSA_PSS:
            numbers = rsa.RSAPublicNumbers(info.rsa_exponent, info.rsa_modulus)
            return RsaPssPublicKey(numbers.public_key(), info.pss_hash, info.pss_min_salt)
        if info.kind is KeyKind.EC:
            return ec.EllipticCurvePublicKey.from_encoded_point(_CURVE_OBJECTS[info.curve or ""], info.key_bytes)
        return ed25519.Ed25519PublicKey.from_public_bytes(info.key_bytes)
    except ValueError as exc:
        raise decode_error("public key is not a valid point or modulus") from exc

