"""The frame-fd helpers every OS link shares (TAP, AF_PACKET), on a SOCK_SEQPACKET socket pair: a local
stand-in that keeps frame boundaries like the real devices, so no root and no network are needed."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator

import pytest

from netstack.faults import FaultLog
from netstack.limits import LINK_READ_BATCH
from netstack.link.base import read_batch, write_frame
from netstack.reasons import Counters, Drop


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, wire = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setblocking(False)
    try:
        yield ours, wire
    finally:
        ours.close()
        wire.close()


def test_reads_frames_one_by_one_up_to_the_batch_limit(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, wire = pair
    for i in range(LINK_READ_BATCH + 3):
        wire.send(i.to_bytes(2, "big") * 30)
    counters = Counters()
    first = read_batch(ours.fileno(), counters, FaultLog(logging.getLogger("test")))
    assert first == [i.to_bytes(2, "big") * 30 for i in range(LINK_READ_BATCH)]  # the rest waits its turn
    second = read_batch(ours.fileno(), counters, FaultLog(logging.getLogger("test")))
    assert len(second) == 3
    assert read_batch(ours.fileno(), counters, FaultLog(logging.getLogger("test"))) == []  # nothing ready
    assert counters.as_dict() == Counters().as_dict()


def test_end_of_file_ends_the_batch(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, wire = pair
    wire.send(b"last frame")
    wire.close()
    assert read_batch(ours.fileno(), Counters(), FaultLog(logging.getLogger("test"))) == [b"last frame"]


def test_a_read_error_is_counted_not_raised() -> None:
    counters = Counters()
    read, write = os.pipe()
    os.close(read)
    os.close(write)
    assert read_batch(read, counters, FaultLog(logging.getLogger("test"))) == []  # EBADF: an OSError
    assert counters[Drop.LINK_RX_ERROR] == 1


def test_a_full_device_drops_and_counts(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, _ = pair
    counters = Counters()
    sent = 0
    while counters[Drop.LINK_TX_FULL] == 0:
        write_frame(ours.fileno(), bytes(1500), counters)
        sent += 1
        assert sent < 100_000, "the socket buffer never filled"
    assert counters[Drop.LINK_TX_ERROR] == 0


def test_a_dead_device_drops_and_counts(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, wire = pair
    wire.close()
    counters = Counters()
    write_frame(ours.fileno(), b"frame", counters)  # EPIPE, like EIO from a TAP device going down
    assert counters[Drop.LINK_TX_ERROR] == 1
    assert counters[Drop.LINK_TX_FULL] == 0
