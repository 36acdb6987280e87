"""Opening the data disk at boot: the wallet key and the ledger, with every decision that could lose either
made before the first byte is written.

The order: the lock (in `Disk`), both header copies, the size, the ledger scan. Each of these may refuse
the boot with `DiskDamagedError`, and none of them writes. Only when all have passed are the repairs made:
a damaged or stale header copy rewritten from the good one, the ledger's findings recorded, the ledger
continued. A key is generated only on a provably blank disk (`Disk.is_blank`), never because a header
could not be read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

from appliance import bitcoin, secp256k1
from appliance.config import DISK_HEADER_BYTES, Limits
from appliance.disk import Disk
from appliance.disk_header import CopyState, DiskDamagedError, Header, Resolution
from appliance.ledger import Ledger, LedgerArea, Recovery, RecoveryReport
from appliance.ledger_record import Record, RecordError
from appliance.log import JsonLog
from appliance.sources import RandomSource
from appliance.wallet_key import public_key

ALL_LEGACY = 1 << 32
"""format_epoch while reading a format 1 disk: every generation on it was written without terminators."""
SECP256K1_ORDER = secp256k1.N
KEY_DRAWS = 8
"""Draws before `new_wallet_key` gives up: an honest source fails one in about 2**128, so eight failures
in a row mean the source is broken (all zeros, all ones), and a broken source must not make a key."""


class RandomSourceError(RuntimeError):
    """The random source gave no usable wallet key; nothing was written."""


def new_wallet_key(random: RandomSource) -> bytes:
    """A secp256k1 private key (1 <= k < order) drawn from the appliance's random source. Rejection, not
    reduction, so the key is uniform; a source that keeps giving out-of-range or short bytes is refused."""
    for _ in range(KEY_DRAWS):
        candidate = random(32)
        if len(candidate) == 32 and 0 < int.from_bytes(candidate, "big") < SECP256K1_ORDER:
            return candidate
    raise RandomSourceError(f"{KEY_DRAWS} draws from the random source gave no valid wallet key: refusing to make one")


@dataclass(frozen=True)
class Opened:
    """What a successful open hands the boot: the wallet key, the header as now written, the ledger ready to
    append, what recovery found, and whether the key was made on this boot (a provably blank disk). Its repr
    leaves the key out, as the header's does: a traceback's locals or a library's log line may print it."""

    secret: bytes = field(repr=False)
    header: Header
    ledger: Ledger
    report: RecoveryReport
    generated: bool


class StatsSink(Protocol):
    """What the ledger feeds and asks: appliance.stats.Stats satisfies it."""

    def initial(self) -> bytes: ...
    def replay(self, record: Record) -> None: ...
    def checkpoint(self) -> bytes: ...


def open_data_disk(disk: Disk, limits: Limits, stats: StatsSink, log: JsonLog, new_key: Callable[[], bytes]) -> Opened:
    """`new_key` makes the wallet key if (and only if) the disk is provably blank (`new_wallet_key` at boot)."""
    resolution = disk.resolve_header()
    header = resolution.header
    generated = False
    if header is None or header.key is None:
        region_bytes = header.region_bytes if header is not None else limits.ledger_region_bytes
        header, resolution = _first_key(disk, region_bytes, resolution, new_key, log)
        generated = True
    else:
        disk.check_fits(header)
    ledger = open_ledger(disk, header, resolution, limits)
    recovery = recover_ledger(ledger, header, stats.replay)
    # Every refusal is behind us: from here on, writes.
    if resolution.repair:
        legacy = resolution.legacy
        header = _repair(disk, header, resolution, recovery, log)
        if legacy:  # later boots read the generations this build writes with their terminators
            ledger = open_ledger(disk, header, disk.resolve_header(), limits)
    report = ledger.commit(recovery, stats.initial, stats.replay, stats.checkpoint)
    if not header.ledger_started:
        header = disk.write_header(replace(header, ledger_started=True))
    assert header.key is not None
    return Opened(header.key, header, ledger, report, generated)


def open_ledger(disk: Disk, header: Header, resolution: Resolution, limits: Limits) -> Ledger:
    """The ledger on this disk, read as its format requires (format 1 wrote no terminators): one place for
    the boot, `disk check`, `disk repair` and the soak's reader."""
    return Ledger(LedgerArea(disk, header.region_bytes), limits,
                  format_epoch=ALL_LEGACY if resolution.legacy else header.format_epoch)


def recover_ledger(ledger: Ledger, header: Header, consume: Callable[[Record], None]) -> Recovery:
    """`Ledger.recover`, with a checkpoint whose checksum holds but whose content the statistics cannot take
    (forged, or from a build that wrote another shape) turned into a refusal: nothing is written."""
    try:
        return ledger.recover(consume, started=header.ledger_started)
    except RecordError as exc:
        raise DiskDamagedError(
            f"a ledger checkpoint passes its checksum but is not statistics this build can read ({exc}); nothing "
            "was written. Keep a copy of the disk and run `python -m appliance disk check` on it") from exc


def _first_key(disk: Disk, region_bytes: int, resolution: Resolution, new_key: Callable[[], bytes],
               log: JsonLog) -> tuple[Header, Resolution]:
    """A header without a key (none at all, or a provisioned layout with the key not yet written)."""
    written = _write_key(disk, resolution, region_bytes, new_key)
    log.event("key-generated", region_bytes=written.region_bytes)
    return written, disk.resolve_header()


def _write_key(disk: Disk, resolution: Resolution, region_bytes: int, secret: Callable[[], bytes]) -> Header:
    """Put a key on a disk that has none, after proving it holds nothing a key could be written over: the
    one path by which a key reaches a disk, for the first boot and for `provision` alike. `region_bytes`
    is used only when the disk has no header yet. Raises DiskDamagedError, having written nothing."""
    header = resolution.header
    if header is None and not disk.is_blank(region_bytes):
        first = disk.first_nonzero(0, disk.size())
        what = "the file is shorter than the layout" if first is None else f"data at byte {first}"
        raise DiskDamagedError(
            f"both header copies are blank, but the disk is not ({what}): the header was wiped or the disk is not "
            "a Piñata disk, and a new key would be written over a record that may guard funds. Nothing was "
            "written. Keep the disk; run `python -m appliance disk check` on a copy; to start afresh on purpose, "
            "use a new disk (see the README)")
    if header is not None and header.ledger_started:
        raise DiskDamagedError("the disk header has no key but says its ledger was started: nothing was written")
    if header is not None:  # a provisioned layout without its key: the ledger part must be as blank
        first = disk.first_nonzero(DISK_HEADER_BYTES, min(disk.size(), header.layout_bytes()))
        if first is not None:
            raise DiskDamagedError(
                f"the disk header has no key, but the ledger part of the disk holds data (byte {first}): a key "
                "will not be made over a used disk. Nothing was written; run `python -m appliance disk check`")
    fresh = Header(header.region_bytes if header is not None else region_bytes, secret())
    disk.check_fits(fresh)
    disk.extend(fresh.layout_bytes())
    return disk.write_header(fresh)


def _repair(disk: Disk, header: Header, resolution: Resolution, recovery: Recovery, log: JsonLog) -> Header:
    damaged = {i: (c.state.value, c.reason) for i, c in enumerate(resolution.copies) if i in resolution.repair}
    if resolution.legacy:
        # Format 1: the generation now active was written without terminators; later ones will have them.
        header = replace(header, format_epoch=recovery.epoch + 1 if not recovery.new else 0,
                         ledger_started=not recovery.new)
        disk.extend(header.layout_bytes())  # format 1 files grew as written; from now on, short means truncated
    written = disk.write_header(header)
    for slot, (state, reason) in damaged.items():
        log.event("disk-header-repaired", copy=slot, was=state, reason=reason, generation=written.generation,
                  upgraded=resolution.legacy and state == CopyState.LEGACY.value)
    return written


class AlreadyProvisionedError(Exception):
    """Provisioning refuses to overwrite a key: it may guard real money."""


def provision(disk: Disk, secret: bytes, region_bytes: int) -> bytes:
    """Write `secret` (imported, or from `new_wallet_key`) to a disk that holds no key; returns the key's
    public P2WPKH address. A disk with a readable key, or one that is not provably blank, is refused unchanged."""
    resolution = disk.resolve_header()
    if resolution.header is not None and resolution.header.key is not None:
        raise AlreadyProvisionedError(f"{disk.path} already holds a wallet key")
    public = public_key(secret)  # refuses (InvalidWalletKeyError) a secret that is not a key, before any write
    _write_key(disk, resolution, region_bytes, lambda: secret)
    return bitcoin.p2wpkh_address(public).encode("ascii")
