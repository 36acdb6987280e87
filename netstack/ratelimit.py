"""A token bucket with time passed in, so rate limits are testable with a virtual clock: ICMP's here, and the
appliance's (signing for /proof, console lines) through `per_second`."""

from __future__ import annotations


class TokenBucket:
    """Allows `burst` events at once and `rate` per second on average (RFC 4443 2.4(f) style limiting)."""

    __slots__ = ("_burst", "_last", "_rate", "_tokens")

    def __init__(self, rate: float, burst: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least one")
        self._rate = rate
        self._burst = burst
        self._tokens = burst
        self._last: float | None = None

    def allow(self, now: float) -> bool:
        """Take one token if there is one; time going backwards adds nothing."""
        if self._last is not None and now > self._last:
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        if self._last is None or now > self._last:
            self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


def per_second(rate: float) -> TokenBucket:
    """`rate` events per second, with a burst of one second's worth (at least one)."""
    return TokenBucket(rate, max(1.0, rate))
