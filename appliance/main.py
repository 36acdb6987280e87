"""`python -m appliance`: boot the bounty; `python -m appliance provision`: put a wallet key on a disk.

Boot order matters for the secret: the disk (vault and ledger) is opened and verified first, then the
interface comes up (its DHCP exchange runs while the rest is built, listening on no port), then the boot PKI
is made (its CA key lives only in this process, and only until the leaves are issued), then the network
starts listening. The server roles' RSA leaves, whose key is the slow part of the PKI, are issued
just after, in the background (appliance.alternates); handshakes on the TLS server ports wait for them,
plain HTTP and the TLS client roles do not.
A fatal error before "ready" exits non-zero (as PID 1 the image's init turns that into a clean power-off).

This is the composition root: the one place that imports every part directly, names the operating
system's clocks and randomness (`SYSTEM`), and decides which part gets which capability (`assemble`).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from appliance import deferred_imports, method_cache
from appliance import pki as boot_pki
from appliance.bitcoin import BitcoinFormatError, wif_decode
from appliance.config import DEFAULT_LIMITS, LimitError, Limits, Ports, describe, override
from appliance.counted_lines import on_loop
from appliance.data_disk import (
    AlreadyProvisionedError,
    RandomSourceError,
    new_wallet_key,
    open_data_disk,
    provision,
)
from appliance.disk import Disk, DiskError
from appliance.identities import ServerIdentities
from appliance.in_thread import made_in_thread
from appliance.library_log import LibraryLog, route_library_logs
from appliance.log import JsonLog
from appliance.net import (
    DEFAULT_KERNEL_HOSTS,
    KernelNetwork,
    Network,
    NetworkStartError,
    ipv6_addressing,
    parse_hosts,
    parse_net_spec,
    userspace_network,
)
from appliance.ours_tls import OursFactory
from appliance.pki import IssuedPKI, PendingAlternates
from appliance.service import Appliance
from appliance.sources import Sources
from appliance.stats import Stats
from appliance.stop_signals import stop_on_signals
from appliance.tls_engine import EngineFactory
from appliance.validation import BootCaValidator
from appliance.vault import Vault
from appliance.wallet_key import InvalidWalletKeyError, public_key
from appliance.web import Site

PACKAGE_DIR = Path(__file__).resolve().parent
PRODUCTION_MARKER = PACKAGE_DIR / "PRODUCTION"
"""The image builder writes this file into the image's copy of the package: its presence (or running as
PID 1) makes this a production boot, which refuses test material and the comparison engines."""
MANIFEST_CANDIDATES = (PACKAGE_DIR.parent / "manifest.txt", Path("/manifest.txt"))
DEFAULT_TLS = "ours"
SYSTEM = Sources(wall=time.time, monotonic=time.monotonic, random=os.urandom)
"""The service's only clocks and randomness: every part gets them from here, through `assemble`."""


class FatalBootError(Exception):
    """Boot cannot continue; the message says why (never contains key material)."""


def is_production() -> bool:
    return os.getpid() == 1 or PRODUCTION_MARKER.exists()


@dataclass(frozen=True)
class Options:
    """The service's command line, parsed once (`parse_run_args`) and checked against the production policy
    (`check_policy`) before the disk or a network is touched."""

    net: str
    host: str
    port_offset: int
    disk: Path
    tls: str
    test_pki: Path | None
    manifest: Path | None
    limit_overrides: tuple[str, ...] = ()
    ip: str | None = None
    ip6: str | None = None


def parse_run_args(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(prog="python -m appliance", description="Run the Piñata bounty.")
    parser.add_argument("--net", default="kernel", help="kernel, tap:IF or packet:IF (default kernel)")
    parser.add_argument(
        "--host", default=DEFAULT_KERNEL_HOSTS,
        help=f"with --net kernel: the address(es) to listen on, comma-separated (default {DEFAULT_KERNEL_HOSTS})",
    )
    parser.add_argument(
        "--ip", help="with tap:/packet:: dhcp or A.B.C.D/N[,gw=G] (default: the kernel command line's ip=, else DHCP)"
    )
    parser.add_argument(
        "--ip6", help="with tap:/packet:: auto, off or ADDR/LEN[,gw=G] (default: the kernel command line's ip6=, "
        "else auto: SLAAC)",
    )
    parser.add_argument("--port-offset", type=int, default=0, help="shift every port, 40001 included")
    parser.add_argument("--disk", type=Path, required=True, help="the data disk (block device or file)")
    parser.add_argument("--tls", choices=("ours", "stdlib"), default=DEFAULT_TLS, help="TLS engine")
    parser.add_argument("--test-pki", type=Path, help="TEST ONLY: write the boot PKI (CA key included) here")
    parser.add_argument("--manifest", type=Path, help="manifest.txt to serve (default: the build's copy)")
    parser.add_argument(
        "--limit", action="append", default=[], metavar="NAME=VALUE",
        help="TEST ONLY: override one of appliance.config.Limits (e.g. handshake_timeout=1)",
    )
    args = parser.parse_args(argv)
    return Options(
        args.net, args.host, args.port_offset, args.disk, args.tls, args.test_pki, args.manifest, tuple(args.limit),
        args.ip, args.ip6,
    )


def apply_limit_overrides(limits: Limits, overrides: tuple[str, ...]) -> Limits:
    """Tests shorten timeouts and shrink limits to reach them quickly: `PATH=VALUE`, PATH a leaf of the tree
    (appliance.config.override); a value keeps the leaf's type."""
    for item in overrides:
        path, _, text = item.partition("=")
        if not text:
            raise FatalBootError(f"--limit {item!r}: not a PATH=VALUE of appliance.config.Limits")
        try:
            limits = override(limits, path, text)
        except LimitError as exc:
            raise FatalBootError(f"--limit {item!r}: {exc}") from exc
    return limits


def check_policy(options: Options, production: bool) -> None:
    if not production:
        return
    if options.test_pki is not None:
        raise FatalBootError("--test-pki is refused in a production image: it would export the CA key")
    if options.limit_overrides:
        raise FatalBootError("--limit is refused in a production image: the limits are part of the build")
    if options.tls != "ours":
        raise FatalBootError("production always uses our TLS engine")
    if options.net == "kernel":
        raise FatalBootError("production always uses our network stack")


async def make_network(options: Options, limits: Limits, sources: Sources) -> Network:
    if options.net == "kernel":
        return KernelNetwork(options.host)
    return await userspace_network(options.net, options.ip, sources.random, limits, options.ip6)


def make_engines(kind: str, pki: IssuedPKI, sources: Sources, limits: Limits = DEFAULT_LIMITS) -> EngineFactory:
    """`ours` (production) or `stdlib` (benchmarks and reference runs); an unknown kind fails loudly. Ours
    enforces `limits.tls`; OpenSSL has its own."""
    if kind == "ours":
        return OursFactory(pki.ca_der, sources, limits.tls)
    if kind == "stdlib":
        from appliance.stdlib_tls import StdlibFactory  # noqa: PLC0415 - `ssl` loads only on request

        return StdlibFactory(pki)
    raise ValueError(f"unknown TLS engine {kind!r} (ours, stdlib)")


def issue_boot_pki(sources: Sources, test_pki: Path | None, log: JsonLog) -> tuple[IssuedPKI, PendingAlternates]:
    """Make the boot PKI, export it in test mode, and keep only what outlives the boot: the leaves and the
    CA certificate, and the one-shot issuer of the two RSA leaves still to come (appliance.alternates), which
    holds the CA key until it has signed them. The `BootPKI` itself is unreachable once this returns (DESIGN.md
    rule 5): export is the one other use of the CA key, so it happens here."""
    pki, pending = boot_pki.begin(sources.now(), sources.random)
    if test_pki is not None:
        boot_pki.export(pki, test_pki)
        log.event("test-pki-exported", directory=str(test_pki))
    return pki.issued(), pending


def read_manifest(explicit: Path | None) -> bytes | None:
    for path in (explicit,) if explicit is not None else MANIFEST_CANDIDATES:
        if path.is_file():
            return path.read_bytes()
    return None


async def assemble(
    *,
    disk: Disk,
    network: Network | Callable[[], Awaitable[Network]],
    tls: str,
    limits: Limits,
    ports: Ports,
    log: JsonLog,
    manifest: bytes | None,
    sources: Sources,
    test_pki: Path | None = None,
) -> Appliance:
    """Disk first (vault and ledger verified), then the interface, then the boot PKI, then the listeners: the
    boot order of the module docstring. `network` may be a factory so that a bad disk fails before any
    interface opens, and one that this function opened is closed again if the boot fails after it. Why the
    interface before the PKI, and the PKI on a thread: the address (DHCP) takes round trips, which the loop
    then answers while the PKI is made, instead of after ready, where they were the last 35 ms before the
    first page under TCG.

    Who gets what (DESIGN.md rule 5): the wallet key goes into the vault and nowhere else; the endpoints get
    the vault (release), the web pages a prover (addresses, proofs); the CA key is dropped once the leaves
    are issued, the last two (RSA) by the `PendingAlternates` that alone holds it until then; the ledger sees
    its two regions of the disk, not the header."""
    stats = Stats(limits, sources.random)
    opened = open_data_disk(disk, limits, stats, log, lambda: new_wallet_key(sources.random))
    secret, ledger, report, generated = opened.secret, opened.ledger, opened.report, opened.generated
    del opened
    stats.boot_recovery = report.as_log()
    log.event("ledger", **report.as_log())
    for finding in report.findings:
        log.event("ledger-torn-tail" if finding.torn else "ledger-damaged",
                  region=finding.region, epoch=finding.epoch, start=finding.start, end=finding.end,
                  records=finding.records, bound=finding.bound, totals_kept=finding.totals_kept,
                  sample=finding.sample.hex())
    net = network if not callable(network) else await network()
    try:
        net.watch_addresses(lambda addresses: log.event("address", **addresses.fields()),
                            limits.log_address_seconds)
        # Made on a thread of its own, so that the loop answers the interface meanwhile (its DHCP offer and ack).
        pki, pending = await made_in_thread(lambda: issue_boot_pki(sources, test_pki, log), None,
                                            name="pinata-boot-pki")
        validator = BootCaValidator(pki.ca_der, limits.tls.x509)  # the bounds our engine applied, again
        vault = Vault(secret, validator)
        del secret
        alternates: PendingAlternates | None = pending
        if tls != "ours":  # the stdlib engine loads every certificate into OpenSSL as it is made: all of them now
            pki, alternates = pki.with_alternates(pending.issue(boot_pki.new_rsa_key())), None
        del pending
        identities = ServerIdentities(pki, settled=alternates is None)
        engines = make_engines(tls, pki, sources, limits)
        mode = f"net={net.name} tls={engines.name} x509={validator.name}"
        site = Site(vault.prover(), pki.ca_pem, stats, manifest, ports, limits, mode, net.counters)
        appliance = Appliance(net, engines, identities, vault, stats, ledger, site, limits, ports, log, sources)
        await appliance.start(alternates)  # the RSA leaves follow in the background; the CA key goes with them
    except BaseException:
        if callable(network):  # ours to close: a boot that fails once the interface is up leaves none open
            await net.close()
        raise
    del alternates
    log.event("started", address=vault.address_p2wpkh, key_generated=generated, mode=mode)
    return appliance


def settle_imports() -> None:
    """Start of the run, before any secret exists (the wallet key, the PKI): move everything the imports made
    out of the collector's sight, as it is.

    Boot allocates tens of thousands of objects that live for ever (modules, classes, functions: 52,000
    tracked ones on the host): collecting while they are made is wasted work (`python -m appliance` and
    PID 1 start with the collector off; measured on the host, 6-8% of the import time), and a full
    collection that walks them all cost 50-60 ms of the VM's boot, each time. Frozen, they are never
    scanned again. Why no collection first: the only cyclic garbage the imports leave is the standard
    library's (pure-Python stand-ins replaced by their C versions, classes `IntEnum._convert_` rebuilt:
    565 objects, about 300 KB on the host), made before anything secret exists; it is kept, and the
    collection that would free it is the boot's largest single step after the imports. A process that runs
    with the collector on (the tests, which call `run` in-process) manages its own heap: nothing is frozen."""
    if not gc.isenabled():
        gc.freeze()


def settle_heap() -> None:
    """End of boot: collect what the boot made since `settle_imports` (the secrets' garbage among it: a cycle
    holding a key is freed here, never frozen), freeze what is still alive, and turn collection on. Later
    collections walk only what connections allocate."""
    gc.collect()
    gc.freeze()
    gc.enable()


async def run(options: Options, log: JsonLog, sources: Sources, limits: Limits = DEFAULT_LIMITS) -> None:
    settle_imports()
    started = sources.monotonic()
    check_policy(options, is_production())
    limits = apply_limit_overrides(limits, options.limit_overrides)
    log.event("limits", **describe(limits))  # the whole tree this run enforces, overrides included
    unroute = route_library_logs(LibraryLog(log, lines_per_second=limits.log_library_lines_per_second,
                                            text_chars=limits.log_library_text_chars,
                                            traceback_sites=limits.log_library_traceback_sites,
                                            monotonic=sources.monotonic,
                                            schedule=on_loop(asyncio.get_running_loop())))
    try:
        await _run_routed(options, log, sources, limits, started)
    finally:
        unroute()


async def _run_routed(options: Options, log: JsonLog, sources: Sources, limits: Limits, started: float) -> None:
    """The run, once the libraries' records go to `log` (appliance.library_log)."""
    ports = Ports().shifted(options.port_offset)
    if options.net != "kernel":
        parse_net_spec(options.net)  # a typo fails before the disk is touched
        if options.ip6 is not None:
            ipv6_addressing(options.ip6)  # and so does a malformed --ip6
    else:
        parse_hosts(options.host)
    disk = Disk(options.disk)
    appliance = await assemble(
        disk=disk, network=lambda: make_network(options, limits, sources), tls=options.tls, limits=limits, ports=ports,
        log=log, manifest=read_manifest(options.manifest), sources=sources, test_pki=options.test_pki,
    )
    log.event(
        "ready", address=appliance.vault.address_p2wpkh, mode=appliance.site.mode,
        http=ports.http, https=ports.https, mutual=ports.mutual, callback=ports.callback, reverse=ports.reverse,
        boot_seconds=round(sources.monotonic() - started, 4), **method_cache.report(), **deferred_imports.report(),
    )
    settle_heap()
    stop = asyncio.Event()
    restore = stop_on_signals(stop)
    try:  # a second signal during the shutdown sets the event again, and nothing more
        await stop.wait()
        await appliance.stop()
        disk.close()
    finally:
        restore()
    log.event("stopped")


def provision_main(argv: list[str], log: JsonLog, sources: Sources) -> int:
    parser = argparse.ArgumentParser(prog="python -m appliance provision", description="Put a wallet key on a disk.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--wif", help="import this WIF (compressed-key, mainnet)")
    source.add_argument("--generate", action="store_true", help="generate a fresh key")
    parser.add_argument("--disk", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        secret = wif_decode(args.wif) if args.wif is not None else new_wallet_key(sources.random)
        public_key(secret)  # a WIF that is not a key is refused before the disk file is made
        disk = Disk(args.disk)
        try:
            address = provision(disk, secret, DEFAULT_LIMITS.ledger_region_bytes)
        finally:
            disk.close()
    except (BitcoinFormatError, InvalidWalletKeyError, AlreadyProvisionedError, RandomSourceError, DiskError,
            OSError) as exc:
        log.event("provision-failed", error=str(exc) if not isinstance(exc, BitcoinFormatError) else "invalid WIF")
        return 1
    log.event("provisioned", disk=str(args.disk), address=address.decode("ascii"))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    log = JsonLog(clock=SYSTEM.wall)
    if argv[:1] == ["provision"]:
        return provision_main(argv[1:], log, SYSTEM)
    if argv[:1] == ["disk"]:
        from appliance.disk_check import disk_main  # noqa: PLC0415 - an operator's tool, kept off the boot path

        return disk_main(argv[1:])
    options = parse_run_args(argv)
    try:
        asyncio.run(run(options, log, SYSTEM))
    except (FatalBootError, NetworkStartError, DiskError, ValueError, OSError) as exc:
        log.event("fatal", error=str(exc))
        return 2
    return 0
