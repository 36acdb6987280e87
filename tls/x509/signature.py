"""Certificate signature algorithms: decode the AlgorithmIdentifier strictly, verify with `cryptography`.

Weak or unknown algorithms still parse (a certificate is data); `problem` records why, and verification
refuses them with the `weak-algorithm` category. Parameters must be exactly what RFC 4055 / 5758 / 8410
prescribe: NULL for PKCS#1 v1.5, absent for ECDSA and Ed25519, and for RSASSA-PSS a hash of the SHA-2
family with MGF1 over the same hash, salt as long as the hash, trailer 1. An issuer whose key is an
id-RSASSA-PSS key verifies only PSS signatures within that key's restrictions (RFC 4055 §3.1).
"""

from __future__ import annotations

from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from outcomes.category import Category
from tls.x509 import oids
from tls.x509.der import (
    NULL_DER,
    TAG_NULL,
    TAG_OID,
    TAG_SEQUENCE,
    check_der,
    children,
    encode_oid,
    read_oid,
    read_single,
    tlv,
)
from tls.x509.errors import X509Error, decode_error
from tls.x509.keys import PublicKey, RsaPssPublicKey
from tls.x509.model import SignatureAlgorithm
from tls.x509.pss import HASH_SIZES, parse_pss_params

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
_HASHES: Final[dict[str, hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}
_PKCS1: Final = padding.PKCS1v15()


def parse_signature_algorithm(der: bytes) -> SignatureAlgorithm:
    """Decode one AlgorithmIdentifier into a SignatureAlgorithm (the common ones from a table of their
    exact encodings)."""
    known = _KNOWN.get(der)
    return known if known is not None else _parse_signature_algorithm(der)


def _parse_signature_algorithm(der: bytes) -> SignatureAlgorithm:
    """Decode one AlgorithmIdentifier into a SignatureAlgorithm. Its parameters are an open type: whatever
    they hold must be DER, even where the algorithm is then refused for them."""
    _, start, end = read_single(der, TAG_SEQUENCE)
    parts = children(der, start, end)
    if not parts or parts[0][0] != TAG_OID or len(parts) > 2:
        raise decode_error("signature AlgorithmIdentifier malformed")
    oid = read_oid(der, parts[0][2], parts[0][3])
    params = parts[1] if len(parts) == 2 else None
    if params is not None and der[params[1] : params[3]] != NULL_DER:
        check_der(der[params[1] : params[3]])
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


# The algorithms with fixed parameters, by their exact DER (NULL parameters for PKCS#1 v1.5, none for the
# others): a table of what the parse gives for these bytes, built once, never grown (not a cache).
_KNOWN: Final = {
    der: _parse_signature_algorithm(der)
    for der in (
        tlv(TAG_SEQUENCE, tlv(TAG_OID, encode_oid(oid)) + (NULL_DER if scheme == "rsa-pkcs1" else b""))
        for oid, (scheme, _) in _FIXED.items()
    )
}


def _parse_pss(der: bytes, oid: str, params: bytes) -> SignatureAlgorithm:
    """RSASSA-PSS-params, restricted to the profile TLS and the web use (RFC 8446 4.2.3, RFC 4055): the
    salt is exactly as long as the hash."""
    decoded = parse_pss_params(params)
    if decoded.problem is not None or decoded.hash_name is None:
        return SignatureAlgorithm(der, oid, problem=decoded.problem)
    if decoded.salt_length != HASH_SIZES[decoded.hash_name]:
        return SignatureAlgorithm(der, oid, problem="RSASSA-PSS salt length differs from the hash length")
    return SignatureAlgorithm(der, oid, scheme="rsa-pss", hash_name=decoded.hash_name,
                              salt_length=decoded.salt_length)


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
        elif scheme == "rsa-pss" and isinstance(key, rsa.RSAPublicKey | RsaPssPublicKey) and hash_algorithm is not None:
            if isinstance(key, RsaPssPublicKey):
                if not key.permits(algorithm.hash_name or "", algorithm.salt_length):
                    raise X509Error(Category.CHAIN_SIGNATURE_INVALID,
                                    "signature parameters outside the issuer key's RSASSA-PSS restrictions")
                key = key.key
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
