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
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from appliance import ledger_record
from appliance.config import DEFAULT_LIMITS, DISK_HEADER_BYTES, ENDPOINTS
from appliance.disk import Disk
from appliance.ledger import CHECKPOINT_MAX_BYTES, Ledger
from appliance.pki import Identity
from tests.integration import craft
from tests.integration.craft import Leaf
from tests.integration.lab import ATTACKER_IPS, KERNEL_IP, KNOWN_WIF, ROOT, Lab, assert_no_secret, lab, read_all
from tests.tls.hello import client_hello

SAMPLE_SECONDS = 5.0
REPORT_DIRECTORY = ROOT / "build" / "soak"
# A leak of a quarter KiB per connection fails the slope; a megabyte of growth over the half fails the other.
MEMORY_SLOPE_KIB_PER_1000_CONNECTIONS = 256.0
MEMORY_GROWTH_KIB = 1024
MEMORY_ENDS = 3  # samples averaged at each end of the second half (one allocator step is not a trend)
MIN_MEMORY_SAMPLES = 6  # in the second half, to judge a trend at all
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


def ledger_figures(disk: Path, scratch: Path, provisioned_region_bytes: int) -> LedgerFigures:
    """The ledger as the appliance's own recovery reads it from a copy of the disk (each replayed record
    re-encoded to measure it), and what lies past the provisioned bound."""
    copy = scratch / "disk-copy"
    shutil.copyfile(disk, copy)
    handle = Disk(copy)
    sizes: list[int] = []
    seqs: list[int] = []

    def consume(record: ledger_record.Record) -> None:
        sizes.append(len(ledger_record.encode(record, CHECKPOINT_MAX_BYTES)))
        seqs.append(record.seq)

    try:
        header = handle.read_header()
        assert header is not None
        size = header.region_bytes
        report = Ledger(handle, size, DEFAULT_LIMITS).open(lambda: b"{}", consume)
    finally:
        handle.close()
    return LedgerFigures(report.region, report.epoch, report.records, sum(sizes), size, max(seqs, default=0),
                         _non_zero_after(copy, DISK_HEADER_BYTES + 2 * provisioned_region_bytes))


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
        ca = craft.load_identity(target.pki, "ca")
        self.good = craft.issue(ca, Leaf())
        self.expired = craft.issue(ca, Leaf(not_before=craft.NOW - 10 * craft.DAY, not_after=craft.NOW - craft.DAY))
        self.hello = client_hello(versions=(0x0304,))  # TLS 1.3 only
        self.rounds = 0
        self.secrets_received = 0

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


def soak(target: Lab, seconds: float, disk: Path, scratch: Path, *, region_bytes: int,
         out: Callable[[str], None]) -> tuple[list[Sample], Traffic]:
    traffic = Traffic(target)
    samples: list[Sample] = []
    started = time.monotonic()
    next_sample = 0.0
    while True:
        elapsed = time.monotonic() - started
        if elapsed >= next_sample or elapsed >= seconds:
            stats = target.stats()
            ledger = ledger_figures(disk, scratch, region_bytes)
            sample = Sample(round(elapsed, 1), target.memory_kib(), int(str(stats["connections"])), ledger,
                            target.anon_memory_kib())
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
    return samples, traffic


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
    """RSS (or its anonymous part) over the second half of the run (after warm-up), or None without enough
    samples to judge."""
    values = [(s.connections, s.anon_kib if anonymous else s.rss_kib) for s in samples[len(samples) // 2 :]]
    second = [(float(connections), float(kib)) for connections, kib in values if kib is not None]
    if len(second) < max(MIN_MEMORY_SAMPLES, 2 * MEMORY_ENDS):
        return None
    start, end = second[:MEMORY_ENDS], second[-MEMORY_ENDS:]
    growth = statistics.fmean(y for _, y in end) - statistics.fmean(y for _, y in start)
    return MemoryTrend(len(second), 1000 * _slope(second), growth)


def verdict(samples: list[Sample], provisioned_region_bytes: int) -> list[str]:
    """Why the run was not bounded (empty when it was)."""
    if not samples:
        return ["no samples"]
    problems = []
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
           rounds: int, secrets_received: int) -> dict[str, object]:
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
    args = parser.parse_args(argv)
    region_bytes = args.ledger_region_kib * 1024 if args.ledger_region_kib else DEFAULT_LIMITS.ledger_region_bytes
    with tempfile.TemporaryDirectory(prefix="pinata-soak-") as temporary:
        directory = Path(temporary)
        disk = directory / ("data.img" if args.target == "image" else "disk")
        with lab(args.target, directory, REPORT_DIRECTORY, region_bytes) as target:
            print(f"soak: {args.target} target, {args.seconds:.0f} s, samples every {SAMPLE_SECONDS:.0f} s", flush=True)
            samples, traffic = soak(target, args.seconds, disk, directory, region_bytes=region_bytes,
                                    out=lambda line: print(line, flush=True))
            assert_no_secret(target.console.text().encode(), "the target's console")
            alive = target.alive()
    problems = verdict(samples, region_bytes) + ([] if alive else ["the target died"])
    figures = report(samples, problems, target=args.target, seconds=args.seconds, provisioned_region_bytes=region_bytes,
                     rounds=traffic.rounds, secrets_received=traffic.secrets_received)
    lines = summary(figures)
    REPORT_DIRECTORY.mkdir(parents=True, exist_ok=True)
    (REPORT_DIRECTORY / "report.json").write_text(json.dumps(figures, indent=1) + "\n")
    (REPORT_DIRECTORY / "report.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"report: {REPORT_DIRECTORY.relative_to(ROOT)}/report.json, report.txt")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
