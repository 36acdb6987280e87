"""The QEMU command line is built from the device manifest alone: one device per entry, nothing else."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from appliance import devices
from image import run

ROOT = Path(__file__).resolve().parents[2]


def command(network: run.Network, **kwargs: object) -> list[str]:
    manifest = run.load_manifest()
    return run.qemu_command(manifest, Path("/k/vmlinux-microvm"), Path("/k/initramfs.cpio"), Path("/k/data.img"),
                            network, accel="tcg", **kwargs)  # type: ignore[arg-type]


def values(cmd: list[str], flag: str) -> list[str]:
    return [cmd[i + 1] for i, word in enumerate(cmd) if word == flag]


def test_machine_and_safety_flags() -> None:
    cmd = command(run.parse_network("none"))
    assert values(cmd, "-M") == ["microvm,acpi=off,rtc=on"]
    for flag in ("-nodefaults", "-no-user-config", "-no-reboot"):
        assert flag in cmd
    assert values(cmd, "-accel") == ["tcg"]
    append = values(cmd, "-append")[0].split()
    assert {"console=ttyS0", "panic=-1", "reboot=t"} <= set(append)


def test_exactly_the_declared_devices() -> None:
    manifest = run.load_manifest()
    cmd = command(run.parse_network("user"))
    assert values(cmd, "-m") == [str(manifest.memory.mib)]
    assert sorted(d.split(",")[0] for d in values(cmd, "-device")) == [
        "virtio-blk-device", "virtio-net-device", "virtio-rng-device"]
    assert f"mac={manifest.net.mac}" in values(cmd, "-device")[0]
    assert len(values(cmd, "-drive")) == 1
    assert len(values(cmd, "-netdev")) == 1
    assert len(values(cmd, "-object")) == 1


def test_command_follows_a_changed_manifest(tmp_path: Path) -> None:
    document = json.loads((ROOT / "image" / "devices.json").read_text())
    document["devices"][0]["mib"] = 256
    document["devices"][1]["mac"] = "52:54:00:ab:cd:ef"
    manifest = devices.parse_manifest(json.dumps(document).encode())
    cmd = run.qemu_command(manifest, Path("k"), Path("i"), Path("d"), run.parse_network("none"), accel="tcg")
    assert values(cmd, "-m") == ["256"]
    assert "mac=52:54:00:ab:cd:ef" in " ".join(cmd)


def test_user_network_forwards_loopback_only() -> None:
    netdev = values(command(run.parse_network("user")), "-netdev")[0]
    assert netdev.count("hostfwd=") == 4
    for host, guest in ((8080, 80), (8443, 443), (10000, 10000), (10002, 10002)):
        assert f"hostfwd=tcp:127.0.0.1:{host}-:{guest}" in netdev
    assert "10001" not in netdev
    assert "restrict=on" in values(command(run.parse_network("none")), "-netdev")[0]
    tap = values(command(run.parse_network("tap:pin0")), "-netdev")[0]
    assert tap.startswith("tap,")
    assert "ifname=pin0" in tap
    assert "script=no" in tap


@pytest.mark.parametrize("spec", ["", "tap:", "bridge:br0", "users"])
def test_bad_network_spec_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="expected"):
        run.parse_network(spec)


def test_kernel_parameters_are_namespaced() -> None:
    append = values(command(run.parse_network("none"), parameters={"ip": "10.0.0.2/24"}), "-append")[0]
    assert "pinata.ip=10.0.0.2/24" in append.split()


def test_disk_created_once_at_the_declared_size(tmp_path: Path) -> None:
    manifest = run.load_manifest()
    disk = tmp_path / "run" / "data.img"
    assert run.ensure_disk(disk, manifest) is True
    assert disk.stat().st_size == manifest.block.mib * 1024 * 1024
    disk.write_bytes(b"ledger".ljust(disk.stat().st_size, b"\0"))
    assert run.ensure_disk(disk, manifest) is False
    assert disk.read_bytes()[:6] == b"ledger"
    with disk.open("r+b") as f:
        f.truncate(4096)
    with pytest.raises(ValueError, match="declares"):
        run.ensure_disk(disk, manifest)


def test_ready_line_announces_address_and_urls() -> None:
    ready = run.parse_event('{"t":1,"event":"ready","address":"bc1qexample","http":80}')
    assert ready is not None
    lines = run.announce(ready, run.parse_network("user"))
    assert lines[0] == "bitcoin address: bc1qexample"
    assert "http://127.0.0.1:8080/  (guest port 80)" in lines
    assert any("10001" in line and "tap" in line for line in lines)
    assert run.parse_event("Run /init as init process") is None
    assert run.parse_event("{not json") is None
    assert run.announce({"event": "ledger"}, run.parse_network("user")) == []


def test_kvm_probe_can_be_overridden(monkeypatch: pytest.MonkeyPatch) -> None:
    run.accelerator.cache_clear()
    monkeypatch.setenv("PINATA_ACCEL", "tcg")
    try:
        assert run.accelerator(Path("unused")) == "tcg"
    finally:
        run.accelerator.cache_clear()


def _probe_with(script: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seconds: float,
                device: bool = True) -> str:
    """run.accelerator's verdict when "QEMU" is a shell script and /dev/kvm is a file (present or not)."""
    fake_qemu = tmp_path / "qemu"
    fake_qemu.write_text(f"#!/bin/sh\n{script}\n")
    fake_qemu.chmod(0o755)
    kvm = tmp_path / "kvm"
    if device:
        kvm.write_bytes(b"")
    monkeypatch.delenv("PINATA_ACCEL", raising=False)
    monkeypatch.setattr(run, "QEMU", str(fake_qemu))
    monkeypatch.setattr(run, "KVM_DEVICE", str(kvm))
    monkeypatch.setattr(run, "KVM_PROBE_SECONDS", seconds)
    run.accelerator.cache_clear()
    try:
        return run.accelerator(tmp_path / "vmlinux-microvm")
    finally:
        run.accelerator.cache_clear()


@pytest.mark.parametrize(("script", "expected"), [
    ("exit 0", "kvm"),  # the floor booted and powered off: KVM works
    ("exit 1", "tcg"),  # QEMU aborted (the vCPU could not be set up)
    ("exec sleep 30", "tcg"),  # QEMU runs on with the guest stopped ("KVM internal error")
])
def test_kvm_probe_trusts_only_a_completed_boot(
    script: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _probe_with(script, tmp_path, monkeypatch, seconds=1.0) == expected


def test_kvm_probe_stops_at_the_first_complaint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failing KVM may stop the guest, say so on stderr and keep QEMU running: the probe must not wait out
    its time (every `make run` would pay it)."""
    started = time.monotonic()
    complaint = "echo 'KVM internal error. Suberror: 1' >&2; exec sleep 60"
    assert _probe_with(complaint, tmp_path, monkeypatch, seconds=60.0) == "tcg"
    assert time.monotonic() - started < 30


def test_kvm_probe_without_the_device_is_tcg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _probe_with("exit 0", tmp_path, monkeypatch, seconds=1.0, device=False) == "tcg"


def test_under_tcg_the_pit_is_the_tick_and_under_kvm_the_apic_timer_stays() -> None:
    """TCG has no TSC-deadline timer, so the kernel would calibrate the APIC timer for 25 PIT ticks; the
    PIT must then stay on the machine, since it becomes the only tick. KVM's -cpu host keeps its own. The
    init sections are kept (unmapped) under TCG only, where freeing them is slow, and the TSC (the host's
    there) is not judged against the ticks a busy host delays when the host's own is invariant."""
    manifest = run.load_manifest()
    tcg = values(command(run.parse_network("none")), "-append")[0].split()
    emulation_only = {"noapictimer", "no_timer_check", "keep_initmem", "tsc=reliable"}
    assert emulation_only - {"tsc=reliable"} <= set(tcg)
    assert ("tsc=reliable" in tcg) == run.host_tsc_invariant()
    assert "pit=off" not in values(command(run.parse_network("none")), "-M")[0]
    kvm = run.qemu_command(manifest, Path("k"), Path("i"), Path("d"), run.parse_network("none"), accel="kvm")
    assert not emulation_only & set(values(kvm, "-append")[0].split())
    assert not any(word.startswith("tsc_early_khz=") for word in values(kvm, "-append")[0].split())
    assert not {"noapictimer", "keep_initmem", "tsc=reliable"} & set(run.kernel_append().split())  # the domain's line


@pytest.mark.parametrize(("flags", "invariant"), [
    ("fpu tsc constant_tsc nonstop_tsc tsc_known_freq", True),
    ("fpu tsc constant_tsc", False),  # stops in deep sleep states
    ("fpu tsc nonstop_tsc", False),  # changes rate with the CPU's frequency
    ("fpu tsc", False),
])
def test_the_tsc_is_declared_reliable_only_when_the_hosts_is_invariant(tmp_path: Path, flags: str,
                                                                         invariant: bool) -> None:
    """A TCG guest reads the host's TSC: only a host TSC of one rate in every state, which the host's kernel
    itself keeps time by, may go unwatched."""
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\ncpu MHz\t\t: 2793.438\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
    clocksource = tmp_path / "current_clocksource"
    clocksource.write_text("tsc\n")
    assert run.host_tsc_invariant(cpuinfo, clocksource) is invariant
    assert ("tsc=reliable" in run.kernel_append(
        emulated=True, tsc_reliable=run.host_tsc_invariant(cpuinfo, clocksource)).split()) is invariant
    clocksource.write_text("kvm-clock\n")  # the host kernel keeps time by another clock (or found its TSC unstable)
    assert run.host_tsc_invariant(cpuinfo, clocksource) is False
    assert run.host_tsc_invariant(tmp_path / "absent", clocksource) is False
    assert run.host_tsc_invariant(cpuinfo, tmp_path / "absent") is False
