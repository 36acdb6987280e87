from __future__ import annotations

import pytest

from netstack.ratelimit import TokenBucket, per_second


def test_burst_then_rate() -> None:
    bucket = TokenBucket(rate=10.0, burst=3.0)
    assert [bucket.allow(0.0) for _ in range(4)] == [True, True, True, False]
    assert not bucket.allow(0.05)  # half a token
    assert bucket.allow(0.1)
    assert not bucket.allow(0.1)


def test_refill_is_capped_at_burst() -> None:
    bucket = TokenBucket(rate=10.0, burst=2.0)
    bucket.allow(0.0)
    assert [bucket.allow(100.0) for _ in range(3)] == [True, True, False]


def test_time_going_backwards_adds_nothing() -> None:
    bucket = TokenBucket(rate=1.0, burst=1.0)
    assert bucket.allow(10.0)
    assert not bucket.allow(5.0)
    assert not bucket.allow(10.5)
    assert bucket.allow(11.0)


def test_invalid_parameters() -> None:
    with pytest.raises(ValueError, match="token bucket"):
        TokenBucket(0.0, 1.0)


def test_per_second_allows_one_second_of_burst_and_refills_at_its_rate() -> None:
    bucket = per_second(2.0)
    assert [bucket.allow(0.0) for _ in range(3)] == [True, True, False]
    assert bucket.allow(0.5)
    assert not bucket.allow(0.5)


def test_per_second_below_one_still_allows_one_event() -> None:
    bucket = per_second(0.5)
    assert [bucket.allow(0.0) for _ in range(2)] == [True, False]
    assert not bucket.allow(1.0)
    assert bucket.allow(2.0)
