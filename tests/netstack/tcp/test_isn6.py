"""ISNs and SYN cookies over 16-byte addresses: a cookie is good for the one family, address and ports it was
minted for."""

from __future__ import annotations

import hashlib
import struct

import pytest

from netstack.tcp.isn import COOKIE_PERIOD, IsnGenerator

L6 = bytes.fromhex("20010db8000000010000000000000001")
R6 = bytes.fromhex("20010db8000000020000000000000002")
L4 = bytes([10, 0, 0, 1])
R4 = bytes([10, 0, 0, 2])
MAPPED_PREFIX = bytes(10) + b"\xff\xff"


def test_isn_over_ipv6_is_keyed_on_all_sixteen_bytes() -> None:
    gen = IsnGenerator(b"s" * 32)
    base = gen.isn(100.0, L6, 80, R6, 40000)
    assert (gen.isn(101.0, L6, 80, R6, 40000) - base) % 2**32 == 250_000  # the clock, as over IPv4
    # Every byte of either address counts (a 4s struct would have cut them to their first four).
    for i in range(16):
        other = bytearray(R6)
        other[i] ^= 1
        assert gen.isn(100.0, L6, 80, bytes(other), 40000) != base
        other = bytearray(L6)
        other[i] ^= 1
        assert gen.isn(100.0, bytes(other), 80, R6, 40000) != base


def test_the_ipv6_hash_input_is_the_sixteen_byte_tuple() -> None:
    secret = bytes(range(32))
    digest = hashlib.blake2s(struct.pack("!16sH16sH", L6, 80, R6, 40000), key=secret, digest_size=4).digest()
    assert IsnGenerator(secret).isn(0.0, L6, 80, R6, 40000) == int.from_bytes(digest, "big")


def test_cookie_over_ipv6_checks_out_only_for_its_tuple() -> None:
    gen = IsnGenerator(b"c" * 32)
    now = 1000.0
    cookie, mss = gen.make_cookie(now, L6, 80, R6, 40000, 555, 1440)
    assert mss == 1440
    assert gen.check_cookie(now, L6, 80, R6, 40000, 555, cookie) == 1440
    assert gen.check_cookie(now + COOKIE_PERIOD, L6, 80, R6, 40000, 555, cookie) == 1440
    assert gen.check_cookie(now + 3 * COOKIE_PERIOD, L6, 80, R6, 40000, 555, cookie) is None
    same_64 = R6[:8] + bytes.fromhex("00000000000000ff")                   # another host of the peer's /64
    assert gen.check_cookie(now, L6, 80, same_64, 40000, 555, cookie) is None
    assert gen.check_cookie(now, L6, 80, R6, 40001, 555, cookie) is None
    assert gen.check_cookie(now, L6, 80, R6, 40000, 556, cookie) is None


def test_a_cookie_does_not_cross_families() -> None:
    """Minted for IPv4, refused for the IPv4-mapped IPv6 form of the same addresses, and the reverse: the two
    hash inputs differ in length, so neither can stand for the other."""
    gen = IsnGenerator(b"c" * 32)
    now = 1000.0
    m_l, m_r = MAPPED_PREFIX + L4, MAPPED_PREFIX + R4
    cookie4, _ = gen.make_cookie(now, L4, 80, R4, 40000, 555, 1460)
    assert gen.check_cookie(now, L4, 80, R4, 40000, 555, cookie4) == 1460
    assert gen.check_cookie(now, m_l, 80, m_r, 40000, 555, cookie4) is None
    cookie6, _ = gen.make_cookie(now, m_l, 80, m_r, 40000, 555, 1460)
    assert cookie6 != cookie4
    assert gen.check_cookie(now, L4, 80, R4, 40000, 555, cookie6) is None
    assert gen.isn(now, L4, 80, R4, 40000) != gen.isn(now, m_l, 80, m_r, 40000)


@pytest.mark.parametrize(("local", "remote"), [(L4, R6), (L6, R4), (L4[:3], R4[:3]), (L6 + b"\x00", R6 + b"\x00")])
def test_a_mixed_or_unknown_pair_is_a_caller_bug(local: bytes, remote: bytes) -> None:
    gen = IsnGenerator(b"c" * 32)
    with pytest.raises(ValueError, match="4-tuple"):
        gen.isn(0.0, local, 80, remote, 40000)
    with pytest.raises(ValueError, match="4-tuple"):
        gen.make_cookie(0.0, local, 80, remote, 40000, 1, 1460)
    with pytest.raises(ValueError, match="4-tuple"):
        gen.check_cookie(0.0, local, 80, remote, 40000, 1, 0)
