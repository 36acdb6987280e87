"""`python -m tests.integration.soak --seconds N`: mixed good and bad traffic against the target for a set
time, sampling the appliance's memory and the ledger on its disk; the report shows whether they stay bounded.

Memory: /proc of the host process (`--target host`), or the test image's `test.memory` console samples
(the appliance's VmRSS read by the test PID 1 inside the VM). Ledger: the data disk is a host file in both
cases; each sample opens a copy of it with appliance.ledger (the same recovery the appliance runs at boot)
and reports the active region, its epoch (one more per rollover), its record count and the bytes of its
valid prefix out of the region size.
"Bounded" is judged on the second half of the run against the first: memory may warm up, then must stop
growing; the ledger may grow only up to its region and then roll over.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import ssl
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from appliance import ledger_record
from appliance.config import DEFAULT_LIMITS
from appliance.disk import Disk
from appliance.ledger import CHECKPOINT_MAX_BYTES, Ledger
from appliance.pki import Identity
from tests.integration import craft
from tests.integration.craft import Leaf
from tests.integration.lab import ATTACKER_IPS, KERNEL_IP, KNOWN_WIF, ROOT, Lab, assert_no_secret, lab, read_all
from tests.tls.hello import client_hello

SAMPLE_SECONDS = 5.0
MEMORY_GROWTH_ALLOWED = 1.10  # second-half peak over first-half peak


@dataclass(frozen=True)
class Sample:
    elapsed: float
    rss_kib: int | None
    connections: int
    ledger_region: int
    ledger_epoch: int
    ledger_records: int
    ledger_bytes: int
    ledger_region_bytes: int


def ledger_figures(disk: Path, scratch: Path) -> tuple[int, int, int, int, int]:
    """(active region, epoch, records in it, bytes of its valid prefix, region size) from a copy of the disk,
    read by the appliance's own recovery (each replayed record re-encoded to measure it)."""
    copy = scratch / "disk-copy"
    shutil.copyfile(disk, copy)
    handle = Disk(copy)
    sizes: list[int] = []
    try:
        header = handle.read_header()
        assert header is not None
        size = header.region_bytes
        report = Ledger(handle, size, DEFAULT_LIMITS).open(
            lambda: b"{}", lambda record: sizes.append(len(ledger_record.encode(record, CHECKPOINT_MAX_BYTES)))
        )
    finally:
        handle.close()
    return report.region, report.epoch, report.records, sum(sizes), size


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


def soak(target: Lab, seconds: float, disk: Path, scratch: Path, out: Callable[[str], None]) -> list[Sample]:
    traffic = Traffic(target)
    samples: list[Sample] = []
    started = time.monotonic()
    next_sample = 0.0
    while True:
        elapsed = time.monotonic() - started
        if elapsed >= next_sample or elapsed >= seconds:
            stats = target.stats()
            region, epoch, records, used, size = ledger_figures(disk, scratch)
            sample = Sample(round(elapsed, 1), target.memory_kib(), int(str(stats["connections"])), region, epoch,
                            records, used, size)
            samples.append(sample)
            out(f"{sample.elapsed:7.1f}s rss={sample.rss_kib} KiB connections={sample.connections} "
                f"ledger region={region} epoch={epoch} records={records} "
                f"bytes={used}/{size}")
            next_sample = elapsed + SAMPLE_SECONDS
            if elapsed >= seconds:
                break
        traffic.round()
    out(f"rounds={traffic.rounds} good mutual-TLS sessions that got the secret={traffic.secrets_received}")
    return samples


def verdict(samples: list[Sample]) -> list[str]:
    problems = []
    half = len(samples) // 2
    first, second = samples[:half], samples[half:]
    rss_first = [s.rss_kib for s in first if s.rss_kib is not None]
    rss_second = [s.rss_kib for s in second if s.rss_kib is not None]
    if rss_first and rss_second and max(rss_second) > max(rss_first) * MEMORY_GROWTH_ALLOWED:
        problems.append(f"memory grew: first-half peak {max(rss_first)} KiB, second-half peak {max(rss_second)} KiB")
    if not rss_first:
        problems.append("no memory samples")
    for sample in samples:
        if sample.ledger_bytes > sample.ledger_region_bytes:
            problems.append(f"ledger region over its size at {sample.elapsed}s")
    if samples and samples[-1].connections <= samples[0].connections:
        problems.append("no traffic was recorded")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.integration.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--target", choices=("image", "host"), default="image")
    parser.add_argument("--ledger-region-kib", type=int, default=None,
                        help="provision the disk with this ledger region size (default: production's) to see "
                             "rollovers within a short run")
    args = parser.parse_args(argv)
    region_bytes = args.ledger_region_kib * 1024 if args.ledger_region_kib else None
    with tempfile.TemporaryDirectory(prefix="pinata-soak-") as temporary:
        directory = Path(temporary)
        disk = directory / ("data.img" if args.target == "image" else "disk")
        with lab(args.target, directory, ROOT / "build" / "soak", region_bytes) as target:
            print(f"soak: {args.target} target, {args.seconds:.0f} s, samples every {SAMPLE_SECONDS:.0f} s", flush=True)
            samples = soak(target, args.seconds, disk, directory, lambda line: print(line, flush=True))
            assert_no_secret(target.console.text().encode(), "the target's console")
            alive = target.alive()
    problems = verdict(samples) + ([] if alive else ["the target died"])
    rss = [s.rss_kib for s in samples if s.rss_kib is not None]
    print(f"memory KiB: min={min(rss, default=0)} max={max(rss, default=0)} last={rss[-1] if rss else None}")
    last = samples[-1]
    print(f"ledger: region size={last.ledger_region_bytes} rollovers={last.ledger_epoch} "
          f"peak bytes in a region={max(s.ledger_bytes for s in samples)} last: region={last.ledger_region} "
          f"records={last.ledger_records} bytes={last.ledger_bytes}")
    print("BOUNDED" if not problems else "NOT BOUNDED: " + "; ".join(problems))
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
