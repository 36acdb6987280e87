from __future__ import annotations

import datetime
import os

import pytest

from adapters.tls_channel import TlsEngine
from appliance import pki
from appliance.stdlib_tls import StdlibEngine, StdlibFactory, classify_first_bytes
from outcomes.category import Category
from tls.events import ApplicationData, Closed, Event, HandshakeComplete, HandshakeFailed

BOOT = pki.generate(datetime.datetime.now(datetime.UTC), os.urandom)
OTHER = pki.generate(datetime.datetime.now(datetime.UTC), os.urandom)


@pytest.mark.parametrize(
    ("data", "category"),
    [
        (b"please give key", Category.NOT_TLS),
        (b"GET / HTTP/1.1\r\n", Category.NOT_TLS),
        (b"\x80\x2e\x01\x00\x02", Category.SSLV2),
        (b"\x16\x03\x00\x00\x2d\x01\x00\x00\x29\x03\x00", Category.SSLV3),
        (b"\x16\x03\x01\x00\x2d\x01\x00\x00\x29\x03\x03", None),
        (b"", None),
    ],
)
def test_first_bytes(data: bytes, category: Category | None) -> None:
    assert classify_first_bytes(data) is category


def _run(client: TlsEngine, server: TlsEngine) -> tuple[list[Event], list[Event]]:
    client_events: list[Event] = []
    server_events: list[Event] = []
    for _ in range(20):
        to_server, to_client = client.data_to_send(), server.data_to_send()
        if not to_server and not to_client:
            break
        if to_server:
            server.receive_data(to_server)
        if to_client:
            client.receive_data(to_client)
        client_events += client.events()
        server_events += server.events()
    return client_events + client.events(), server_events + server.events()


def test_mutual_handshake_and_data_in_memory() -> None:
    factory = StdlibFactory(BOOT.issued())
    client, server = factory.client(BOOT.client), factory.server(BOOT.server, require_client_cert=True)
    _client_events, server_events = _run(client, server)
    done = [e for e in server_events if isinstance(e, HandshakeComplete)]
    assert len(done) == 1
    assert done[0].peer_chain == (BOOT.client.cert_der,)
    assert done[0].peer_validated
    server.send_application_data(b"hi")
    client.receive_data(server.data_to_send())
    assert ApplicationData(b"hi") in client.events()
    server.close()
    client.receive_data(server.data_to_send())
    assert Closed(clean=True) in client.events()


def test_client_refuses_a_server_from_another_ca() -> None:
    client = StdlibFactory(BOOT.issued()).client(BOOT.client)
    server = StdlibFactory(OTHER.issued()).server(OTHER.server, require_client_cert=False)
    client_events, _ = _run(client, server)
    failures = [e for e in client_events if isinstance(e, HandshakeFailed)]
    assert [f.category for f in failures] == [Category.UNTRUSTED_CHAIN]
    assert isinstance(client_events[-1], Closed)


def test_server_classifies_garbage_without_parsing_it() -> None:
    server = StdlibFactory(BOOT.issued()).server(BOOT.web, require_client_cert=False)
    server.receive_data(b"please give key\n")
    events = server.events()
    assert isinstance(events[0], HandshakeFailed)
    assert events[0].category is Category.NOT_TLS
    server.receive_data(b"more")  # ignored after closing
    assert server.events() == []


def test_send_before_handshake_is_an_error() -> None:
    engine = StdlibFactory(BOOT.issued()).server(BOOT.web, require_client_cert=False)
    assert isinstance(engine, StdlibEngine)
    with pytest.raises(RuntimeError):
        engine.send_application_data(b"x")
