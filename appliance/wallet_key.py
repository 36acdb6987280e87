"""The wallet's secp256k1 key: OpenSSL (through `cryptography`) holds it and signs with it; the BIP-137
recovery id is recomputed from public values by `appliance.secp256k1`.

Why not coincurve (libsecp256k1), which did all of this in one call: its wheel cost 1.3 MB of the xz'd image
(libsecp256k1's precomputed tables do not compress, and it carries its own copy of `_cffi_backend`), and
`cryptography`, already in the image for TLS and the boot PKI, supports secp256k1. The split is by secrecy:
- every operation on the secret (deriving the public key, ECDSA signing) runs in OpenSSL, constant time,
  with RFC 6979 deterministic nonces (so signing draws no randomness, and the signature is the one
  libsecp256k1 gives for the same key and digest: the tests compare them);
- what OpenSSL does not return, the parity of the nonce point, comes from (r, s), the digest and the public
  key only, in pure Python that need not be constant time, and it doubles as a check that the signature
  verifies: a faulty one raises rather than becoming a proof.
coincurve remains a test-only dependency: the independent reference the tests check this module against.
"""

from __future__ import annotations

from typing import final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from appliance import secp256k1
from appliance.secp256k1 import FixedBase, SignatureCheckError

__all__ = ["InvalidWalletKeyError", "SignatureCheckError", "WalletKey", "public_key"]

_ECDSA = ec.ECDSA(utils.Prehashed(hashes.SHA256()), deterministic_signing=True)
_HALF_ORDER = secp256k1.N // 2


class InvalidWalletKeyError(ValueError):
    """32 bytes that are not a secp256k1 private key (zero, or not below the group order n)."""


def _private_key(secret: bytes) -> ec.EllipticCurvePrivateKey:
    if len(secret) != 32:
        raise InvalidWalletKeyError("a wallet key is 32 bytes")
    scalar = int.from_bytes(secret, "big")
    if not 0 < scalar < secp256k1.N:
        raise InvalidWalletKeyError("a wallet key must be in [1, n-1]")
    return ec.derive_private_key(scalar, ec.SECP256K1())


def _point(key: ec.EllipticCurvePrivateKey) -> secp256k1.Affine:
    numbers = key.public_key().public_numbers()
    return numbers.x, numbers.y


def public_key(secret: bytes) -> bytes:
    """The compressed public key of `secret` (33 bytes), for the addresses; computed by OpenSSL."""
    return secp256k1.compress(_point(_private_key(secret)))


@final
class WalletKey:
    """The key as the vault holds it. Only the vault may hold one (DESIGN.md rule 5; tests/appliance/reach.py
    recognises the OpenSSL key object inside)."""

    __slots__ = ("_key", "_table", "point", "public")

    def __init__(self, secret: bytes) -> None:
        self._key = _private_key(secret)
        self.point = _point(self._key)
        self.public = secp256k1.compress(self.point)
        self._table: FixedBase | None = None

    def __repr__(self) -> str:
        return f"WalletKey({self.public.hex()})"

    def secret(self) -> bytes:
        return self._key.private_numbers().private_value.to_bytes(32, "big")

    def sign_recoverable(self, digest: bytes) -> tuple[bytes, int]:
        """A low-s ECDSA signature over a 32-byte digest (not hashed again) as r || s (64 bytes), and its
        recovery id (0-3): what BIP-137 puts in a signed message. Raises SignatureCheckError, never returning
        a signature that does not verify against this key."""
        if len(digest) != 32:
            raise ValueError("the digest is 32 bytes")
        r, s = utils.decode_dss_signature(self._key.sign(digest, _ECDSA))
        if s > _HALF_ORDER:  # low s, as libsecp256k1 and Bitcoin's standardness rules want (BIP-62, BIP-146)
            s = secp256k1.N - s
        recid = secp256k1.recovery_id(int.from_bytes(digest, "big"), r, s, self.public_table())
        return r.to_bytes(32, "big") + s.to_bytes(32, "big"), recid

    def public_table(self) -> FixedBase:
        """The fixed-base table of the public point, built by the first signature rather than at boot: it
        costs about 10 ms on the host, 3-15 times that in the VM, where the boot is what issue 17 times.
        The point never changes, so the table never goes stale."""
        if self._table is None:
            self._table = FixedBase(self.point)
        return self._table
