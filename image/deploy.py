"""Deploy artefacts for a hypervisor host: a libvirt domain XML and the plain QEMU command.

libvirt has no `microvm` machine type, so the domain uses q35 with the same devices on virtio-PCI and no
ACPI (CPU discovery by MP table, as on microvm). It boots the pci kernel (`vmlinux-pci`: the microvm kernel
plus PCI and virtio-PCI, image/kernel-pci.config); the plain QEMU command is the runner's microvm machine
and boots the microvm kernel (`vmlinux-microvm`). Both are ELF images that QEMU boots through their PVH
entry note, like libvirt's direct kernel boot (`<kernel>` is passed to QEMU's -kernel). Everything libvirt
would add on its own and the device check would refuse is switched off: the memory balloon (a fourth
virtio device) and the USB controller. Devices and memory come from image/devices.json, as for the
runner. `virt-xml-validate` (Debian package libvirt-clients, which brings libvirt's schemas) checks
the XML against libvirt's schema; tests/image/test_deploy.py runs it.

    python -m image.deploy --out build/deploy     # writes pinata.xml and qemu-command.sh
"""

from __future__ import annotations

import argparse
import shlex
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from appliance import devices
from image import build, run
from image.kernel import MICROVM, PCI

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PREFIX = Path("/var/lib/pinata")
INITRAMFS = "initramfs.cpio.lz4"  # the archive as the kernel takes it (image.build.boot_form)


def domain_xml(manifest: devices.DeviceManifest, prefix: Path, *, name: str = "pinata", bridge: str = "br0") -> str:
    """The libvirt domain for the image installed under `prefix` (the pci kernel, initramfs.cpio.lz4, data.img)."""
    domain = ET.Element("domain", type="kvm")
    ET.SubElement(domain, "name").text = name
    ET.SubElement(domain, "memory", unit="MiB").text = str(manifest.memory.mib)
    ET.SubElement(domain, "vcpu").text = "1"
    os_element = ET.SubElement(domain, "os")
    ET.SubElement(os_element, "type", arch="x86_64", machine="q35").text = "hvm"
    ET.SubElement(os_element, "kernel").text = str(prefix / build.kernel_file(PCI))
    ET.SubElement(os_element, "initrd").text = str(prefix / INITRAMFS)
    ET.SubElement(os_element, "cmdline").text = run.kernel_append()
    ET.SubElement(domain, "features")  # no <acpi/>: the kernel has no ACPI
    ET.SubElement(domain, "on_poweroff").text = "destroy"
    ET.SubElement(domain, "on_reboot").text = "destroy"  # PID 1 powers off with reboot(2)
    ET.SubElement(domain, "on_crash").text = "destroy"
    devices_element = ET.SubElement(domain, "devices")
    interface = ET.SubElement(devices_element, "interface", type="bridge")
    ET.SubElement(interface, "source", bridge=bridge)
    ET.SubElement(interface, "mac", address=manifest.net.mac)
    ET.SubElement(interface, "model", type="virtio")
    driver = ET.SubElement(interface, "driver")
    ET.SubElement(driver, "guest", csum="off")  # complete checksums only, as the runner's guest_csum=off
    disk = ET.SubElement(devices_element, "disk", type="file", device="disk")
    ET.SubElement(disk, "driver", name="qemu", type="raw", cache="writeback")
    ET.SubElement(disk, "source", file=str(prefix / "data.img"))
    ET.SubElement(disk, "target", dev="vda", bus="virtio")
    rng = ET.SubElement(devices_element, "rng", model="virtio")
    ET.SubElement(rng, "backend", model="random").text = "/dev/urandom"
    serial = ET.SubElement(devices_element, "serial", type="pty")
    ET.SubElement(serial, "target", port="0")
    console = ET.SubElement(devices_element, "console", type="pty")
    ET.SubElement(console, "target", type="serial", port="0")
    ET.SubElement(devices_element, "controller", type="usb", model="none")
    ET.SubElement(devices_element, "memballoon", model="none")
    ET.indent(domain)
    return ET.tostring(domain, encoding="unicode") + "\n"


def libvirt_equivalent_command(
    manifest: devices.DeviceManifest, kernel: Path, initramfs: Path, disk: Path, *, accel: str = "tcg"
) -> list[str]:
    """The QEMU machine the domain XML describes (q35 without ACPI, the devices on virtio-PCI), with the
    network replaced by a closed user-mode one: how the tests boot "what libvirt would run" without libvirt.
    `kernel` is the pci kernel: the microvm kernel finds no virtio device on this machine."""
    return [
        run.QEMU, "-M", "q35,acpi=off", "-accel", accel, "-cpu", "qemu64", "-smp", "1",
        "-m", str(manifest.memory.mib), "-nodefaults", "-no-user-config", "-no-reboot", "-nographic",
        "-serial", "stdio", "-kernel", str(kernel), "-initrd", str(initramfs), "-append", run.kernel_append(),
        "-netdev", f"user,id={manifest.net.name},restrict=on",
        "-device", f"virtio-net-pci,netdev={manifest.net.name},mac={manifest.net.mac},guest_csum=off",
        "-drive", f"id={manifest.block.name},file={disk},format=raw,if=none",
        "-device", f"virtio-blk-pci,drive={manifest.block.name}",
        "-object", f"rng-random,id={manifest.rng.name},filename=/dev/urandom",
        "-device", f"virtio-rng-pci,rng={manifest.rng.name}",
    ]


def qemu_script(manifest: devices.DeviceManifest, prefix: Path) -> str:
    command = run.qemu_command(manifest, prefix / build.kernel_file(MICROVM), prefix / INITRAMFS,
                               prefix / "data.img", run.Network("tap", "pinata0"), accel="kvm")
    return "#!/bin/sh\n# The plain QEMU command for a KVM host; the tap device pinata0 must exist.\nexec " + \
        shlex.join(command) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "deploy")
    parser.add_argument("--prefix", type=Path, default=DEFAULT_PREFIX, help="where the host keeps the image")
    parser.add_argument("--bridge", default="br0")
    args = parser.parse_args()
    manifest = run.load_manifest()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pinata.xml").write_text(domain_xml(manifest, args.prefix, bridge=args.bridge))
    (args.out / "qemu-command.sh").write_text(qemu_script(manifest, args.prefix))
    print(f"wrote {args.out / 'pinata.xml'} (boots {args.prefix / build.kernel_file(PCI)}) and "
          f"{args.out / 'qemu-command.sh'} (boots {args.prefix / build.kernel_file(MICROVM)}); both take "
          f"{args.prefix / INITRAMFS}: copy build/image/initramfs-appliance.cpio.lz4 there")
    return 0


if __name__ == "__main__":
    sys.exit(main())
