"""secp256k1 point arithmetic on PUBLIC values only, for the BIP-137 recovery id (`appliance.wallet_key`).

Why it exists: the wallet key signs with `cryptography` (OpenSSL), which returns (r, s) but not the parity
of the nonce point R that a recoverable signature carries. That parity is recomputed here from public values
alone, R' = (e/s)·G + (r/s)·Q, which is also ECDSA verification of our own signature. Nothing secret ever
enters this module (no private key, no nonce), so NOTHING HERE IS CONSTANT TIME: timing reveals only
what the signature and the public key already show. Never pass it a secret.

The curve is y² = x³ + 7 over F_p (a = 0), with a prime group order n and cofactor 1, so every point other
than the point at infinity generates the group. Points are affine `(x, y)` tuples at the interface (None
is the point at infinity) and Jacobian `(X, Y, Z)` inside (x = X/Z², y = Y/Z³; Z = 0 is infinity), so that
a sum costs no field inversion until the end.

Speed: a `FixedBase` precomputes, once per base point, the multiples j·2^(w·i)·P for signed w-bit digits,
so a scalar multiple is about 256/w mixed additions and no doublings. G's table is shared by the process;
the wallet key builds one for its own public key Q (which never changes) at its first signature, not at
boot. Each proof then costs two table walks and one inversion (about 0.35 ms on the host; the OpenSSL
signature beside it about 0.45 ms).
"""

from __future__ import annotations

from functools import cache

P = 2**256 - 2**32 - 977
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
B = 7
G = (
    0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
    0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8,
)
WINDOW_BITS = 6
"""Digit width of the fixed-base tables: 2^(w-1) points per window, 256/w + 1 windows. 6 bits keeps a table
near 1,400 points (a few hundred kB) and a multiple at 43 additions; see bench/appliance.py for the cost."""

Affine = tuple[int, int]
Jacobian = tuple[int, int, int]
INFINITY: Jacobian = (1, 1, 0)


class NotOnCurveError(ValueError):
    """A point that does not satisfy y² = x³ + 7 (mod p), or a coordinate outside [0, p)."""


def is_on_curve(point: Affine) -> bool:
    x, y = point
    return 0 <= x < P and 0 <= y < P and (y * y - x * x * x - B) % P == 0


def double(a: Jacobian) -> Jacobian:
    """2·A (a = 0 doubling: M = 3X², S = 4XY², X' = M² − 2S, Y' = M(S − X') − 8Y⁴, Z' = 2YZ)."""
    x, y, z = a
    if z == 0 or y == 0:  # infinity, or a point of order 2 (secp256k1 has none: y = 0 is not on the curve)
        return INFINITY
    yy = y * y % P
    s = 4 * x * yy % P
    m = 3 * x * x % P
    x3 = (m * m - 2 * s) % P
    return x3, (m * (s - x3) - 8 * yy * yy) % P, 2 * y * z % P


def add_affine(a: Jacobian, b: Affine) -> Jacobian:
    """A + B with B affine (the "mixed" sum, 8 multiplications and 3 squarings), every case included:
    A at infinity, A = B (a doubling) and A = −B (infinity)."""
    x1, y1, z1 = a
    x2, y2 = b
    if z1 == 0:
        return x2, y2, 1
    zz = z1 * z1 % P
    h = (x2 * zz - x1) % P
    r = (y2 * zz * z1 - y1) % P
    if h == 0:
        return double(a) if r == 0 else INFINITY
    hh = h * h % P
    hhh = h * hh % P
    v = x1 * hh % P
    x3 = (r * r - hhh - 2 * v) % P
    return x3, (r * (v - x3) - y1 * hhh) % P, z1 * h % P


def to_affine(a: Jacobian) -> Affine | None:
    x, y, z = a
    if z == 0:
        return None
    zi = pow(z, -1, P)
    zi2 = zi * zi % P
    return x * zi2 % P, y * zi2 * zi % P


def compress(point: Affine) -> bytes:
    """SEC 1 compressed encoding: 02 or 03 (the parity of y), then x in 32 bytes."""
    return bytes([2 | point[1] & 1]) + point[0].to_bytes(32, "big")


def _batch_affine(points: list[Jacobian]) -> list[Affine]:
    """Many Jacobian points to affine with one inversion (Montgomery's trick); none may be at infinity."""
    prefix = [1]
    for _, _, z in points:
        prefix.append(prefix[-1] * z % P)
    inverse = pow(prefix[-1], -1, P)
    out: list[Affine] = [(0, 0)] * len(points)
    for index in range(len(points) - 1, -1, -1):
        x, y, z = points[index]
        zi = inverse * prefix[index] % P
        inverse = inverse * z % P
        zi2 = zi * zi % P
        out[index] = (x * zi2 % P, y * zi2 * zi % P)
    return out


class FixedBase:
    """k·P for one fixed P, from a table of the multiples d·2^(w·i)·P, d = 1 .. 2^(w-1), per window i.

    A scalar is recoded into signed digits in [−2^(w−1), 2^(w−1)], so each window needs only the positive
    half of its multiples (−Q is Q with y negated), and k·P is the sum of one table entry per nonzero
    digit: no doublings at run time. Built once; immutable after."""

    __slots__ = ("_rows", "_window")

    def __init__(self, point: Affine, window: int = WINDOW_BITS) -> None:
        if not is_on_curve(point):
            raise NotOnCurveError("a fixed base must be a point of secp256k1")
        self._window = window
        rows: list[tuple[Affine, ...]] = []
        base = point
        for _ in range(256 // window + 1):  # enough windows for any k < n plus the recoding's final carry
            multiples = [(base[0], base[1], 1)]
            for _ in range((1 << (window - 1)) - 1):
                multiples.append(add_affine(multiples[-1], base))
            multiples.append(double(multiples[-1]))  # 2^w·base: the next window's base
            *row, base = _batch_affine(multiples)
            rows.append(tuple(row))
        self._rows = tuple(rows)

    def accumulate(self, k: int, acc: Jacobian = INFINITY) -> Jacobian:
        """acc + k·P, for 0 <= k < n (reduce first: the table covers scalars below 2^256 only)."""
        if not 0 <= k < N:
            raise ValueError("scalar out of range: reduce it mod n first")
        width, half, mask = self._window, 1 << (self._window - 1), (1 << self._window) - 1
        for row in self._rows:
            if not k:
                break
            digit = k & mask
            k >>= width
            if digit > half:
                digit -= 1 << width
                k += 1
                x, y = row[-digit - 1]
                acc = add_affine(acc, (x, P - y))
            elif digit:
                acc = add_affine(acc, row[digit - 1])
        return acc


@cache
def generator_table() -> FixedBase:
    """G's table, built at first use and shared by every vault of the process (G is a constant)."""
    return FixedBase(G)


class SignatureCheckError(RuntimeError):
    """A signature that does not verify against the public key it was made with: a fault in signing (or a
    corrupted value on its way here). Raised instead of returning a recovery id, so no wrong proof leaves."""


def recovery_id(e: int, r: int, s: int, public: FixedBase) -> int:
    """The BIP-137/libsecp256k1 recovery id of the signature (r, s) over digest `e` by the key whose public
    point `public` tabulates: which of the up to four points with x ≡ r (mod n) was the nonce point R.

    R' = (e/s)·G + (r/s)·Q is recomputed from public values (ECDSA verification); it must have x ≡ r (mod n)
    or SignatureCheckError is raised. Then bit 0 is the parity of R'.y and bit 1 says R'.x ≥ n (x was r + n,
    which happens with probability about 2^-128). Pass the s that is published: for a low-s normalised
    signature (s replaced by n − s) R' is −R, whose y has the other parity, and that is the id wanted."""
    if not (0 < r < N and 0 < s < N):
        raise SignatureCheckError("r and s must be in [1, n-1]")
    w = pow(s, -1, N)
    acc = generator_table().accumulate(e % N * w % N)
    point = to_affine(public.accumulate(r * w % N, acc))
    if point is None or point[0] % N != r:
        raise SignatureCheckError("the signature does not verify against the wallet's public key")
    return (point[1] & 1) | (2 if point[0] >= N else 0)
