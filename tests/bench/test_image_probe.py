"""bench.image's prober for the first HTTP 200: when it sends, against a local server standing in for the VM.

The prober's loop sleeps on the address event and on its probes; the tests drive its passes through those
waits (counting them instead of sleeping) rather than by waiting out its timers."""

from __future__ import annotations

import http.server
import io
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bench import image


class _Server(http.server.BaseHTTPRequestHandler):
    requests = 0
    status = 200
    lock = threading.Lock()
    on_request: Any = None

    def do_GET(self) -> None:
        with _Server.lock:
            _Server.requests += 1
        if _Server.on_request is not None:
            _Server.on_request()
        self.send_response(_Server.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def server() -> Iterator[int]:
    _Server.requests, _Server.status, _Server.on_request = 0, 200, None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield int(httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()


class _Running:
    """Stands in for the QEMU process: running (poll() is None) until told otherwise."""

    def __init__(self) -> None:
        self.exited = False

    def poll(self) -> int | None:
        return 0 if self.exited else None


class _AddressAfter(threading.Event):
    """The address event, set by the prober's own N-th wait on it (which does not sleep): N passes of its loop
    with "ready" and no address, and what the server had seen by then."""

    def __init__(self, passes: int) -> None:
        super().__init__()
        self.passes = passes
        self.seen_before: int | None = None

    def wait(self, timeout: float | None = None) -> bool:
        self.passes -= 1
        if self.passes == 0:
            with _Server.lock:
                self.seen_before = _Server.requests
            self.set()
        return self.is_set()


class _ReadyAfter(dict[str, float]):
    """The marks, with "ready" appearing at the prober's N-th look at it."""

    def __init__(self, passes: int) -> None:
        super().__init__()
        self.passes = passes
        self.seen_before: int | None = None

    def get(self, key: str, default: Any = None) -> Any:
        if key == "ready" and "ready" not in self:
            self.passes -= 1
            if self.passes == 0:
                with _Server.lock:
                    self.seen_before = _Server.requests
                self["ready"] = 0.0
        return super().get(key, default)


def _probe(port: int, boot: image.Boot, process: _Running | None = None) -> float | None:
    return image._probe_first_200(port, boot, process or _Running(), time.perf_counter())  # type: ignore[arg-type]


def test_after_ready_nothing_is_sent_until_the_address_then_one_connection(server: int) -> None:
    address = _AddressAfter(passes=50)
    boot = image.Boot(marks={"ready": 0.0}, addressed=address)
    served = _probe(server, boot)
    assert address.seen_before == 0  # 49 passes after ready, well within ADDRESS_WAIT: no poll went out
    assert served is not None
    assert _Server.requests == 1


def test_an_address_logged_before_ready_waits_for_ready(server: int) -> None:
    """A static address is logged as the network starts, before "ready": the listeners may not be up yet."""
    marks = _ReadyAfter(passes=5)
    boot = image.Boot(marks=marks)
    boot.addressed.set()
    served = _probe(server, boot)
    assert marks.seen_before == 0
    assert served is not None
    assert _Server.requests == 1


class _ReadyOnWait(threading.Event):
    """The ready event, logged (mark and event) by the prober's N-th wait on it, which does not sleep."""

    def __init__(self, marks: dict[str, float], passes: int) -> None:
        super().__init__()
        self.marks, self.passes = marks, passes

    def wait(self, timeout: float | None = None) -> bool:
        self.passes -= 1
        if self.passes == 0:
            self.marks["ready"] = 0.0
            self.set()
        return self.is_set()


def test_addressed_before_ready_the_prober_wakes_on_ready_not_on_a_timer(
        server: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The usual order since DHCP binds while the PKI is made: the request must go out when "ready" is logged,
    not at the prober's next timed look (a sleep there had put up to POLL_PAUSE into the figure)."""
    def no_timer(seconds: float) -> None:
        raise AssertionError(f"the prober slept {seconds} s on a timer instead of waiting for ready")

    monkeypatch.setattr(time, "sleep", no_timer)  # the module bench.image calls it through
    marks: dict[str, float] = {}
    boot = image.Boot(marks=marks)
    boot.readied = _ReadyOnWait(marks, passes=3)
    boot.addressed.set()
    served = _probe(server, boot)
    assert served is not None
    assert _Server.requests == 1  # and it waited on the event each time, never on a timer (no_timer)


def test_the_ready_mark_sets_the_ready_event() -> None:
    boot = image.Boot()
    image._stamp_console(io.BytesIO(b'{"event":"limits"}\n'), io.BytesIO(), time.perf_counter(), boot)
    assert not boot.readied.is_set()
    image._stamp_console(io.BytesIO(b'{"event":"ready"}\n'), io.BytesIO(), time.perf_counter(), boot)
    assert boot.readied.is_set()
    assert "ready" in boot.marks


def test_without_an_address_the_polls_resume_after_the_wait(server: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image, "ADDRESS_WAIT", 0.0)
    served = _probe(server, image.Boot(marks={"ready": -1.0}))  # ready a second before the start
    assert served is not None
    assert _Server.requests == 1


def test_a_refused_attempt_is_followed_by_a_pause_not_a_flood(server: int) -> None:
    """The address is there but the answer is not a 200 (the listeners not up yet, say): each new attempt
    waits POLL_PAUSE, so that a refusing VM is not sent a connection per pass of the loop."""
    process = _Running()
    attempts = 4

    def stop_after_some() -> None:
        if _Server.requests >= attempts:
            process.exited = True

    _Server.status, _Server.on_request = 503, stop_after_some
    boot = image.Boot(marks={"ready": 0.0})
    boot.addressed.set()
    began = time.perf_counter()
    assert _probe(server, boot, process) is None
    assert _Server.requests == attempts
    assert time.perf_counter() - began >= (attempts - 1) * image.POLL_PAUSE


def test_a_qemu_that_exited_ends_the_probe(server: int) -> None:
    process = _Running()
    process.exited = True
    boot = image.Boot(marks={"ready": 0.0})
    boot.addressed.set()
    assert _probe(server, boot, process) is None
    assert _Server.requests == 0


def test_the_address_mark_needs_an_ipv4_address() -> None:
    """An `address` event with IPv6 only (SLAAC's link-local, before DHCP binds) is not the IPv4 address the
    probe goes to through QEMU's user network."""
    only_ipv6 = b'{"event":"address","ipv4":null,"gateway":null,"ipv6":"fe80::1/64"}\n'
    with_ipv4 = b'{"event":"address","ipv4":"10.0.2.15/24","gateway":"10.0.2.2","ipv6":""}\n'
    boot = image.Boot()
    image._stamp_console(io.BytesIO(only_ipv6), io.BytesIO(), time.perf_counter(), boot)
    assert not boot.addressed.is_set()
    assert image.ADDRESS_MARK not in boot.marks
    image._stamp_console(io.BytesIO(with_ipv4), io.BytesIO(), time.perf_counter(), boot)
    assert boot.addressed.is_set()
    assert image.ADDRESS_MARK in boot.marks
