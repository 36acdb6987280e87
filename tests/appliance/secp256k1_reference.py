"""The slow, obvious secp256k1 operations the fast ones in appliance.secp256k1 are tested against.

They live with the tests: nothing in the appliance multiplies by double-and-add or adds affine points, and the
image need not carry them.
"""

from __future__ import annotations

from appliance.secp256k1 import INFINITY, Affine, N, P, add_affine, double, to_affine


def multiply(k: int, point: Affine) -> Affine | None:
    """k·point by plain double-and-add."""
    acc = INFINITY
    for bit in bin(k % N)[2:]:
        acc = double(acc)
        if bit == "1":
            acc = add_affine(acc, point)
    return to_affine(acc)


def negate(point: Affine | None) -> Affine | None:
    return None if point is None else (point[0], (P - point[1]) % P)


def add(a: Affine | None, b: Affine | None) -> Affine | None:
    """A + B in affine terms."""
    if b is None:
        return a
    return to_affine(add_affine(INFINITY if a is None else (a[0], a[1], 1), b))
