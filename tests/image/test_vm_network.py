"""The appliance image in QEMU on a tap device inside a network namespace this test creates: from the
namespace, HTTP and HTTPS answer and the bounty page lists the wallet's address; a TLS handshake to 10000
without a client certificate is refused and counted; the ledger on the data disk survives a reboot.

Everything the attacker reaches here is the image: our netstack on the VM's NIC (AF_PACKET), our TLS,
our HTTP. The namespace's kernel plays the attacker's machine (curl, openssl s_client).
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from image import build, run
from tests.appliance.running import KNOWN_WIF, ROOT
from tests.netstack import netns

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.netns,
    pytest.mark.skipif(not netns.available(), reason="needs root, netns and /dev/net/tun"),
]

HOST_IP = "10.79.0.1"
VM_IP = "10.79.0.2"
READY_TIMEOUT = 180.0  # TCG on a shared machine; a boot to "ready" takes a few seconds


@dataclass
class Vm:
    process: subprocess.Popen[bytes]
    lines: list[str] = field(default_factory=list)

    def events(self) -> list[dict[str, object]]:
        return [e for e in (run.parse_event(line) for line in list(self.lines)) if e is not None]

    def wait_for(self, name: str, timeout: float = READY_TIMEOUT) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events():
                if event.get("event") == name:
                    return event
            assert self.process.poll() is None, "\n".join(self.lines[-40:])
            time.sleep(0.1)
        raise AssertionError(f"no {name!r} within {timeout} s:\n" + "\n".join(self.lines[-40:]))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Lab:
    ns: str
    tap: str
    image: build.Image
    disk: Path
    address: str
    vm: Vm | None = None

    def boot(self) -> Vm:
        command = run.qemu_command(run.load_manifest(), self.image.kernel, self.image.initramfs, self.disk,
                                   run.Network("tap", self.tap), ip=f"{VM_IP}::{HOST_IP}:255.255.255.0")
        process = subprocess.Popen(["ip", "netns", "exec", self.ns, *command], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        vm = Vm(process)
        threading.Thread(target=_pump, args=(vm,), daemon=True).start()
        self.vm = vm
        vm.wait_for("ready")
        return vm

    def shell(self, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["ip", "netns", "exec", self.ns, *args], input=stdin, capture_output=True,
                              timeout=90, check=False)

    def stats(self) -> dict[str, object]:
        result = self.shell("curl", "-s", "-m", "30", f"http://{VM_IP}/stats.json")
        value = json.loads(result.stdout)
        assert isinstance(value, dict)
        return value


def _pump(vm: Vm) -> None:
    assert vm.process.stdout is not None
    for raw in vm.process.stdout:
        vm.lines.append(raw.decode("utf-8", "replace").rstrip("\r\n"))


def _mutual_refusals(stats: dict[str, object]) -> int:
    by_endpoint = stats["by_endpoint"]
    assert isinstance(by_endpoint, dict)
    return int(by_endpoint["mutual"].get("no-certificate", 0))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    directory = tmp_path_factory.mktemp("vm-net")
    image = build.build("appliance", out=directory / "image")
    disk = directory / "data.img"
    run.ensure_disk(disk, run.load_manifest())
    provisioned = subprocess.run(
        [sys.executable, "-m", "appliance", "provision", "--wif", KNOWN_WIF, "--disk", str(disk)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    address = str(json.loads(provisioned.stdout.splitlines()[-1])["address"])
    tap = f"pvm{secrets.token_hex(3)}"
    with netns.namespace("pvm") as ns:
        netns.ip(ns, "tuntap", "add", "dev", tap, "mode", "tap")
        netns.ip(ns, "addr", "add", f"{HOST_IP}/24", "dev", tap)
        netns.ip(ns, "link", "set", tap, "up")
        lab = Lab(ns, tap, image, disk, address)
        try:
            lab.boot()
            yield lab
        finally:
            if lab.vm is not None:
                lab.vm.stop()


def test_http_and_https_answer_and_the_page_lists_the_address(lab: Lab) -> None:
    http = lab.shell("curl", "-s", "-m", "30", "-o", "-", "-w", "\n%{http_code}", f"http://{VM_IP}/")
    body, _, code = http.stdout.decode().rpartition("\n")
    assert code == "200", http.stderr
    assert lab.address in body
    https = lab.shell("curl", "-s", "-k", "-m", "30", "-o", "/dev/null", "-w", "%{http_code}", f"https://{VM_IP}/")
    assert https.stdout == b"200", https.stderr
    ca = lab.shell("curl", "-s", "-m", "30", f"http://{VM_IP}/ca.pem")
    assert ca.stdout.startswith(b"-----BEGIN CERTIFICATE-----")


def test_mutual_tls_without_a_client_certificate_is_refused_and_counted(lab: Lab) -> None:
    before = _mutual_refusals(lab.stats())
    handshake = lab.shell("openssl", "s_client", "-connect", f"{VM_IP}:10000", "-tls1_3", "-ign_eof", stdin=b"")
    output = handshake.stdout + handshake.stderr
    assert b"certificate required" in output, output[-2000:]  # TLS 1.3 alert 116, sent by our engine
    assert b"BEGIN" not in handshake.stdout.split(b"---")[-1]  # no secret came out
    deadline = time.monotonic() + 30
    while _mutual_refusals(lab.stats()) <= before:
        assert time.monotonic() < deadline, lab.stats()
        time.sleep(0.5)


def test_ledger_survives_a_reboot(lab: Lab) -> None:
    lab.shell("openssl", "s_client", "-connect", f"{VM_IP}:10000", "-tls1_3", "-ign_eof", stdin=b"")
    deadline = time.monotonic() + 30
    while (counted := _mutual_refusals(lab.stats())) < 1:
        assert time.monotonic() < deadline
        time.sleep(0.5)
    time.sleep(2.0)  # past the ledger's batching delay, so the records are on the disk
    assert lab.vm is not None
    lab.vm.stop()
    vm = lab.boot()
    ledger = vm.wait_for("ledger")
    assert int(str(ledger["records"])) >= counted
    assert _mutual_refusals(lab.stats()) >= counted
