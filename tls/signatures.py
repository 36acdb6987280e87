"""Handshake signatures: which schemes a key can make, making them, and checking the peer's.

TLS 1.3 binds ECDSA schemes to curves and forbids PKCS#1 v1.5 in CertificateVerify; TLS 1.2 allows
PKCS#1 for ECDHE_RSA ServerKeyExchange. SHA-1 schemes are never accepted. RSA-PSS comes in two flavours
named by the certificate's key (RFC 8446 §4.2.3): rsa_pss_rsae_* for rsaEncryption keys and rsa_pss_pss_*
for id-RSASSA-PSS keys, which `tls.x509` hands out as `RsaPssPublicKey` (with the key's own restrictions).
`cryptography` loads an RSA-PSS private key as a plain RSA key, so which flavour we sign with is decided by
our own certificate's key (`own_pss_key`).
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from outcomes.category import Category
from tls.constants import SignatureScheme as S
from tls.errors import ProtocolError
from tls.x509.keys import RsaPssPublicKey

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey

_HASHES: dict[int, type[hashes.SHA256] | type[hashes.SHA384] | type[hashes.SHA512]] = {
    S.ECDSA_SECP256R1_SHA256: hashes.SHA256, S.ECDSA_SECP384R1_SHA384: hashes.SHA384,
    S.ECDSA_SECP521R1_SHA512: hashes.SHA512,
    S.RSA_PSS_RSAE_SHA256: hashes.SHA256, S.RSA_PSS_RSAE_SHA384: hashes.SHA384, S.RSA_PSS_RSAE_SHA512: hashes.SHA512,
    S.RSA_PSS_PSS_SHA256: hashes.SHA256, S.RSA_PSS_PSS_SHA384: hashes.SHA384, S.RSA_PSS_PSS_SHA512: hashes.SHA512,
    S.RSA_PKCS1_SHA256: hashes.SHA256, S.RSA_PKCS1_SHA384: hashes.SHA384, S.RSA_PKCS1_SHA512: hashes.SHA512,
}
_CURVE_OF: dict[int, str] = {S.ECDSA_SECP256R1_SHA256: "secp256r1", S.ECDSA_SECP384R1_SHA384: "secp384r1",
             S.ECDSA_SECP521R1_SHA512: "secp521r1"}
_PSS_RSAE = (S.RSA_PSS_RSAE_SHA256, S.RSA_PSS_RSAE_SHA384, S.RSA_PSS_RSAE_SHA512)
_PSS_PSS = (S.RSA_PSS_PSS_SHA256, S.RSA_PSS_PSS_SHA384, S.RSA_PSS_PSS_SHA512)
_PSS = frozenset(_PSS_RSAE + _PSS_PSS)
_HASH_NAMES: dict[int, str] = {scheme: _HASHES[scheme].name for scheme in _PSS}
_PKCS1 = frozenset({S.RSA_PKCS1_SHA256, S.RSA_PKCS1_SHA384, S.RSA_PKCS1_SHA512})

HANDSHAKE_SCHEMES_13: tuple[int, ...] = (
    S.ECDSA_SECP256R1_SHA256, S.ECDSA_SECP384R1_SHA384, S.ED25519, *_PSS_RSAE, *_PSS_PSS,
)
"""What we accept in a TLS 1.3 CertificateVerify. Each RSA-PSS flavour is accepted only from its kind of
certificate key (rsae: rsaEncryption, pss: id-RSASSA-PSS within the key's parameters)."""
HANDSHAKE_SCHEMES_12: tuple[int, ...] = (*HANDSHAKE_SCHEMES_13, S.RSA_PKCS1_SHA256, S.RSA_PKCS1_SHA384,
                                         S.RSA_PKCS1_SHA512)
"""What we accept in TLS 1.2 ServerKeyExchange / CertificateVerify."""
CERTIFICATE_SCHEMES: tuple[int, ...] = (*HANDSHAKE_SCHEMES_13, S.ECDSA_SECP521R1_SHA512, S.RSA_PKCS1_SHA256,
                                        S.RSA_PKCS1_SHA384, S.RSA_PKCS1_SHA512)
"""What we send in signature_algorithms_cert (RFC 8446 §4.2.3): the certificate signatures the validator
verifies. rsa_pss_rsae_* names a PSS signature by an rsaEncryption issuer key and rsa_pss_pss_* one by an
id-RSASSA-PSS issuer key; P-521 and PKCS#1 v1.5 appear here only. signature_algorithms then lists only what
we accept in handshake signatures: HANDSHAKE_SCHEMES_13, plus PKCS#1 when TLS 1.2 is on offer (see
`offered_schemes`)."""


def offered_schemes(tls12: bool) -> tuple[int, ...]:
    """Our signature_algorithms: handshake signatures we accept; PKCS#1 only matters to a TLS 1.2 peer."""
    return HANDSHAKE_SCHEMES_12 if tls12 else HANDSHAKE_SCHEMES_13


def bad_signature(reason: str) -> ProtocolError:
    """The signature itself does not verify: decrypt_error (RFC 8446 §4.4.3, RFC 5246 §7.2.2)."""
    return ProtocolError(Category.BAD_SIGNATURE, reason)


def wrong_scheme(reason: str) -> ProtocolError:
    """The scheme field is one we did not offer, or does not fit the certificate's key: illegal_parameter,
    decided before any signature is checked (see `tls.alerts.ALERT_REASONS`)."""
    return ProtocolError(Category.WRONG_SIGNATURE_SCHEME, reason)


def schemes_for_key(key: PrivateKey, tls13: bool, pss_key: RsaPssPublicKey | None = None) -> tuple[int, ...]:
    """Schemes this private key can produce, our preference first. `pss_key` is our certificate's key when
    it is an id-RSASSA-PSS key: then only rsa_pss_pss_* within its restrictions (no rsae, no PKCS#1)."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return (S.ED25519,)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        for scheme, curve in _CURVE_OF.items():
            if key.curve.name == curve:
                return (scheme,)
        return ()
    if pss_key is not None:
        return tuple(s for s in _PSS_PSS if pss_key.permits(_HASH_NAMES[s], _HASHES[s].digest_size))
    return _PSS_RSAE if tls13 else (*_PSS_RSAE, S.RSA_PKCS1_SHA256, S.RSA_PKCS1_SHA384, S.RSA_PKCS1_SHA512)


def choose_scheme(key: PrivateKey, offered: tuple[int, ...], tls13: bool,
                  pss_key: RsaPssPublicKey | None = None) -> int | None:
    return first_offered(schemes_for_key(key, tls13, pss_key), offered)


def first_offered(ours: tuple[int, ...], offered: tuple[int, ...]) -> int | None:
    """The first of our schemes (`schemes_for_key`, preference order) that the peer offered, or None."""
    offered_set = set(offered)
    for scheme in ours:
        if scheme in offered_set:
            return scheme
    return None


def sign(key: PrivateKey, scheme: int, data: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(_HASHES[scheme]()))
    algorithm = _HASHES[scheme]()
    if scheme in _PSS:
        return key.sign(data, padding.PSS(padding.MGF1(algorithm), algorithm.digest_size), algorithm)
    return key.sign(data, padding.PKCS1v15(), algorithm)


def verify(public_key: object, scheme: int, signature: bytes, data: bytes, allowed: tuple[int, ...], *,
           curve_bound: bool = True) -> None:
    """Raise wrong_scheme unless `scheme` is one we allow here and fits the key's type (and curve, for ECDSA
    in TLS 1.3; TLS 1.2's ECDSA code points name only the hash, so `curve_bound=False` there), then
    bad_signature unless `signature` is a valid `scheme` signature by `public_key` over `data` (an empty
    signature included: the RFCs' DigitallySigned allows zero bytes, so it decodes and fails here)."""
    if scheme not in allowed:
        raise wrong_scheme(f"signature scheme {scheme:#06x} not allowed here")
    try:
        if scheme == S.ED25519:
            if not isinstance(public_key, ed25519.Ed25519PublicKey):
                raise wrong_scheme("ed25519 signature from a non-Ed25519 key")
            public_key.verify(signature, data)
        elif scheme in _CURVE_OF:
            if not isinstance(public_key, ec.EllipticCurvePublicKey):
                raise wrong_scheme("ECDSA signature from a non-EC key")
            if curve_bound and public_key.curve.name != _CURVE_OF[scheme]:
                raise wrong_scheme("ECDSA scheme does not match the certificate's curve")
            public_key.verify(signature, data, ec.ECDSA(_HASHES[scheme]()))
        elif scheme in _PSS_PSS:
            if not isinstance(public_key, RsaPssPublicKey):
                raise wrong_scheme("rsa_pss_pss signature from a key that is not an RSASSA-PSS key")
            algorithm = _HASHES[scheme]()
            if not public_key.permits(_HASH_NAMES[scheme], algorithm.digest_size):
                raise wrong_scheme(f"signature scheme {scheme:#06x} outside the RSASSA-PSS key's restrictions")
            pss = padding.PSS(padding.MGF1(algorithm), algorithm.digest_size)
            public_key.key.verify(signature, data, pss, algorithm)
        elif scheme in _PSS or scheme in _PKCS1:
            if not isinstance(public_key, rsa.RSAPublicKey):
                raise wrong_scheme("rsa_pss_rsae or PKCS#1 signature from a key that is not an rsaEncryption key")
            algorithm = _HASHES[scheme]()
            pad: padding.AsymmetricPadding = (padding.PSS(padding.MGF1(algorithm), algorithm.digest_size)
                                              if scheme in _PSS else padding.PKCS1v15())
            public_key.verify(signature, data, pad, algorithm)
        else:
            raise wrong_scheme(f"unknown signature scheme {scheme:#06x}")
    except InvalidSignature:
        raise bad_signature(f"signature ({scheme:#06x}) does not verify") from None
