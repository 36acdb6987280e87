"""Property tests: whatever bytes arrive, in whatever pieces, an engine only ever reports our own protocol
errors (as events), never raises, and its buffers stay within their limits. The engine turns any exception
of its own into an internal-error refusal instead of raising, so "never raises" is checked as "never reports
internal-error": that category means a bug."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outcomes.category import Category
from tests.tls.hello import client_hello
from tests.tls.pki import client_config, server_config
from tests.tls.pump import pump
from tls.client import ClientConnection
from tls.events import Event, HandshakeComplete, HandshakeFailed
from tls.limits import Limits
from tls.server import ServerConnection

LIMITS = Limits()
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
GOOD_HELLOS = {"tls13": client_hello(), "tls12": client_hello(versions=(0x0303,))}


def _bounded(engine: ServerConnection | ClientConnection) -> None:
    assert engine._reader.buffered <= 5 + LIMITS.max_record_ciphertext
    assert len(engine._hs_in) <= LIMITS.handshake_buffer


def _feed(engine: ServerConnection | ClientConnection, pieces: list[bytes]) -> None:
    for piece in pieces:
        engine.receive_data(piece)
        _bounded(engine)
    for event in engine.events():
        assert not isinstance(event, HandshakeComplete)
        if isinstance(event, HandshakeFailed):
            assert event.reason
            assert event.category is not Category.INTERNAL_ERROR, event


def _no_bug(events: list[Event]) -> None:
    failures = [e for e in events if isinstance(e, HandshakeFailed) and e.category is Category.INTERNAL_ERROR]
    assert not failures, failures


@SETTINGS
@given(st.lists(st.binary(min_size=1, max_size=300), max_size=8))
def test_server_survives_random_bytes(pieces: list[bytes]) -> None:
    _feed(ServerConnection(server_config()), pieces)


@SETTINGS
@given(st.data(), st.sampled_from(sorted(GOOD_HELLOS)))
def test_server_survives_garbled_client_hello(data: st.DataObject, version: str) -> None:
    hello = bytearray(GOOD_HELLOS[version])
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(0, len(hello) - 1))
        hello[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(hello)))
    _feed(ServerConnection(server_config()), [bytes(hello[:cut]), bytes(hello[cut:])])


@SETTINGS
@given(st.data())
def test_client_survives_garbled_server_flight(data: st.DataObject) -> None:
    s = ServerConnection(server_config("ed25519"))  # fixed-length signatures: a fixed-length flight
    c = ClientConnection(client_config())
    s.receive_data(c.data_to_send())
    flight = bytearray(s.data_to_send())
    # Every byte is covered by the transcript or an AEAD tag except the first record's legacy version
    # (bytes 1-2), which RFC 8446 §5.1 says to ignore: leave those alone. Distinct positions, so that two
    # flips never cancel out.
    positions = data.draw(st.lists(st.sampled_from([0, *range(3, len(flight))]), min_size=1, max_size=4,
                                   unique=True))
    for position in positions:
        flight[position] ^= data.draw(st.integers(1, 255))
    c.receive_data(bytes(flight))
    _bounded(c)
    events = c.events()
    assert not any(isinstance(e, HandshakeComplete) for e in events)
    _no_bug(events)


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=200), st.integers(0, 2))
def test_established_connection_survives_garbage(garbage: bytes, where: int) -> None:
    c = ClientConnection(client_config())
    s = ServerConnection(server_config())
    pump(c, s)
    c.send_application_data(b"fine")
    wire = c.data_to_send()
    pieces = [garbage + wire, wire + garbage, wire[:3] + garbage][where : where + 1]
    _feed_established(s, pieces)


def _feed_established(engine: ServerConnection, pieces: list[bytes]) -> None:
    for piece in pieces:
        engine.receive_data(piece)
        _bounded(engine)
    _no_bug(engine.events())


@settings(max_examples=150, deadline=None)
@given(st.data(), st.sampled_from(["tls13", "tls12"]))
def test_server_survives_garbled_client_flight(data: st.DataObject, version: str) -> None:
    """The client's second flight (certificate, key exchange, verify, Finished) mutated: the server refuses
    with its own error, never completes, never raises."""
    from tls.config import ClientAuthMode
    from tls.constants import TLS12, TLS13

    versions = (TLS13,) if version == "tls13" else (TLS12,)
    s = ServerConnection(server_config("ed25519", client_auth=ClientAuthMode.REQUIRED))
    c = ClientConnection(client_config(cert_kind="ed25519", versions=versions))
    s.receive_data(c.data_to_send())
    c.receive_data(s.data_to_send())
    flight = bytearray(c.data_to_send())
    positions = data.draw(st.lists(st.integers(0, len(flight) - 1), min_size=1, max_size=4, unique=True))
    for position in positions:
        flight[position] ^= data.draw(st.integers(1, 255))
    _feed(s, [bytes(flight)])
