"""Bugs and device errors on the receive path: counted as internal-error / link-rx-error, logged once, never
raised into the event loop, and the stack keeps working afterwards."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket

import pytest

from adapters.stack_driver import Driver
from adapters.tcp_sockets import TcpSockets
from netstack import faults
from netstack.arp import parse_arp
from netstack.ethernet import parse_frame
from netstack.faults import FaultLog
from netstack.link import base
from netstack.link.memory import memory_link_pair
from netstack.link.packet import PacketLink
from netstack.reasons import Counters, Drop
from netstack.tcp import events as ev
from netstack.tcp.connection import Connection
from netstack.tcp.layer import TcpLayer
from netstack.tcp.segment import ACK
from tests.adapters.idle_driver import IdleDriver
from tests.netstack.builders import OTHER, PEER, PEER_MAC, US, icmp, ip_frame, make_stack, udp
from tests.netstack.tcp.raw import RawPeer
from tests.netstack.test_stack import FakeTcp


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.exc_info is not None]


def broken_handler(now: float, src: bytes, sport: int, dst: bytes, data: memoryview) -> None:
    raise RuntimeError("handler bug")


def test_a_raising_handler_is_counted_logged_once_and_the_stack_carries_on(
        caplog: pytest.LogCaptureFixture) -> None:
    stack = make_stack()
    stack.udp_bind(7000, broken_handler)
    for _ in range(3):
        stack.frame_received(0.0, ip_frame(PEER, 17, udp(PEER, US, 4000, 7000, b"boom")))
    assert stack.counters[Drop.INTERNAL_ERROR] == 3
    (logged,) = tracebacks(caplog)
    assert logged.exc_info is not None
    assert isinstance(logged.exc_info[1], RuntimeError)
    assert "frame handling failed" in logged.getMessage()
    # still answering: the echo request gets its reply (after ARP for the peer)
    stack.frame_received(0.1, ip_frame(PEER, 1, icmp(8, 0, b"\x00\x01\x00\x01", b"ping")))
    (request,) = stack.take_frames()
    assert parse_arp(parse_frame(request).payload).target_ip == PEER


class RaisingTimersTcp(FakeTcp):
    def timers_expired(self, now: float) -> None:
        raise ValueError("timer bug")


def test_a_raising_timer_does_not_stop_the_other_timers(caplog: pytest.LogCaptureFixture) -> None:
    tcp = RaisingTimersTcp()
    stack = make_stack("10.0.0.2/24", tcp=tcp)
    tcp.outgoing = [(US, OTHER, b"segment")]
    (first,) = stack.take_frames(0.0)                       # ARP request for OTHER, the segment waits
    stack.timers_expired(1.5)                               # TCP raises; ARP must still ask again
    (again,) = stack.take_frames()
    assert parse_arp(parse_frame(again).payload).target_ip == parse_arp(parse_frame(first).payload).target_ip
    assert stack.counters[Drop.INTERNAL_ERROR] == 1
    (logged,) = tracebacks(caplog)
    assert "TCP timer failed" in logged.getMessage()


def raise_here(n: int) -> None:
    raise KeyError(n)


def raise_there(n: int) -> None:
    raise KeyError(n)


def raise_elsewhere(n: int) -> None:
    raise KeyError(n)


def caught(function: object, n: int) -> KeyError:
    assert callable(function)
    try:
        function(n)
    except KeyError as error:
        return error
    raise AssertionError("did not raise")


def test_fault_log_logs_each_place_once_up_to_its_limit(caplog: pytest.LogCaptureFixture,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faults, "FAULT_SITES_LOGGED", 2)
    log = FaultLog(logging.getLogger("test.faults"))
    for n in range(5):
        log.report("here", caught(raise_here, n))
    log.report("there", caught(raise_there, 0))
    assert len(tracebacks(caplog)) == 2                     # one per place, however often it fails
    log.report("elsewhere", caught(raise_elsewhere, 0))     # over the limit: one line, no traceback
    log.report("elsewhere", caught(raise_elsewhere, 1))
    assert len(tracebacks(caplog)) == 2
    assert len(caplog.records) == 3
    assert "only counted" in caplog.records[-1].getMessage()


def test_read_errors_keep_the_frames_read_before_them(monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    reads = iter([b"frame-1", b"frame-2"])

    def read(fd: int, size: int) -> bytes:
        frame = next(reads, None)
        if frame is None:
            raise OSError(errno.EIO, "device gone")
        return frame

    monkeypatch.setattr(os, "read", read)
    counters = Counters()
    assert base.read_batch(99, counters, FaultLog(logging.getLogger("test.link"))) == [b"frame-1", b"frame-2"]
    assert counters[Drop.LINK_RX_ERROR] == 1
    assert len(tracebacks(caplog)) == 1


class FailingPacketSocket:
    def __init__(self) -> None:
        self.calls = 0

    def recvfrom(self, size: int) -> tuple[bytes, tuple[str, int, int]]:
        self.calls += 1
        if self.calls == 1:
            return b"frame", ("eth0", 3, socket.PACKET_HOST)
        raise OSError(errno.ENETDOWN, "network is down")


def test_packet_link_read_errors_are_counted_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    link = PacketLink.__new__(PacketLink)  # no CAP_NET_RAW needed: only the reader callback is under test
    link._counters = Counters()
    link._faults = FaultLog(logging.getLogger("test.packet"))
    link._sock = FailingPacketSocket()  # type: ignore[assignment]
    got: list[list[bytes]] = []
    link._readable(got.append)
    link._readable(got.append)
    assert got == [[b"frame"]]
    assert link.stats() == {Drop.LINK_RX_ERROR.value: 2}
    assert len(tracebacks(caplog)) == 1


def test_driver_survives_a_raising_callback_and_keeps_delivering(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> tuple[list[bytes], int, int]:
        us = make_stack("10.0.0.2/24")
        peer = make_stack("10.0.0.1/24", mac=PEER_MAC)
        link_us, link_peer = memory_link_pair(us.mac, peer.mac)
        d_us, d_peer = Driver(link_us, us), Driver(link_peer, peer)
        got: list[bytes] = []
        done = asyncio.Event()
        calls = 0

        def broken() -> None:
            raise RuntimeError("adapter bug")

        def counting() -> None:
            nonlocal calls
            calls += 1

        def received(now: float, src: bytes, sport: int, dst: bytes, data: memoryview) -> None:
            got.append(bytes(data))
            done.set()

        d_peer.after_io.extend([broken, counting])
        d_peer.stack.udp_bind(7, received)
        d_us.start()
        d_peer.start()
        for n in range(3):
            d_us.stack.udp_send(d_us.now(), PEER, 5000, 7, b"datagram %d" % n)
            d_us.kick()
            await asyncio.wait_for(done.wait(), 5.0)
            done.clear()
        d_us.close()
        d_peer.close()
        return got, calls, peer.counters[Drop.INTERNAL_ERROR]

    got, calls, errors = asyncio.run(main())
    assert got == [b"datagram 0", b"datagram 1", b"datagram 2"]
    assert calls == errors >= 3              # every batch ran both callbacks; the broken one was counted
    (logged,) = tracebacks(caplog)
    assert "after-I/O callback failed" in logged.getMessage()


def test_a_tcp_bug_is_counted_logged_once_and_other_connections_go_on(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    peer = RawPeer()
    conn, iss = peer.accept()
    healthy = Connection.segment_arrived

    def buggy(self: Connection, now: float, seg: object) -> None:
        if self.id == conn:
            raise IndexError("connection bug")
        healthy(self, now, seg)  # type: ignore[arg-type]

    monkeypatch.setattr(Connection, "segment_arrived", buggy)
    peer.inject(ACK, 1001, iss + 1, b"a")
    peer.inject(ACK, 1001, iss + 1, b"a")
    assert peer.layer.stats["internal-error"] == 2
    assert len(tracebacks(caplog)) == 1
    peer.peer_port = 40001
    other, other_iss = peer.accept()
    peer.inject(ACK, 1001, other_iss + 1, b"still fine")
    assert peer.layer.receive(peer.now, other) == b"still fine"


def test_an_event_dispatch_bug_is_counted_and_the_next_events_still_run(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.new_event_loop()
    try:
        layer = TcpLayer(b"k" * 32)
        sockets = TcpSockets(layer, IdleDriver(), loop)
        handled: list[ev.Event] = []

        def handle(event: ev.Event) -> None:
            if isinstance(event, ev.Readable):
                raise LookupError("adapter bug")
            handled.append(event)

        monkeypatch.setattr(sockets, "_handle", handle)
        for event in (ev.Readable(1), ev.Writable(1), ev.Readable(2), ev.PeerClosed(2)):
            layer.emit(event)
        sockets.dispatch()
        assert handled == [ev.Writable(1), ev.PeerClosed(2)]
        assert layer.stats["internal-error"] == 2
        assert len(tracebacks(caplog)) == 1
    finally:
        loop.close()
