"""Certificate signature algorithms: decode the AlgorithmIdentifier strictly, verify with `cryptography`.

Weak or unknown algorithms still parse (a certificate is data); `problem` records why, and verification
refuses them with the `weak-algorithm` category. Parameters must be exactly what RFC 4055 / 5758 / 8410
prescribe: NULL for PKCS#1 v1.5, absent for ECDSA and Ed25519, and for RSASSA-PSS a hash of the SHA-2
family with MGF1 over the same hash, salt as long as the hash, trailer 1.
"""

from __future__ import annotations

from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from pyasn1.codec.der import decoder as der_decoder
from pyasn1.error import PyAsn1Error
from pyasn1_modules import rfc4055

from tls.failure import Category
from tls.x509 import oids
from tls.x509.der import TAG_NULL, TAG_OID, TAG_SEQUENCE, check_der, decode_oid, iter_children, read_single
from tls.x509.errors import X509Error, decode_error
from tls.x509.keys import PublicKey
from tls.x509.model import SignatureAlgorithm

# oid -> (scheme, hash) for algorithms whose parameters are fixed (NULL or absent).
_FIXED: Final = {
    oids.SHA256_WITH_RSA: ("rsa-pkcs1", "sha256"),
    oids.SHA384_WITH_RSA: ("rsa-pkcs1", "sha384"),
    oids.SHA512_WITH_RSA: ("rsa-pkcs1", "sha512"),
    oids.ECDSA_WITH_SHA256: ("ecdsa", "sha256"),
    oids.ECDSA_WITH_SHA384: ("ecdsa", "sha384"),
    oids.ECDSA_WITH_SHA512: ("ecdsa", "sha512"),
    oids.ED25519: ("ed25519", None),
}
_WEAK: Final = {
    oids.MD5_WITH_RSA: "MD5 signature",
    oids.SHA1_WITH_RSA: "SHA-1 signature",
    oids.ECDSA_WITH_SHA1: "SHA-1 signature",
    oids.DSA_WITH_SHA1: "DSA/SHA-1 signature",
}
_HASH_OIDS: Final = {oids.SHA256: "sha256", oids.SHA384: "sha384", oids.SHA512: "sha512"}
_HASHES: Final[dict[str, hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}
_HASH_SIZES: Final = {"sha256": 32, "sha384": 48, "sha512": 64}
_PKCS1: Final = padding.PKCS1v15()


def parse_signature_algorithm(der: bytes) -> SignatureAlgorithm:
    """Decode one AlgorithmIdentifier (DER already checked) into a SignatureAlgorithm."""
    _, start, end = read_single(der, TAG_SEQUENCE)
    parts = list(iter_children(der, start, end))
    if not parts or parts[0][0] != TAG_OID or len(parts) > 2:
        raise decode_error("signature AlgorithmIdentifier malformed")
    oid = decode_oid(der, parts[0][2], parts[0][3])
    params = parts[1] if len(parts) == 2 else None
    if oid in _WEAK:
        return SignatureAlgorithm(der, oid, problem=_WEAK[oid])
    if oid in _FIXED:
        scheme, hash_name = _FIXED[oid]
        if scheme == "rsa-pkcs1":
            if params is None or params[0] != TAG_NULL:
                return SignatureAlgorithm(der, oid, problem="RSA PKCS#1 signature parameters must be NULL")
        elif params is not None:
            return SignatureAlgorithm(der, oid, problem="signature algorithm must not have parameters")
        return SignatureAlgorithm(der, oid, scheme=scheme, hash_name=hash_name)
    if oid == oids.RSASSA_PSS:
        if params is None:
            return SignatureAlgorithm(der, oid, problem="RSASSA-PSS without parameters")
        return _parse_pss(der, oid, der[params[1] : params[3]])
    return SignatureAlgorithm(der, oid, problem=f"signature algorithm {oid} not supported")


def _parse_pss(der: bytes, oid: str, params: bytes) -> SignatureAlgorithm:
    """RSASSA-PSS-params, restricted to the profile TLS and the web use (RFC 8446 4.2.3, RFC 4055)."""
    check_der(params)
    try:
        decoded, rest = der_decoder.decode(params, asn1Spec=rfc4055.RSASSA_PSS_params())
    except (PyAsn1Error, ValueError, TypeError, IndexError) as exc:
        raise decode_error("RSASSA-PSS parameters malformed") from exc
    if rest:
        raise decode_error("trailing bytes after RSASSA-PSS parameters")
    if not decoded["hashAlgorithm"].isValue or not decoded["maskGenAlgorithm"].isValue:
        return SignatureAlgorithm(der, oid, problem="RSASSA-PSS with default (SHA-1) parameters")
    hash_oid = str(decoded["hashAlgorithm"]["algorithm"])
    if hash_oid not in _HASH_OIDS:
        return SignatureAlgorithm(der, oid, problem=f"RSASSA-PSS hash {hash_oid} not allowed")
    hash_name = _HASH_OIDS[hash_oid]
    mgf = decoded["maskGenAlgorithm"]
    if str(mgf["algorithm"]) != oids.MGF1 or not mgf["parameters"].isValue:
        return SignatureAlgorithm(der, oid, problem="RSASSA-PSS mask generation is not MGF1")
    mgf_hash = bytes(mgf["parameters"])
    _, mstart, mend = read_single(mgf_hash, TAG_SEQUENCE)
    mparts = list(iter_children(mgf_hash, mstart, mend))
    if not mparts or mparts[0][0] != TAG_OID or decode_oid(mgf_hash, mparts[0][2], mparts[0][3]) != hash_oid:
        return SignatureAlgorithm(der, oid, problem="RSASSA-PSS MGF1 hash differs from the message hash")
    salt = int(decoded["saltLength"])
    if salt != _HASH_SIZES[hash_name]:
        return SignatureAlgorithm(der, oid, problem="RSASSA-PSS salt length differs from the hash length")
    if int(decoded["trailerField"]) != 1:
        return SignatureAlgorithm(der, oid, problem="RSASSA-PSS trailer field must be 1")
    return SignatureAlgorithm(der, oid, scheme="rsa-pss", hash_name=hash_name, salt_length=salt)


def verify_signature(key: PublicKey, algorithm: SignatureAlgorithm, signature: bytes, message: bytes) -> None:
    """Check `signature` over `message`; raise X509Error(weak-algorithm or chain-signature-invalid)."""
    if algorithm.problem is not None:
        raise X509Error(Category.WEAK_ALGORITHM, algorithm.problem)
    scheme = algorithm.scheme
    hash_algorithm = _HASHES[algorithm.hash_name] if algorithm.hash_name else None
    try:
        if scheme == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey) and hash_algorithm is not None:
            key.verify(signature, message, ec.ECDSA(hash_algorithm))
        elif scheme == "rsa-pkcs1" and isinstance(key, rsa.RSAPublicKey) and hash_algorithm is not None:
            key.verify(signature, message, _PKCS1, hash_algorithm)
        elif scheme == "rsa-pss" and isinstance(key, rsa.RSAPublicKey) and hash_algorithm is not None:
            pss = padding.PSS(mgf=padding.MGF1(hash_algorithm), salt_length=algorithm.salt_length)
            key.verify(signature, message, pss, hash_algorithm)
        elif scheme == "ed25519" and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, message)
        else:
            raise X509Error(Category.CHAIN_SIGNATURE_INVALID, "signature algorithm does not match the issuer key")
    except InvalidSignature as exc:
        raise X509Error(Category.CHAIN_SIGNATURE_INVALID, "signature does not verify") from exc
    except ValueError as exc:
        raise X509Error(Category.CHAIN_SIGNATURE_INVALID, "signature is malformed") from exc
