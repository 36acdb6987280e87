"""appliance.log.JsonLog: one JSON object per line, whole lines even when two threads log at once (the boot's
PKI thread and the event loop)."""

from __future__ import annotations

import io
import json
import threading

from appliance.log import JsonLog

OVERLAP_WINDOW = 0.1
"""How long the first writer holds the stream open waiting for a second one to come in beside it: with the
log's lock none does, and the wait is the price of showing that."""


class _Stream(io.StringIO):
    """Notes whether a write began while another was in progress; the first write waits inside for a second."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = 0
        self.overlapped = False
        self.first_inside = threading.Event()
        self.second_came = threading.Event()

    def write(self, text: str) -> int:
        self.inside += 1
        if self.inside > 1:
            self.overlapped = True
            self.second_came.set()
        try:
            if not self.first_inside.is_set():
                self.first_inside.set()
                self.second_came.wait(OVERLAP_WINDOW)
            return super().write(text)
        finally:
            self.inside -= 1


def test_two_threads_never_write_at_once_and_every_line_is_whole() -> None:
    stream = _Stream()
    log = JsonLog(stream, clock=lambda: 1.0)
    first = threading.Thread(target=log.event, args=("first",), kwargs={"n": 1})
    first.start()
    assert stream.first_inside.wait(5)
    log.event("second", n=2)
    first.join()
    assert not stream.overlapped
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert sorted(e["event"] for e in events) == ["first", "second"]
    assert all(e["t"] == 1.0 for e in events)


def test_a_closed_stream_does_not_raise() -> None:
    stream = io.StringIO()
    stream.close()
    JsonLog(stream).event("ignored", n=1)
