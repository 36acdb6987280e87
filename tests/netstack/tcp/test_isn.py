from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.tcp.isn import COOKIE_MSS, COOKIE_PERIOD, IsnGenerator

L = bytes([10, 0, 0, 1])
R = bytes([10, 0, 0, 2])


def test_isn_depends_on_tuple_and_secret_and_advances_with_time() -> None:
    gen = IsnGenerator(b"s" * 32)
    base = gen.isn(100.0, L, 80, R, 40000)
    assert gen.isn(100.0, L, 80, R, 40001) != base
    assert IsnGenerator(b"t" * 32).isn(100.0, L, 80, R, 40000) != base
    # RFC 6528: M is a 4 microsecond clock
    assert (gen.isn(101.0, L, 80, R, 40000) - base) % 2**32 == 250_000


def test_short_secret_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        IsnGenerator(b"short")


@given(st.integers(0, 2**32 - 1), st.integers(1, 65535), st.floats(0, 1e6))
@settings(max_examples=200)
def test_cookie_round_trip(peer_isn: int, peer_mss: int, now: float) -> None:
    gen = IsnGenerator(b"c" * 32)
    cookie, mss = gen.make_cookie(now, L, 80, R, 40000, peer_isn, peer_mss)
    assert mss in COOKIE_MSS
    assert mss <= max(peer_mss, COOKIE_MSS[0])
    assert gen.check_cookie(now, L, 80, R, 40000, peer_isn, cookie) == mss
    assert gen.check_cookie(now + COOKIE_PERIOD, L, 80, R, 40000, peer_isn, cookie) == mss
    assert gen.check_cookie(now + 3 * COOKIE_PERIOD, L, 80, R, 40000, peer_isn, cookie) is None
    assert gen.check_cookie(now, L, 80, R, 40001, peer_isn, cookie) is None
    assert gen.check_cookie(now, L, 80, R, 40000, (peer_isn + 1) % 2**32, cookie) is None
    assert gen.check_cookie(now, L, 80, R, 40000, peer_isn, cookie ^ 1) is None


def test_the_keyed_hash_is_blake2s_of_the_four_tuple() -> None:
    """Copying a keyed state must give what keying afresh gives: pinned to hashlib's one-shot form."""
    import hashlib
    import struct

    secret = bytes(range(40))  # only the first 32 bytes are the key
    gen = IsnGenerator(secret)
    digest = hashlib.blake2s(struct.pack("!4sH4sH", L, 80, R, 40000), key=secret[:32], digest_size=4).digest()
    assert gen.isn(0.0, L, 80, R, 40000) == int.from_bytes(digest, "big")
    assert gen.isn(0.0, L, 80, R, 40000) == int.from_bytes(digest, "big")  # the template is not consumed
