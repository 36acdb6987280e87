"""The appliance's one wall clock, one monotonic clock and one source of randomness (DESIGN.md rule 1).

Why one object made at the root: every part that needs the time or random bytes gets them passed in, so
a test can run the whole appliance on a virtual clock and a seeded source, and a reader can see the whole
list of what draws randomness by following this type. The composition root (`appliance.main`) is the only
module that names `time.time`, `time.monotonic` and `os.urandom` for the service.

What it does not cover, because the libraries give no way to pass a source in: OpenSSL's own randomness
(ECDSA nonces when certificates are signed, the RSA-2048 key behind the servers' RSA leaves: deriving it
from our source in Python costs 0.2-0.7 s on the host, several seconds in the VM; the stdlib comparison
engine), the wallet key's ECDSA signing (OpenSSL: its nonce is RFC 6979's, derived from the key and the
digest, so no drawn randomness decides it; OpenSSL may still draw some to blind its own arithmetic), and the
event loop's clock, which times the asyncio deadlines and timers.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass

RandomSource = Callable[[int], bytes]


@dataclass(frozen=True)
class Sources:
    """The clocks and the random source, made once at the root and passed down (module docstring), so a test runs
    the appliance on a virtual clock and a seeded source by building a different one."""

    wall: Callable[[], float]
    """Seconds since the epoch: ledger records, pages, certificate validity, the time a chain is checked at."""
    monotonic: Callable[[], float]
    """Seconds from an arbitrary start, never going back: durations (how long a ledger sync took, the boot)."""
    random: RandomSource
    """Unpredictable bytes: keys, certificate serials, TLS, the TAP link's MAC."""

    def now(self) -> datetime.datetime:
        """The wall clock as an aware UTC datetime (what X.509 and the TLS engine take)."""
        return datetime.datetime.fromtimestamp(self.wall(), datetime.UTC)
