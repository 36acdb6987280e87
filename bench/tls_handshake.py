"""Full TLS 1.3 handshakes per second (X25519 + ECDSA P-256): `python -m adapters.tls_cli server` against a stdlib-`ssl`
asyncio server with the same page logic, driven by the same client (the stdlib `ssl` client: connect,
handshake, a 2-byte request, the page, close), interleaved in the same run.

Two figures: handshakes per wall-clock second as the client sees them (client cost included, identical for
both), and handshakes per CPU-second of the server process (the server's own cost, the sharper comparison).

The mutual figures give each handshake another client certificate (CLIENTS of them, in turn, the same
sequence for both servers), as connections from different peers would: a server may keep what its own
configuration fixes (its anchors, its credentials), but nothing keyed by a peer's certificate may serve a
repeat here, because real traffic to port 10000 does not repeat one client.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.x509.oid import ExtendedKeyUsageOID

from bench import certs
from bench.harness import Figure

ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")


CLIENTS = 32


def _pki(directory: Path) -> tuple[str, str, str]:
    """A P-256 CA and server leaf with the extensions strict validators require: (ca, chain, key) paths.
    CLIENTS client leaves go to client-N.pem / client-N.key beside them."""
    now = datetime.now(UTC)
    before, after = now - timedelta(days=1), now + timedelta(days=30)
    ca_spec = certs.ca_spec("Bench CA", path_length=0, serial=1, not_before=before, not_after=after)
    ca = certs.issue(ca_spec, key=certs.new_key())
    server = certs.Spec("localhost", dns=("localhost",), ski=False, serial=2, not_before=before, not_after=after)
    leaf = certs.issue(server, issuer=ca, key=certs.new_key())
    client_spec = certs.Spec("client", eku=(ExtendedKeyUsageOID.CLIENT_AUTH,), san=False, ski=False, serial=None,
                             not_before=before, not_after=after)
    for number in range(CLIENTS):
        client = certs.issue(client_spec, issuer=ca, key=certs.new_key())
        (directory / f"client-{number}.pem").write_bytes(client.pem)
        (directory / f"client-{number}.key").write_bytes(client.key_pem)
    (directory / "ca.pem").write_bytes(ca.pem)
    (directory / "chain.pem").write_bytes(leaf.pem + ca.pem)
    (directory / "key.pem").write_bytes(leaf.key_pem)
    return str(directory / "ca.pem"), str(directory / "chain.pem"), str(directory / "key.pem")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _server(args: list[str], port: int) -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"server {args[:2]} did not start") from None
                time.sleep(0.05)
        yield proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _client(ca: str, port: int, identities: list[tuple[str, str]]) -> Callable[[], None]:
    """A client that connects with each identity (certificate, key) in turn, or with none if none are given."""
    contexts = [_context(ca, identity) for identity in identities] or [_context(ca, None)]
    next_context = itertools.cycle(contexts).__next__

    def handshake() -> None:
        with socket.create_connection(("127.0.0.1", port)) as raw:
            # Without NODELAY the request waits on a delayed ACK of the client Finished whenever the server
            # sends nothing after the handshake (we send no session tickets; OpenSSL sends two).
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            _exchange(next_context().wrap_socket(raw, server_hostname="localhost"))

    return handshake


def _context(ca: str, identity: tuple[str, str] | None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(ca)
    if identity is not None:
        context.load_cert_chain(*identity)
    context.minimum_version = ssl.TLSVersion.TLSv1_3  # OpenSSL sends its X25519 share first
    return context


def _exchange(conn: ssl.SSLSocket) -> None:
    with conn:
        conn.sendall(b"\n\n")
        while True:
            try:
                if not conn.recv(4096):
                    break
            except (ssl.SSLEOFError, ConnectionResetError):
                break


def _measure(operation: Callable[[], None], pid: int, seconds: float) -> tuple[float, float]:
    """(operations per wall second, operations per server CPU second)."""
    count = 0
    cpu_before = _cpu_seconds(pid)
    started = time.perf_counter()
    while count < 3 or time.perf_counter() - started < seconds:
        operation()
        count += 1
    wall = time.perf_counter() - started
    cpu = max(_cpu_seconds(pid) - cpu_before, 1 / TICKS)
    return count / wall, count / cpu


def _compare(ours_args: list[str], ref_args: list[str], *, ca: str, identities: list[tuple[str, str]],
             seconds: float, rounds: int) -> dict[str, float]:
    if rounds % 2:
        raise ValueError("an even number of rounds, so that each side goes first in half of them")
    ours_port, ref_port = _free_port(), _free_port()
    with _server([*ours_args, "--port", str(ours_port)], ours_port) as ours_pid, \
            _server([*ref_args, str(ref_port)], ref_port) as ref_pid:
        ours, ref = _client(ca, ours_port, identities), _client(ca, ref_port, identities)
        for _ in range(5):  # warm both up
            ours()
            ref()
        best = {"ours_wall": 0.0, "ours_cpu": 0.0, "ref_wall": 0.0, "ref_cpu": 0.0}
        sides = [("ours", ours, ours_pid), ("ref", ref, ref_pid)]
        for _ in range(rounds):
            for side, operation, pid in sides:
                wall, cpu = _measure(operation, pid, seconds / rounds / 2)
                best[f"{side}_wall"] = max(best[f"{side}_wall"], wall)
                best[f"{side}_cpu"] = max(best[f"{side}_cpu"], cpu)
            sides.reverse()  # each side goes first in half the rounds: the order itself moves a figure by ~5 %
    return best


def run(quick: bool) -> dict[str, Figure]:
    """The issue's figure is `handshakes_per_s`; `mutual_*` adds client certificates (the bounty's port 10000
    path: our server validates the chain with `tls.x509`, the reference with OpenSSL)."""
    seconds, rounds = (1.0, 2) if quick else (12.0, 4)
    figures: dict[str, Figure] = {}
    with tempfile.TemporaryDirectory() as tmp:
        ca, chain, key = _pki(Path(tmp))
        identities = [(str(Path(tmp) / f"client-{n}.pem"), str(Path(tmp) / f"client-{n}.key")) for n in range(CLIENTS)]
        ours = ["-m", "adapters.tls_cli", "server", "--cert", chain, "--key", key, "--quiet"]
        ref = ["-m", "bench._tls_ssl_server", chain, key]
        for prefix, ours_args, ref_args, client_identities in (
            ("", ours, ref, []),
            ("mutual_", [*ours, "--client-ca", ca], [*ref, "--client-ca", ca], identities),
        ):
            best = _compare(ours_args, ref_args, ca=ca, identities=client_identities, seconds=seconds, rounds=rounds)
            figures[f"{prefix}handshakes_per_s"] = Figure(best["ours_wall"], "handshakes/s", best["ref_wall"])
            figures[f"{prefix}handshakes_per_server_cpu_s"] = Figure(best["ours_cpu"], "handshakes/cpu-s",
                                                                     best["ref_cpu"])
    return figures
