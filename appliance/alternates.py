"""The server roles' RSA leaves, made after ready, and the one holder of the CA key until then.

Why after ready: the RSA-2048 key behind those leaves is the slowest step of the boot PKI, 0.13-1.42 s in the
VM (median 0.45 s over 16 boots; the spread is OpenSSL's prime search), where every other certificate takes
milliseconds (`appliance.pki`). Made before the network, it was a sixth of the time to the first page and
most of its variance. Made after, it runs in a thread (OpenSSL releases the GIL) at a lower priority
(`KEYGEN_NICE`), on the CPU the event loop leaves idle while the first clients arrive.

What that costs, and what it does not:
- Every client is still offered every certificate. A TLS server connection (443, 10000) that arrives before
  the RSA leaves exist waits for them (`appliance.identities.ServerIdentities.settled`), within its
  handshake's time; plain HTTP, and the connect-back and reverse roles (whose client leaf is ECDSA only),
  never wait.
- The CA key lives past ready, until the two leaves are signed, in a `PendingAlternates`, which can sign
  those two leaves (for the names fixed at boot, and an RSA-2048 key only) and nothing else, then drops the
  key: rule 5's "dropped once the leaves are issued", with the last two leaves issued later. Nothing but
  the `PendingAlternates` holds the key (tests/appliance/test_key_reach.py walks the running appliance in
  that window); the task here holds the `PendingAlternates`, and the appliance holds the task to cancel it.
- However the task ends (issued, failed, `Limits.rsa_leaves_timeout` passed, cancelled, even before its
  first step), the CA key is dropped and the identities settled (`start_issuing`), so that no handshake
  waits for leaves that will not come. Without RSA leaves the ECDSA ones serve alone ("alternates-failed").
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import rsa

from appliance.identities import ServerIdentities
from appliance.in_thread import made_in_thread
from appliance.log import JsonLog
from appliance.pki import PendingAlternates, new_rsa_key

KEYGEN_NICE = 10
"""The key-making thread's nice value (Linux per-thread). Its CFS weight is about a tenth of the event loop's
(110 against 1024): while connections keep the loop busy it gets about a tenth of the CPU, while the loop
waits it gets all of it. A lower priority could starve it under load, holding the CA key and the waiting
handshakes; none would make it compete equally with the first requests."""


def start_issuing(
    pending: PendingAlternates,
    identities: ServerIdentities,
    log: JsonLog,
    monotonic: Callable[[], float],
    *,
    timeout: float,
    make_key: Callable[[], rsa.RSAPrivateKey] = new_rsa_key,
) -> asyncio.Task[None]:
    """The task that makes the RSA key in a thread (within `timeout` seconds), has `pending` sign the two RSA
    leaves (which drops the CA key) and settles `identities` with them, or logs why it could not. Its
    completion, whatever it was, drops the CA key and settles `identities` without them if it has not: one
    place for every way out, since a task cancelled before its first step runs none of its own code."""

    async def issue() -> None:
        started = monotonic()
        try:
            async with asyncio.timeout(timeout):
                key = await made_in_thread(make_key, KEYGEN_NICE, name="pinata-rsa-key")
            alternates = pending.issue(key)
        except Exception as exc:  # noqa: BLE001 - whatever failed, the ECDSA leaves go on serving
            log.event("alternates-failed", error=type(exc).__name__, seconds=round(monotonic() - started, 4))
            return
        identities.settle(identities.current.with_alternates(alternates))
        log.event("alternates-issued", seconds=round(monotonic() - started, 4))

    def ended(_: asyncio.Task[None]) -> None:
        pending.discard()
        identities.give_up()

    task = asyncio.get_running_loop().create_task(issue())
    task.add_done_callback(ended)
    return task
