from __future__ import annotations

import asyncio
import contextlib
import datetime
import io
import json
import os
import ssl
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from appliance import pki
from appliance.admission import Gate, Slot
from appliance.config import Limits, Ports
from appliance.counted_lines import FLUSH_TRIES
from appliance.disk import Disk
from appliance.ledger import Ledger, LedgerArea
from appliance.log import JsonLog
from appliance.net import KernelNetwork
from appliance.service import Appliance
from appliance.sources import Sources
from appliance.stats import Stats
from outcomes.category import Category
from tests import virtual_time
from tests.appliance.memory_service import WALL, MemoryService, TlsClient, start_memory_service


def _no_random(n: int) -> bytes:
    raise AssertionError("recording an outcome draws no randomness")


def _admit(gate: Gate, source: str) -> Slot | str:
    return gate.admit(source, 0.0, lambda: None)


def test_gate_limits_per_source_and_overall() -> None:
    gate = Gate(replace(Limits(), max_connections=3, max_connections_per_source=2))
    first = _admit(gate, "a")
    assert isinstance(first, Slot)
    assert isinstance(_admit(gate, "a"), Slot)
    assert "one source" in str(_admit(gate, "a"))
    assert isinstance(_admit(gate, "b"), Slot)
    assert "concurrent connections" in str(_admit(gate, "c"))  # full, and nobody idle to displace
    gate.release(first)
    assert isinstance(_admit(gate, "c"), Slot)
    assert gate.total == 3


def test_gate_forgets_sources_that_left() -> None:
    gate = Gate(Limits())
    for i in range(1000):
        slot = _admit(gate, f"10.0.{i // 250}.{i % 250}")
        assert isinstance(slot, Slot)
        gate.release(slot)
    assert gate.total == 0
    assert not gate._per_source  # no per-source entry outlives its last connection


def test_a_full_gate_displaces_the_oldest_idle_slot_of_the_source_holding_the_most() -> None:
    gate = Gate(replace(Limits(), max_connections=6, max_connections_per_source=3))
    withdrawn: list[str] = []
    slots = {}
    for name in ("a1", "b1", "a2", "a3", "b2", "d1"):
        slot = gate.admit(name[0], 0.0, lambda name=name: withdrawn.append(name))  # type: ignore[misc]
        assert isinstance(slot, Slot)
        slots[name] = slot
    for name in ("b1", "a2", "a3", "d1"):  # a1 and b2 are busy
        slots[name].idle = True
    newcomer = gate.admit("c", 0.0, lambda: None)
    assert isinstance(newcomer, Slot)
    assert withdrawn == ["a2"]  # a holds the most (3); a1 is busy, so a2 is its oldest idle one
    assert slots["a2"].displaced
    assert (gate.total, gate.displaced) == (6, 1)
    gate.release(slots["a2"])  # its handler ends later: the slot is not freed twice
    assert gate.total == 6
    assert "to displace" in str(gate.admit("c", 0.0, lambda: None))  # c holds 1: nobody holds 3 or more
    assert isinstance(gate.admit("e", 0.0, lambda: None), Slot)  # a and b hold 2 each: b1 is the older idle
    assert withdrawn == ["a2", "b1"]


def test_a_full_gate_only_displaces_for_a_source_holding_at_least_two_fewer() -> None:
    gate = Gate(replace(Limits(), max_connections=4, max_connections_per_source=3))
    for source in ("a", "a", "b", "b"):
        slot = gate.admit(source, 0.0, lambda: None)
        assert isinstance(slot, Slot)
        slot.idle = True
    # b would go from 2 to 3 and a from 2 to 1: no fairer than before, and the next newcomer from a would
    # take it back. Refused, as when nobody is idle.
    assert "to displace" in str(gate.admit("b", 0.0, lambda: None))
    assert isinstance(gate.admit("c", 0.0, lambda: None), Slot)


def _unanswered(gate: Gate, source: str, accepted: float, withdrawn: list[str] | None = None) -> Slot:
    """A slot as a handler holds it from accept until it starts answering (TLS handshake, first request)."""
    slot = gate.admit(source, accepted, lambda: withdrawn.append(source) if withdrawn is not None else None)
    assert isinstance(slot, Slot)
    slot.unanswered = True
    return slot


def test_one_ipv6_slash60_of_silent_connections_no_longer_holds_the_whole_table() -> None:
    """The audit's reproduction (F1): sixteen /64s of one /60, sixteen silent connections each, fill all 256
    slots; nobody had been served, so nobody was idle, and every newcomer was refused."""
    gate = Gate(Limits())
    withdrawn: list[str] = []
    for net in range(16):
        for host in range(16):
            _unanswered(gate, f"2001:db8:0:{net:x}::{host + 1:x}", 0.0, withdrawn)
    assert gate.total == 256
    assert "to displace" in str(gate.admit("192.0.2.9", 1.0, lambda: None))  # they may still ask
    newcomer = gate.admit("192.0.2.9", Limits().displace_unanswered_after, lambda: None)
    assert isinstance(newcomer, Slot)
    assert withdrawn == ["2001:db8:0:0::1"]  # the oldest of a biggest holder
    assert (gate.total, gate.displaced) == (256, 1)


def test_a_full_gate_never_displaces_a_connection_being_answered() -> None:
    gate = Gate(replace(Limits(), max_connections=3, max_connections_per_source=3))
    withdrawn: list[str] = []
    for _ in range(3):
        slot = _unanswered(gate, "a", 0.0, withdrawn)
        slot.unanswered = False  # a response, or the secret's release, in progress
    assert "to displace" in str(gate.admit("c", 100.0, lambda: None))
    assert withdrawn == []


def test_a_full_gate_displaces_an_unanswered_slot_only_of_a_source_holding_more() -> None:
    gate = Gate(replace(Limits(), max_connections=4, max_connections_per_source=3))
    withdrawn: list[str] = []
    b = _unanswered(gate, "b", 0.0, withdrawn)  # under its share: the oldest, but b holds one slot
    for _ in range(3):
        _unanswered(gate, "a", 1.0, withdrawn)
    assert isinstance(gate.admit("c", 3.0, lambda: None), Slot)
    assert withdrawn == ["a"]  # a's oldest, not b's older one
    assert not b.displaced
    # now a, b and c hold 2, 1 and 1: a newcomer from c (1) would only trade places with a (2)
    assert "to displace" in str(gate.admit("c", 3.0, lambda: None))
    # one from d (0) may take a's (2), never b's (1)
    assert isinstance(gate.admit("d", 3.0, lambda: None), Slot)
    assert withdrawn == ["a", "a"]
    assert "to displace" in str(gate.admit("e", 3.0, lambda: None))  # everyone holds 1
    assert not b.displaced


def test_a_one_connection_sources_handshake_is_not_given_to_another_fresh_source() -> None:
    """Review R2: one idle keep-alive per source fills the table but for a bounty hunter's slow handshake;
    a newcomer from one more source, holding none, took that handshake once it was 2 s old."""
    gate = Gate(replace(Limits(), max_connections=8))
    withdrawn: list[str] = []
    for n in range(7):
        idle = gate.admit(f"192.0.2.{n}", 0.0, lambda: None)
        assert isinstance(idle, Slot)
        idle.idle = True
    hunter = _unanswered(gate, "198.51.100.7", 0.0, withdrawn)
    assert "to displace" in str(gate.admit("203.0.113.1", 100.0, lambda: None))
    assert withdrawn == []
    assert not hunter.displaced
    assert gate.total == 8


def test_connection_log_lines_are_rate_limited_but_every_outcome_is_recorded(tmp_path: Path) -> None:
    limits = replace(Limits(), log_connection_lines_per_second=2.0, ledger_region_bytes=128 * 1024)
    console = io.StringIO()
    clock = [1000.0]
    disk = Disk(tmp_path / "disk")
    stats = Stats(limits)
    ledger = Ledger(LedgerArea(disk, limits.ledger_region_bytes), limits)
    ledger.open(stats.initial, stats.replay, stats.checkpoint)
    service = Appliance(
        network=KernelNetwork("127.0.0.1"), engines=None, identities=None, vault=None,  # type: ignore[arg-type]
        stats=stats, ledger=ledger, site=None, limits=limits, ports=Ports(),  # type: ignore[arg-type]
        log=JsonLog(console), sources=Sources(wall=lambda: clock[0], monotonic=lambda: 0.0, random=_no_random),
    )

    async def flood() -> None:
        for _ in range(10):
            service.record("mutual", "192.0.2.1", Category.NOT_TLS, "please give key")
        clock[0] += 1.0
        service.record("mutual", "192.0.2.1", Category.NOT_TLS, "please give key")
        service._sync()

    asyncio.run(flood())
    lines = [json.loads(line) for line in console.getvalue().splitlines()]
    assert len(lines) == 3
    assert lines[-1]["suppressed"] == 8
    assert stats.total() == 11
    assert ledger.synced_seq == 11  # checkpoint 0, events 1..11


def test_a_slow_ledger_sync_is_logged_with_its_duration(tmp_path: Path) -> None:
    limits = replace(Limits(), ledger_region_bytes=128 * 1024, ledger_sync_slow_seconds=2.0)
    console = io.StringIO()
    clock = [50.0]
    disk = Disk(tmp_path / "disk")
    stats = Stats(limits)
    area = LedgerArea(disk, limits.ledger_region_bytes)
    ledger = Ledger(area, limits)
    ledger.open(stats.initial, stats.replay, stats.checkpoint)
    service = Appliance(
        network=KernelNetwork("127.0.0.1"), engines=None, identities=None, vault=None,  # type: ignore[arg-type]
        stats=stats, ledger=ledger, site=None, limits=limits, ports=Ports(),  # type: ignore[arg-type]
        log=JsonLog(console), sources=Sources(wall=lambda: 0.0, monotonic=lambda: clock[0], random=_no_random),
    )
    real_sync = area.sync
    delays = iter([0.5, 3.25])

    def slow_sync() -> None:
        real_sync()
        clock[0] += next(delays)

    area.sync = slow_sync  # type: ignore[method-assign]

    async def two_batches() -> None:
        service.record("mutual", "192.0.2.1", Category.NOT_TLS, "first")
        service._sync()  # 0.5 s: under the threshold
        service.record("mutual", "192.0.2.1", Category.NOT_TLS, "second")
        service._sync()  # 3.25 s

    asyncio.run(two_batches())
    slow = [json.loads(line) for line in console.getvalue().splitlines() if "ledger-sync-slow" in line]
    assert [line["seconds"] for line in slow] == [3.25]


def _recording_service(tmp_path: Path, console: io.StringIO, wall: Callable[[], float]) -> Appliance:
    """A service that records outcomes (ledger, statistics, console) at 2 connection lines per second."""
    limits = replace(Limits(), log_connection_lines_per_second=2.0, ledger_region_bytes=128 * 1024)
    stats = Stats(limits)
    ledger = Ledger(LedgerArea(Disk(tmp_path / "disk"), limits.ledger_region_bytes), limits)
    ledger.open(stats.initial, stats.replay, stats.checkpoint)
    return Appliance(
        network=KernelNetwork("127.0.0.1"), engines=None, identities=None, vault=None,  # type: ignore[arg-type]
        stats=stats, ledger=ledger, site=None, limits=limits, ports=Ports(),  # type: ignore[arg-type]
        log=JsonLog(console, clock=wall), sources=Sources(wall=wall, monotonic=wall, random=_no_random),
    )


def _burst(service: Appliance, count: int) -> None:
    for _ in range(count):
        service.record("mutual", "192.0.2.1", Category.NOT_TLS, "please give key")


def test_a_burst_then_silence_has_its_count_said_once_the_rate_allows_a_line(tmp_path: Path) -> None:
    """Two lines (the bucket's burst), eight counted; no connection follows, and a line of its own says the
    eight half a second later (one line's time at 2 per second), not at the next connection, nor at once."""
    console = io.StringIO()

    async def main() -> float:
        loop = asyncio.get_running_loop()
        service = _recording_service(tmp_path, console, loop.time)
        burst_at = loop.time()
        _burst(service, 10)
        await asyncio.sleep(30)  # virtual: the arranged line comes on the way, and only one
        service._sync()
        return burst_at

    burst_at = virtual_time.run(main())
    lines = [json.loads(line) for line in console.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["connection", "connection", "connection-lines-suppressed"]
    assert lines[-1]["suppressed"] == 8
    assert lines[-1]["t"] == round(burst_at + 0.5, 3)


def test_a_count_carried_by_a_connection_line_is_not_said_again(tmp_path: Path) -> None:
    console = io.StringIO()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        service = _recording_service(tmp_path, console, loop.time)
        _burst(service, 5)  # two printed, three counted, a count line arranged for +0.5 s
        await asyncio.sleep(0.25)
        _burst(service, 1)  # the bucket has half a token: counted too (four)
        await asyncio.sleep(0.25)  # the arranged line: a token now, says four
        _burst(service, 1)  # no token: counted, a line arranged again
        await asyncio.sleep(0.2)
        _burst(service, 1)  # still none: two counted
        await asyncio.sleep(10)
        service._sync()

    virtual_time.run(main())
    lines = [json.loads(line) for line in console.getvalue().splitlines()]
    assert [(line["event"], line["suppressed"]) for line in lines] == [
        ("connection", 0), ("connection", 0), ("connection-lines-suppressed", 4), ("connection-lines-suppressed", 2),
    ]
    counted = sum(int(line["suppressed"]) for line in lines)
    assert counted + sum(1 for line in lines if line["event"] == "connection") == 8  # every outcome accounted for


def test_a_frozen_rate_clock_gives_up_after_a_few_tries_and_stop_says_the_count(tmp_path: Path) -> None:
    """The rate's clock (the wall) standing still while the loop's runs: the arranged line finds no token,
    tries FLUSH_TRIES more times and stops arranging (a timer for ever would keep a loop busy); `stop`
    then says the count, whatever the rate."""
    console = io.StringIO()

    async def main() -> tuple[int, int]:
        service = _recording_service(tmp_path, console, lambda: 1000.0)
        _burst(service, 5)
        loop = asyncio.get_running_loop()
        await asyncio.sleep(60)
        pending = len(loop._scheduled)  # type: ignore[attr-defined]
        printed = len(console.getvalue().splitlines())
        service._sync()
        await service.stop()
        return pending, printed

    pending, printed = virtual_time.run(main())
    assert (pending, printed) == (0, 2)
    lines = [json.loads(line) for line in console.getvalue().splitlines()]
    assert (lines[-1]["event"], lines[-1]["suppressed"]) == ("connection-lines-suppressed", 3)
    assert FLUSH_TRIES == 3


def test_stop_says_nothing_when_nothing_is_counted(tmp_path: Path) -> None:
    console = io.StringIO()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        service = _recording_service(tmp_path, console, loop.time)
        _burst(service, 2)
        service._sync()
        await service.stop()

    virtual_time.run(main())
    assert [json.loads(line)["event"] for line in console.getvalue().splitlines()] == ["connection", "connection"]


def test_the_arranged_line_says_nothing_when_a_connection_line_carried_the_count(tmp_path: Path) -> None:
    console = io.StringIO()
    wall = [1000.0]

    async def main() -> None:
        service = _recording_service(tmp_path, console, lambda: wall[0])
        _burst(service, 3)  # two printed, one counted: a line arranged for half a second later (the loop's time)
        wall[0] += 1.0  # the rate's clock moves first: the next connection has a line, and says the one
        _burst(service, 1)
        await asyncio.sleep(10)  # the arranged line finds nothing left to say
        service._sync()
        await service.stop()

    virtual_time.run(main())
    lines = [json.loads(line) for line in console.getvalue().splitlines()]
    assert [(line["event"], line["suppressed"]) for line in lines] == [
        ("connection", 0), ("connection", 0), ("connection", 1),
    ]


def test_a_connection_lingering_in_its_close_at_shutdown_is_recorded_and_released(tmp_path: Path) -> None:
    """`stop` cancels every connection's task; one cancelled in its lingering close (its outcome already known,
    the peer not closing its end) used to be neither recorded nor given back to the gate."""

    async def scenario() -> tuple[MemoryService, int, float]:
        running = await start_memory_service(tmp_path, replace(Limits(), ledger_region_bytes=128 * 1024))
        client = running.connect("198.51.100.1", half_close=True)
        client.send(b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = await client.response()
        assert answer is not None
        assert answer[0] == 404
        assert await client.response() is None  # our FIN: the service now lingers for the client's
        await asyncio.sleep(running.service.limits.linger_seconds / 2)
        assert running.outcomes == []  # still lingering
        await running.service.stop()
        return running, running.service.gate.total, asyncio.get_running_loop().time()

    running, held, stopped_at = virtual_time.run(scenario())
    (outcome,) = running.outcomes
    assert outcome.category is Category.SERVED
    assert outcome.reason == "1 requests; close cut short (service shutting down)"
    assert held == 0
    assert stopped_at == Limits().linger_seconds / 2  # cut short, not waited out


def test_a_tls_connection_lingering_in_its_close_at_shutdown_keeps_its_outcome(tmp_path: Path) -> None:
    """Review R1: on the TLS ports the lingering close was the handler's, so a cancel there replaced the known
    outcome (on 10000 and 10002 a secret sent) with connection-reset. Here 443 and 10000 (a refusal: the
    memory service holds no vault), each recorded once, as what happened, the close noted as cut short."""
    boot = pki.generate(datetime.datetime.fromtimestamp(WALL, datetime.UTC), os.urandom)

    async def scenario() -> tuple[MemoryService, int, float]:
        running = await start_memory_service(tmp_path, replace(Limits(), ledger_region_bytes=128 * 1024),
                                             boot.issued())
        browser = TlsClient(running.connect("198.51.100.1", https=True, half_close=True))
        await browser.handshake()
        browser.tls.write(b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert (await browser.read()).startswith(b"HTTP/1.1 404 ")
        hunter = TlsClient(running.network.connect(Ports().mutual, "198.51.100.2", half_close=True))
        with contextlib.suppress(ssl.SSLError):  # no client certificate: refused with an alert
            await hunter.handshake()
        await asyncio.sleep(running.service.limits.linger_seconds / 2)
        assert running.outcomes == []  # both still lingering, waiting for the clients' end of stream
        await running.service.stop()
        return running, running.service.gate.total, asyncio.get_running_loop().time()

    running, held, stopped_at = virtual_time.run(scenario())
    https, mutual = sorted(running.outcomes, key=lambda outcome: outcome.endpoint)
    assert (https.endpoint, https.category) == ("https", Category.SERVED)
    assert https.reason == "1 requests; close cut short (service shutting down)"
    assert mutual.endpoint == "mutual"
    assert mutual.category is not Category.CONNECTION_RESET
    assert mutual.reason.endswith("; close cut short (service shutting down)")
    assert "shutting down;" not in mutual.reason
    assert held == 0
    assert stopped_at == Limits().linger_seconds / 2


def test_a_lingering_close_the_peer_ends_is_recorded_once_without_a_note(tmp_path: Path) -> None:
    async def scenario() -> MemoryService:
        running = await start_memory_service(tmp_path, replace(Limits(), ledger_region_bytes=128 * 1024))
        client = running.connect("198.51.100.1", half_close=True)
        client.send(b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert await client.responses() == [404]
        client.close()
        await running.settle()
        assert running.service.gate.total == 0
        await running.service.stop()
        return running

    (outcome,) = virtual_time.run(scenario()).outcomes
    assert (outcome.category, outcome.reason) == (Category.SERVED, "1 requests")
