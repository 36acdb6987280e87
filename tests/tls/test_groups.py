"""The key shares of tls.groups: an EC share's private scalar is reduced modulo the curve's true order (the
refusals of peer shares are in test_wire_refusals)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tls.constants import NamedGroup
from tls.groups import SUPPORTED_GROUPS, KeyShare

CURVES: dict[int, ec.EllipticCurve] = {NamedGroup.SECP256R1: ec.SECP256R1(), NamedGroup.SECP384R1: ec.SECP384R1()}
EC_GROUPS = tuple(CURVES)
ORDERS: dict[int, int] = {  # FIPS 186-4 D.1.2.3 and D.1.2.4
    NamedGroup.SECP256R1: 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    NamedGroup.SECP384R1:
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
}


def test_every_supported_group_is_tested() -> None:
    assert set(SUPPORTED_GROUPS) == {NamedGroup.X25519, *CURVES}


def _point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


@pytest.mark.parametrize("group", EC_GROUPS, ids=["p256", "p384"])
def test_a_share_reduces_its_bytes_modulo_the_curves_order(group: int) -> None:
    """KeyShare draws its scalar as `bytes % (order - 1) + 1`: with the curve's true order every scalar up to
    order - 1 is reachable and nothing larger is. A wrong constant would narrow the keys (P-384's had lost four
    bits) or let the scalar reach the order (the point at infinity)."""
    curve, order = CURVES[group], ORDERS[group]
    generator = ec.derive_private_key(1, curve).public_key()
    minus_generator = ec.derive_private_key(order - 1, curve).public_key()
    g, minus_g = generator.public_numbers(), minus_generator.public_numbers()
    assert minus_g.x == g.x  # (order - 1)·G = -G, the one other point with G's x: ORDERS has it right
    assert minus_g.y != g.y
    length = KeyShare.random_length(group)
    assert KeyShare(group, (order - 2).to_bytes(length, "big")).public == _point(minus_generator)
    assert KeyShare(group, (order - 1).to_bytes(length, "big")).public == _point(generator)

