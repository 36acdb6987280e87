"""appliance.secp256k1: the point formulas against published vectors, every special case of the sum, the
fixed-base tables against the plain double-and-add and against libsecp256k1 (coincurve, a test-only
reference), and the recovery id, including its rare x >= n branch and its refusals."""

from __future__ import annotations

import coincurve
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance import secp256k1
from appliance.secp256k1 import (
    INFINITY,
    FixedBase,
    G,
    N,
    NotOnCurveError,
    P,
    SignatureCheckError,
    add_affine,
    compress,
    double,
    generator_table,
    recovery_id,
    to_affine,
)
from tests.appliance.secp256k1_reference import add, multiply, negate

# k·G, from the widely published secp256k1 test vectors (SEC 2 gives G itself).
VECTORS = {
    1: (G[0], G[1]),
    2: (0xC6047F9441ED7D6D3045406E95C07CD85C778E4B8CEF3CA7ABAC09B95C709EE5,
        0x1AE168FEA63DC339A3C58419466CEAEEF7F632653266D0E1236431A950CFE52A),
    3: (0xF9308A019258C31049344F85F89D5229B531C845836F99B08601F113BCE036F9,
        0x388F7B0F632DE8140FE337E62A37F3566500A99934C2231B6CB9FD7584B8E672),
    4: (0xE493DBF1C10D80F3581E4904930B1404CC6C13900EE0758474FA94ABE8C4CD13,
        0x51ED993EA0D455B75642E2098EA51448D967AE33BFBDFE40CFE97BDC47739922),
    5: (0x2F8BDE4D1A07209355B4A7250A5C5128E88B84BDDC619AB7CBA8D569B240EFE4,
        0xD8AC222636E5E3D6D4DBA9DDA6C9C426F788271BAB0D6840DCA87D3AA6AC62D6),
    0xAA5E28D6A97A2479A65527F7290311A3624D4CC0FA1578598EE3C2613BF99522:  # BIG below
        (0x34F9460F0E4F08393D192B3C5133A6BA099AA0AD9FD54EBCCFACDFA239FF49C6,
         0x0B71EA9BD730FD8923F6D25A7A91E7DD7728A960686CB5A901BB419E0F2CA232),
    N - 1: (G[0], 0xB7C52588D95C3B9AA25B0403F1EEF75702E84BB7597AABE663B82F6F04EF2777),
}
BIG = 0xAA5E28D6A97A2479A65527F7290311A3624D4CC0FA1578598EE3C2613BF99522
SCALARS = st.integers(min_value=1, max_value=N - 1)


def _minus(point: secp256k1.Affine) -> secp256k1.Affine:
    return point[0], P - point[1]


def _scaled(point: secp256k1.Affine, factor: int) -> secp256k1.Jacobian:
    """The same point in another Jacobian representation: (x·λ², y·λ³, λ)."""
    return point[0] * factor**2 % P, point[1] * factor**3 % P, factor


@pytest.mark.parametrize("k", list(VECTORS), ids=lambda k: hex(k)[:10])
def test_known_multiples_of_g(k: int) -> None:
    assert multiply(k, G) == VECTORS[k]
    assert to_affine(generator_table().accumulate(k)) == VECTORS[k]
    assert secp256k1.is_on_curve(VECTORS[k])


def test_n_minus_one_times_g_is_minus_g_and_n_times_g_is_infinity() -> None:
    assert VECTORS[N - 1] == negate(G)
    assert multiply(N, G) is None
    assert multiply(0, G) is None
    assert add(VECTORS[N - 1], G) is None


def test_the_point_at_infinity_in_every_position() -> None:
    assert to_affine(INFINITY) is None
    assert double(INFINITY)[2] == 0
    assert add_affine(INFINITY, G) == (G[0], G[1], 1)
    assert add(None, G) == G
    assert add(G, None) == G
    assert add(G, negate(G)) is None
    assert add_affine(_scaled(G, 12345), _minus(G))[2] == 0  # A + (−A) with A not in Z = 1 form
    assert negate(None) is None
    assert generator_table().accumulate(0) == INFINITY
    assert generator_table().accumulate(0, (G[0], G[1], 1)) == (G[0], G[1], 1)


def test_doubling_by_both_routes_and_in_any_representation() -> None:
    assert to_affine(double((G[0], G[1], 1))) == VECTORS[2]
    assert add(G, G) == VECTORS[2]  # the sum's own A = B case
    assert to_affine(double(_scaled(G, 987654321))) == VECTORS[2]
    assert to_affine(add_affine(_scaled(G, 3), G)) == VECTORS[2]
    assert to_affine(add_affine(_scaled(VECTORS[2], 77), G)) == VECTORS[3]
    assert add(VECTORS[2], VECTORS[3]) == VECTORS[5]
    assert to_affine(double(double((G[0], G[1], 1)))) == VECTORS[4]


def test_compress_gives_the_sec1_prefix_of_the_y_parity() -> None:
    assert compress(G) == bytes.fromhex("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
    assert compress(_minus(G))[0] == 3


def test_a_table_refuses_a_point_off_the_curve_and_scalars_out_of_range() -> None:
    with pytest.raises(NotOnCurveError):
        FixedBase((G[0], G[1] + 1))
    with pytest.raises(NotOnCurveError):
        FixedBase((G[0] + P, G[1]))
    for k in (-1, N, 2**256):
        with pytest.raises(ValueError, match="out of range"):
            generator_table().accumulate(k)


# Scalars whose signed-digit recoding takes every path: digits of exactly 2^(w-1) (kept positive), above it
# (negated, with a carry), carries that ripple through windows of all ones, and the top window's carry.
EDGES = [1, 2, 31, 32, 33, 63, 64, 65, 2**255, 2**256 - 2**250, N - 2, N - 1,
         sum(32 << (6 * i) for i in range(42)), sum(63 << (6 * i) for i in range(42)), (N - 1) // 2 + 1]


@pytest.mark.parametrize("window", [2, 4, 5, 6, 8])
@pytest.mark.parametrize("k", EDGES, ids=lambda k: hex(k)[:12])
def test_tables_agree_with_double_and_add_on_recoding_edges(window: int, k: int) -> None:
    q = VECTORS[BIG]
    assert to_affine(FixedBase(q, window).accumulate(k % N)) == multiply(k, q)


@settings(max_examples=60, deadline=None)
@given(secret=SCALARS, a=SCALARS, b=SCALARS)
def test_a_linear_combination_matches_libsecp256k1(secret: int, a: int, b: int) -> None:
    """a·G + b·Q through the two tables, against coincurve's own multiplication and point sum."""
    q = coincurve.PrivateKey(secret.to_bytes(32, "big")).public_key
    ours = to_affine(FixedBase(q.point()).accumulate(b, generator_table().accumulate(a)))
    a_g = coincurve.PrivateKey(a.to_bytes(32, "big")).public_key
    b_q = q.multiply(b.to_bytes(32, "big"))
    if a_g.point() == negate(b_q.point()):
        assert ours is None
    else:
        assert ours == coincurve.PublicKey.combine_keys([a_g, b_q]).point()


@settings(max_examples=40, deadline=None)
@given(k=SCALARS)
def test_the_generator_table_gives_the_public_key_libsecp256k1_gives(k: int) -> None:
    point = to_affine(generator_table().accumulate(k))
    assert point is not None
    assert compress(point) == coincurve.PrivateKey(k.to_bytes(32, "big")).public_key.format(compressed=True)


def _sqrt(c: int) -> int | None:
    y = pow(c, (P + 1) // 4, P)  # p ≡ 3 (mod 4)
    return y if y * y % P == c % P else None


def _signature_with_high_r() -> tuple[int, int, int, secp256k1.Affine, secp256k1.Affine]:
    """(e, r, s, Q, R) for which the nonce point R has x >= n (about one signature in 2^128: constructed, not
    found): R is the first point with x = n + t, and Q is solved from the verification equation,
    Q = r⁻¹(s·R − e·G), with r = x − n."""
    x = next(n_plus for n_plus in range(N + 1, P) if _sqrt(n_plus**3 + 7) is not None)
    y = _sqrt(x**3 + 7)
    assert y is not None
    big_r = (x, y)
    e, s, r = 0x1234567890ABCDEF << 128, 0x42 << 200, x - N
    s_r, e_g = multiply(s, big_r), multiply(e, G)
    assert s_r is not None
    assert e_g is not None
    difference = add(s_r, _minus(e_g))
    assert difference is not None
    q = multiply(pow(r, -1, N), difference)
    assert q is not None
    return e, r, s, q, big_r


def test_the_recovery_id_says_when_r_was_reduced() -> None:
    e, r, s, q, big_r = _signature_with_high_r()
    recid = recovery_id(e, r, s, FixedBase(q))
    assert recid == 2 | (big_r[1] & 1)
    # libsecp256k1 recovers the same Q from that id: it adds n to r only when bit 1 says so.
    compact = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([recid])
    recovered = coincurve.PublicKey.from_signature_and_message(compact, e.to_bytes(32, "big"), hasher=None)
    assert recovered.point() == q
    # The other s (n − s) of the same signature: −R, so the parity bit flips and bit 1 stays.
    assert recovery_id(e, r, N - s, FixedBase(q)) == recid ^ 1


def test_a_signature_that_does_not_verify_is_refused() -> None:
    q = FixedBase(VECTORS[BIG])
    key = coincurve.PrivateKey(BIG.to_bytes(32, "big"))
    digest = bytes(range(32))
    compact = key.sign_recoverable(digest, hasher=None)
    r, s, e = int.from_bytes(compact[:32], "big"), int.from_bytes(compact[32:64], "big"), int.from_bytes(digest, "big")
    assert recovery_id(e, r, s, q) == compact[64]
    for bad in ((e ^ 1, r, s), (e, r, s ^ 1), (e, r ^ 1, s), (e, r, N - 1)):
        with pytest.raises(SignatureCheckError, match="does not verify"):
            recovery_id(*bad, q)
    with pytest.raises(SignatureCheckError, match="does not verify"):
        recovery_id(e, r, s, FixedBase(VECTORS[3]))  # someone else's public key
    for r_bad, s_bad in ((0, s), (r, 0), (N, s), (r, N)):
        with pytest.raises(SignatureCheckError, match="in \\[1, n-1\\]"):
            recovery_id(e, r_bad, s_bad, q)
