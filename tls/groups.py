"""Ephemeral key exchange for the groups we support: X25519, P-256, P-384.

Private keys come from bytes the caller's random source supplies, so the engine stays deterministic
under test. Peer shares are validated (length, uncompressed point on the curve, non-zero X25519 result).
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec, x25519

from tls.constants import NamedGroup
from tls.ec_point import uncompressed_point
from tls.errors import illegal

SUPPORTED_GROUPS: tuple[int, ...] = (NamedGroup.X25519, NamedGroup.SECP256R1, NamedGroup.SECP384R1)

_CURVES: dict[int, tuple[ec.EllipticCurve, int, int]] = {
    # group: (curve, order, encoded point length)
    NamedGroup.SECP256R1: (ec.SECP256R1(),
                           0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551, 65),
    NamedGroup.SECP384R1: (ec.SECP384R1(),
                           0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
                           97),
}


class KeyShare:
    """Our half of one key exchange."""

    def __init__(self, group: int, random_bytes: bytes) -> None:
        self.group = group
        if group == NamedGroup.X25519:
            self._x = x25519.X25519PrivateKey.from_private_bytes(random_bytes[:32])
            self.public = self._x.public_key().public_bytes_raw()
        elif group in _CURVES:
            curve, order, _ = _CURVES[group]
            scalar = int.from_bytes(random_bytes, "big") % (order - 1) + 1
            self._ec = ec.derive_private_key(scalar, curve)
            self.public = uncompressed_point(self._ec.public_key())
        else:
            raise ValueError(f"unsupported group {group}")

    @staticmethod
    def random_length(group: int) -> int:
        """How many random bytes a share needs (extra bytes for EC keep the modular bias negligible)."""
        return 32 if group == NamedGroup.X25519 else 64

    def exchange(self, peer_public: bytes) -> bytes:
        if self.group == NamedGroup.X25519:
            if len(peer_public) != 32:
                raise illegal("x25519 share is not 32 bytes")
            try:
                return self._x.exchange(x25519.X25519PublicKey.from_public_bytes(peer_public))
            except ValueError:
                raise illegal("x25519 share gives an all-zero secret") from None
        curve, _, length = _CURVES[self.group]
        if len(peer_public) != length or peer_public[0] != 4:
            raise illegal(f"{curve.name} share is not an uncompressed point")
        try:
            peer = ec.EllipticCurvePublicKey.from_encoded_point(curve, peer_public)
        except ValueError:
            raise illegal(f"{curve.name} share is not on the curve") from None
        return self._ec.exchange(ec.ECDH(), peer)


def is_obsolete_group(group: int) -> bool:
    """RFC 8446 §4.2.7: the obsolete_RESERVED code points (the pre-1.3 curves and the explicit-curve
    markers), which a TLS 1.3 implementation MUST NOT offer."""
    return 0x0001 <= group <= 0x0016 or 0x001A <= group <= 0x001C or group in (0xFF01, 0xFF02)
