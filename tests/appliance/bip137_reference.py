"""An independent BIP-137 verifier for the tests, written from the specifications (SEC 1 §4.1.6 public key
recovery, BIP-137 header bytes, BIP-173 bech32, base58check) with plain integers: it shares no code with
`appliance.bitcoin` or coincurve, so a bug there cannot hide itself here.
"""

from __future__ import annotations

import base64
import hashlib
import struct

P = 2**256 - 2**32 - 977
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
G = (
    0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
    0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8,
)
Point = tuple[int, int] | None
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _add(a: Point, b: Point) -> Point:
    if a is None:
        return b
    if b is None:
        return a
    if a[0] == b[0] and (a[1] + b[1]) % P == 0:
        return None
    lam = 3 * a[0] * a[0] * pow(2 * a[1], -1, P) % P if a == b else (b[1] - a[1]) * pow(b[0] - a[0], -1, P) % P
    x = (lam * lam - a[0] - b[0]) % P
    return x, (lam * (a[0] - x) - a[1]) % P


def _mul(k: int, point: Point) -> Point:
    result: Point = None
    while k:
        if k & 1:
            result = _add(result, point)
        point = _add(point, point)
        k >>= 1
    return result


def _hash160(data: bytes) -> bytes:
    return hashlib.new("ripemd160", hashlib.sha256(data).digest()).digest()


def compact_size(n: int) -> bytes:
    """Bitcoin's CompactSize length prefix (serialize.h WriteCompactSize): one byte below 253, else a marker
    byte (253, 254, 255) and the length as a little-endian uint16, uint32 or uint64."""
    if n < 253:
        return struct.pack("<B", n)
    if n < 1 << 16:
        return struct.pack("<BH", 253, n)
    if n < 1 << 32:
        return struct.pack("<BI", 254, n)
    return struct.pack("<BQ", 255, n)


def _message_hash(message: bytes) -> int:
    data = compact_size(len(b"Bitcoin Signed Message:\n")) + b"Bitcoin Signed Message:\n"
    data += compact_size(len(message)) + message
    return int.from_bytes(hashlib.sha256(hashlib.sha256(data).digest()).digest(), "big")


def _recover(z: int, r: int, s: int, recid: int) -> Point:
    x = r + (recid >> 1) * N
    if x >= P:
        return None
    y = pow((x * x * x + 7) % P, (P + 1) // 4, P)
    if (y * y - (x * x * x + 7)) % P:
        return None
    if y & 1 != recid & 1:
        y = P - y
    r_inv = pow(r, -1, N)
    return _add(_mul(s * r_inv % N, (x, y)), _mul((-z * r_inv) % N, G))


def _verify_ecdsa(z: int, r: int, s: int, q: Point) -> bool:
    if not (0 < r < N and 0 < s < N) or q is None:
        return False
    w = pow(s, -1, N)
    point = _add(_mul(z * w % N, G), _mul(r * w % N, q))
    return point is not None and point[0] % N == r


def _compress(q: tuple[int, int]) -> bytes:
    return bytes([2 + (q[1] & 1)]) + q[0].to_bytes(32, "big")


def _base58check_payload(address: str) -> bytes:
    number = 0
    for char in address:
        number = number * 58 + B58.index(char)
    raw = number.to_bytes(25, "big")
    assert hashlib.sha256(hashlib.sha256(raw[:-4]).digest()).digest()[:4] == raw[-4:], "address checksum"
    return raw[:-4]


def _bech32_program(address: str) -> bytes:
    hrp, _, data_part = address.rpartition("1")
    values = [BECH32.index(c) for c in data_part]
    chk = 1
    for v in [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp] + values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i, g in enumerate((0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)):
            chk ^= g if (top >> i) & 1 else 0
    assert chk == 1, "bech32 checksum"
    assert values[0] == 0, "witness version 0"
    acc = bits = 0
    out = bytearray()
    for v in values[1:-6]:
        acc = (acc << 5) | v
        bits += 5
        if bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    return bytes(out)


def verify_message(address: str, message: str, signature_b64: str) -> bool:
    """True when `signature_b64` is a BIP-137 signature of `message` by the key behind `address`."""
    sig = base64.b64decode(signature_b64, validate=True)
    if len(sig) != 65:
        return False
    header, r, s = sig[0], int.from_bytes(sig[1:33], "big"), int.from_bytes(sig[33:], "big")
    z = _message_hash(message.encode("utf-8"))
    if 31 <= header <= 34:
        kind, recid = "p2pkh", header - 31
    elif 39 <= header <= 42:
        kind, recid = "p2wpkh", header - 39
    else:
        return False
    q = _recover(z, r, s, recid)
    if q is None or not _verify_ecdsa(z, r, s, q):
        return False
    key_hash = _hash160(_compress(q))
    if kind == "p2pkh":
        return not address.startswith("bc1") and _base58check_payload(address) == b"\x00" + key_hash
    return address.startswith("bc1") and _bech32_program(address) == key_hash
