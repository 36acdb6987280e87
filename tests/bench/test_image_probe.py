"""bench.image's prober for the first HTTP 200: when it sends, against a local server standing in for the VM."""

from __future__ import annotations

import http.server
import io
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bench import image


class _Counting(http.server.BaseHTTPRequestHandler):
    requests = 0
    lock = threading.Lock()

    def do_GET(self) -> None:
        with _Counting.lock:
            _Counting.requests += 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def server() -> Iterator[int]:
    _Counting.requests = 0
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield int(httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()


class _Running:
    """Stands in for the QEMU process: running (poll() is None) until told otherwise."""

    def __init__(self, exited: bool = False) -> None:
        self.exited = exited

    def poll(self) -> int | None:
        return 0 if self.exited else None


def _probe(port: int, boot: image.Boot, process: _Running) -> float | None:
    return image._probe_first_200(port, boot, process, time.perf_counter())  # type: ignore[arg-type]


def test_after_ready_nothing_is_sent_until_the_address_then_one_connection(server: int) -> None:
    boot = image.Boot(marks={"ready": 0.0})
    result: list[float | None] = []
    prober = threading.Thread(target=lambda: result.append(_probe(server, boot, _Running())))
    prober.start()
    with _Counting.lock:
        assert _Counting.requests == 0  # ADDRESS_WAIT (5 s) has not passed: no poll went out
    addressed = time.perf_counter()
    boot.addressed.set()
    prober.join(timeout=image.SERVE_TIMEOUT * 2)
    assert not prober.is_alive()
    (served,) = result
    assert served is not None
    assert served >= addressed
    assert _Counting.requests == 1


def test_before_ready_nothing_is_sent(server: int) -> None:
    boot = image.Boot()
    process = _Running()
    result: list[float | None] = []
    prober = threading.Thread(target=lambda: result.append(_probe(server, boot, process)))
    prober.start()
    with _Counting.lock:
        assert _Counting.requests == 0
    process.exited = True  # ends the probe: QEMU is gone
    prober.join(timeout=image.SERVE_TIMEOUT)
    assert result == [None]
    assert _Counting.requests == 0


def test_without_an_address_the_polls_resume_after_the_wait(server: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image, "ADDRESS_WAIT", 0.0)
    served = _probe(server, image.Boot(marks={"ready": -1.0}), _Running())  # ready a second before the start
    assert served is not None
    assert _Counting.requests == 1


def test_a_qemu_that_exited_ends_the_probe(server: int) -> None:
    assert _probe(server, image.Boot(), _Running(exited=True)) is None
    assert _Counting.requests == 0


def test_the_address_mark_needs_an_ipv4_address() -> None:
    """An `address` event with IPv6 only (SLAAC's link-local, before DHCP binds) is not the IPv4 address the
    probe goes to through QEMU's user network."""
    boot = image.Boot()
    console = io.BytesIO(b'{"event":"address","ipv4":null,"gateway":null,"ipv6":"fe80::1/64"}\n'
                         b'{"event":"address","ipv4":"10.0.2.15/24","gateway":"10.0.2.2","ipv6":""}\n')
    image._stamp_console(console, io.BytesIO(), time.perf_counter(), boot)
    assert boot.addressed.is_set()
    assert image.ADDRESS_MARK in boot.marks
    only_ipv6 = image.Boot()
    image._stamp_console(io.BytesIO(b'{"event":"address","ipv4":null,"gateway":null,"ipv6":"fe80::1/64"}\n'),
                         io.BytesIO(), time.perf_counter(), only_ipv6)
    assert not only_ipv6.addressed.is_set()
