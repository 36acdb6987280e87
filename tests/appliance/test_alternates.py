"""The RSA leaves made after ready (appliance.alternates): who waits for them, who does not, and that the CA
key is dropped however their making ends."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import io
import json
import os
import ssl
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from appliance import alternates, pki
from appliance.alternates import start_issuing
from appliance.config import Limits
from appliance.identities import ServerIdentities
from appliance.in_thread import made_in_thread
from appliance.log import JsonLog
from outcomes.category import Category
from tests import virtual_time
from tests.appliance.memory_service import WALL, TlsClient, get, start_memory_service

LIMITS = replace(Limits(), ledger_region_bytes=128 * 1024)
NOW = datetime.datetime.fromtimestamp(WALL, datetime.UTC)
RSA_KEY = pki.new_rsa_key()  # one for the module: making keys is what these tests are not about


def _rsa_only_client() -> ssl.SSLContext:
    """A client that can verify RSA signatures only: TLS 1.2 with an ECDHE-RSA suite (an ECDSA leaf cannot
    serve it), verifying the chain to nothing in particular (the service is under test, not trust)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256")
    return context


def test_an_https_client_that_comes_before_the_rsa_leaves_waits_for_them_and_is_served_with_one(
        tmp_path: Path) -> None:
    boot, pending = pki.begin(NOW, os.urandom)

    async def scenario() -> tuple[bool, bytes, bytes, pki.IssuedPKI]:
        running = await start_memory_service(tmp_path, LIMITS, boot.issued(), settled=False)
        browser = TlsClient(running.connect("A", https=True), _rsa_only_client())
        handshake = asyncio.ensure_future(browser.handshake())
        await running.settle()
        waited = not handshake.done()  # the ClientHello is in, and the service holds it for the leaves
        settled = boot.issued().with_alternates(pending.issue(RSA_KEY))
        running.service.identities.settle(settled)
        await handshake
        page = await browser.get("/nope")
        leaf = browser.tls.getpeercert(binary_form=True)
        assert leaf is not None
        await running.service.stop()
        return waited, page, leaf, settled

    waited, page, leaf, settled = virtual_time.run(scenario())
    assert waited
    assert page.startswith(b"HTTP/1.1 404 ")
    assert leaf == settled.web.alternates[0].cert_der  # the RSA leaf, which did not exist when it connected


def test_a_handshake_whose_time_runs_out_before_the_rsa_leaves_is_refused_as_a_timeout(tmp_path: Path) -> None:
    boot, _ = pki.begin(NOW, os.urandom)

    async def scenario() -> tuple[type[BaseException] | None, list[tuple[str, Category, str]], float]:
        running = await start_memory_service(tmp_path, LIMITS, boot.issued(), settled=False)
        started = asyncio.get_running_loop().time()
        browser = TlsClient(running.connect("A", https=True))
        failure: type[BaseException] | None = None
        try:
            await browser.handshake()
        except (ssl.SSLError, OSError) as exc:
            failure = type(exc)
        await running.settle()
        await running.service.stop()
        ended = running.outcomes[0].at - started
        return failure, [(o.endpoint, o.category, o.reason) for o in running.outcomes], ended

    failure, outcomes, ended = virtual_time.run(scenario())
    assert failure is not None  # no certificate ever came: the handshake could not complete
    assert outcomes == [("https", Category.TIMEOUT, "the server's certificates were not ready in time")]
    assert ended == pytest.approx(LIMITS.handshake_timeout)


def test_a_mutual_tls_client_that_comes_before_the_rsa_leaves_waits_for_them_too(tmp_path: Path) -> None:
    """Port 10000 waits as 443 does: an RSA-only client without a certificate of its own gets as far as
    the certificate request (refused for want of a certificate), not a refusal for want of a certificate
    it could verify, nor a timeout."""
    boot, pending = pki.begin(NOW, os.urandom)

    async def scenario() -> list[tuple[str, Category]]:
        running = await start_memory_service(tmp_path, LIMITS, boot.issued(), settled=False)
        client = running.network.connect(running.service.ports.mutual, "A")
        peer = TlsClient(client, _rsa_only_client())
        handshake = asyncio.ensure_future(peer.handshake())
        await running.settle()
        assert not running.outcomes  # held, not refused
        running.service.identities.settle(boot.issued().with_alternates(pending.issue(RSA_KEY)))
        with contextlib.suppress(ssl.SSLError, OSError):
            await handshake
        await running.settle()
        await running.service.stop()
        return [(o.endpoint, o.category) for o in running.outcomes]

    assert virtual_time.run(scenario()) == [("mutual", Category.NO_CERTIFICATE)]


def test_plain_http_does_not_wait_for_the_rsa_leaves(tmp_path: Path) -> None:
    boot, _ = pki.begin(NOW, os.urandom)

    async def scenario() -> tuple[tuple[int, dict[str, str], bytes] | None, bool]:
        running = await start_memory_service(tmp_path, LIMITS, boot.issued(), settled=False)
        client = running.connect("A")
        client.send(get("/nope"))
        answer = await client.response()
        unsettled = not running.service.identities.is_settled
        await running.service.stop()
        return answer, unsettled

    answer, unsettled = virtual_time.run(scenario())
    assert unsettled
    assert answer is not None
    assert answer[0] == 404


class _GatedKey:
    """A key maker that blocks its thread until `release` (or a minute: a failed test must not hang)."""

    def __init__(self) -> None:
        self.released = threading.Event()

    def __call__(self) -> rsa.RSAPrivateKey:
        self.released.wait(timeout=60)
        return RSA_KEY

    def release(self) -> None:
        self.released.set()


async def _issued(pending: pki.PendingAlternates, identities: ServerIdentities, log: io.StringIO,
                  make_key: Callable[[], rsa.RSAPrivateKey], monotonic: Callable[[], float] = lambda: 0.0) -> None:
    """`start_issuing`'s task, run to its end (its completion callback included)."""
    await start_issuing(pending, identities, JsonLog(log), monotonic, timeout=LIMITS.rsa_leaves_timeout,
                        make_key=make_key)


def _events(log: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.getvalue().splitlines()]


def test_the_rsa_leaves_are_issued_once_their_key_exists_and_the_ca_key_is_then_dropped() -> None:
    boot, pending = pki.begin(NOW, os.urandom)
    identities = ServerIdentities(boot.issued(), settled=False)
    gated_key = _GatedKey()
    log = io.StringIO()

    async def scenario() -> tuple[bool, bool, pki.IssuedPKI]:
        task = asyncio.ensure_future(_issued(pending, identities, log, gated_key))
        await asyncio.sleep(0)
        before = (identities.is_settled, pending.spent)
        gated_key.release()
        settled = await identities.settled()
        await task
        return before == (False, False), pending.spent, settled

    waited, spent, settled = asyncio.run(scenario())
    assert waited  # nothing settled, and the CA key still there, while the key was being made
    assert spent
    assert settled is identities.current
    for role, ecdsa in ((settled.server, boot.server), (settled.web, boot.web)):
        assert role.cert_der == ecdsa.cert_der  # the ECDSA leaf unchanged and still first
        (alternate,) = role.alternates
        assert alternate.key is RSA_KEY
        assert alternate.certificate.issuer == boot.ca.certificate.subject
        assert alternate.certificate.subject == ecdsa.certificate.subject
    assert settled.client.alternates == ()
    assert [event["event"] for event in _events(log)] == ["alternates-issued"]
    with pytest.raises(pki.SpentError):
        pending.issue(RSA_KEY)


def test_a_key_that_cannot_be_made_leaves_the_ecdsa_leaves_serving_and_drops_the_ca_key() -> None:
    boot, pending = pki.begin(NOW, os.urandom)
    identities = ServerIdentities(boot.issued(), settled=False)
    log = io.StringIO()

    def failing_key() -> rsa.RSAPrivateKey:
        raise ValueError("no prime today")

    asyncio.run(_issued(pending, identities, log, failing_key))
    assert identities.is_settled
    assert identities.current == boot.issued()  # no alternates, nothing else changed
    assert pending.spent
    assert [(e["event"], e["error"]) for e in _events(log)] == [("alternates-failed", "ValueError")]


def test_a_key_the_boot_would_not_make_is_refused_and_the_ca_key_dropped_all_the_same() -> None:
    """`PendingAlternates.issue` signs for the boot's own kind of key only (RSA-2048, e = 65537)."""
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    other_exponent = rsa.generate_private_key(public_exponent=3, key_size=2048)
    for key in (small, other_exponent):
        boot, pending = pki.begin(NOW, os.urandom)
        identities = ServerIdentities(boot.issued(), settled=False)
        log = io.StringIO()
        asyncio.run(_issued(pending, identities, log, lambda key=key: key))  # type: ignore[misc]
        assert pending.spent
        assert identities.current.web.alternates == ()
        assert [(e["event"], e["error"]) for e in _events(log)] == [("alternates-failed", "ValueError")]


def test_a_key_that_takes_longer_than_its_bound_is_given_up_and_the_ca_key_dropped() -> None:
    """`Limits.rsa_leaves_timeout`, on the virtual clock: the thread never answers, the bound passes."""
    boot, pending = pki.begin(NOW, os.urandom)
    identities = ServerIdentities(boot.issued(), settled=False)
    stuck_key = _GatedKey()
    log = io.StringIO()

    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await _issued(pending, identities, log, stuck_key, loop.time)
        return loop.time() - started

    try:
        waited = virtual_time.run(scenario())
    finally:
        stuck_key.release()
    assert waited == pytest.approx(LIMITS.rsa_leaves_timeout)
    assert pending.spent
    assert identities.is_settled
    assert identities.current == boot.issued()
    assert [(e["event"], e["error"]) for e in _events(log)] == [("alternates-failed", "TimeoutError")]


def test_a_task_cancelled_before_its_first_step_still_drops_the_ca_key_and_settles() -> None:
    """Cancelled before it ever ran (an appliance stopped at once), the coroutine runs none of its own code:
    `start_issuing`'s completion callback does what its handlers would have."""
    boot, pending = pki.begin(NOW, os.urandom)
    identities = ServerIdentities(boot.issued(), settled=False)

    async def scenario() -> None:
        task = start_issuing(pending, identities, JsonLog(io.StringIO()), lambda: 0.0, timeout=60,
                             make_key=lambda: RSA_KEY)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert pending.spent
    assert identities.is_settled
    assert identities.current == boot.issued()


def test_stopping_while_the_key_is_made_drops_the_ca_key_and_releases_the_waiters() -> None:
    boot, pending = pki.begin(NOW, os.urandom)
    identities = ServerIdentities(boot.issued(), settled=False)
    gated_key = _GatedKey()

    async def scenario() -> pki.IssuedPKI:
        task = start_issuing(pending, identities, JsonLog(io.StringIO()), lambda: 0.0, timeout=60, make_key=gated_key)
        waiter = asyncio.ensure_future(identities.settled())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        gated_key.release()  # the thread ends on its own; its key goes nowhere
        return await waiter

    assert asyncio.run(scenario()) == boot.issued()
    assert pending.spent


def test_a_pending_issuer_issues_once_and_not_after_being_discarded() -> None:
    _, pending = pki.begin(NOW, os.urandom)
    pending.issue(RSA_KEY)
    with pytest.raises(pki.SpentError):
        pending.issue(RSA_KEY)
    _, discarded = pki.begin(NOW, os.urandom)
    discarded.discard()
    assert discarded.spent
    with pytest.raises(pki.SpentError):
        discarded.issue(RSA_KEY)


def test_identities_settle_once() -> None:
    issued = pki.begin(NOW, os.urandom)[0].issued()
    identities = ServerIdentities(issued, settled=False)
    identities.settle(issued)
    with pytest.raises(RuntimeError, match="settled already"):
        identities.settle(issued)
    assert asyncio.run(identities.settled()) is issued


def test_the_key_is_made_in_a_thread_of_its_own_at_the_lowered_priority() -> None:
    base = os.getpriority(os.PRIO_PROCESS, 0)
    if base > alternates.KEYGEN_NICE:
        pytest.skip("this process already runs below the key thread's priority")
    main = threading.get_native_id()

    def observe() -> tuple[int, int]:
        native = threading.get_native_id()
        return native, os.getpriority(os.PRIO_PROCESS, native)

    native, priority = asyncio.run(made_in_thread(observe, alternates.KEYGEN_NICE, name="test"))
    assert native != main
    assert priority == alternates.KEYGEN_NICE
    assert os.getpriority(os.PRIO_PROCESS, 0) == base  # the event loop's thread kept its own
