"""The server roles' RSA leaves, made after ready, and the identities the endpoints present meanwhile.

Why after ready: the RSA-2048 key behind those leaves is the slowest step of the boot PKI, 0.13-1.42 s in the
VM (median 0.45 s over 16 boots; the spread is OpenSSL's prime search), where every other certificate takes
milliseconds (`appliance.pki`). Made before the network, it was a sixth of the time to the first page and
most of its variance. Made after, it runs in a thread (OpenSSL releases the GIL) at a lower priority
(`KEYGEN_NICE`), on the CPU the event loop leaves idle while the first clients arrive.

What that costs, and what it does not:
- Every client is still offered every certificate. A TLS server connection that arrives before the RSA
  leaves exist waits for them (`ServerIdentities.settled`), within its handshake's time; plain HTTP, the
  connect-back and reverse roles (whose client leaf is ECDSA only) never wait.
- The CA key lives past ready, until the two leaves are signed, in the `PendingAlternates` that only this
  module's task holds (nothing the endpoints reach, tests/appliance/test_key_reach.py). It can sign those
  two leaves and nothing else, then drops the key: rule 5's "dropped once the leaves are issued", with the
  last two leaves issued later. The wallet key, which the CA key exists to guard, is in the same process
  for its whole life.
- If the RSA key cannot be made, the ECDSA leaves serve alone and the log says so ("alternates-failed").
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from typing import TypeVar

from cryptography.hazmat.primitives.asymmetric import rsa

from appliance.log import JsonLog
from appliance.pki import IssuedPKI, PendingAlternates, new_rsa_key

KEYGEN_NICE = 10
"""The key-making thread's nice value (Linux per-thread). Its CFS weight is about a tenth of the event loop's
(110 against 1024): while connections keep the loop busy it gets about a tenth of the CPU, while the loop
waits it gets all of it. A lower priority could starve it under load, holding the CA key and the waiting
handshakes; none would make it compete equally with the first requests."""

T = TypeVar("T")


class ServerIdentities:
    """The boot PKI as the endpoints see it: `current` at once (the ECDSA leaves and the CA certificate),
    `settled()` once the server roles have their RSA leaves too (or it is known they never will)."""

    def __init__(self, pki: IssuedPKI, *, settled: bool) -> None:
        self._pki = pki
        self._settled = asyncio.Event()
        if settled:
            self._settled.set()

    @property
    def current(self) -> IssuedPKI:
        return self._pki

    @property
    def is_settled(self) -> bool:
        return self._settled.is_set()

    def settle(self, pki: IssuedPKI) -> None:
        """The final identities; once only (a second settling would change certificates under waiters)."""
        if self._settled.is_set():
            raise RuntimeError("the server identities are settled already")
        self._pki = pki
        self._settled.set()

    async def settled(self) -> IssuedPKI:
        """The final identities, once they exist; the caller bounds the wait."""
        await self._settled.wait()
        return self._pki


async def issue_alternates(
    pending: PendingAlternates,
    identities: ServerIdentities,
    log: JsonLog,
    monotonic: Callable[[], float],
    make_key: Callable[[], rsa.RSAPrivateKey] = new_rsa_key,
) -> None:
    """Make the RSA key in a thread, have `pending` sign the two RSA leaves (which drops the CA key), and
    settle `identities` with them. However this ends (issued, failed, cancelled), the CA key is dropped and
    `identities` settled, so that no handshake waits for leaves that will not come."""
    started = monotonic()
    try:
        key = await made_in_thread(make_key, KEYGEN_NICE)
        alternates = pending.issue(key)
    except asyncio.CancelledError:
        pending.discard()
        identities.settle(identities.current)
        raise
    except Exception as exc:  # noqa: BLE001 - whatever failed, the ECDSA leaves go on serving
        pending.discard()
        identities.settle(identities.current)
        log.event("alternates-failed", error=type(exc).__name__)
        return
    identities.settle(identities.current.with_alternates(alternates))
    log.event("alternates-issued", seconds=round(monotonic() - started, 4))


async def made_in_thread(make: Callable[[], T], nice: int) -> T:
    """`make()` run in a thread of its own at `nice`, awaited on the event loop. A thread of its own, not the
    loop's executor: the lowered priority stays with this one job, and the thread ends with it."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def deliver(settle: Callable[[], object]) -> None:
        def unless_cancelled() -> None:
            if not done.cancelled():
                settle()

        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody is waiting any more
            loop.call_soon_threadsafe(unless_cancelled)

    def work() -> None:
        with contextlib.suppress(OSError):  # a priority that cannot be lowered only costs the first clients time
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
        try:
            result = make()
        except Exception as exc:  # noqa: BLE001 - handed to the awaiting task, which decides
            failure = exc  # (`exc` itself is unbound when the except block ends)
            deliver(lambda: done.set_exception(failure))
        else:
            deliver(lambda: done.set_result(result))

    threading.Thread(target=work, name="pinata-rsa-key", daemon=True).start()
    return await done
