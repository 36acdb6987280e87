"""The appliance as a whole: HTTP requests/s and HTTPS handshakes/s, boot-to-ready time.

Side by side in one run, with the same load-generating client (a separate process, so it does not share
the appliance's interpreter):
- our network stack (`--net tap:IF` in a throwaway namespace) against the kernel's (`--net kernel`),
  both with our TLS; skipped, not faked, when root/netns/TUN are unavailable;
- our TLS engine against the stdlib `ssl` engine (both over kernel sockets);
- boot-to-ready of `python -m appliance` against a bare interpreter start (`python -c pass`);
- in-process, the signature behind one `/proof` (a public endpoint, rate-limited, so its CPU is what an
  attacker can make the appliance spend): the wallet key (OpenSSL signs, the recovery id is recomputed in
  Python) against libsecp256k1 through coincurve, which the appliance used before and the tests keep.

One "HTTPS handshake" is what a browser's first visit costs: connect, full handshake, `GET /ca.pem`,
close. HTTP requests are keep-alive `GET /stats.json` on one connection (reconnecting when the server's
per-connection request limit closes it). Every side is measured alone, best of the same number of rounds.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import coincurve

from appliance import bitcoin
from appliance.wallet_key import WalletKey
from bench import lab
from bench.harness import Figure
from bench.lab import stop_process
from bench.timing import interleaved_rates

ROOT = Path(__file__).resolve().parent.parent
KERNEL_IP, APPLIANCE_IP = "10.79.0.1", "10.79.0.2"

CLIENT = r"""
import socket, ssl, sys, time
host, port, seconds, mode = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
deadline = time.perf_counter() + seconds
count = 0
started = time.perf_counter()
if mode == "http":
    request = b"GET /stats.json HTTP/1.1\r\nHost: bench\r\n\r\n"
    sock = socket.create_connection((host, port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = b""
    while time.perf_counter() < deadline:
        sock.sendall(request)
        while True:
            head_end = buffer.find(b"\r\n\r\n")
            if head_end >= 0:
                head = buffer[:head_end].decode("latin-1").lower()
                length = int(head.split("content-length:")[1].split("\r\n")[0])
                if len(buffer) >= head_end + 4 + length:
                    buffer = buffer[head_end + 4 + length:]
                    if "connection: close" in head:  # the per-connection request limit was reached
                        sock.close()
                        sock = socket.create_connection((host, port), timeout=10)
                        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        buffer = b""
                    break
            buffer += sock.recv(65536)
        count += 1
else:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    while time.perf_counter() < deadline:
        with socket.create_connection((host, port), timeout=10) as raw:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as browsers and curl do
            with context.wrap_socket(raw) as tls:
                tls.sendall(b"GET /ca.pem HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                while tls.recv(65536):
                    pass
        count += 1
print(count / (time.perf_counter() - started))
"""


class PortsTakenError(RuntimeError):
    """A port found free by `_free_offset` was taken before the appliance bound it: by then any process on the
    machine may have been given it as an ephemeral port. Measured again at another offset."""


def _wait_ready(proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> float:
    started = time.perf_counter()
    while b'"event":"ready"' not in log.read_bytes():
        if proc.poll() is not None or time.perf_counter() - started > timeout:
            text = log.read_text()
            if proc.poll() is not None and "address already in use" in text[-2000:]:
                raise PortsTakenError(text[-500:])
            raise RuntimeError("appliance did not start: " + text[-2000:])
        time.sleep(0.005)
    return time.perf_counter() - started


@contextmanager
def _appliance(directory: Path, args: list[str], prefix: list[str]) -> Iterator[tuple[float, Path]]:
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "console.log"
    handle = log.open("wb")
    proc = subprocess.Popen(
        [*prefix, sys.executable, "-m", "appliance", "--disk", str(directory / "disk"), *args],
        stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT,
    )
    try:
        yield _wait_ready(proc, log), log
    finally:
        stop_process(proc)
        handle.close()


def _rate(prefix: list[str], host: str, port: int, seconds: float, mode: str) -> float:
    result = subprocess.run(
        [*prefix, sys.executable, "-c", CLIENT, host, str(port), str(seconds), mode],
        capture_output=True, text=True, timeout=seconds + 60, check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"load client for {host}:{port} ({mode}) failed: {result.stderr[-1500:]}")
    return float(result.stdout.strip())


def _best_of(rounds: int, measure_a: Callable[[], float], measure_b: Callable[[], float]) -> tuple[float, float]:
    """Alternate the two sides, keep each side's best round (background load hits both)."""
    best_a = best_b = 0.0
    for _ in range(rounds):
        best_a = max(best_a, measure_a())
        best_b = max(best_b, measure_b())
    return best_a, best_b


def _free_offset() -> int:
    """An offset at which both appliances' ports (the second one +100) are free on both loopbacks (the
    appliance listens on 127.0.0.1 and ::1)."""
    for _ in range(50):
        offset = random.randrange(15000, 65535 - 40001 - 100)
        ports = [p + offset + extra for p in (80, 443, 10000, 10001, 10002, 40001) for extra in (0, 100)]
        try:
            for port in ports:
                for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
                    with socket.socket(family) as probe:
                        probe.bind((host, port))
        except OSError:
            continue
        return offset
    raise RuntimeError("no free port offset for the benchmark")


def _boot_reference(repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        best = min(best, time.perf_counter() - started)
    return best


def _boot_to_ready(base: Path, args: list[str], repeats: int) -> float:
    """Best of `repeats` starts, as the reference is: one cold start alone is mostly page-cache noise."""
    best = float("inf")
    for index in range(repeats):
        with _appliance(base / f"boot{index}", args, []) as (seconds, _):
            best = min(best, seconds)
    return best


def _proof_signatures(seconds: float) -> Figure:
    """Recoverable signatures per second, ours against coincurve's, same key, same digests (BIP-137 message
    digests), interleaved. The tables (G's, and the key's own) are built before timing: the first proof of
    a boot pays for them once, about 20 ms on the host, and no proof after it does."""
    secret = hashlib.sha256(b"pinata bench wallet").digest()
    ours, reference = WalletKey(secret), coincurve.PrivateKey(secret)
    digests = [bitcoin.message_digest(f"proof {index}".encode()) for index in range(64)]
    ours.sign_recoverable(digests[0])
    ours_next, reference_next = itertools.cycle(digests), itertools.cycle(digests)
    ours_rate, reference_rate = interleaved_rates(
        lambda: ours.sign_recoverable(next(ours_next)),
        lambda: reference.sign_recoverable(next(reference_next), hasher=None),
        seconds=seconds,
    )
    return Figure(ours_rate, "signatures/s", reference_rate)


PORT_ATTEMPTS = 3


def run(quick: bool) -> dict[str, Figure]:
    seconds, rounds, boots = (0.4, 1, 1) if quick else (3.0, 3, 5)
    figures: dict[str, Figure] = {"proof_signatures_ours_vs_coincurve": _proof_signatures(seconds)}
    for attempt in range(PORT_ATTEMPTS):
        try:
            return figures | _appliance_figures(_free_offset(), seconds, rounds, boots)
        except PortsTakenError:
            print(f"appliance: a port was taken before the appliance bound it (attempt {attempt + 1}); again")
    raise RuntimeError(f"appliance: ports taken at {PORT_ATTEMPTS} offsets in a row")


def _appliance_figures(offset: int, seconds: float, rounds: int, boots: int) -> dict[str, Figure]:
    figures: dict[str, Figure] = {}
    with tempfile.TemporaryDirectory(prefix="pinata-bench-") as tmp:
        base = Path(tmp)
        limit = ["--limit", "max_connections_per_source=256"]
        kernel_args = ["--net", "kernel", "--port-offset", str(offset), *limit]
        stdlib_args = ["--net", "kernel", "--port-offset", str(offset + 100), *limit]
        https = 443 + offset
        # Each side is measured with only its own appliance running, best of the same number of rounds.
        with _appliance(base / "ours", [*kernel_args, "--tls", "ours"], []):
            kernel_http, kernel_https = _best_of(
                rounds,
                lambda: _rate([], "127.0.0.1", 80 + offset, seconds, "http"),
                lambda: _rate([], "127.0.0.1", https, seconds, "https"),
            )
        with _appliance(base / "stdlib", [*stdlib_args, "--tls", "stdlib"], []):
            stdlib_https = max(_rate([], "127.0.0.1", https + 100, seconds, "https") for _ in range(rounds))
        figures["https_handshakes_ours_tls_vs_stdlib_tls"] = Figure(kernel_https, "handshakes/s", stdlib_https)
        figures["boot_to_ready"] = Figure(
            _boot_to_ready(base, [*kernel_args, "--tls", "ours"], boots), "s", _boot_reference(boots))
        if not lab.available():
            print("appliance: tap figures skipped: they need root, /dev/net/tun and `ip netns`")
            return figures
        with lab.namespace("pbench") as ns:
            tap = f"pbt{secrets.token_hex(3)}"
            prefix = ["ip", "netns", "exec", ns]
            tap_args = ["--net", f"tap:{tap}", "--ip", f"{APPLIANCE_IP}/24", "--tls", "ours", *limit]
            with _appliance(base / "tap", tap_args, prefix):
                subprocess.run(["ip", "-n", ns, "addr", "add", f"{KERNEL_IP}/24", "dev", tap], check=True)
                subprocess.run(["ip", "-n", ns, "link", "set", tap, "up"], check=True)
                tap_http, tap_https = _best_of(
                    rounds,
                    lambda: _rate(prefix, APPLIANCE_IP, 80, seconds, "http"),
                    lambda: _rate(prefix, APPLIANCE_IP, 443, seconds, "https"),
                )
        figures["http_requests_tap_vs_kernel"] = Figure(tap_http, "requests/s", kernel_http)
        figures["https_handshakes_tap_vs_kernel"] = Figure(tap_https, "handshakes/s", kernel_https)
    return figures
