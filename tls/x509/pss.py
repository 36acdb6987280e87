"""RSASSA-PSS-params (RFC 4055 §3.1, RFC 8017 A.2.3): one strict decoder for both places they appear.

In a signature AlgorithmIdentifier they say how this signature was made; in an id-RSASSA-PSS
SubjectPublicKeyInfo they restrict every signature the key may make (one hash, MGF1 over that hash, a
minimum salt length). Malformed or non-canonical DER (an explicitly encoded DEFAULT, trailing bytes) is a
decode error; well-formed parameters outside the profile TLS uses (RFC 8446 §4.2.3: SHA-2, MGF1 with the
same hash, trailer 1) decode with a `problem`, which the caller turns into a weak-algorithm refusal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from tls.x509 import oids
from tls.x509.asn1 import decode_strict
from tls.x509.der import TAG_NULL, TAG_OID, TAG_SEQUENCE, children, read_oid, read_single
from tls.x509.errors import decode_error

HASH_NAMES: Final = {oids.SHA256: "sha256", oids.SHA384: "sha384", oids.SHA512: "sha512"}
HASH_SIZES: Final = {"sha256": 32, "sha384": 48, "sha512": 64}
_DEFAULT_SALT: Final = 20  # RFC 4055: the DEFAULT goes with SHA-1, which we refuse anyway


@dataclass(frozen=True)
class PssParams:
    """Decoded RSASSA-PSS-params. `hash_name` is None exactly when `problem` is set."""

    hash_name: str | None
    salt_length: int
    problem: str | None = None


def parse_pss_params(params: bytes) -> PssParams:
    """Decode RSASSA-PSS-params (the full TLV of the SEQUENCE)."""
    from pyasn1_modules import rfc4055  # noqa: PLC0415 - PSS keys are rare: imported when one comes

    decoded = decode_strict(params, rfc4055.RSASSA_PSS_params(), "RSASSA-PSS parameters")
    salt_field = decoded["saltLength"]
    salt = int(salt_field) if salt_field.isValue else _DEFAULT_SALT
    if salt < 0:
        raise decode_error("RSASSA-PSS saltLength is negative")
    if not decoded["hashAlgorithm"].isValue or not decoded["maskGenAlgorithm"].isValue:
        return PssParams(None, salt, "RSASSA-PSS with default (SHA-1) parameters")
    hash_oid = _hash_oid(decoded["hashAlgorithm"])
    if hash_oid not in HASH_NAMES:
        return PssParams(None, salt, f"RSASSA-PSS hash {hash_oid} not allowed")
    mgf = decoded["maskGenAlgorithm"]
    if str(mgf["algorithm"]) != oids.MGF1 or not mgf["parameters"].isValue:
        return PssParams(None, salt, "RSASSA-PSS mask generation is not MGF1")
    if _mgf1_hash_oid(bytes(mgf["parameters"])) != hash_oid:
        return PssParams(None, salt, "RSASSA-PSS MGF1 hash differs from the message hash")
    trailer = decoded["trailerField"]
    if trailer.isValue and int(trailer) != 1:
        return PssParams(None, salt, "RSASSA-PSS trailer field must be 1")
    return PssParams(HASH_NAMES[hash_oid], salt)


def _hash_oid(algorithm: Any) -> str:
    """The hash AlgorithmIdentifier's OID; its parameters must be absent or NULL (RFC 4055 §2.1)."""
    parameters = algorithm["parameters"]
    if parameters.isValue and bytes(parameters) != bytes((TAG_NULL, 0)):
        raise decode_error("RSASSA-PSS hash parameters must be absent or NULL")
    return str(algorithm["algorithm"])


def _mgf1_hash_oid(der: bytes) -> str:
    """MGF1's parameter is itself a hash AlgorithmIdentifier: SEQUENCE { OID, NULL OPTIONAL }."""
    _, start, end = read_single(der, TAG_SEQUENCE)
    parts = children(der, start, end)
    if not parts or parts[0][0] != TAG_OID or len(parts) > 2:
        raise decode_error("RSASSA-PSS MGF1 hash AlgorithmIdentifier malformed")
    if len(parts) == 2 and (parts[1][0] != TAG_NULL or parts[1][2] != parts[1][3]):
        raise decode_error("RSASSA-PSS MGF1 hash parameters must be absent or NULL")
    return read_oid(der, parts[0][2], parts[0][3])
