"""Real peers as subprocesses on loopback: our CLIs and `openssl s_server` / `s_client`."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from bench.lab import stop_process
from tests.tls.pki import Issued, ca, client_leaf, server_leaf

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _listening(port: int) -> bool:
    """Whether a TCP socket listens on `port`, read from /proc so that no probe connection is made
    (a probe would use up `s_server -naccept 1`)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    return True
    return False


def wait_listening(port: int, proc: subprocess.Popen[bytes], deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with {proc.returncode}")
        if _listening(port):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {port}")


class Pki:
    """PEM files for the test PKI in a directory."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.ca = self._write("ca.pem", ca().pem)
        self.server_chain = self._write("server.pem", server_leaf().pem + ca().pem)
        self.server_key = self._write("server.key", server_leaf().key_pem)
        self.client_cert = self._write("client.pem", client_leaf().pem)
        self.client_key = self._write("client.key", client_leaf().key_pem)

    def _write(self, name: str, data: bytes) -> str:
        path = self.dir / name
        path.write_bytes(data)
        return str(path)

    def write_issued(self, name: str, issued: Issued, chain_extra: bytes = b"") -> tuple[str, str]:
        return self._write(f"{name}.pem", issued.pem + chain_extra), self._write(f"{name}.key", issued.key_pem)


@contextlib.contextmanager
def running(args: list[str], port: int, stdin: int | None = subprocess.DEVNULL) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, cwd=ROOT, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_listening(port, proc)
        yield proc
    finally:
        stop_process(proc)


def our_server(pki: Pki, port: int, *extra: str) -> list[str]:
    return our_server_with(pki.server_chain, pki.server_key, port, *extra)


def our_server_with(cert: str, key: str, port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "adapters.tls_cli", "server", "--cert", cert, "--key", key, "--port", str(port),
            *extra]


def our_client(port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "adapters.tls_cli", "client", "--port", str(port), "--timeout", "2", *extra]


def openssl_server(cert: str, key: str, port: int, *extra: str) -> list[str]:
    return ["openssl", "s_server", "-accept", str(port), "-cert", cert, "-key", key, *extra]


def s_client(port: int, *extra: str, stdin: bytes = b"GET / HTTP/1.0\r\n\r\n") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-ign_eof", *extra],
                          input=stdin, capture_output=True, timeout=20, check=False)


def s_client_typing(port: int, *extra: str, lines: tuple[bytes, ...], pause: float = 0.6) -> bytes:
    """`s_client -msg` fed `lines` one at a time, with a pause before each and after the last, so that each
    interactive command (K, R, a request) acts on a settled connection; returns all it printed."""
    proc = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *extra, "-msg"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdin is not None
    try:
        for line in lines:
            time.sleep(pause)
            proc.stdin.write(line)
            proc.stdin.flush()
        time.sleep(pause)
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return out


class Interactive:
    """A subprocess driven line by line through its stdin while a thread collects everything it prints, so
    that a test can type, then wait (boundedly) until the effect shows."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(args, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self._output = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()

    def _collect(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        while chunk := os.read(stdout.fileno(), 65536):
            with self._lock:
                self._output += chunk

    @property
    def output(self) -> bytes:
        with self._lock:
            return bytes(self._output)

    def type(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def wait_for(self, needle: bytes, timeout: float = 10.0, start: int = 0) -> int:
        """Wait until `needle` appears at or after offset `start` of the output; returns where it ends."""
        end = time.monotonic() + timeout
        while True:
            output = self.output
            found = output.find(needle, start)
            if found >= 0:
                return found + len(needle)
            if time.monotonic() > end or (self.proc.poll() is not None and not self._reader.is_alive()):
                raise AssertionError(f"{needle!r} not printed within {timeout} s; got {output[-2000:]!r}")
            time.sleep(0.05)

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def wait(self, timeout: float = 10.0) -> int:
        returncode = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=timeout)
        return returncode

    def stop(self) -> None:
        stop_process(self.proc)
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()
        self._reader.join(timeout=5)


@contextlib.contextmanager
def interactive(args: list[str], port: int | None = None) -> Iterator[Interactive]:
    """Run `args` as an `Interactive` (waiting until it listens on `port`, if given), and stop it afterwards."""
    session = Interactive(args)
    try:
        if port is not None:
            wait_listening(port, session.proc)
        yield session
    finally:
        session.stop()


def s_server_typing(cert: str, key: str, port: int, *extra: str) -> contextlib.AbstractContextManager[Interactive]:
    """`openssl s_server -msg` whose stdin the test types into (`K`/`k` send a KeyUpdate with/without asking
    for one back; other lines go to the client as data), and whose printed protocol messages and received
    data the test waits for."""
    return interactive(openssl_server(cert, key, port, "-msg", *extra), port)
