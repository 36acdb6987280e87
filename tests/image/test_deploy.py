"""Deploy artefacts: the libvirt domain validates against libvirt's schema and carries the declared devices."""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from image import build, deploy, kernel, run
from tests.image.vm import boot


def test_domain_has_the_declared_devices_and_nothing_libvirt_would_add() -> None:
    manifest = run.load_manifest()
    root = ET.fromstring(deploy.domain_xml(manifest, Path("/srv/pinata")))
    assert root.findtext("memory") == str(manifest.memory.mib)
    assert root.find("os/kernel") is not None
    assert root.findtext("os/kernel") == "/srv/pinata/vmlinux-pci"  # q35 puts the devices on PCI
    assert root.find("features/acpi") is None
    devices = root.find("devices")
    assert devices is not None
    assert [i.get("address") for i in devices.iter("mac")] == [manifest.net.mac]
    assert len(devices.findall("disk")) == 1
    assert len(devices.findall("rng")) == 1
    assert devices.find("memballoon").get("model") == "none"  # type: ignore[union-attr]
    assert devices.find("controller[@type='usb']").get("model") == "none"  # type: ignore[union-attr]
    assert root.findtext("on_reboot") == "destroy"


@pytest.mark.skipif(shutil.which("virt-xml-validate") is None, reason="libvirt-clients not installed")
def test_virt_xml_validate_accepts_the_domain(tmp_path: Path) -> None:
    path = tmp_path / "pinata.xml"
    path.write_text(deploy.domain_xml(run.load_manifest(), Path("/srv/pinata")))
    result = subprocess.run(["virt-xml-validate", str(path), "domain"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    broken = tmp_path / "broken.xml"
    broken.write_text(path.read_text().replace("<vcpu>1</vcpu>", "<vcpu>one</vcpu>"))
    assert subprocess.run(["virt-xml-validate", str(broken), "domain"], capture_output=True, check=False).returncode


@pytest.mark.qemu
def test_the_libvirt_machine_boots_with_the_devices_on_pci(smoke_image: build.Image, tmp_path: Path) -> None:
    pci = kernel.ensure_kernel(kernel.PCI).vmlinux  # built when not cached: minutes
    disk = tmp_path / "data.img"
    manifest = run.load_manifest()
    run.ensure_disk(disk, manifest)
    result = boot(deploy.libvirt_equivalent_command(manifest, pci, smoke_image.initramfs, disk))
    assert result.first("pid1.devices")["ok"] is True, result.lines[-30:]
    assert result.first("smoke.ok")["initmem"] == "freed"  # the domain's kernel line is KVM's: no keep_initmem
    assert result.names()[-1] == "pid1.poweroff"


def test_qemu_script_is_the_runner_command() -> None:
    script = deploy.qemu_script(run.load_manifest(), Path("/srv/pinata"))
    assert script.startswith("#!/bin/sh\n")
    assert "-accel kvm" in script
    assert "ifname=pinata0" in script
    assert "/srv/pinata/data.img" in script
    assert "-kernel /srv/pinata/vmlinux-microvm " in script  # the runner's microvm machine: the kernel without PCI
