"""The attack lab: a network namespace with a tap device, and the appliance behind it at TARGET_IP.

The namespace's kernel is the attacker's machine (our real clients, scapy's raw frames, Python sockets);
whatever is behind the tap is the target. Two targets, one interface:
- `image`: the appliance image under QEMU (TCG) on the tap, booted from the production initramfs plus
  the test overlay of `tests.integration.testimage` (which hands the test PKI out over the console);
- `host`: `python -m appliance --net tap:IF` as a host process in the namespace: the same code, our own
  stack and TLS, without the VM (for developing cases quickly: PINATA_TARGET=host).
The namespace and the tap are created here and deleted on exit, whatever happened.

The lab is dual-stack: the kernel holds a ULA /64 (KERNEL_IP6) and the link-local fe80::1 (the target's
IPv6 gateway, so that the target answers sources in other /64s through the kernel), and attacker
addresses both in the lab /64 and in /64s of their own (the per-source limits count an IPv6 /64 as one
source). Every helper takes an IPv6 address where it takes an IPv4 one: the family follows the address.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import coincurve

from appliance import bitcoin, data_disk
from appliance.config import DEFAULT_LIMITS
from appliance.data_disk import open_ledger, recover_ledger
from appliance.disk import Disk, Header
from appliance.ledger import Recovery
from appliance.ledger_record import Record
from appliance.stats import Stats
from tests import netns

if TYPE_CHECKING:
    from image import run

ROOT = Path(__file__).resolve().parents[2]
KNOWN_WIF = "L1aW4aubDFB7yfras2S1mN3bqg9nwySY8nkoLmJebSLD5BWv3ENZ"  # a test key, never funded
SECRET_FORMS = (KNOWN_WIF.encode(), bitcoin.wif_decode(KNOWN_WIF), bitcoin.wif_decode(KNOWN_WIF).hex().encode())
KNOWN_ADDRESS = bitcoin.p2wpkh_address(
    coincurve.PrivateKey(bitcoin.wif_decode(KNOWN_WIF)).public_key.format(compressed=True))
"""The bounty address of the test key: what a target booted from a provisioned disk must show."""
SUBNET = "10.77.0"
KERNEL_IP = f"{SUBNET}.1"  # the namespace's own address on the tap: stats, good paths, real clients
TARGET_IP = f"{SUBNET}.2"
ATTACKER_IPS = tuple(f"{SUBNET}.{n}" for n in range(10, 26))  # extra sources: the per-source limit is 16
PREFIX6 = "fd00:77::"  # the lab's /64 (a ULA)
KERNEL_IP6 = f"{PREFIX6}1"
TARGET_IP6 = f"{PREFIX6}2"
GATEWAY6 = "fe80::1"  # the kernel's explicit link-local address: the target's IPv6 default router
ATTACKER_IP6S_SAME_64 = tuple(f"{PREFIX6}{n:x}" for n in range(0x10, 0x14))  # one source to the target
ATTACKER_IP6S = tuple(f"fd00:78:{n:x}::1" for n in range(1, 18))  # each its own /64: a source each
ND_VICTIM6 = f"{PREFIX6}6:1"  # a kernel address nothing talks from: neighbour spoofing's victim
IP6_PARAMETER = f"{TARGET_IP6}/64,gw={GATEWAY6}"  # --ip6 for the host target, ip6= for the image
IPV6_READY_TIMEOUT = 60.0  # the target's DAD (about a second), on a loaded machine
READY_TIMEOUT = 180.0  # TCG on a shared 2-core machine; a boot to "ready" takes a few seconds
LAB_TIMEOUT = 5  # seconds: shorter than production so the timeout cases take seconds, not tens of seconds
LAB_CONNECTION_LIFETIME = 3 * LAB_TIMEOUT  # a keep-alive connection's whole life, longer than its idle timeout
LIMITS = (*(f"{name}={LAB_TIMEOUT}" for name in (
    "handshake_timeout", "idle_timeout", "http_request_timeout", "callback_connect_timeout")),
    f"http_connection_lifetime={LAB_CONNECTION_LIFETIME}")
TARGETS = ("image", "host")


class SecretLeakedError(AssertionError):
    """The attacker received the wallet key: the one failure this whole suite exists to catch."""


def assert_no_secret(data: bytes, where: str) -> None:
    for form in SECRET_FORMS:
        if form in data:
            raise SecretLeakedError(f"the secret appeared in {where}")


@dataclass
class Console:
    """Lines the target printed (the VM's serial console, or the host process's stdout)."""

    lines: list[str] = field(default_factory=list)
    ended: threading.Event = field(default_factory=threading.Event)  # the stream reached its end

    def pump(self, stream: object) -> None:
        try:
            for raw in stream:  # type: ignore[attr-defined]
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
        finally:
            self.ended.set()

    def events(self, name: str) -> list[dict[str, object]]:
        found = []
        for line in list(self.lines):
            if line.startswith("{") and f'"event":"{name}"' in line:
                with contextlib.suppress(json.JSONDecodeError):
                    found.append(json.loads(line))
        return found

    def wait_for(self, name: str, alive: Callable[[], bool], timeout: float) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.events(name)
            if found:
                return found[0]
            if not alive():
                break
            time.sleep(0.05)
        raise RuntimeError(f"no {name!r} event (alive={alive()}); console tail:\n" + "\n".join(self.lines[-40:]))

    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass
class Lab:
    kind: str
    ns: str
    tap: str
    pki: Path
    console: Console
    process: subprocess.Popen[bytes]
    artefacts: Path
    received_bytes: int = 0
    command: list[str] = field(default_factory=list)  # what started the target (run again by `reboot`)
    disk: Path | None = None
    earlier_consoles: list[Console] = field(default_factory=list)  # of the boots before this one
    ipv6_ready: bool = False  # the target answered over IPv6 since its last boot

    # -- the target's life ---------------------------------------------------------------------------

    def reboot(self, *, kill: bool) -> int:
        """Stop the target (SIGKILL when `kill`: a power loss for the VM, a crash for the host process;
        else SIGTERM) and start it again on the same disk, network and command line; returns once it is
        ready again, with its new boot PKI loaded (every boot makes a new CA). Returns the old process's
        exit status."""
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        status = self.process.wait(30)
        self.earlier_consoles.append(self.console)
        self.process, self.console = launch(self.command)
        self.ipv6_ready = False
        wait_ready(self.kind, self.process, self.console, self.pki)
        return status

    def consoles_text(self) -> str:
        boots = [*self.earlier_consoles, self.console]
        return "\n".join(f"----- boot {n} -----\n{c.text()}" if len(boots) > 1 else c.text()
                         for n, c in enumerate(boots))

    # -- running things in the namespace ------------------------------------------------------------

    def open_socket(self, source: str | None = None, kind: int = socket.SOCK_STREAM,
                    family: socket.AddressFamily | None = None) -> socket.socket:
        """A socket that lives in the namespace (the namespace of the creating thread), optionally bound
        to one of the attacker addresses; IPv6 when the source is an IPv6 address or `family` says so."""
        chosen = family if family is not None else family_of(source)

        def make() -> socket.socket:
            sock = socket.socket(chosen, kind)
            if source is not None:
                sock.bind((source, 0))
            return sock

        return netns.run_in(self.ns, make)

    def connect(self, port: int, source: str | None = None, timeout: float = 20.0, *,
                family: socket.AddressFamily | None = None) -> socket.socket:
        """A connection to the target over the source's family (or `family`; IPv4 by default)."""
        chosen = family if family is not None else family_of(source)
        if chosen == socket.AF_INET6:
            self.wait_ipv6()
        sock = self.open_socket(source, family=chosen)
        sock.settimeout(timeout)
        try:
            sock.connect((target_address(chosen), port))
        except TimeoutError as exc:
            sock.close()
            # A connect that times out is the target not answering a SYN: what it printed meanwhile is the
            # evidence (a stalled event loop, a limit reached, a crash).
            tail = "\n".join(self.console.lines[-30:])
            raise TimeoutError(f"connect to port {port} timed out after {timeout}s (alive={self.alive()}); "
                               f"console tail:\n{tail}") from exc
        except OSError:
            sock.close()
            raise
        return sock

    def shell(self, *args: str, stdin: bytes = b"", timeout: float = 90.0) -> subprocess.CompletedProcess[bytes]:
        result = subprocess.run(
            ["ip", "netns", "exec", self.ns, *args], input=stdin, capture_output=True, timeout=timeout, check=False
        )
        self.received(result.stdout + result.stderr, f"the output of {args[0]}")
        return result

    def received(self, data: bytes, where: str = "what the attacker received") -> bytes:
        """Every byte the attacker gets goes through here."""
        self.received_bytes += len(data)
        assert_no_secret(data, where)
        return data

    # -- observing the target -----------------------------------------------------------------------

    def alive(self) -> bool:
        return self.process.poll() is None

    def http_get(self, path: str, source: str | None = None, timeout: float = 30.0, *,
                 family: socket.AddressFamily | None = None) -> tuple[int, bytes]:
        chosen = family if family is not None else family_of(source)
        host = TARGET_IP if chosen == socket.AF_INET else f"[{TARGET_IP6}]"
        with self.connect(80, source, timeout, family=chosen) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            data = read_all(sock)
        self.received(data)
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else 0
        return status, body

    def wait_ipv6(self, timeout: float = IPV6_READY_TIMEOUT) -> None:
        """Until the target answers over IPv6 (once per boot: its addresses are tentative until DAD is done,
        and a connection to a tentative address gets no answer)."""
        if self.ipv6_ready:
            return
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            sock = self.open_socket(KERNEL_IP6)
            sock.settimeout(2.0)
            try:
                sock.connect((TARGET_IP6, 80))
            except OSError as exc:
                last = exc
                time.sleep(0.2)
                continue
            finally:
                sock.close()
            self.ipv6_ready = True
            return
        tail = "\n".join(self.console.lines[-30:])
        raise TimeoutError(f"the target did not answer over IPv6 within {timeout}s ({last!r}); console tail:\n{tail}")

    def stats(self, family: socket.AddressFamily | None = None) -> dict[str, object]:
        """/stats.json, over IPv4 unless `family` says otherwise (an IPv6-only lab has no IPv4 to ask over)."""
        last: Exception | None = None
        for _ in range(5):
            try:
                status, body = self.http_get("/stats.json", family=family)
                if status == 200:
                    value = json.loads(body)
                    assert isinstance(value, dict)
                    return value
            except (OSError, json.JSONDecodeError) as exc:
                last = exc
            time.sleep(0.5)
        raise AssertionError(f"/stats.json unavailable: {last!r}")

    def network(self) -> dict[str, int]:
        """The target's network-stack counters from /stats.json: where attacks that never become a connection
        (spoofed SYNs, bad fragments, malformed headers) are counted."""
        counters = self.stats()["network"]
        assert isinstance(counters, dict)
        return {str(name): int(value) for name, value in counters.items()}

    def network_delta(self, before: dict[str, int]) -> dict[str, int]:
        """How much each network counter grew since `before` (only those that did)."""
        after = self.network()
        return {name: value - before.get(name, 0) for name, value in after.items() if value > before.get(name, 0)}

    def count(self, endpoint: str, category: str) -> int:
        by_endpoint = self.stats()["by_endpoint"]
        assert isinstance(by_endpoint, dict)
        return int(by_endpoint[endpoint].get(category, 0))

    def wait_count(self, endpoint: str, category: str, at_least: int, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while True:
            n = self.count(endpoint, category)
            if n >= at_least or time.monotonic() > deadline:
                return n
            time.sleep(0.25)

    def expect_refusal(self, endpoint: str, category: str, attack: Callable[[], bytes], times: int = 1) -> bytes:
        """Run the attack; assert it was counted under `category` on `endpoint`, that nothing succeeded on
        that endpoint meanwhile, and that the secret is not in what came back. Returns what came back."""
        before = self.count(endpoint, category)
        successes = self.count(endpoint, "success")
        data = self.received(attack())
        after = self.wait_count(endpoint, category, before + times)
        assert after >= before + times, (endpoint, category, before, after, self.recent())
        assert self.count(endpoint, "success") == successes
        return data

    def recent(self) -> object:
        return self.stats()["recent_refused"]

    def memory_kib(self) -> int | None:
        """Resident memory of the appliance process: /proc for the host process; the test image's
        `test.memory` console samples for the VM (the guest's /proc, read by the test PID 1)."""
        return self._appliance_status_kib("VmRSS", "rss_kib")

    def anon_memory_kib(self) -> int | None:
        """The anonymous part of that resident memory (RssAnon: the heap and stacks, what a leak grows).
        The rest is file pages (the interpreter and the shared libraries, paged in as code paths are first
        used), bounded by the size of those files."""
        return self._appliance_status_kib("RssAnon", "anon_kib")

    def _appliance_status_kib(self, field: str, sample_key: str) -> int | None:
        if self.kind == "host":
            for pid in [*_children(self.process.pid), self.process.pid]:
                value = _status_kib(pid, field)
                if value is not None and _is_appliance(pid):
                    return value
            return None
        samples = self.console.events("test.memory")
        sampled = samples[-1].get(sample_key) if samples else None
        return int(str(sampled)) if sampled is not None else None


def family_of(address: str | None) -> socket.AddressFamily:
    """The family of an address text (IPv4 when there is none)."""
    return socket.AF_INET6 if address is not None and ":" in address else socket.AF_INET


def target_address(family: socket.AddressFamily) -> str:
    return TARGET_IP6 if family == socket.AF_INET6 else TARGET_IP


def read_all(sock: socket.socket, limit: int = 1 << 22) -> bytes:
    """Everything the peer sends until it stops, however it stops (EOF, reset, timeout, or a TLS alert on
    an ssl socket): what arrived before the error is kept, because it is what the secret checks read."""
    data = b""
    try:
        while len(data) < limit:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:  # ConnectionError, TimeoutError and ssl.SSLError alike
        pass
    return data


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
            for child in text.split():
                found += [int(child), *_children(int(child))]
    return found


def _status_kib(pid: int, field: str) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def _is_appliance(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return b"appliance" in Path(f"/proc/{pid}/cmdline").read_bytes()
    return False


def provision(disk: Path, region_bytes: int | None = None) -> None:
    """Put the known test key on the data disk (what `python -m appliance provision --wif` does), with the
    production ledger region size unless the soak asks for a small one to see rollovers soon."""
    handle = Disk(disk)
    try:
        data_disk.provision(handle, bitcoin.wif_decode(KNOWN_WIF), region_bytes or DEFAULT_LIMITS.ledger_region_bytes)
    finally:
        handle.close()


@dataclass(frozen=True)
class DiskLedger:
    """A data disk as the appliance's own recovery reads it, without writing: the header it would boot
    with, what recovery found, and the statistics it would rebuild."""

    header: Header
    recovery: Recovery
    stats: Stats

    @property
    def connections(self) -> int:
        return self.stats.total()


def read_ledger(disk: Path, scratch: Path, consume: Callable[[Record], None] | None = None) -> DiskLedger:
    """Recover the ledger of a copy of `disk` (read-only, so a running target is neither disturbed nor
    locked out), replaying every readable record into the statistics and into `consume`."""
    copy = scratch / f"{disk.name}.reading"
    shutil.copyfile(disk, copy)
    stats = Stats(DEFAULT_LIMITS)

    def replay(record: Record) -> None:
        stats.replay(record)
        if consume is not None:
            consume(record)

    handle = Disk(copy, read_only=True)
    try:
        resolution = handle.resolve_header()
        header = resolution.header
        if header is None:
            raise AssertionError(f"{disk} has no header")
        recovery = recover_ledger(open_ledger(handle, header, resolution, DEFAULT_LIMITS), header, replay)
    finally:
        handle.close()
        copy.unlink()
    return DiskLedger(header, recovery, stats)


def load_pki(console: Console, directory: Path) -> Path:
    """Write the `test.pki` files the test image printed to `directory` (the same layout as --test-pki)."""
    event = console.events("test.pki")
    if not event:
        raise RuntimeError("the test image printed no PKI:\n" + console.text()[-3000:])
    files = event[0]["files"]
    assert isinstance(files, dict)
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(str(text))
    return directory


def _start_host(ns: str, tap: str, directory: Path, region_bytes: int | None,
                *, ipv4: bool) -> tuple[list[str], Path, Path]:  # fmt: skip
    disk, pki = directory / "disk", directory / "pki"
    provision(disk, region_bytes)
    args = [
        "ip", "netns", "exec", ns, sys.executable, "-m", "appliance", "--net", f"tap:{tap}",
        "--ip", f"{TARGET_IP}/24" if ipv4 else "dhcp", "--ip6", IP6_PARAMETER, "--disk", str(disk), "--tls", "ours",
        "--test-pki", str(pki),
    ]
    for item in LIMITS:
        args += ["--limit", item]
    return args, disk, pki


def image_command(directory: Path, disk: Path, network: run.Network, ip: str | None = None,
                  ip6: str | None = None) -> list[str]:
    """The QEMU command that boots the test image (built if missing) on `disk` as it is, on `network`:
    no provisioning, no namespace."""
    from image import build, run
    from tests.integration import testimage

    image = build.build("appliance", out=directory / "image")
    archive = testimage.write_test_initramfs(image.archive, directory / "initramfs-test.cpio", LIMITS)
    initramfs = build.boot_form(archive)  # the production archive and the overlay, compressed as one
    return run.qemu_command(run.load_manifest(), image.kernel, initramfs, disk, network, ip=ip, ip6=ip6)


def _start_image(ns: str, tap: str, directory: Path, region_bytes: int | None,
                 disk: Path | None, *, ipv4: bool) -> tuple[list[str], Path]:
    from image import run

    if disk is None:
        disk = directory / "data.img"
        run.ensure_disk(disk, run.load_manifest())
        provision(disk, region_bytes)
    ip = f"{TARGET_IP}::{KERNEL_IP}:255.255.255.0" if ipv4 else "dhcp"
    command = image_command(directory, disk, run.Network("tap", tap), ip=ip, ip6=IP6_PARAMETER)
    return ["ip", "netns", "exec", ns, *command], disk


def launch(command: list[str]) -> tuple[subprocess.Popen[bytes], Console]:
    """Start the target; its output (console or stdout) is read into a Console by a daemon thread."""
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               cwd=ROOT)
    console = Console()
    assert process.stdout is not None
    threading.Thread(target=console.pump, args=(process.stdout,), daemon=True).start()
    return process, console


def wait_ready(kind: str, process: subprocess.Popen[bytes], console: Console, pki: Path) -> None:
    console.wait_for("ready", lambda: process.poll() is None, READY_TIMEOUT)
    if kind == "image":
        console.wait_for("test.pki", lambda: process.poll() is None, READY_TIMEOUT)
        load_pki(console, pki)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@contextlib.contextmanager
def lab(kind: str, directory: Path, artefacts: Path, ledger_region_bytes: int | None = None, *,
        disk: Path | None = None, ipv4: bool = True) -> Iterator[Lab]:
    """Namespace, tap, addresses, then the target; all torn down on exit. The target gets a freshly
    provisioned disk, or (image only) boots from `disk` as it is. `ipv4=False` makes the link IPv6-only: the
    namespace has no IPv4 address and no DHCP server, and the target asks DHCP (which nobody answers)."""
    if kind not in TARGETS:
        raise ValueError(f"target {kind!r}: expected one of {TARGETS}")
    if disk is not None and kind != "image":
        raise ValueError("only the image target boots from a given disk")
    tap = f"pin{secrets.token_hex(3)}"
    with netns.namespace("pint") as ns:
        netns.ip(ns, "tuntap", "add", "dev", tap, "mode", "tap")
        for address in (f"{KERNEL_IP}/24", *(f"{a}/32" for a in ATTACKER_IPS)) if ipv4 else ():
            netns.ip(ns, "addr", "add", address, "dev", tap)
        # nodad: the kernel's addresses are usable at once (nothing else on this link could hold them)
        netns.ip(ns, "addr", "add", f"{KERNEL_IP6}/64", "dev", tap, "nodad")
        netns.ip(ns, "addr", "add", f"{GATEWAY6}/64", "dev", tap, "scope", "link", "nodad")
        for address in (*ATTACKER_IP6S_SAME_64, *ATTACKER_IP6S, ND_VICTIM6):
            netns.ip(ns, "addr", "add", f"{address}/128", "dev", tap, "nodad")
        netns.ip(ns, "link", "set", tap, "up")
        if kind == "host":
            command, disk, pki = _start_host(ns, tap, directory, ledger_region_bytes, ipv4=ipv4)
        else:
            command, disk = _start_image(ns, tap, directory, ledger_region_bytes, disk, ipv4=ipv4)
            pki = directory / "pki"
        process, console = launch(command)
        running = Lab(kind, ns, tap, pki, console, process, artefacts, command=command, disk=disk)
        try:
            wait_ready(kind, process, console, pki)
            yield running
        finally:
            stop(running.process)
            artefacts.mkdir(parents=True, exist_ok=True)
            (artefacts / f"console-{kind}.log").write_text(running.consoles_text())
