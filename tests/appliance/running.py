"""Run `python -m appliance --net kernel` as a subprocess for the endpoint tests, and talk to it."""

from __future__ import annotations

import json
import random
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from appliance.config import Ports
from bench.lab import stop_process

ROOT = Path(__file__).resolve().parents[2]
KNOWN_WIF = "L1aW4aubDFB7yfras2S1mN3bqg9nwySY8nkoLmJebSLD5BWv3ENZ"  # a test key, never funded


def _free(ports: Ports) -> bool:
    for port in (ports.http, ports.https, ports.mutual, ports.callback, ports.reverse, ports.callback_target):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_offset() -> int:
    for _ in range(50):
        offset = random.randrange(20000, 25000)
        if _free(Ports().shifted(offset)):
            return offset
    raise RuntimeError("no free port offset")


@dataclass
class Running:
    proc: subprocess.Popen[bytes]
    ports: Ports
    pki: Path
    disk: Path
    log: Path
    engine: str

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.ports.http}{path}"

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.url(path), timeout=10) as response:
            body: bytes = response.read()
            return body

    def stats(self) -> dict[str, object]:
        data: dict[str, object] = json.loads(self.get("/stats.json"))
        return data

    def count(self, endpoint: str, category: str) -> int:
        by_endpoint = self.stats()["by_endpoint"]
        assert isinstance(by_endpoint, dict)
        return int(by_endpoint[endpoint].get(category, 0))

    def wait_count(self, endpoint: str, category: str, at_least: int, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while True:
            try:
                n = self.count(endpoint, category)
            except OSError:  # e.g. refused by the per-source limit while a test's connections wind down
                if time.monotonic() > deadline:
                    raise
                n = -1
            if n >= at_least or time.monotonic() > deadline:
                return n
            time.sleep(0.05)

    def stop(self) -> None:
        stop_process(self.proc)


def provision(disk: Path) -> None:
    """A disk holding KNOWN_WIF, written by the appliance's own `provision` command."""
    subprocess.run(
        [sys.executable, "-m", "appliance", "provision", "--wif", KNOWN_WIF, "--disk", str(disk)],
        check=True, cwd=ROOT, capture_output=True,
    )


def start(directory: Path, engine: str, limits: tuple[str, ...] = ()) -> Running:
    disk, pki, log = directory / "disk", directory / "pki", directory / "console.log"
    provision(disk)
    offset = free_offset()
    args = [
        sys.executable, "-m", "appliance", "--net", "kernel", "--host", "127.0.0.1", "--port-offset", str(offset),
        "--disk", str(disk), "--tls", engine, "--test-pki", str(pki),
    ]
    for item in limits:
        args += ["--limit", item]
    handle = log.open("wb")
    proc = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT)
    running = Running(proc, Ports().shifted(offset), pki, disk, log, engine)
    deadline = time.monotonic() + 30
    while b'"event":"ready"' not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            running.stop()
            raise RuntimeError("appliance did not start:\n" + log.read_text())
        time.sleep(0.05)
    return running


def client_context(cert: Path | None = None, key: Path | None = None, ca: Path | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    if ca is None:
        context.verify_mode = ssl.CERT_NONE
    else:
        context.load_verify_locations(ca)
    if cert is not None:
        context.load_cert_chain(cert, key)
    return context


def tls_exchange(port: int, context: ssl.SSLContext, timeout: float = 10.0) -> bytes:
    """Connect, handshake, read until the server closes. Handshake failures return b""."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        try:
            with context.wrap_socket(raw) as tls:
                data = b""
                while True:
                    chunk = tls.recv(4096)
                    if not chunk:
                        return data
                    data += chunk
        except (ssl.SSLError, ConnectionError, OSError):
            return b""


def raw_exchange(port: int, payload: bytes, timeout: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        data = b""
        try:
            while chunk := sock.recv(4096):
                data += chunk
        except (ConnectionError, TimeoutError):
            pass
        return data


def serve_tls_once(listener: socket.socket, context: ssl.SSLContext) -> tuple[threading.Thread, list[bytes]]:
    """A TLS server for the appliance's connect-back: on a started thread, accept one connection and read it
    to the end; what it read is appended to the returned list (join the thread first)."""
    received: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with context.wrap_socket(conn, server_side=True) as tls:
            data = b""
            while chunk := tls.recv(4096):
                data += chunk
            received.append(data)

    thread = threading.Thread(target=serve)
    thread.start()
    return thread, received
