"""Assertions shared by the refusal tests: one HandshakeFailed, then Closed, and the alert on the wire."""

from __future__ import annotations

from outcomes.category import Category
from tls.alerts import AlertDescription
from tls.client import ClientConnection
from tls.events import Closed, Event, HandshakeFailed
from tls.server import ServerConnection


def failure_of(events: list[Event]) -> HandshakeFailed:
    failures = [e for e in events if isinstance(e, HandshakeFailed)]
    assert len(failures) == 1, events
    assert isinstance(events[-1], Closed)
    assert not events[-1].clean
    return failures[0]


def assert_refused(engine: ServerConnection | ClientConnection, data: bytes, alert: AlertDescription,
                   category: Category, *, plaintext: bool = True) -> HandshakeFailed:
    engine.receive_data(data)
    failure = failure_of(engine.events())
    assert (failure.alert, failure.category) == (alert, category), failure
    out = engine.data_to_send()
    if plaintext:
        assert out.endswith(bytes((21, 3, 3, 0, 2, 2, alert))), out[-7:]
    else:
        assert out[-24:-19] == b"\x17\x03\x03\x00\x13", out[-24:]  # alert + type byte + tag, protected
    assert engine.closed
    engine.receive_data(b"anything after the end is ignored")
    assert engine.events() == []
    return failure
