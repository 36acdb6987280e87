"""The SEC 1 encoding of an EC public key, which TLS key shares and X.509 subject public keys both carry.

Its own module so that the boot's certificates (appliance.certificate_der) can encode their keys without
importing the key exchange (tls.groups) and the TLS constants and errors it needs, which wait for the first
TLS connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec


def uncompressed_point(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """The SEC 1 (2.3.3) uncompressed encoding of an EC public key: 0x04, then x and y, each the curve's field
    size in octets (32 for P-256, 48 for P-384, 66 for P-521), zeros on the left. Written from the coordinates
    rather than by `public_bytes(X962, UncompressedPoint)`, whose enums live in the public `serialization`
    package: importing it (with the `ssh`, `padding` and `bisect` it loads) cost about 50 ms of the VM's boot
    (issue 17)."""
    numbers = public_key.public_numbers()
    size = (public_key.curve.key_size + 7) // 8
    return b"\x04" + numbers.x.to_bytes(size, "big") + numbers.y.to_bytes(size, "big")
