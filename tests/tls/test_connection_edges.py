"""The record-level rules both engines share (`tls.connection`): closing, alerts, what may arrive inside a
protected TLS 1.3 record, ChangeCipherSpec placement in TLS 1.2, and the post-handshake message bound."""

from __future__ import annotations

import pytest

from outcomes.category import Category
from tests.tls.pki import client_config, server_config
from tests.tls.pump import pump
from tests.tls.refusal import failure_of
from tls.alerts import AlertDescription, AlertLevel
from tls.client import ClientConnection
from tls.constants import TLS12, TLS13, ContentType, HandshakeType
from tls.errors import StateError
from tls.events import AlertReceived, Closed, HandshakeComplete
from tls.limits import Limits
from tls.messages import NewSessionTicket, serialize_new_session_ticket
from tls.record import plaintext_record
from tls.server import ServerConnection
from tls.server_states import AwaitChangeCipherSpec


def connected(versions: tuple[int, ...] = (TLS13,), **server_kwargs: object) -> tuple[
        ClientConnection, ServerConnection]:
    c = ClientConnection(client_config(versions=versions))
    s = ServerConnection(server_config(**server_kwargs))  # type: ignore[arg-type]
    client_events, server_events = pump(c, s)
    assert any(isinstance(e, HandshakeComplete) for e in client_events)
    assert any(isinstance(e, HandshakeComplete) for e in server_events)
    return c, s


def protected(engine: ClientConnection | ServerConnection, content_type: int, data: bytes) -> bytes:
    write = engine._write
    assert write is not None
    return write.encrypt(content_type, data)


def test_close_before_the_handshake_ends_the_connection_at_once() -> None:
    c = ClientConnection(client_config())
    c.data_to_send()
    c.close()
    assert c.closed
    assert c.events() == [Closed(clean=False)]
    assert c.data_to_send() == plaintext_record(ContentType.ALERT, bytes((AlertLevel.WARNING, 0)))
    c.close()  # a second close sends nothing more
    assert c.data_to_send() == b""
    assert c.events() == []


def test_close_notify_before_the_handshake_is_not_a_clean_close() -> None:
    s = ServerConnection(server_config())
    s.receive_data(plaintext_record(ContentType.ALERT, bytes((AlertLevel.WARNING, 0))))
    assert s.events() == [AlertReceived(AlertLevel.WARNING, 0), Closed(clean=False)]
    assert s.data_to_send() == b""  # no alert back: nothing was refused


def test_application_data_cannot_be_sent_before_the_handshake() -> None:
    c = ClientConnection(client_config())
    with pytest.raises(StateError):
        c.send_application_data(b"too early")
    with pytest.raises(StateError):
        c.key_update()


def test_key_update_needs_tls13() -> None:
    c, _ = connected((TLS12,))
    with pytest.raises(StateError):
        c.key_update()


@pytest.mark.parametrize(("content_type", "payload"), [(ContentType.CHANGE_CIPHER_SPEC, b"\x01"), (25, b"x")])
def test_protected_tls13_record_with_a_type_that_cannot_be_inside(content_type: int, payload: bytes) -> None:
    c, s = connected()
    s.receive_data(protected(c, content_type, payload))
    failure = failure_of(s.events())
    assert (failure.alert, failure.category) == (AlertDescription.UNEXPECTED_MESSAGE, Category.UNEXPECTED_MESSAGE)


def test_user_canceled_warnings_are_tolerated_up_to_the_limit() -> None:
    c, s = connected()
    warning = bytes((AlertLevel.WARNING, AlertDescription.USER_CANCELED))
    s.receive_data(b"".join(protected(c, ContentType.ALERT, warning) for _ in range(4)))
    assert s.events() == [AlertReceived(AlertLevel.WARNING, AlertDescription.USER_CANCELED)] * 4
    assert not s.closed
    s.receive_data(protected(c, ContentType.ALERT, bytes((AlertLevel.WARNING, AlertDescription.USER_CANCELED))))
    failure = failure_of(s.events())
    assert (failure.alert, failure.category) == (AlertDescription.ILLEGAL_PARAMETER, Category.RESOURCE_LIMIT)


def test_a_warning_level_alert_other_than_user_canceled_still_ends_the_connection() -> None:
    c, s = connected()
    s.receive_data(protected(c, ContentType.ALERT, bytes((AlertLevel.WARNING, AlertDescription.BAD_CERTIFICATE))))
    assert s.events() == [AlertReceived(AlertLevel.WARNING, AlertDescription.BAD_CERTIFICATE), Closed(clean=False)]


def test_post_handshake_messages_are_bounded() -> None:
    c_limited = ClientConnection(client_config(limits=Limits(max_post_handshake_messages=3)))
    s2 = ServerConnection(server_config())
    pump(c_limited, s2)
    ticket = serialize_new_session_ticket(NewSessionTicket(60, 1, b"n", b"t", ()))
    for _ in range(4):
        s2._queue_handshake(HandshakeType.NEW_SESSION_TICKET, ticket, False)
    s2._flush_handshake()
    c_limited.receive_data(s2.data_to_send())
    failure = failure_of(c_limited.events())
    assert (failure.alert, failure.category) == (AlertDescription.ILLEGAL_PARAMETER, Category.RESOURCE_LIMIT)


def test_new_session_ticket_is_refused_in_tls12() -> None:
    c, s = connected((TLS12,))
    s._queue_handshake(HandshakeType.NEW_SESSION_TICKET, b"", False)
    s._flush_handshake()
    c.receive_data(s.data_to_send())
    failure = failure_of(c.events())
    assert (failure.alert, failure.category) == (AlertDescription.UNEXPECTED_MESSAGE, Category.UNEXPECTED_MESSAGE)


def test_tls12_change_cipher_spec_may_not_split_a_handshake_message() -> None:
    c = ClientConnection(client_config(versions=(TLS12,)))
    s = ServerConnection(server_config())
    s.receive_data(c.data_to_send())
    c.receive_data(s.data_to_send())
    flight = c.data_to_send()
    key_exchange_end = 5 + int.from_bytes(flight[3:5], "big")
    s.receive_data(flight[:key_exchange_end])  # ClientKeyExchange only
    assert isinstance(s.state, AwaitChangeCipherSpec)
    s.receive_data(plaintext_record(ContentType.HANDSHAKE, b"\x14\x00") + plaintext_record(20, b"\x01"))
    failure = failure_of(s.events())
    assert (failure.alert, failure.category) == (AlertDescription.UNEXPECTED_MESSAGE, Category.UNEXPECTED_MESSAGE)
    assert "spans" in failure.reason


@pytest.mark.parametrize("length", [2, 40_000, 2**24 - 1])
def test_a_key_update_longer_than_its_structure_is_decode_error_whatever_its_length(length: int) -> None:
    """Issue 15: a 2-byte KeyUpdate was decode_error but a 40 KB one illegal_parameter (our size limit fired
    first); the RFC fixes the body at one byte, so any longer declaration is decode_error."""
    c, s = connected()
    header = bytes((HandshakeType.KEY_UPDATE,)) + length.to_bytes(3, "big")
    s.receive_data(protected(c, ContentType.HANDSHAKE, header + b"\x00" * min(length, 100)))
    failure = failure_of(s.events())
    assert (failure.alert, failure.category) == (AlertDescription.DECODE_ERROR, Category.DECODE_ERROR)
