"""The data disk's fault matrix against the booted image, for the cases a VM can see (issue 14).

One boot on a provisioned disk puts traffic in the ledger; a second QEMU is started on the same disk while it
runs. Its disk, once the VM is stopped, is the base every case damages a copy of:
- header block zeroed: the VM refuses (a `fatal` event naming the header), powers off, writes nothing;
- one bit flipped in the active region's checkpoint: the VM boots with the old key, reports `damaged` (loss
  within the reported bound) on its console and in /stats.json, and leaves the damaged bytes on the disk;
- one header copy damaged: the VM boots with the old key and repairs the copy from the other;
- lock: a second VM on a running disk fails to start (QEMU's own image lock), and a second host instance
  on a disk another host instance holds exits with a fatal error; either way the disk is byte-identical.

Each case is one boot (under TCG, a few seconds). Waits are bounded: polling for an event, never a sleep.
Each case leaves its console log and its figures (outcome, records lost reported and actual) in
build/integration/data-disk/CASE/.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from appliance import bitcoin
from appliance import ledger_record as rec
from appliance.config import DISK_HEADER_BYTES
from appliance.disk import Disk
from appliance.disk_header import SLOTS, CopyState
from appliance.ledger import DAMAGED, TORN_TAIL
from image import run
from tests import netns
from tests.integration.conftest import ARTEFACTS
from tests.integration.lab import (
    ATTACKER_IPS,
    KNOWN_ADDRESS,
    KNOWN_WIF,
    READY_TIMEOUT,
    ROOT,
    Console,
    DiskLedger,
    Lab,
    image_command,
    lab,
    launch,
    read_all,
    read_ledger,
    stop,
)

pytestmark = [pytest.mark.netns, pytest.mark.qemu]

HTTP_GETS = ("/", "/stats.json", "/ca.pem", "/", "/manifest.txt", "/")
GARBAGE = b"please give key\r\n"
GARBAGE_CONNECTIONS = 4
SYNC_TIMEOUT = 60.0  # the ledger syncs within ledger_batch_seconds (0.5 s of guest time) of an event
EXIT_TIMEOUT = 60.0  # a refused boot powers off in a few seconds under TCG
POLL = 0.2
# A bit in the checkpoint's statistics (JSON), past its frame header and record prefix: the CRC no longer holds.
CHECKPOINT_FLIP = DISK_HEADER_BYTES + rec.FRAME.size + rec.PREFIX.size + 5
# A bit in header copy 0's region-size field (after magic and generation).
HEADER_COPY_FLIP = SLOTS[0] + 8 + 8 + 2


@dataclass(frozen=True)
class UsedDisk:
    """The disk the first boot left, and what happened while it ran."""

    path: Path  # kept unchanged: each case damages a copy
    ledger: DiskLedger  # read with the appliance's recovery
    directory: Path  # where the image is built once for every boot of the module
    second_vm: Bounded  # a second QEMU started on the running disk
    second_vm_left_disk_unchanged: bool


@dataclass(frozen=True)
class Bounded:
    """How a command that should fail at once ended: its status (None: still running when it was stopped)."""

    status: int | None
    output: str


def run_bounded(command: list[str], timeout: float = EXIT_TIMEOUT) -> Bounded:
    process, console = launch(command)
    try:
        status: int | None = process.wait(timeout)
    except subprocess.TimeoutExpired:
        status = None
    finally:
        stop(process)
    console.ended.wait(timeout)
    return Bounded(status, console.text())


def _note(case: str, console: str, **figures: object) -> None:
    """The case's console and figures, for the issue's closing table."""
    directory = ARTEFACTS / "data-disk" / case
    directory.mkdir(parents=True, exist_ok=True)
    if console:
        (directory / "console-image.log").write_text(console)
    (directory / "result.json").write_text(json.dumps({"case": case, **figures}, indent=1) + "\n")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def flip_bit(path: Path, offset: int, bit: int = 0x10) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ bit]))


def zero(path: Path, offset: int, length: int) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(bytes(length))


def _traffic(target: Lab) -> None:
    """HTTP pages from the namespace's own address and garbage to the mutual-TLS port from attackers."""
    for path in HTTP_GETS:
        status, _ = target.http_get(path)
        assert status == 200, path
    for n in range(GARBAGE_CONNECTIONS):
        with target.connect(10000, ATTACKER_IPS[n]) as sock:
            sock.sendall(GARBAGE)
            target.received(read_all(sock))


def _wait_synced(target: Lab, scratch: Path, connections: int) -> DiskLedger:
    """Poll the disk (a copy, read with the appliance's recovery) until it holds `connections` events."""
    assert target.disk is not None
    deadline = time.monotonic() + SYNC_TIMEOUT
    while True:
        reading = read_ledger(target.disk, scratch)
        if reading.connections >= connections or time.monotonic() > deadline:
            return reading
        time.sleep(POLL)


@pytest.fixture(scope="module")
def used_disk(tmp_path_factory: pytest.TempPathFactory) -> UsedDisk:
    if not netns.available():
        pytest.skip("needs root, network namespaces and /dev/net/tun")
    directory = tmp_path_factory.mktemp("data-disk")
    with lab("image", directory, ARTEFACTS / "data-disk" / "first-boot") as target:
        assert target.console.events("ready")[0]["address"] == KNOWN_ADDRESS
        assert target.console.events("ledger")[0]["outcome"] == "new"
        _traffic(target)
        # A connection is recorded once its close is done, which can be after its client has read the end of
        # stream and moved on: wait for the disk to hold all of the traffic before the stats page is asked.
        traffic = len(HTTP_GETS) + GARBAGE_CONNECTIONS
        reading = _wait_synced(target, directory, traffic)
        assert reading.connections == traffic, "the ledger on the disk does not hold what the appliance served"
        assert int(str(target.stats()["connections"])) == traffic, "the stats page and the ledger disagree"
        reading = _wait_synced(target, directory, traffic + 1)  # the stats request, recorded after its answer
        assert reading.connections == traffic + 1, "the ledger on the disk does not hold what the appliance served"
        assert target.disk is not None
        before = digest(target.disk)
        second_vm = run_bounded(image_command(directory, target.disk, run.Network("none")))
        unchanged = digest(target.disk) == before
        assert target.alive(), "the first VM died while a second one was started on its disk"
        disk = target.disk
    base = directory / "base.img"
    shutil.copyfile(disk, base)
    return UsedDisk(base, read_ledger(base, directory), directory, second_vm, unchanged)


def _copy(used: UsedDisk, tmp_path: Path) -> Path:
    disk = tmp_path / "data.img"
    shutil.copyfile(used.path, disk)
    return disk


def _boot_to_exit(used: UsedDisk, disk: Path) -> tuple[int, Console]:
    """Boot the image on `disk` (no network reachable) and wait, bounded, for QEMU to end by itself."""
    process, console = launch(image_command(used.directory, disk, run.Network("none")))
    try:
        code = process.wait(READY_TIMEOUT)
    finally:
        stop(process)
    console.ended.wait(EXIT_TIMEOUT)
    return code, console


def test_the_first_boot_left_a_ledger_of_its_traffic(used_disk: UsedDisk) -> None:
    counts = used_disk.ledger.stats.counts
    assert counts["http"].get("served", 0) >= len(HTTP_GETS)
    assert counts["mutual"].get("not-tls", 0) == GARBAGE_CONNECTIONS
    assert used_disk.ledger.header.ledger_started
    assert used_disk.ledger.recovery.region == 0


def test_a_second_vm_on_a_running_disk_fails_to_start_and_leaves_it_unchanged(used_disk: UsedDisk) -> None:
    result = used_disk.second_vm
    output = result.output
    _note("second-vm", output, outcome="refused" if result.status else "started", exit_status=result.status,
          disk_unchanged=used_disk.second_vm_left_disk_unchanged)
    assert result.status is not None, "the second VM was still running:\n" + output[-2000:]
    assert result.status != 0, output[-2000:]
    assert "lock" in output.lower(), output[-2000:]
    assert '"event":"ready"' not in output
    assert used_disk.second_vm_left_disk_unchanged


def test_zeroed_header_refuses_the_boot_and_writes_nothing(used_disk: UsedDisk, tmp_path: Path) -> None:
    disk = _copy(used_disk, tmp_path)
    zero(disk, 0, DISK_HEADER_BYTES)
    before = digest(disk)
    code, console = _boot_to_exit(used_disk, disk)
    fatal = console.events("fatal")
    _note("zeroed-header", console.text(), outcome="refused", error=fatal[0]["error"] if fatal else None)
    assert fatal, console.text()[-3000:]
    assert "header" in str(fatal[0]["error"])
    assert not console.events("ready")
    assert not console.events("key-generated")
    assert console.events("pid1.poweroff")
    assert code == 0  # the guest powered off (a reboot request under -no-reboot), QEMU was not killed
    assert digest(disk) == before


def test_checkpoint_bit_flip_boots_the_old_key_and_reports_the_damage(used_disk: UsedDisk, tmp_path: Path) -> None:
    disk = _copy(used_disk, tmp_path)
    flip_bit(disk, CHECKPOINT_FLIP)
    damaged = disk.read_bytes()
    before = read_ledger(disk, tmp_path)  # the same recovery, read-only: where the readable records end
    append_at = before.recovery.append_at
    assert before.recovery.region == 0
    with lab("image", used_disk.directory, ARTEFACTS / "data-disk" / "checkpoint-flip", disk=disk) as target:
        assert target.console.events("ready")[0]["address"] == KNOWN_ADDRESS
        assert not target.console.events("key-generated")
        ledger = target.console.events("ledger")[0]
        findings = target.console.events("ledger-damaged")
        stats = target.stats()  # the first connection of this boot: the totals recovery rebuilt
    actual_lost = used_disk.ledger.connections - int(str(stats["connections"]))
    _note("checkpoint-flip", "", outcome=ledger["outcome"], lost=ledger["lost"], lost_bound=ledger["lost_bound"],
          actual_lost=actual_lost, findings=findings)
    assert ledger["outcome"] == DAMAGED, ledger
    assert 0 <= int(str(ledger["lost"])) <= actual_lost <= int(str(ledger["lost_bound"])), (ledger, actual_lost)
    assert int(str(ledger["findings"])) >= 1
    assert any(f["region"] == 0 and f["start"] == 0 for f in findings), findings
    integrity = stats["ledger"]
    assert isinstance(integrity, dict)
    assert integrity["damaged"] >= 1
    assert integrity["boot_recovery"]["outcome"] == DAMAGED
    assert any(f["kind"] == "damaged" and f["region"] == 0 and f["start"] == 0 for f in integrity["findings"])
    # The damaged bytes, and everything before the point where recovery resumed appending, are still there.
    after = disk.read_bytes()
    end = DISK_HEADER_BYTES + append_at
    assert after[:end] == damaged[:end]
    assert after[CHECKPOINT_FLIP] != used_disk.path.read_bytes()[CHECKPOINT_FLIP]


def test_one_damaged_header_copy_is_repaired_from_the_other(used_disk: UsedDisk, tmp_path: Path) -> None:
    disk = _copy(used_disk, tmp_path)
    flip_bit(disk, HEADER_COPY_FLIP)
    with lab("image", used_disk.directory, ARTEFACTS / "data-disk" / "header-copy-flip", disk=disk) as target:
        assert target.console.events("ready")[0]["address"] == KNOWN_ADDRESS
        assert target.console.events("started")[0]["key_generated"] is False
        repaired = target.console.events("disk-header-repaired")
        ledger = target.console.events("ledger")[0]
    _note("header-copy-flip", "", outcome=ledger["outcome"], lost=ledger["lost"], lost_bound=ledger["lost_bound"],
          repaired=repaired)
    assert [event["copy"] for event in repaired] == [0], repaired
    assert ledger["outcome"] in ("clean", TORN_TAIL), ledger  # the VM's stop is a power loss: a torn tail at most
    handle = Disk(disk, read_only=True)
    try:
        resolution = handle.resolve_header()
    finally:
        handle.close()
    assert [c.state for c in resolution.copies] == [CopyState.VALID, CopyState.VALID]
    assert resolution.header is not None
    assert resolution.header.key == bitcoin.wif_decode(KNOWN_WIF)
    assert resolution.header.generation > used_disk.ledger.header.generation


@pytest.fixture
def namespace() -> Iterator[str]:
    with netns.namespace("pind") as ns:
        yield ns


def test_a_second_host_instance_is_refused_while_one_holds_the_disk(
    used_disk: UsedDisk, tmp_path: Path, namespace: str
) -> None:
    disk = _copy(used_disk, tmp_path)
    command = ["ip", "netns", "exec", namespace, sys.executable, "-m", "appliance", "--net", "kernel",
               "--host", "127.0.0.1", "--port-offset", "8000", "--disk", str(disk), "--tls", "ours"]
    first, console = launch(command)
    try:
        ready = console.wait_for("ready", lambda: first.poll() is None, READY_TIMEOUT)
        assert ready["address"] == KNOWN_ADDRESS
        before = digest(disk)
        second = run_bounded(command)
        check = subprocess.run([sys.executable, "-m", "appliance", "disk", "check", str(disk)], capture_output=True,
                               timeout=EXIT_TIMEOUT, cwd=ROOT, check=False)
        unchanged = digest(disk) == before
        assert first.poll() is None, console.text()[-3000:]
    finally:
        stop(first)
    output = second.output
    _note("second-host-instance", console.text() + "\n----- the second instance -----\n" + output,
          outcome="refused" if second.status else "started", exit_status=second.status,
          disk_check_exit_status=check.returncode, disk_unchanged=unchanged)
    assert second.status is not None, "the second instance was still running:\n" + output[-2000:]
    assert second.status != 0, output
    assert '"event":"fatal"' in output, output
    assert "lock" in output, output
    assert '"event":"ledger"' not in output  # refused before recovery read anything
    assert '"event":"ready"' not in output
    assert check.returncode == 2, check.stdout.decode()  # the operator's read-only tool: cannot open, in use
    assert unchanged
