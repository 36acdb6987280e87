"""Real clients from the namespace: curl and openssl s_client on 80 and 443 (verifying the boot CA), and the
bounty page in headless Chromium: it renders, logs nothing to the console, and its screenshot is kept as a
test artefact (build/integration/bounty.png)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.lab import TARGET_IP, Lab

pytestmark = [pytest.mark.netns, pytest.mark.qemu]
# The suite runs as root (it makes network namespaces), and Chromium refuses to run as root inside its
# sandbox: --no-sandbox. There is no display or GPU: --headless=new (the full browser, not the old
# separate headless shell) and --disable-gpu. The console goes to stderr (--enable-logging=stderr, --v=0),
# one `INFO:CONSOLE:<line>]` line per message; nothing else may make requests or change the page.
CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr", "--v=0",
)
CONSOLE_LINE = re.compile(rb":CONSOLE[:(]")
ADDRESS = re.compile(rb"bc1q[02-9ac-hj-np-z]{38,58}")


def _served(target: Lab, endpoint: str) -> int:
    return target.count(endpoint, "served")


def test_the_target_runs_our_stack_and_our_tls(target: Lab) -> None:
    """What is attacked is what ships: our TLS and X.509, on our stack (the VM's NIC through AF_PACKET for
    the image; the tap for the host process)."""
    status, page = target.http_get("/")
    assert status == 200
    mode = re.search(rb"net=(\S+) [^<]*? tls=(\S+) x509=(\S+?)<", page)  # the IPv4 and IPv6 addressing between
    assert mode, page[-2000:]
    interface, tls, x509 = mode.groups()
    assert (tls, x509) == (b"ours", b"tls.x509")
    assert interface.startswith(b"packet:eth0" if target.kind == "image" else b"tap:")


def test_curl_http(target: Lab) -> None:
    before = _served(target, "http")
    result = target.shell("curl", "-sS", "-m", "60", "-o", "-", "-w", "\n%{http_code}", f"http://{TARGET_IP}/")
    body, _, code = result.stdout.rpartition(b"\n")
    assert code == b"200", result.stderr
    assert ADDRESS.search(body)
    assert target.wait_count("http", "served", before + 1) >= before + 1


def test_curl_https_verifies_the_boot_ca(target: Lab) -> None:
    before = _served(target, "https")
    result = target.shell(
        "curl", "-sS", "-m", "60", "--cacert", str(target.pki / "ca.pem"), "--resolve", f"pinata.local:443:{TARGET_IP}",
        "-o", "/dev/null", "-w", "%{http_code}", "https://pinata.local/stats.json",
    )
    assert result.stdout == b"200", result.stderr
    assert target.wait_count("https", "served", before + 1) >= before + 1


def test_curl_https_without_the_ca_does_not_trust_it(target: Lab) -> None:
    """The control for the case above: curl's verification is really on."""
    result = target.shell("curl", "-sS", "-m", "60", "-o", "/dev/null", f"https://{TARGET_IP}/")
    assert result.returncode == 60, (result.returncode, result.stderr)


@pytest.mark.parametrize("version", ["-tls1_3", "-tls1_2"])
def test_openssl_s_client_https(target: Lab, version: str) -> None:
    result = target.shell(
        "openssl", "s_client", version, "-connect", f"{TARGET_IP}:443", "-servername", "pinata.local",
        "-CAfile", str(target.pki / "ca.pem"), "-verify_return_error", "-ign_eof",
        stdin=b"GET /ca.pem HTTP/1.1\r\nHost: pinata.local\r\nConnection: close\r\n\r\n",
    )
    assert b"Verify return code: 0 (ok)" in result.stdout, result.stderr[-500:]
    assert b"HTTP/1.1 200" in result.stdout
    assert (target.pki / "ca.pem").read_bytes().strip() in result.stdout


def test_openssl_s_client_plain_http_port_is_not_tls(target: Lab) -> None:
    result = target.shell("openssl", "s_client", "-connect", f"{TARGET_IP}:80", stdin=b"")
    assert result.returncode != 0
    assert b"BEGIN CERTIFICATE" not in result.stdout


def _chromium(target: Lab, profile: Path, *args: str) -> tuple[bytes, bytes]:
    result = target.shell("chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, result.stderr


def test_chromium_renders_the_bounty_page_without_console_messages(target: Lab, tmp_path: Path) -> None:
    # the detector works: a page that logs an error is caught
    _, control = _chromium(target, tmp_path / "control", "--dump-dom",
                           "data:text/html,<p>x</p><script>console.error('control-error')</script>")
    assert CONSOLE_LINE.search(control)
    assert b"control-error" in control
    shot = target.artefacts / "bounty.png"
    target.artefacts.mkdir(parents=True, exist_ok=True)
    shot.unlink(missing_ok=True)
    _, log = _chromium(target, tmp_path / "page", "--window-size=1280,1600", f"--screenshot={shot}",
                       f"http://{TARGET_IP}/")
    assert not CONSOLE_LINE.search(log), [line for line in log.splitlines() if CONSOLE_LINE.search(line)]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank canvas
    dom, log = _chromium(target, tmp_path / "stats", "--dump-dom", f"http://{TARGET_IP}/stats")
    assert not CONSOLE_LINE.search(log), log[-2000:]
    assert b"<svg" in dom
