"""Our key share's public value (tls.groups, its point encoder tls.ec_point): written without cryptography's
`serialization` package (issue 17), it must still be the bytes `public_bytes` gives for every group we offer,
including when a coordinate of the point is short (its leading zero octets are part of the fixed-length
encoding), and a peer that decodes it must agree on the secret. Its private scalar is reduced modulo the curve's
true order. The refusals of peer shares are in test_wire_refusals."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tls.constants import NamedGroup
from tls.ec_point import uncompressed_point
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


def _short_scalar(curve: ec.EllipticCurve, coordinate: str) -> int:
    """The smallest private scalar whose public point's `coordinate` ("x" or "y") has a zero leading octet: the
    case a minimal-length integer encoding would get wrong (about one scalar in 256 has it)."""
    size = (curve.key_size + 7) // 8
    for scalar in range(1, 10_000):
        numbers = ec.derive_private_key(scalar, curve).public_key().public_numbers()
        if getattr(numbers, coordinate) < 1 << (8 * (size - 1)):
            return scalar
    raise AssertionError(f"no scalar below 10000 gives a short {coordinate}")


def _share_for(group: int, scalar: int) -> KeyShare:
    """A share whose private scalar is `scalar`: KeyShare reduces its bytes to `bytes % (order - 1) + 1`."""
    return KeyShare(group, (scalar - 1).to_bytes(KeyShare.random_length(group), "big"))


def test_an_x25519_share_is_the_raw_public_key() -> None:
    for _ in range(16):
        random_bytes = os.urandom(KeyShare.random_length(NamedGroup.X25519))
        expected = x25519.X25519PrivateKey.from_private_bytes(random_bytes).public_key()
        assert KeyShare(NamedGroup.X25519, random_bytes).public == expected.public_bytes(Encoding.Raw, PublicFormat.Raw)


@pytest.mark.parametrize("group", EC_GROUPS, ids=["p256", "p384"])
def test_an_ec_share_is_the_uncompressed_point(group: int) -> None:
    curve = CURVES[group]
    scalars = [_short_scalar(curve, "x"), _short_scalar(curve, "y"), 1, 2]
    scalars += [int.from_bytes(os.urandom(curve.key_size // 8), "big") >> 1 | 1 for _ in range(16)]  # below the order
    for scalar in scalars:
        share = _share_for(group, scalar)
        assert share.public == _point(ec.derive_private_key(scalar, curve).public_key()), scalar
        assert len(share.public) == 1 + 2 * ((curve.key_size + 7) // 8)


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1()], ids=lambda c: c.name)
def test_the_point_encoder_pads_each_coordinate_to_the_field_size(curve: ec.EllipticCurve) -> None:
    """P-521's 521-bit field takes 66 octets per coordinate, not 65: the size is rounded up, not the key size
    over eight."""
    for coordinate in ("x", "y"):
        key = ec.derive_private_key(_short_scalar(curve, coordinate), curve).public_key()
        assert uncompressed_point(key) == _point(key)
    key = ec.generate_private_key(curve).public_key()
    assert uncompressed_point(key) == _point(key)


@pytest.mark.parametrize("group", SUPPORTED_GROUPS, ids=["x25519", "p256", "p384"])
def test_a_peer_that_decodes_our_share_agrees_on_the_secret(group: int) -> None:
    ours = KeyShare(group, os.urandom(KeyShare.random_length(group)))
    if group == NamedGroup.X25519:
        peer_x = x25519.X25519PrivateKey.generate()
        theirs = peer_x.exchange(x25519.X25519PublicKey.from_public_bytes(ours.public))
        peer_public = peer_x.public_key().public_bytes_raw()
    else:
        peer_ec = ec.generate_private_key(CURVES[group])
        theirs = peer_ec.exchange(ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(CURVES[group], ours.public))
        peer_public = _point(peer_ec.public_key())
    assert ours.exchange(peer_public) == theirs
