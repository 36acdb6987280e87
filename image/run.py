"""`make run`: boot the image under QEMU with exactly the devices of image/devices.json.

The QEMU command line is derived from the device manifest alone (memory, one virtio-net, one virtio-blk,
one virtio-rng, all on virtio-mmio of the `microvm` machine), so what runs is what was declared; PID 1
checks the same manifest from the inside. The kernel is the microvm variant's vmlinux (no PCI: the machine
has none), which QEMU boots through its PVH entry note; the command line and the initramfs reach it the same
way as with a bzImage (-append, -initrd). Networks:
- `user` (default, no root): QEMU's user-mode network; 127.0.0.1:8080->80, 8443->443, 10000, 10002.
  Port 10001 (connect back to the caller on 40001) cannot work through it: the appliance would connect
  to QEMU's NAT gateway, not to the caller. Use a tap network for 10001.
- `tap:IF`: an existing tap device (e.g. one made in a network namespace); the VM is on that L2 network.
- `none`: QEMU's user network with `restrict=on` and no forwards (the NIC exists, nothing reaches it).

`--print-command` prints the plain QEMU command (a deploy artefact); `python -m image.deploy` writes the
libvirt domain XML.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import select
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from appliance import devices
from image import build, floor
from image.kernel import MICROVM
from netstack.config import ConfigError, parse_ip6

ROOT = Path(__file__).resolve().parent.parent
DEVICE_MANIFEST = ROOT / "image" / "devices.json"
RUN_DIR = ROOT / "build" / "run"
QEMU = "qemu-system-x86_64"
USER_FORWARDS = ((8080, 80), (8443, 443), (10000, 10000), (10002, 10002))
"""IPv4 only: QEMU 7.2's slirp refuses an IPv6 host address in `hostfwd` ("Bad host address" for
`hostfwd=tcp:[::1]:8080-:80`, checked with the installed qemu-system-x86_64), so `--net user` reaches the
appliance's IPv6 side not at all; a tap network (`--net tap:IF`) carries both families."""
STOP_GRACE_SECONDS = 5.0
KVM_PROBE_SECONDS = 5.0  # a KVM boot of the floor takes well under a second (TCG: about 0.6 s)
KVM_DEVICE = "/dev/kvm"


@dataclass(frozen=True)
class Network:
    """`kind` is user, tap or none; `interface` names the tap device; `forwards` are (host, guest) ports."""

    kind: str
    interface: str = ""
    forwards: tuple[tuple[int, int], ...] = ()
    host: str = "127.0.0.1"


def parse_network(spec: str) -> Network:
    if spec == "user":
        return Network("user", forwards=USER_FORWARDS)
    if spec == "none":
        return Network("none")
    kind, _, interface = spec.partition(":")
    if kind == "tap" and interface:
        return Network("tap", interface)
    raise ValueError(f"network {spec!r}: expected user, none or tap:IF")


def load_manifest(path: Path = DEVICE_MANIFEST) -> devices.DeviceManifest:
    return devices.parse_manifest(path.read_bytes())


def _accelerator_without_probe() -> str | None:
    """PINATA_ACCEL's choice, or TCG when there is no usable KVM device; None when only a probe can tell."""
    forced = os.environ.get("PINATA_ACCEL")
    if forced in ("tcg", "kvm"):
        return forced
    return None if os.access(KVM_DEVICE, os.R_OK | os.W_OK) else "tcg"


@functools.cache
def accelerator(kernel: Path) -> str:
    """KVM when it works, otherwise TCG. Neither opening /dev/kvm nor starting a paused QEMU proves it:
    on these build machines QEMU has aborted setting up the vCPU, and (with a paravirtual KVM) started
    fine, ran the guest a while and stopped it with "KVM internal error" (about 9 s in), still running.
    So the probe boots `kernel` with the floor's init, which powers off at once (well under a second with
    a working KVM): a clean exit (status 0, nothing on stderr) within the probe time means KVM works.
    QEMU's first word on stderr ends the probe early: it is a complaint. PINATA_ACCEL=tcg|kvm overrides it."""
    known = _accelerator_without_probe()
    if known is not None:
        return known
    with tempfile.TemporaryDirectory(prefix="pinata-kvm-probe-") as scratch:
        init = Path(scratch) / "floor.cpio"
        init.write_bytes(floor.archive())
        probe = subprocess.Popen(
            [QEMU, "-M", "microvm,acpi=off", "-accel", "kvm", "-cpu", "host", "-m", "64", "-nodefaults",
             "-no-user-config", "-no-reboot", "-display", "none", "-monitor", "none", "-serial", "none",
             "-kernel", str(kernel), "-initrd", str(init), "-append", "panic=-1 reboot=t quiet"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        assert probe.stderr is not None
        try:
            # Readable stderr: either a complaint, or end of file because QEMU exited (then wait() is at once).
            ready, _, _ = select.select([probe.stderr], [], [], KVM_PROBE_SECONDS)
            complained = bool(ready) and bool(os.read(probe.stderr.fileno(), 4096))
            if not ready or complained:
                return "tcg"
            return "kvm" if probe.wait(KVM_PROBE_SECONDS) == 0 else "tcg"
        except subprocess.TimeoutExpired:
            return "tcg"
        finally:
            if probe.poll() is None:
                probe.kill()
            probe.wait()
            probe.stderr.close()


def _cpuinfo_field(name: str, cpuinfo: Path) -> str | None:
    """The value of the first `name : value` line of /proc/cpuinfo (the first CPU's), or None."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1]
    except OSError:
        return None
    return None


def host_tsc_khz(cpuinfo: Path = Path("/proc/cpuinfo")) -> int | None:
    """The host TSC rate: under TCG the guest reads the host's TSC, and telling the kernel its rate saves
    the calibration loop (slow under emulation). None when the host does not say."""
    mhz = _cpuinfo_field("cpu MHz", cpuinfo)
    try:
        return None if mhz is None else round(float(mhz) * 1000)
    except ValueError:
        return None


HOST_CLOCKSOURCE = Path("/sys/devices/system/clocksource/clocksource0/current_clocksource")


def host_tsc_invariant(cpuinfo: Path = Path("/proc/cpuinfo"), clocksource: Path = HOST_CLOCKSOURCE) -> bool:
    """Whether the host's TSC runs at one rate whatever the CPU does (`constant_tsc`) and in every power state
    (`nonstop_tsc`), and the host's kernel keeps time by it: then the TSC a TCG guest reads, the host's, is
    as good a clock as the host's own. The flags are what the CPU (or a hypervisor) claims; the clocksource
    in use is the host kernel's own verdict, after its watchdog, so a host that found its TSC unstable (or
    prefers another clock) leaves the guest's watchdog on."""
    try:
        if clocksource.read_text().strip() != "tsc":
            return False
    except OSError:
        return False
    flags = _cpuinfo_field("flags", cpuinfo)
    return flags is not None and {"constant_tsc", "nonstop_tsc"} <= set(flags.split())


def kernel_append(
    parameters: dict[str, str] | None = None, *, tsc_khz: int | None = None, ip: str | None = None,
    ip6: str | None = None, quiet: bool = True, emulated: bool = False, tsc_reliable: bool = False,
) -> str:
    """console on the serial port; on panic reboot at once (which ends QEMU under -no-reboot), by triple
    fault (no ACPI, no keyboard controller); the TSC rate when known; the appliance's address in the
    kernel's `ip=` syntax and its IPv6 addressing as `ip6=` (auto, off or ADDR/LEN[,gw=G]), both read by our
    netstack from /proc/cmdline (the kernel has no IP stack to use them); our own `pinata.*` parameters.

    `emulated` (TCG): the timer tick comes from the PIT, not the local APIC timer. The emulated CPU has no
    TSC-deadline mode, so the kernel would first calibrate the APIC timer by counting 25 PIT ticks: 0.22 s
    of guest time at every boot, about a tenth of the whole boot (measured with markers in
    kernel_init_freeable). The kernel is uniprocessor with a periodic tick (CONFIG_HZ_PERIODIC, no
    high-resolution timers), so one global tick is all it uses either way. Under KVM (`-cpu host`) the
    TSC-deadline timer needs no calibration and stays. And `no_timer_check`: the kernel would wait four ticks
    (16 ms, 20 under TCG) to see that the timer interrupt comes through the I/O APIC, and try other routings
    if not; on QEMU's microvm it does (every boot of the tests would hang otherwise). And `keep_initmem`
    (our kernel patch, image/kernel-keep-initmem.patch): the kernel's init sections are unmapped at the end
    of boot rather than poisoned and freed, because under TCG a store to a page whose code has run takes the
    self-modifying-code path until none of its translated code is left (0.11-0.13 s a boot, paid by the
    poison or by the first writer of each page once it is handed out); they stay reserved, 504 KiB. All
    three only under emulation: a KVM host (and the libvirt domain's q35 machine) keeps the kernel's own
    checks and frees its init memory, which cost it little.

    `tsc_reliable` (given under TCG on a host whose TSC is invariant and its clock, `host_tsc_invariant`):
    `tsc=reliable`.
    There the guest's TSC is the host's, while the kernel's clocksource watchdog judges it against jiffies,
    which count the PIT ticks the guest was given, and a busy host delays and merges those. Seen on a loaded
    host: the watchdog found a skew, marked the TSC unstable and switched the kernel to refined-jiffies,
    after which the guest's clocks moved only with ticks (4 ms steps, and slower than real time while the
    host was busy): every timeout, TCP timer and certificate check of the appliance then ran on a clock that
    lagged. A host TSC that is not invariant stays watched."""
    words = ["console=ttyS0", "panic=-1", "reboot=t"]
    if ip:
        words.append(f"ip={ip}")
    if ip6:
        words.append(f"ip6={ip6}")
    if tsc_khz:
        words.append(f"tsc_early_khz={tsc_khz}")
    if emulated:
        words += ["noapictimer", "no_timer_check", "keep_initmem"]
    if tsc_reliable:
        words.append("tsc=reliable")
    if quiet:
        words.append("quiet")
    words += [f"pinata.{key}={value}" for key, value in sorted((parameters or {}).items())]
    return " ".join(words)


def qemu_command(
    manifest: devices.DeviceManifest,
    kernel: Path,
    initramfs: Path,
    disk: Path,
    network: Network,
    *,
    accel: str | None = None,
    memory_mib: int | None = None,
    parameters: dict[str, str] | None = None,
    ip: str | None = None,
    ip6: str | None = None,
) -> list[str]:
    """The complete QEMU command line: the machine, and one device per manifest entry, nothing else."""
    accel = accel or accelerator(kernel)
    if network.kind == "user":
        forwards = "".join(f",hostfwd=tcp:{network.host}:{h}-:{g}" for h, g in network.forwards)
        netdev = f"user,id={manifest.net.name}{forwards}"
    elif network.kind == "none":
        netdev = f"user,id={manifest.net.name},restrict=on"
    else:
        netdev = f"tap,id={manifest.net.name},ifname={network.interface},script=no,downscript=no"
    return [
        QEMU,
        # The PIT stays on: under TCG it is the kernel's timer tick (kernel_append's `emulated`); without
        # it the kernel gets no timer interrupts and every sleep hangs (measured: asyncio.sleep never
        # returned with pit=off).
        "-M", "microvm,acpi=off,rtc=on",
        "-accel", accel,
        "-cpu", "host" if accel == "kvm" else "qemu64",
        "-smp", "1",
        "-m", str(memory_mib or manifest.memory.mib),
        "-nodefaults", "-no-user-config", "-no-reboot", "-nographic",
        "-serial", "stdio",
        "-kernel", str(kernel),
        "-initrd", str(initramfs),
        "-append", kernel_append(parameters, tsc_khz=host_tsc_khz() if accel == "tcg" else None, ip=ip,
                                 ip6=ip6, emulated=accel == "tcg",
                                 tsc_reliable=accel == "tcg" and host_tsc_invariant()),
        "-netdev", netdev,
        # guest_csum=off: the NIC never hands the guest a frame whose checksum is left to offload (a tap
        # with offloads does that for the host's TCP); our netstack reads frames through AF_PACKET and
        # verifies every checksum, so it must see complete ones (measured: TCP over tap failed without).
        "-device", f"virtio-net-device,netdev={manifest.net.name},mac={manifest.net.mac},guest_csum=off",
        "-drive", f"id={manifest.block.name},file={disk},format=raw,if=none,cache=writeback",
        "-device", f"virtio-blk-device,drive={manifest.block.name}",
        "-object", f"rng-random,id={manifest.rng.name},filename=/dev/urandom",
        "-device", f"virtio-rng-device,rng={manifest.rng.name}",
    ]


def ensure_disk(path: Path, manifest: devices.DeviceManifest) -> bool:
    """Create the data disk (sparse, the declared size) on first run; True when it was created."""
    size = manifest.block.mib * 1024 * 1024
    if path.exists():
        if path.stat().st_size != size:
            raise ValueError(f"{path}: {path.stat().st_size} bytes, the manifest declares {size}")
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.truncate(size)
    return True


def parse_event(line: str) -> dict[str, object] | None:
    """A console line as a JSON object (PID 1 and the appliance log one per line), else None (kernel text)."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


@dataclass
class Vm:
    """A running QEMU; its console is read line by line from `lines()`."""

    process: subprocess.Popen[bytes]
    command: list[str]

    def lines(self) -> Iterator[str]:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            yield raw.decode("utf-8", "replace").rstrip("\r\n")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


def start(command: list[str]) -> Vm:
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    return Vm(process, command)


@contextlib.contextmanager
def running(command: list[str]) -> Iterator[Vm]:
    vm = start(command)
    try:
        yield vm
    finally:
        vm.stop()


def announce(event: dict[str, object], network: Network) -> list[str]:
    """What to tell the operator when the appliance says it is ready."""
    if event.get("event") != "ready":
        return []
    out = [f"bitcoin address: {event.get('address')}"]
    if network.kind == "user":
        for host_port, guest_port in network.forwards:
            scheme = {80: "http", 443: "https"}.get(guest_port, "tls")
            out.append(f"{scheme}://{network.host}:{host_port}/  (guest port {guest_port})")
        out.append("port 10001 (connect-back) needs a tap network: --net tap:IF")
        out.append("IPv6 needs a tap network too: QEMU's user networking forwards IPv4 ports only")
    else:
        out.append("the appliance is on the tap network; it takes its address by DHCP, or the kernel's ip= "
                   "(run with --ip CLIENT::GW:NETMASK); its IPv6 addresses by SLAAC from the network's router "
                   "advertisements, or ip6= (run with --ip6 ADDR/LEN[,gw=G], or --ip6 off)")
    return out


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--net", default="user", help="user (default), none, or tap:IF")
    parser.add_argument("--variant", default="appliance", help="initramfs variant (see image.build)")
    parser.add_argument("--disk", type=Path, default=RUN_DIR / "data.img")
    parser.add_argument("--memory", type=int, default=None, help="override the manifest's MiB (benchmarks)")
    parser.add_argument("--param", action="append", default=[], help="pinata.KEY=VALUE kernel parameter")
    parser.add_argument("--ip", help="static address, kernel syntax CLIENT::GW:NETMASK (default: DHCP)")
    parser.add_argument("--ip6", help="IPv6: auto, off or ADDR/LEN[,gw=G] (written as ip6=; default: auto, SLAAC)")
    parser.add_argument("--print-command", action="store_true", help="print the QEMU command and exit")
    args = parser.parse_args()

    if args.ip6 is not None:
        try:
            parse_ip6(args.ip6)  # the guest would stop at boot on it: say so before building anything
        except ConfigError as exc:
            parser.error(f"--ip6 {args.ip6!r}: {exc}")
    manifest = load_manifest()
    network = parse_network(args.net)
    parameters = dict(item.split("=", 1) for item in args.param)
    if args.print_command:
        command = qemu_command(manifest, build.OUT / build.kernel_file(MICROVM),
                               build.boot_initramfs_path(args.variant),
                               args.disk, network, memory_mib=args.memory, parameters=parameters, ip=args.ip,
                               ip6=args.ip6)
        print(shlex.join(command))
        return 0
    image = build.build(args.variant)
    if ensure_disk(args.disk, manifest):
        print(f"[run] created data disk {args.disk} ({manifest.block.mib} MiB)", flush=True)
    if _accelerator_without_probe() is None:
        print(f"[run] {KVM_DEVICE} is there: a test boot checks that KVM works (up to {KVM_PROBE_SECONDS:g} s; "
              "PINATA_ACCEL=tcg or =kvm skips it) ...", flush=True)
    accel = accelerator(image.kernel)
    print(f"[run] accelerator: {accel}" + (" (software emulation: slower boot)" if accel == "tcg" else ""), flush=True)
    command = qemu_command(manifest, image.kernel, image.initramfs, args.disk, network, accel=accel,
                           memory_mib=args.memory, parameters=parameters, ip=args.ip,
                               ip6=args.ip6)
    print(f"[run] {shlex.join(command)}", flush=True)
    started = time.monotonic()
    vm = start(command)
    # QEMU runs in its own session (so a Ctrl-C reaches us, not the guest's console); a SIGTERM or SIGHUP
    # to the runner must then stop it too, or it would outlive us. SIGINT is set explicitly: a shell
    # starting us in the background would otherwise have us ignore it.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    try:
        for line in vm.lines():
            print(line, flush=True)
            event = parse_event(line)
            if event is not None:
                for message in announce(event, network):
                    print(f"[run] {message}  ({time.monotonic() - started:.1f} s after start)", flush=True)
    except KeyboardInterrupt:
        print("\n[run] stopping the VM ...", flush=True)
    code = vm.stop()
    print(f"[run] QEMU exited with {code}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
