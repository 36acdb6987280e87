"""Boot the image under QEMU (TCG here): PID 1 mounts, checks the devices, logs JSON lines to the serial
console and powers the VM off; a machine that differs from the manifest is refused and powered off.

The `smoke` initramfs (image.build) runs PID 1's duties, then imports every project module and
exercises the native extensions, the hardware RNG, the data disk and asyncio inside the VM: a module
missing from the trimmed stdlib, a library missing from the image or a broken device shows up here.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from appliance import devices, module_bundle
from image import build, cpio, rootfs
from image.manifest import read_lock
from tests.image.vm import boot, command, remove_device

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.qemu
def test_image_boots_checks_devices_and_powers_off(smoke_image: build.Image, tmp_path: Path) -> None:
    result = boot(command(smoke_image, tmp_path / "data.img"))
    names = result.names()
    assert names[:3] == ["pid1.start", "pid1.mounted", "pid1.devices"], result.lines[-30:]
    assert result.first("pid1.devices")["ok"] is True
    assert result.first("pid1.devices")["mac"] == "52:54:00:12:34:56"
    assert result.first("smoke.imports")["failed"] == ""
    assert int(str(result.first("smoke.imports")["modules"])) > 50
    # every dataclass method came compiled from the build (appliance.method_cache): none was compiled here
    assert int(str(result.first("smoke.imports")["methods_built"])) > 500
    assert result.first("smoke.imports")["methods_compiled"] == 0
    # the deferred stdlib modules ran in the VM (their own imports are in the image), after the imports left them
    assert result.first("smoke.imports")["deferred_unrun"] == ""
    ok = result.first("smoke.ok")
    assert ok["hwrng_bytes"] == 16
    assert ok["disk_bytes"] == 16 * 1024 * 1024
    assert ok["asyncio"] is True
    assert ok["initmem"] == "kept"  # TCG's kernel line asks for it (keep_initmem), our patched kernel obliges
    assert names[-1] == "pid1.poweroff"
    assert result.returncode == 0  # QEMU ended because the guest asked (-no-reboot), not a crash
    assert not any("Kernel panic" in line for line in result.lines)
    # the microvm kernel has no PCI (the machine has none): no "PCI: Fatal: No config space access function"
    assert not any("PCI" in line for line in result.lines), [line for line in result.lines if "PCI" in line]


@pytest.mark.qemu
@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("no-rng", "virtio devices"),
        ("two-disks", "block: declared 1 disk"),
        ("other-mac", "declared mac"),
        ("less-memory", "memory"),
    ],
)
def test_a_machine_that_differs_from_the_manifest_is_refused(
    smoke_image: build.Image, tmp_path: Path, change: str, reason: str
) -> None:
    cmd = command(smoke_image, tmp_path / "data.img")
    if change == "no-rng":
        cmd = remove_device(remove_device(cmd, "rng-random"), "virtio-rng-device")
    elif change == "two-disks":
        (tmp_path / "second.img").write_bytes(b"\0" * 1024 * 1024)
        cmd += ["-drive", f"id=second,file={tmp_path / 'second.img'},format=raw,if=none",
                "-device", "virtio-blk-device,drive=second"]
    elif change == "other-mac":
        cmd = [word.replace("mac=52:54:00:12:34:56", "mac=52:54:00:12:34:99") for word in cmd]
    else:
        cmd[cmd.index("-m") + 1] = "96"
    result = boot(cmd)
    names = result.names()
    assert "pid1.refused" in names, result.lines[-30:]
    assert reason in str(result.first("pid1.refused")["reason"])
    assert "smoke.imports" not in names  # nothing ran on the wrong machine
    assert names[-1] == "pid1.poweroff"
    assert result.returncode == 0
    assert not any("Kernel panic" in line for line in result.lines)


def test_image_holds_only_the_runtime(smoke_image: build.Image) -> None:
    entries = {e.path: e for e in cpio.parse(smoke_image.archive.read_bytes())}
    executables = sorted(p for p, e in entries.items() if stat.S_ISREG(e.mode) and e.mode & 0o111)
    assert executables == ["init", "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "usr/bin/python3.11"]
    assert entries["init"].data.startswith(b"#!/usr/bin/python3.11 -ISB\n")
    assert entries["dev/console"].rdev == (5, 1)
    assert stat.S_ISCHR(entries["dev/console"].mode)
    assert entries["dev/urandom"].rdev == (1, 9)
    for shell in ("bin/sh", "bin/bash", "bin/busybox", "usr/bin/sh", "sbin/init"):
        assert shell not in entries
    sources = [p for p in entries if p.endswith(".py")]
    assert sources == []  # everything is precompiled
    assert "usr/lib/python3.11/os.pyc" in entries  # the interpreter's landmark for its prefix
    _end, bundled = module_bundle.read_index(entries[rootfs.BUNDLE].data)
    assert "appliance.main" in bundled
    assert not set(rootfs.HOST_ONLY_MODULES) & set(bundled)  # host-only code: the stdlib-ssl backend, tls_cli
    assert not [p for p in entries if "stdlib_tls" in p or "tls_cli" in p]
    assert "adapters.tls_cli" not in bundled
    assert not any(p.endswith(("_ssl.cpython-311-x86_64-linux-gnu.so", "libssl.so.3")) for p in entries)
    assert devices.parse_manifest(entries["etc/pinata/devices.json"].data) == devices.parse_manifest(
        (ROOT / "image" / "devices.json").read_bytes())
    served = entries["app/manifest.txt"].data
    assert served == build.served_manifest()
    assert served.startswith(b"# Pi\xc3\xb1ata build manifest")
    assert b"[python-packages" in served
    assert build.OUTPUTS_SECTION.encode() not in served  # the image cannot carry its own hash


def test_pycs_are_unchecked_hash_without_timestamps(smoke_image: build.Image) -> None:
    entries = {e.path: e for e in cpio.parse(smoke_image.archive.read_bytes())}
    pycs = [e for e in entries.values() if e.path.endswith(".pyc")]
    assert len(pycs) > 20  # what /init imports before the bundle (appliance.module_bundle), as files
    for entry in pycs:
        flags = int.from_bytes(entry.data[4:8], "little")
        assert flags == 0b01, entry.path  # hash-based, not checked against a source: no mtime inside
    assert not [path for path in entries if path.endswith(".py")]  # no sources, only compiled modules
    bundle = entries[rootfs.BUNDLE].data
    _end, index = module_bundle.read_index(bundle)
    assert len(index) > 300
    assert index["appliance.main"][3] == "/app/appliance/main.py"  # __file__ and tracebacks: the image's path
    for entry in (*pycs, entries[rootfs.BUNDLE]):
        # no build path: the fixture builds under pytest's temporary directory, staging in stage-smoke/
        assert b"stage-smoke" not in entry.data, entry.path
        assert b"pytest-of-" not in entry.data, entry.path


def test_wheel_hash_mismatch_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pins = read_lock(ROOT / "requirements.lock")
    monkeypatch.setattr(rootfs, "WHEEL_CACHE", tmp_path)
    for pin in pins:
        (tmp_path / pin.filename).write_bytes(b"tampered")
    with pytest.raises(rootfs.RootfsError, match="hash differs"):
        rootfs.fetch_wheels()
