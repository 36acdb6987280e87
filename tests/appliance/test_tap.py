"""The appliance on our own network stack (`--net tap:IF`) inside a network namespace this test creates.

The Linux kernel in the namespace is the attacker's machine: real `openssl s_client`, a real TLS server on
port 40001 for the connect-back, and plain HTTP, all through our Ethernet/ARP/IPv4/TCP and our TLS.
"""

from __future__ import annotations

import secrets
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from bench.lab import stop_process
from tests import netns
from tests.appliance.certs import Spec, load_ca, mint, write_identity
from tests.appliance.running import KNOWN_WIF, ROOT, provision, serve_tls_once

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not netns.available(), reason="needs root, netns and /dev/net/tun")]

KERNEL_IP = "10.78.0.1"
APPLIANCE_IP = "10.78.0.2"


@dataclass
class TapAppliance:
    ns: str
    proc: subprocess.Popen[bytes]
    pki: Path
    log: Path

    def run(self, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["ip", "netns", "exec", self.ns, *args], input=stdin, capture_output=True, timeout=60, check=False
        )

    def http_get(self, path: str) -> bytes:
        code = (
            "import sys, urllib.request\n"
            f"sys.stdout.buffer.write(urllib.request.urlopen('http://{APPLIANCE_IP}{path}', timeout=20).read())"
        )
        return self.run(sys.executable, "-c", code).stdout


@pytest.fixture(scope="module")
def tap_appliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TapAppliance]:
    directory = tmp_path_factory.mktemp("tap")
    disk, pki, log = directory / "disk", directory / "pki", directory / "console.log"
    provision(disk)
    tap = f"pap{secrets.token_hex(3)}"
    with netns.namespace("pap") as ns:
        handle = log.open("wb")
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-m", "appliance", "--net", f"tap:{tap}",
             "--ip", f"{APPLIANCE_IP}/24", "--disk", str(disk), "--tls", "ours", "--test-pki", str(pki)],
            stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT,
        )
        try:
            deadline = time.monotonic() + 30
            while b'"event":"ready"' not in log.read_bytes():
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            netns.ip(ns, "addr", "add", f"{KERNEL_IP}/24", "dev", tap)
            netns.ip(ns, "link", "set", tap, "up")
            yield TapAppliance(ns, proc, pki, log)
        finally:
            stop_process(proc)


def test_http_over_our_stack(tap_appliance: TapAppliance) -> None:
    page = tap_appliance.http_get("/")
    assert b"Pi\xc3\xb1ata" in page
    assert b"tap:" in page


def test_openssl_gets_the_secret_over_our_stack_and_tls(tap_appliance: TapAppliance) -> None:
    pki = tap_appliance.pki
    result = tap_appliance.run(
        "openssl", "s_client", "-connect", f"{APPLIANCE_IP}:10000", "-quiet",
        "-cert", str(pki / "client.pem"), "-key", str(pki / "client.key"),
    )
    assert KNOWN_WIF.encode() in result.stdout, result.stderr[-500:]


def test_connect_back_to_the_kernel_over_our_stack(tap_appliance: TapAppliance, tmp_path: Path) -> None:
    spec = Spec(eku=(ExtendedKeyUsageOID.SERVER_AUTH,))
    cert, key = write_identity(mint(load_ca(tap_appliance.pki), spec), tmp_path, "server")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = netns.run_in(tap_appliance.ns, lambda: socket.create_server((KERNEL_IP, 40001)))
    listener.settimeout(30)
    thread, received = serve_tls_once(listener, context)
    try:
        poke = f"import socket; socket.create_connection(('{APPLIANCE_IP}', 10001), timeout=10).close()"
        tap_appliance.run(sys.executable, "-c", poke)
        thread.join(timeout=40)
    finally:
        listener.close()
    assert received == [KNOWN_WIF.encode() + b"\n"]
