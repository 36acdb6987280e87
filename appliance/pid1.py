"""What the appliance does first when it is PID 1 in the MicroVM: the init duties, in Python.

There is no shell and no init program in the image: the kernel runs /init, a Python script, and
`appliance.__main__` calls `boot()` before starting the service. `boot` mounts the pseudo filesystems,
checks the devices against the manifest, and arranges that PID 1 never simply exits: the kernel would
panic ("Attempted to kill init"). Any fatal path instead logs one JSON line and powers the VM off with
reboot(2) (QEMU runs with -no-reboot, so a reboot request ends the VM; there is no ACPI for a real power-off).

System calls go through `ctypes.CDLL(None, use_errno=True)` (the C library already loaded by the
interpreter: the image has no ldconfig cache to find "libc.so.6" by name).
"""

from __future__ import annotations

import atexit
import ctypes
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import NoReturn, Protocol

from appliance import devices
from appliance.log import JsonLog

DEVICE_MANIFEST = Path("/etc/pinata/devices.json")
# (source, target, filesystem type): what the appliance reads (sysfs for the device check, procfs for
# /proc/cmdline and meminfo, devtmpfs for /dev/vda, /dev/hwrng and the console).
MOUNTS = (("devtmpfs", "/dev", "devtmpfs"), ("proc", "/proc", "proc"), ("sysfs", "/sys", "sysfs"))
MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x2, 0x4, 0x8
# reboot(2) magic numbers and command (linux/reboot.h). RB_AUTOBOOT restarts; with -no-reboot QEMU exits.
LINUX_REBOOT_MAGIC1 = 0xFEE1DEAD
LINUX_REBOOT_MAGIC2 = 672274793
RB_AUTOBOOT = 0x01234567
CMDLINE_PREFIX = "pinata."
MAX_CMDLINE_BYTES = 4096
# Addressing is the kernel's own `ip=` parameter and our `ip6=`, which netstack.config reads (image.run --ip
# and --ip6 write them). These look like they would configure it but are read by nothing: refused, so a VM
# started with them stops with a reason instead of quietly taking an address by DHCP or SLAAC.
MISLEADING_PARAMETERS = frozenset({"ip", "ip6", "gw", "gateway", "netmask", "dhcp"})


class BootError(Exception):
    """PID 1 cannot bring the machine into the declared state."""


class Syscalls(Protocol):
    """The three system calls PID 1 makes; a fake in tests, the C library in the VM."""

    def mount(self, source: str, target: str, fstype: str, flags: int) -> None: ...
    def sync(self) -> None: ...
    def reboot(self) -> None: ...


class LibcSyscalls:
    def __init__(self) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)

    def mount(self, source: str, target: str, fstype: str, flags: int) -> None:
        result = self._libc.mount(source.encode(), target.encode(), fstype.encode(), ctypes.c_ulong(flags), None)
        if result != 0:
            errno = ctypes.get_errno()
            raise BootError(f"mount {fstype} on {target}: {os.strerror(errno)}")

    def sync(self) -> None:
        self._libc.sync()

    def reboot(self) -> None:
        self._libc.reboot(ctypes.c_int(RB_AUTOBOOT))
        # Only reached when reboot failed (e.g. not PID 1 in a namespace without CAP_SYS_BOOT).
        raise BootError(f"reboot: {os.strerror(ctypes.get_errno())}")


@dataclass(frozen=True)
class BootInfo:
    """What the service needs from the boot: the checked devices and the `pinata.*` kernel parameters."""

    manifest: devices.DeviceManifest
    interface: str  # the network interface the kernel named (e.g. "eth0")
    disk: Path  # the data disk's device node (e.g. /dev/vda)
    hwrng: Path  # the hardware RNG
    parameters: dict[str, str]  # pinata.variant=smoke -> {"variant": "smoke"}; logged at boot


def parse_cmdline(cmdline: str) -> dict[str, str]:
    """The `pinata.key=value` parameters of the kernel command line (the kernel drops dotted unknown
    parameters instead of passing them to init, so we read /proc/cmdline ourselves). The network address
    is not among them: see MISLEADING_PARAMETERS."""
    if len(cmdline) > MAX_CMDLINE_BYTES:
        raise BootError("kernel command line too long")
    parameters = {}
    for word in cmdline.split():
        if word.startswith(CMDLINE_PREFIX) and "=" in word:
            key, value = word[len(CMDLINE_PREFIX):].split("=", 1)
            if key in MISLEADING_PARAMETERS:
                raise BootError(f"{CMDLINE_PREFIX}{key}= is not read: the address is the kernel's ip= parameter "
                                "(<client>::<gw>:<netmask>, or ip=dhcp), the IPv6 address ip6= (auto, off or "
                                "ADDR/LEN[,gw=G])")
            parameters[key] = value
    return parameters


class Init:
    """PID 1's duties, with the system calls, the filesystem root and the log passed in (so they can be tested)."""

    def __init__(self, syscalls: Syscalls, log: JsonLog, root: Path = Path("/")) -> None:
        self.syscalls = syscalls
        self.log = log
        self.root = root

    def mount_all(self) -> None:
        for source, target, fstype in MOUNTS:
            path = self.root / target.lstrip("/")
            path.mkdir(exist_ok=True)
            flags = MS_NOSUID | MS_NOEXEC | (0 if fstype == "devtmpfs" else MS_NODEV)
            self.syscalls.mount(source, str(path), fstype, flags)
        self.log.event("pid1.mounted", filesystems=",".join(fstype for _, _, fstype in MOUNTS))

    def check_devices(self, manifest_path: Path) -> BootInfo:
        try:
            manifest = devices.parse_manifest((self.root / manifest_path.relative_to("/")).read_bytes())
        except (OSError, devices.ManifestError) as exc:
            raise BootError(f"device manifest: {exc}") from exc
        found = devices.survey(self.root)
        problems = devices.compare(manifest, found)
        if problems:
            raise BootError("device set differs from the manifest: " + "; ".join(problems))
        interface = found.interfaces[0][0]
        disk = found.disks[0][0]
        self.log.event(
            "pid1.devices", ok=True, memory_kib=found.memory_kib, interface=interface, mac=found.interfaces[0][1],
            disk=disk, disk_bytes=found.disks[0][1], rng=found.rngs[0],
        )
        cmdline = (self.root / "proc" / "cmdline").read_text()
        parameters = parse_cmdline(cmdline)
        if parameters:
            listed = " ".join(f"{CMDLINE_PREFIX}{key}={value}" for key, value in sorted(parameters.items()))
            self.log.event("pid1.parameters", parameters=listed[:1000])
        return BootInfo(manifest, interface, Path("/dev") / disk, Path("/dev/hwrng"), parameters)

    def power_off(self, reason: str) -> NoReturn:
        """Flush, say why, and end the VM. Never returns: if reboot(2) fails we have nothing left to try."""
        self.log.event("pid1.poweroff", reason=reason[:500])
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        self.syscalls.sync()
        self.syscalls.reboot()
        raise SystemExit(1)


def _install_last_words(init: Init) -> None:
    """Turn every way Python can end (an uncaught exception, sys.exit, the end of main) into a logged power-off."""

    def excepthook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        init.log.event("pid1.fatal", error=kind.__name__, detail=str(value)[:500])
        sys.__excepthook__(kind, value, tb)

    def at_exit() -> None:
        init.power_off("the appliance exited")

    sys.excepthook = excepthook
    atexit.register(at_exit)


_booted: list[BootInfo] = []


def appliance_argv(info: BootInfo) -> list[str]:
    """The service's command line in the image: our network stack on the one NIC, the one disk."""
    return ["--net", f"packet:{info.interface}", "--disk", str(info.disk)]


def boot(
    syscalls_factory: Callable[[], Syscalls] = LibcSyscalls, manifest_path: Path = DEVICE_MANIFEST
) -> BootInfo:
    """Run the PID-1 duties once; returns what the service needs, or powers the VM off on any failure.

    Idempotent: /init calls it before anything else (so a broken service still gets a checked machine and
    a clean power-off), and `python -m appliance` calls it again as PID 1; the second call returns the
    first one's result."""
    if _booted:
        return _booted[0]
    log = JsonLog()
    syscalls = syscalls_factory()
    init = Init(syscalls, log)
    _install_last_words(init)
    log.event("pid1.start", python=sys.version.split()[0])
    try:
        init.mount_all()
        info = init.check_devices(manifest_path)
    except BootError as exc:
        log.event("pid1.refused", reason=str(exc)[:1000])
        init.power_off("boot checks failed")
    _booted.append(info)
    return info
