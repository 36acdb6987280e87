"""`python -m tests.integration.soak --seconds N` (`make soak`): mixed good and bad traffic against the target
for a set time, sampling the appliance's memory and the ledger on its disk; the verdict says whether they
stay bounded, and the report is kept in build/soak/ (report.json, report.txt, the console log).

Memory: /proc of the host process (`--target host`), or the test image's `test.memory` console samples
(the appliance's VmRSS read by the test PID 1 inside the VM). The first half of the run is warm-up (import
caches, allocator arenas, the ledger's batches); over the second half a leak shows as a trend, so RSS is
judged by its least-squares slope against the connections served, and by how far the last samples are
above the first ones of that half. A peak comparison would let a slow leak through.
Ledger: the data disk is a host file in both cases; each sample opens a copy with appliance.ledger (the
same recovery the appliance runs at boot). The bound is the one provisioned: the disk header must still
declare that region size, nothing may have been written past the header and the two regions, the history
must never shrink (records appended and the epoch only grow), and once more records were appended than
one region can hold, the ledger must have rolled over (`make soak` provisions a small region to see it).

Kill cycles (`--kill-cycles N`, `make soak SOAK_KILL_CYCLES=N`): N times, in the first half of the run, the
target is killed with SIGKILL (for the VM, QEMU: a power loss for the guest) and booted again on the same
disk. Just before a kill, a burst of quick connections leaves recent events unsynced, the appliance's own
count of recorded events is read on a connection that stays open (so that reading is exact: every burst
connection has been recorded, and the open one cannot be), and a few connections are left half-sent. After
the reboot, its first /stats.json says what survived, and its `ledger` console event what recovery
reported. Per kill: the outcome must be `torn tail` or `clean` (never `damaged`), and the events actually
lost (recorded before the kill minus recovered after it) at most one batch (`ledger_batch_records`) and at
most the reported `lost_bound`. The memory verdict is taken over the last boot only (after the last kill).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import socket
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from appliance import ledger_record
from appliance.config import DEFAULT_LIMITS, DISK_HEADER_BYTES, ENDPOINTS
from appliance.ledger import CHECKPOINT_MAX_BYTES, CLEAN, TORN_TAIL
from appliance.pki import Identity
from tests.integration import craft
from tests.integration.craft import Leaf
from tests.integration.lab import (
    ATTACKER_IPS,
    KERNEL_IP,
    KNOWN_WIF,
    ROOT,
    Lab,
    assert_no_secret,
    lab,
    read_all,
    read_ledger,
)
from tests.tls.hello import client_hello

SAMPLE_SECONDS = 5.0
REPORT_DIRECTORY = ROOT / "build" / "soak"
# A leak of a quarter KiB per connection fails the slope; a megabyte of growth over the half fails the other.
MEMORY_SLOPE_KIB_PER_1000_CONNECTIONS = 256.0
MEMORY_GROWTH_KIB = 1024
MEMORY_ENDS = 3  # samples averaged at each end of the second half (one allocator step is not a trend)
MIN_MEMORY_SAMPLES = 6  # in the second half, to judge a trend at all
BATCH_RECORDS = DEFAULT_LIMITS.ledger_batch_records  # what one kill may cost at most
KILL_BURSTS = (12, 40, 24, 56, 8, 32)  # connections just before each kill (cycled): a few to most of a batch
KILL_BURST_THREADS = 4
KILL_SETTLE_SECONDS = 30.0  # bound on waiting for the appliance to have recorded the burst
# The smallest event record the soak's traffic can produce (empty category and reason, the shortest source
# address): a lower bound, so the rollovers it implies are ones that must have happened.
SMALLEST_EVENT_RECORD = len(ledger_record.encode(
    ledger_record.Record(0, 0, ledger_record.Event(0.0, ENDPOINTS[0], "", min((KERNEL_IP, *ATTACKER_IPS), key=len),
                                                   "")),
    CHECKPOINT_MAX_BYTES,
))


@dataclass(frozen=True)
class LedgerFigures:
    region: int  # the active region (0 or 1)
    epoch: int  # one more per rollover
    records: int  # in the active region, its checkpoint included
    bytes: int  # of the active region's valid prefix
    region_bytes: int  # as the disk header declares it
    appended: int  # events ever appended (the last record's seq)
    past_bound: int  # non-zero bytes on the disk after the header and the two regions


@dataclass(frozen=True)
class Sample:
    elapsed: float
    rss_kib: int | None
    connections: int
    ledger: LedgerFigures
    anon_kib: int | None = None  # the anonymous part of rss_kib (RssAnon): heap and stacks
    boot: int = 0  # how many kill cycles came before this sample


@dataclass(frozen=True)
class Kill:
    """One kill cycle: what the appliance had recorded, what the next boot recovered and reported."""

    elapsed: float  # seconds into the run
    burst: int  # connections completed just before the kill
    in_flight: int  # connections open (half-sent) at the kill
    recorded: int  # events the appliance had recorded (its /stats.json on a connection left open)
    recovered: int  # events after the reboot (its first /stats.json)
    outcome: str  # the reboot's `ledger` event
    lost: int  # reported: exact part
    lost_bound: int  # reported: at most
    findings: int
    reboot_seconds: float  # from the kill to "ready" again

    @property
    def actual_lost(self) -> int:
        return self.recorded - self.recovered


def ledger_figures(disk: Path, scratch: Path, provisioned_region_bytes: int) -> LedgerFigures:
    """The ledger as the appliance's own recovery reads it from a copy of the disk, read-only (each replayed
    record re-encoded to measure it), and what lies past the provisioned bound."""
    copy = scratch / "disk-copy"
    shutil.copyfile(disk, copy)
    sizes: list[int] = []
    seqs: list[int] = []

    def consume(record: ledger_record.Record) -> None:
        sizes.append(len(ledger_record.encode(record, CHECKPOINT_MAX_BYTES)))
        seqs.append(record.seq)

    reading = read_ledger(copy, scratch, consume)
    recovery = reading.recovery
    return LedgerFigures(recovery.region, recovery.epoch, recovery.replayed, sum(sizes), reading.header.region_bytes,
                         max(seqs, default=0), _non_zero_after(copy, DISK_HEADER_BYTES + 2 * provisioned_region_bytes))


def _non_zero_after(path: Path, offset: int) -> int:
    count = 0
    with path.open("rb") as f:
        f.seek(offset)
        while chunk := f.read(1 << 20):
            count += len(chunk) - chunk.count(0)
    return count


def minimum_rollovers(appended: int, region_bytes: int) -> int:
    """Rollovers that `appended` events must have caused: a region holds fewer than region_bytes //
    SMALLEST_EVENT_RECORD of them after its checkpoint, and the event that overflows one is carried in the
    next region's checkpoint."""
    per_epoch = region_bytes // SMALLEST_EVENT_RECORD + 1
    return max(0, -(-appended // per_epoch) - 1)


class Traffic:
    """One round of good and bad connections; every answer is checked for the secret, except the good
    mutual-TLS path's (which must carry it)."""

    def __init__(self, target: Lab) -> None:
        self.target = target
        self.renew()
        self.hello = client_hello(versions=(0x0304,))  # TLS 1.3 only
        self.rounds = 0
        self.secrets_received = 0

    def renew(self) -> None:
        """Client identities from the target's boot CA (a new one each boot)."""
        ca = craft.load_identity(self.target.pki, "ca")
        self.good = craft.issue(ca, Leaf())
        self.expired = craft.issue(ca, Leaf(not_before=craft.NOW - 10 * craft.DAY, not_after=craft.NOW - craft.DAY))

    def _raw(self, port: int, payload: bytes, source: str) -> None:
        with self.target.connect(port, source, timeout=30) as sock:
            sock.sendall(payload)
            self.target.received(read_all(sock))

    def _https(self, source: str) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with self.target.connect(443, source, timeout=30) as raw, context.wrap_socket(raw) as tls:
            tls.sendall(b"GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            self.target.received(read_all(tls))

    def _mutual(self, identity: Identity, source: str) -> bytes:
        with self.target.connect(10000, source, timeout=30) as sock:
            result = craft.engine_exchange(sock, (identity.cert_der,), identity.key)
        return result.plaintext

    def round(self) -> None:
        source = ATTACKER_IPS[self.rounds % len(ATTACKER_IPS)]
        steps: list[Callable[[], object]] = [
            lambda: self.target.received(self.target.http_get("/", source)[1]),
            lambda: self._https(source),
            lambda: self._raw(10000, b"please give key\r\n", source),
            lambda: self._raw(10000, craft.sslv2_hello(), source),
            lambda: self._raw(10000, craft.heartbeat_request(), source),
            lambda: self._raw(10000, craft.record(craft.HANDSHAKE, bytes(18000)), source),
            lambda: self._raw(443, self.hello + craft.record(craft.CCS, b"\x01") * 3, source),
            lambda: assert_no_secret(self._mutual(self.expired, source), "an expired client's session"),
        ]
        for step in steps:
            with contextlib.suppress(OSError):  # a refused or reset connection is part of the mix
                step()
        if self.rounds % 5 == 0 and self._mutual(self.good, KERNEL_IP).strip() == KNOWN_WIF.encode():
            self.secrets_received += 1
        self.rounds += 1


def _stats_on(target: Lab, sock: socket.socket) -> dict[str, object]:
    """GET /stats.json on an open keep-alive connection (the connection's own event comes at its end)."""
    sock.sendall(b"GET /stats.json HTTP/1.1\r\nHost: soak\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the keep-alive connection closed")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the keep-alive connection closed")
        body += chunk
    target.received(head + body)
    value = json.loads(body)
    assert isinstance(value, dict)
    return value


def _garbage(target: Lab, source: str) -> bool:
    try:
        with target.connect(10000, source, timeout=30) as sock:
            sock.sendall(b"please give key\r\n")
            target.received(read_all(sock))
    except OSError:
        return False
    return True


def _half_sent(target: Lab) -> list[socket.socket]:
    """Connections the appliance is still waiting on: their events cannot have been recorded at the kill."""
    opened = []
    for port, payload, source in ((10000, craft.record(craft.HANDSHAKE, bytes(64))[:20], ATTACKER_IPS[0]),
                                  (80, b"GET / HTTP/1.1\r\nHost: x\r\n", ATTACKER_IPS[1]),
                                  (443, client_hello(versions=(0x0304,))[:40], ATTACKER_IPS[2])):
        with contextlib.suppress(OSError):
            sock = target.connect(port, source, timeout=10)
            sock.sendall(payload)
            opened.append(sock)
    return opened


def kill_cycle(target: Lab, elapsed: float, burst: int) -> Kill:
    """A burst, an exact reading of what the appliance recorded, SIGKILL with connections in flight, reboot,
    and what the reboot recovered and reported (see the module docstring)."""
    before = int(str(target.stats()["connections"])) + 1  # that request is recorded after its answer
    sources = [ATTACKER_IPS[n % len(ATTACKER_IPS)] for n in range(burst)]
    with ThreadPoolExecutor(KILL_BURST_THREADS) as pool:
        completed = sum(pool.map(lambda source: _garbage(target, source), sources))
    keep = target.connect(80, KERNEL_IP, timeout=30)
    try:
        deadline = time.monotonic() + KILL_SETTLE_SECONDS
        previous = -1
        while True:  # until the count covers the burst and holds still (no close still pending)
            recorded = int(str(_stats_on(target, keep)["connections"]))
            if (recorded >= before + completed and recorded == previous) or time.monotonic() > deadline:
                break
            previous = recorded
        in_flight = _half_sent(target)
        killed = time.monotonic()
        target.reboot(kill=True)
    finally:
        keep.close()
    reboot_seconds = time.monotonic() - killed
    for sock in in_flight:
        sock.close()
    report = target.console.events("ledger")[0]
    stats = target.stats()  # the first connection of the new boot: the recovered totals
    integrity = stats["ledger"]
    assert isinstance(integrity, dict)
    boot_recovery = integrity["boot_recovery"]
    assert isinstance(boot_recovery, dict)
    assert boot_recovery["outcome"] == report["outcome"], (boot_recovery, report)
    return Kill(round(elapsed, 1), completed, len(in_flight), recorded, int(str(stats["connections"])),
                str(report["outcome"]), int(str(report["lost"])), int(str(report["lost_bound"])),
                int(str(report["findings"])), round(reboot_seconds, 1))


def kill_times(seconds: float, cycles: int) -> list[float]:
    """Spread over the first half of the run: the second half is one boot, for the memory verdict."""
    return [seconds * (n + 1) / (2 * (cycles + 1)) for n in range(cycles)]


def kill_line(number: int, kill: Kill) -> str:
    return (f"kill {number} at {kill.elapsed:.0f}s: burst {kill.burst}, {kill.in_flight} in flight; recorded "
            f"{kill.recorded}, recovered {kill.recovered}: actual lost {kill.actual_lost}; reported "
            f"{kill.outcome!r} lost={kill.lost} lost_bound={kill.lost_bound} findings={kill.findings}; "
            f"ready again in {kill.reboot_seconds:.1f}s")


def soak(target: Lab, seconds: float, disk: Path, scratch: Path, *, region_bytes: int,
         out: Callable[[str], None], kill_cycles: int = 0) -> tuple[list[Sample], Traffic, list[Kill]]:
    traffic = Traffic(target)
    samples: list[Sample] = []
    kills: list[Kill] = []
    pending = kill_times(seconds, kill_cycles)
    started = time.monotonic()
    next_sample = 0.0
    while True:
        elapsed = time.monotonic() - started
        if pending and elapsed >= pending[0]:
            pending.pop(0)
            kill = kill_cycle(target, elapsed, KILL_BURSTS[len(kills) % len(KILL_BURSTS)])
            kills.append(kill)
            traffic.renew()
            out(kill_line(len(kills), kill))
            continue
        if elapsed >= next_sample or elapsed >= seconds:
            stats = target.stats()
            ledger = ledger_figures(disk, scratch, region_bytes)
            sample = Sample(round(elapsed, 1), target.memory_kib(), int(str(stats["connections"])), ledger,
                            target.anon_memory_kib(), len(kills))
            samples.append(sample)
            out(f"{sample.elapsed:7.1f}s rss={sample.rss_kib} KiB (anon {sample.anon_kib}) "
                f"connections={sample.connections} "
                f"ledger region={ledger.region} epoch={ledger.epoch} records={ledger.records} "
                f"bytes={ledger.bytes}/{ledger.region_bytes} appended={ledger.appended}")
            next_sample = elapsed + SAMPLE_SECONDS
            if elapsed >= seconds:
                break
        traffic.round()
    out(f"rounds={traffic.rounds} good mutual-TLS sessions that got the secret={traffic.secrets_received}")
    return samples, traffic, kills


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (0 when x does not vary)."""
    mean_x = statistics.fmean(x for x, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


@dataclass(frozen=True)
class MemoryTrend:
    samples: int  # in the second half
    slope_kib_per_1000_connections: float
    growth_kib: float  # mean of the last MEMORY_ENDS samples minus mean of the first MEMORY_ENDS


def memory_trend(samples: list[Sample], anonymous: bool = False) -> MemoryTrend | None:
    """RSS (or its anonymous part) over the second half of the last boot (after warm-up), or None without
    enough samples to judge."""
    last_boot = [s for s in samples if s.boot == samples[-1].boot] if samples else []
    values = [(s.connections, s.anon_kib if anonymous else s.rss_kib) for s in last_boot[len(last_boot) // 2 :]]
    second = [(float(connections), float(kib)) for connections, kib in values if kib is not None]
    if len(second) < max(MIN_MEMORY_SAMPLES, 2 * MEMORY_ENDS):
        return None
    start, end = second[:MEMORY_ENDS], second[-MEMORY_ENDS:]
    growth = statistics.fmean(y for _, y in end) - statistics.fmean(y for _, y in start)
    return MemoryTrend(len(second), 1000 * _slope(second), growth)


def kill_problems(kills: list[Kill] | tuple[Kill, ...]) -> list[str]:
    """Why a kill cycle failed: damage reported for a power loss, or a loss beyond a batch or beyond what
    the reboot reported."""
    problems = []
    for number, kill in enumerate(kills, 1):
        if kill.outcome not in (TORN_TAIL, CLEAN):
            problems.append(f"kill {number}: the reboot reported {kill.outcome!r} (a power loss is at most a torn "
                            "tail)")
        if kill.actual_lost > BATCH_RECORDS:
            problems.append(f"kill {number}: {kill.actual_lost} events lost, more than one batch ({BATCH_RECORDS})")
        if kill.actual_lost > kill.lost_bound:
            problems.append(f"kill {number}: {kill.actual_lost} events lost, but the reboot reported at most "
                            f"{kill.lost_bound}")
        if kill.actual_lost < 0:
            problems.append(f"kill {number}: {kill.recovered} events after the reboot, {kill.recorded} before the kill "
                            "(the count before the kill was not exact)")
        elif kill.actual_lost < kill.lost:
            problems.append(f"kill {number}: the reboot reported {kill.lost} events lost, only {kill.actual_lost} were")
    return problems


def verdict(samples: list[Sample], provisioned_region_bytes: int,
            kills: list[Kill] | tuple[Kill, ...] = ()) -> list[str]:
    """Why the run was not bounded (empty when it was)."""
    if not samples:
        return ["no samples"]
    problems = kill_problems(kills)
    trend = memory_trend(samples)
    if trend is None:
        problems.append(f"too few memory samples to judge a trend (need {MIN_MEMORY_SAMPLES} in the second half)")
    else:
        if trend.slope_kib_per_1000_connections > MEMORY_SLOPE_KIB_PER_1000_CONNECTIONS:
            problems.append(f"memory trends up: {trend.slope_kib_per_1000_connections:.0f} KiB per 1000 connections "
                            f"over the second half (bound {MEMORY_SLOPE_KIB_PER_1000_CONNECTIONS:.0f})")
        if trend.growth_kib > MEMORY_GROWTH_KIB:
            problems.append(f"memory grew {trend.growth_kib:.0f} KiB over the second half (bound {MEMORY_GROWTH_KIB})")
    previous: LedgerFigures | None = None
    for sample in samples:
        ledger = sample.ledger
        if ledger.region_bytes != provisioned_region_bytes:
            problems.append(f"at {sample.elapsed}s the disk declares {ledger.region_bytes}-byte ledger regions, "
                            f"{provisioned_region_bytes} were provisioned")
        if ledger.past_bound:
            problems.append(f"at {sample.elapsed}s {ledger.past_bound} bytes were written past the two regions")
        if previous is not None and (ledger.appended < previous.appended or ledger.epoch < previous.epoch):
            problems.append(f"at {sample.elapsed}s the ledger lost history: appended {previous.appended} -> "
                            f"{ledger.appended}, epoch {previous.epoch} -> {ledger.epoch}")
        previous = ledger
    last = samples[-1].ledger
    expected = minimum_rollovers(last.appended, provisioned_region_bytes)
    if last.epoch < expected:
        problems.append(f"{last.appended} events must have rolled the {provisioned_region_bytes}-byte ledger over at "
                        f"least {expected} times, but its epoch is {last.epoch}")
    if samples[-1].connections <= samples[0].connections:
        problems.append("no traffic was recorded")
    return problems


def report(samples: list[Sample], problems: list[str], *, target: str, seconds: float, provisioned_region_bytes: int,
           rounds: int, secrets_received: int, kills: list[Kill] | tuple[Kill, ...] = ()) -> dict[str, object]:
    """The soak's figures, for report.json (and, as lines, report.txt)."""
    rss = [s.rss_kib for s in samples if s.rss_kib is not None]
    anon = [s.anon_kib for s in samples if s.anon_kib is not None]
    trend, anon_trend = memory_trend(samples), memory_trend(samples, anonymous=True)
    last = samples[-1].ledger if samples else None
    return {
        "target": target,
        "seconds": seconds,
        "rounds": rounds,
        "good_sessions_that_got_the_secret": secrets_received,
        "connections": samples[-1].connections - samples[0].connections if samples else 0,
        "memory_kib": {"min": min(rss, default=None), "max": max(rss, default=None),
                       "first": rss[0] if rss else None, "last": rss[-1] if rss else None,
                       "second_half": asdict(trend) if trend else None,
                       "bounds": {"slope_kib_per_1000_connections": MEMORY_SLOPE_KIB_PER_1000_CONNECTIONS,
                                  "growth_kib": MEMORY_GROWTH_KIB}},
        # Shown, not judged: it tells a heap that grows (a leak) from file pages paged in late.
        "anonymous_memory_kib": {"first": anon[0] if anon else None, "last": anon[-1] if anon else None,
                                 "second_half": asdict(anon_trend) if anon_trend else None},
        "ledger": {"region_bytes": provisioned_region_bytes,
                   "rollovers": last.epoch if last else None,
                   "minimum_rollovers": minimum_rollovers(last.appended, provisioned_region_bytes) if last else None,
                   "events_appended": last.appended if last else None,
                   "peak_bytes_in_a_region": max((s.ledger.bytes for s in samples), default=None),
                   "bytes_past_bound": max((s.ledger.past_bound for s in samples), default=None)},
        "kills": [{**asdict(k), "actual_lost": k.actual_lost} for k in kills],
        "kill_bounds": {"batch_records": BATCH_RECORDS},
        "bounded": not problems,
        "problems": problems,
        "samples": [asdict(s) for s in samples],
    }


def summary(figures: dict[str, object]) -> list[str]:
    memory, ledger = figures["memory_kib"], figures["ledger"]
    assert isinstance(memory, dict)
    assert isinstance(ledger, dict)
    trend = memory["second_half"]
    lines = [
        f"soak: {figures['target']} target, {figures['seconds']:.0f} s, {figures['rounds']} rounds, "
        f"{figures['connections']} connections, {figures['good_sessions_that_got_the_secret']} good sessions "
        "got the secret",
        f"memory KiB: min={memory['min']} max={memory['max']} first={memory['first']} last={memory['last']}",
    ]
    if isinstance(trend, dict):
        lines.append(f"memory, second half ({trend['samples']} samples): "
                     f"{trend['slope_kib_per_1000_connections']:.1f} KiB per 1000 connections "
                     f"(bound {MEMORY_SLOPE_KIB_PER_1000_CONNECTIONS:.0f}), growth {trend['growth_kib']:.0f} KiB "
                     f"(bound {MEMORY_GROWTH_KIB})")
    anon = figures["anonymous_memory_kib"]
    assert isinstance(anon, dict)
    anon_trend = anon["second_half"]
    if isinstance(anon_trend, dict):
        lines.append(f"anonymous memory (RssAnon) KiB: first={anon['first']} last={anon['last']}; second half "
                     f"{anon_trend['slope_kib_per_1000_connections']:.1f} KiB per 1000 connections, "
                     f"growth {anon_trend['growth_kib']:.0f} KiB (shown, not judged)")
    lines.append(f"ledger: region size={ledger['region_bytes']} events={ledger['events_appended']} "
                 f"rollovers={ledger['rollovers']} (at least {ledger['minimum_rollovers']} required) "
                 f"peak bytes in a region={ledger['peak_bytes_in_a_region']} "
                 f"bytes past the bound={ledger['bytes_past_bound']}")
    kills = figures.get("kills", [])
    assert isinstance(kills, list)
    if kills:
        lines.append(f"kill -9 cycles: {len(kills)} (per kill: events lost must be <= {BATCH_RECORDS} and <= the "
                     "reported lost_bound; the outcome torn tail or clean)")
        lines.append(f"  {'#':>2} {'at s':>6} {'burst':>5} {'recorded':>8} {'recovered':>9} {'actual lost':>11} "
                     f"{'outcome':>10} {'lost':>4} {'lost_bound':>10}")
        for number, kill in enumerate(kills, 1):
            lines.append(f"  {number:>2} {kill['elapsed']:>6.0f} {kill['burst']:>5} {kill['recorded']:>8} "
                         f"{kill['recovered']:>9} {kill['actual_lost']:>11} {kill['outcome']:>10} {kill['lost']:>4} "
                         f"{kill['lost_bound']:>10}")
    problems = figures["problems"]
    assert isinstance(problems, list)
    lines.append("BOUNDED" if not problems else "NOT BOUNDED: " + "; ".join(map(str, problems)))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.integration.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=900.0)
    parser.add_argument("--target", choices=("image", "host"), default="image")
    parser.add_argument("--ledger-region-kib", type=int, default=None,
                        help="provision the disk with this ledger region size (default: production's) to see "
                             "rollovers within a short run")
    parser.add_argument("--kill-cycles", type=int, default=0, metavar="N",
                        help="SIGKILL the target N times in the first half of the run and boot it again on the same "
                             "disk; each reboot must report a torn tail (or clean) and lose at most one batch")
    args = parser.parse_args(argv)
    if args.kill_cycles < 0:
        parser.error("--kill-cycles must not be negative")
    region_bytes = args.ledger_region_kib * 1024 if args.ledger_region_kib else DEFAULT_LIMITS.ledger_region_bytes
    with tempfile.TemporaryDirectory(prefix="pinata-soak-") as temporary:
        directory = Path(temporary)
        disk = directory / ("data.img" if args.target == "image" else "disk")
        with lab(args.target, directory, REPORT_DIRECTORY, region_bytes) as target:
            at = ", ".join(f"{t:.0f}" for t in kill_times(args.seconds, args.kill_cycles))
            print(f"soak: {args.target} target, {args.seconds:.0f} s, samples every {SAMPLE_SECONDS:.0f} s"
                  + (f", {args.kill_cycles} kill -9 cycles at {at} s" if args.kill_cycles else ""), flush=True)
            samples, traffic, kills = soak(target, args.seconds, disk, directory, region_bytes=region_bytes,
                                           out=lambda line: print(line, flush=True), kill_cycles=args.kill_cycles)
            assert_no_secret(target.consoles_text().encode(), "the target's console")
            alive = target.alive()
    problems = verdict(samples, region_bytes, kills) + ([] if alive else ["the target died"])
    figures = report(samples, problems, target=args.target, seconds=args.seconds, provisioned_region_bytes=region_bytes,
                     rounds=traffic.rounds, secrets_received=traffic.secrets_received, kills=kills)
    lines = summary(figures)
    REPORT_DIRECTORY.mkdir(parents=True, exist_ok=True)
    (REPORT_DIRECTORY / "report.json").write_text(json.dumps(figures, indent=1) + "\n")
    (REPORT_DIRECTORY / "report.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"report: {REPORT_DIRECTORY.relative_to(ROOT)}/report.json, report.txt")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
