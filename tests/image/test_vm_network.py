"""The appliance image in QEMU on a tap device inside a network namespace this test creates: from the
namespace, HTTP and HTTPS answer and the bounty page lists the wallet's address; /proof, /manifest.txt and
/stats answer with a verifying signature, the build manifest and the charts; a TLS handshake to 10000
without a client certificate is refused and counted; the ledger on the data disk survives a reboot.

Everything the attacker reaches here is the image: our netstack on the VM's NIC (AF_PACKET), our TLS,
our HTTP. The namespace's kernel plays the attacker's machine (curl, openssl s_client).
"""

from __future__ import annotations

import datetime
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
from cryptography.x509.oid import ExtendedKeyUsageOID

from appliance.deferred_imports import DEFERRED
from bench import certs
from image import build, run
from tests.appliance.bip137_reference import verify_message
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


def _counts(stats: dict[str, object], endpoint: str) -> dict[str, int]:
    by_endpoint = stats["by_endpoint"]
    assert isinstance(by_endpoint, dict)
    return {str(k): int(v) for k, v in by_endpoint[endpoint].items()}


def _mutual_refusals(stats: dict[str, object]) -> int:
    return _counts(stats, "mutual").get("no-certificate", 0)


def _wait_for_count(lab: Lab, endpoint: str, timeout: float = 60.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while not (counts := _counts(lab.stats(), endpoint)):
        assert time.monotonic() < deadline, lab.stats()
        time.sleep(0.5)
    return counts


@pytest.fixture(scope="module")
def attacker_identity(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A well-formed self-signed leaf, valid since yesterday: what an attacker without the boot CA's key can
    present. (Right usages and dates, so the refusal is about the chain, not the clock or the extensions.)"""
    directory = tmp_path_factory.mktemp("attacker")
    key_path, cert_path = directory / "key.pem", directory / "cert.pem"
    now = datetime.datetime.now(datetime.UTC)
    both = (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)
    yesterday, tomorrow = now - datetime.timedelta(days=1), now + datetime.timedelta(days=1)
    spec = certs.Spec("attacker", key_usage=None, eku=both, san=False, ski=False, serial=None,
                      not_before=yesterday, not_after=tomorrow)
    attacker = certs.issue(spec, key=certs.new_key())
    key_path.write_bytes(attacker.key_pem)
    cert_path.write_bytes(attacker.pem)
    return key_path, cert_path



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


def test_the_production_boot_leaves_what_it_defers_unrun_at_ready(lab: Lab) -> None:
    """The host test runs the boot to its first page in-process; this is the image's own boot (pid1, argument
    parsing, `python -m appliance`): the stdlib modules it defers (appliance.deferred_imports) are unrun at
    ready. (The test image's --test-pki export runs one of them, so it is not the one to ask.)"""
    assert lab.vm is not None
    assert lab.vm.wait_for("ready")["deferred_unrun"] == " ".join(sorted(DEFERRED))


def test_http_and_https_answer_and_the_page_lists_the_address(lab: Lab) -> None:
    http = lab.shell("curl", "-s", "-m", "30", "-o", "-", "-w", "\n%{http_code}", f"http://{VM_IP}/")
    body, _, code = http.stdout.decode().rpartition("\n")
    assert code == "200", http.stderr
    assert lab.address in body
    https = lab.shell("curl", "-s", "-k", "-m", "30", "-o", "/dev/null", "-w", "%{http_code}", f"https://{VM_IP}/")
    assert https.stdout == b"200", https.stderr
    ca = lab.shell("curl", "-s", "-m", "30", f"http://{VM_IP}/ca.pem")
    assert ca.stdout.startswith(b"-----BEGIN CERTIFICATE-----")


def _get(lab: Lab, path: str) -> bytes:
    result = lab.shell("curl", "-sS", "-m", "60", "-o", "-", "-w", "\n%{http_code}", f"http://{VM_IP}{path}")
    body, _, code = result.stdout.rpartition(b"\n")
    assert code == b"200", (path, code, result.stderr)
    return body


def test_proof_manifest_and_stats_page_are_served(lab: Lab) -> None:
    """The endpoints the other tests do not fetch, each importing code of its own (the signer and its
    json/base64, the manifest file, the SVG charts): a module the trimmed stdlib lacks would fail here."""
    challenge = f"vm-{secrets.token_hex(4)}"
    proof = json.loads(_get(lab, f"/proof?challenge={challenge}"))
    assert proof["address"] == lab.address
    assert f"challenge: {challenge}" in proof["message"]
    assert verify_message(proof["address"], proof["message"], proof["signature"])
    assert verify_message(proof["address_legacy"], proof["message"], proof["signature_legacy"])
    manifest = _get(lab, "/manifest.txt")
    assert manifest == build.served_manifest()
    packages = [line for line in manifest.decode().splitlines() if " sha256:" in line]
    for name in ("python3.11-minimal", "libpython3.11-stdlib", "cryptography", "pyasn1"):
        assert any(line.startswith(name + " ") for line in packages), name
    assert not any(line.startswith("coincurve ") for line in packages)  # test-only since the vault uses OpenSSL
    page = _get(lab, "/stats")
    assert b"<svg" in page
    assert b"</html>" in page


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


_REVERSE_CLIENT = """
import socket, ssl, sys
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[2], sys.argv[1])
with socket.create_connection((sys.argv[3], 10002), timeout=60) as sock:
    try:
        with context.wrap_socket(sock, server_side=True) as tls:
            print("handshake", tls.version(), repr(tls.recv(100)))
    except (ssl.SSLError, OSError) as exc:
        print("refused", type(exc).__name__, exc)
"""


_CALLBACK_SERVER = """
import socket, ssl, sys
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[2], sys.argv[1])
with socket.create_server((sys.argv[3], 40001)) as listener:
    listener.settimeout(60)
    sock, peer = listener.accept()
    print("accepted", peer[0], flush=True)
    with sock:
        try:
            with context.wrap_socket(sock, server_side=True) as tls:
                print("handshake", tls.version(), repr(tls.recv(100)))
        except (ssl.SSLError, OSError) as exc:
            print("refused", type(exc).__name__, exc)
"""


def test_reverse_endpoint_refuses_an_untrusted_server_chain(lab: Lab, attacker_identity: tuple[Path, Path]) -> None:
    """10002: the appliance is the TLS client over our connection; a self-signed chain must not get the secret."""
    key, cert = attacker_identity
    result = lab.shell(sys.executable, "-c", _REVERSE_CLIENT, str(key), str(cert), VM_IP)
    assert b"refused" in result.stdout, result.stdout + result.stderr
    assert _wait_for_count(lab, "reverse") == {"untrusted-chain": 1}


def test_callback_endpoint_connects_back_and_refuses_an_untrusted_chain(
    lab: Lab, attacker_identity: tuple[Path, Path]
) -> None:
    """10001: the appliance closes, connects back to us on 40001 as a TLS client, and refuses our chain."""
    key, cert = attacker_identity
    server = subprocess.Popen(
        ["ip", "netns", "exec", lab.ns, sys.executable, "-c", _CALLBACK_SERVER, str(key), str(cert), HOST_IP],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(1.0)  # the server is listening
        lab.shell("curl", "-s", "-m", "10", f"telnet://{VM_IP}:10001", stdin=b"")
        output, _ = server.communicate(timeout=90)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert b"accepted " + VM_IP.encode() in output, output
    assert b"refused" in output, output
    assert _wait_for_count(lab, "callback") == {"untrusted-chain": 1}


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
