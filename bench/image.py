"""The image: QEMU start to the appliance being up, against the floor (the same kernel with an init that
ends the VM at once), the sizes, and the smallest memory it runs in.

What "up" means today: the appliance over our network stack in the VM (`--net packet:eth0`) is not
wired yet, so the end point measured is the `smoke` image's last step (PID 1 checked the devices, every
project module imported, ECDSA, secp256k1, the RNG, the disk and asyncio exercised). When the appliance
serves, `start_to_http_200_s` is added (full mode): QEMU start to the first HTTP 200 through user-mode
networking. All boots are TCG on this machine (KVM does not work here).
"""

from __future__ import annotations

import json
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.harness import Figure
from image import build
from image import run as runner

TARGET_TOTAL_COMPRESSED = 12 * 1024 * 1024
TARGET_HTTP_SECONDS = 4.0
BOOT_TIMEOUT = 120.0
MEMORY_STEPS = (128, 96, 80, 64, 56, 48, 40)


def _timed_boot(command: list[str], marks: tuple[str, ...]) -> dict[str, float]:
    """Seconds from QEMU start to each marked console event, and to QEMU's exit ("exit")."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    seen: dict[str, float] = {}
    assert process.stdout is not None
    try:
        for raw in process.stdout:
            event = runner.parse_event(raw.decode("utf-8", "replace"))
            if event is not None and event.get("event") in marks and event["event"] not in seen:
                seen[str(event["event"])] = time.perf_counter() - started
            if time.perf_counter() - started > BOOT_TIMEOUT:
                break
        process.wait(BOOT_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    seen["exit"] = time.perf_counter() - started
    return seen


def _boot_command(image: build.Image, disk: Path, memory: int | None = None,
                  network: runner.Network | None = None) -> list[str]:
    manifest = runner.load_manifest()
    runner.ensure_disk(disk, manifest)
    return runner.qemu_command(manifest, image.kernel, image.initramfs, disk, network or runner.parse_network("none"),
                            memory_mib=memory)


def _smallest_memory(tmp: Path) -> int:
    """The smallest -m (from MEMORY_STEPS) at which the appliance image boots and answers HTTP with 200;
    each step is its own image, whose device manifest declares that memory (PID 1 refuses a VM with less
    memory than declared)."""
    kernel = build.build("floor").kernel
    document = json.loads(build.DEVICE_MANIFEST.read_text())
    smallest = MEMORY_STEPS[0]
    for mib in MEMORY_STEPS:
        document["devices"][0]["mib"] = mib
        initramfs = build.build_initramfs("appliance", tmp / f"m{mib}", json.dumps(document).encode())
        if _http_200_seconds(build.Image("appliance", kernel, initramfs), tmp / f"m{mib}.img", mib) is None:
            break
        smallest = mib
    return smallest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http_200_seconds(image: build.Image, disk: Path, memory: int | None = None) -> float | None:
    """QEMU start to the first HTTP 200 from an appliance image, or None when it does not serve."""
    port = _free_port()
    network = runner.Network("user", forwards=((port, 80),))
    started = time.perf_counter()
    process = subprocess.Popen(_boot_command(image, disk, memory=memory, network=network),
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while process.poll() is None and time.perf_counter() - started < BOOT_TIMEOUT:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.05)
        return None
    finally:
        process.kill()
        process.wait()


def run(quick: bool) -> dict[str, Figure]:
    floor_image = build.build("floor")  # both rebuilt only when their inputs changed
    smoke_image = build.build("smoke")
    figures: dict[str, Figure] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        rounds = 1 if quick else 3
        floors = [_timed_boot(_boot_command(floor_image, tmp / "disk.img"), ())["exit"] for _ in range(rounds)]
        smokes = [_timed_boot(_boot_command(smoke_image, tmp / "disk.img"),
                              ("pid1.start", "pid1.devices", "smoke.ok")) for _ in range(rounds)]
        floor = min(floors)
        for mark, name in (("pid1.start", "start_to_python_s"), ("pid1.devices", "start_to_devices_checked_s"),
                           ("smoke.ok", "start_to_runtime_exercised_s")):
            times = [s[mark] for s in smokes if mark in s]
            if times:
                figures[name] = Figure(min(times), "s", floor)
        if not quick:
            served = _http_200_seconds(build.build("appliance"), tmp / "appliance.img")
            if served is not None:
                figures["start_to_http_200_s"] = Figure(served, "s", floor)
            figures["smallest_memory_mib"] = Figure(_smallest_memory(tmp), "MiB", 128)
    kernel_bytes = smoke_image.kernel.stat().st_size
    raw = smoke_image.initramfs.read_bytes()
    sizes = build.compressed_sizes(raw, xz=not quick)
    figures["kernel_bytes"] = Figure(kernel_bytes, "B", TARGET_TOTAL_COMPRESSED)
    figures["initramfs_raw_bytes"] = Figure(len(raw), "B", TARGET_TOTAL_COMPRESSED)
    for method, size in sizes.items():
        figures[f"initramfs_{method}_bytes"] = Figure(size, "B", len(raw))
        figures[f"kernel_plus_initramfs_{method}_bytes"] = Figure(kernel_bytes + size, "B", TARGET_TOTAL_COMPRESSED)
    return figures
