"""Refusals that need a (mis)behaving peer engine: bad signatures and Finished, certificates, downgrade,
renegotiation, state-machine violations after the hello, refused 0-RTT, KeyUpdate floods."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest

from outcomes.category import Category
from tests.tls.flights import (
    client_flight_13,
    edit_hello,
    flip_last_byte,
    reframe,
    seal13,
    server_flight_13,
    split_records,
    tamper_tls12_finished,
    wire,
    without,
)
from tests.tls.hello import client_hello
from tests.tls.pki import NOW, ca, client_config, make_ca, make_leaf, server_config, server_leaf
from tests.tls.pump import pump
from tests.tls.refusal import assert_refused, failure_of
from tls.alerts import AlertDescription, AlertLevel
from tls.client import ClientConnection
from tls.client_states import AwaitChangeCipherSpec12
from tls.config import ClientAuthMode
from tls.constants import TLS12, TLS13, ContentType, ExtensionType, HandshakeType, NamedGroup
from tls.events import AlertReceived, ApplicationData, Closed, HandshakeComplete, HandshakeFailed, RequestRefused
from tls.extensions import Extensions
from tls.groups import KeyShare
from tls.limits import Limits
from tls.messages import frame, parse_client_hello, parse_server_hello, serialize_client_hello, serialize_server_hello
from tls.record import plaintext_record
from tls.server import ServerConnection
from tls.server_states import AwaitChangeCipherSpec, AwaitClientHello2
from tls.x509.limits import ValidationLimits


def run(
    server_kwargs: dict[str, Any] | None = None,
    client_kwargs: dict[str, Any] | None = None,
) -> tuple[ClientConnection, ServerConnection, list[Any], list[Any]]:
    s = ServerConnection(server_config(**(server_kwargs or {})))
    c = ClientConnection(client_config(**(client_kwargs or {})))
    client_events, server_events = pump(c, s)
    return c, s, client_events, server_events


def refused_by(events: list[Any], alert: int, category: Category) -> None:
    failure = failure_of(events)
    assert (failure.alert, failure.category) == (alert, category), failure


def peer_alerted(events: list[Any], alert: int) -> None:
    assert any(getattr(e, "description", None) == alert for e in events), events
    assert not any(isinstance(e, HandshakeComplete) for e in events)


@pytest.mark.parametrize("versions", [(TLS13,), (TLS12,)])
def test_server_key_not_matching_its_certificate(versions: tuple[int, ...]) -> None:
    other = make_leaf(ca())
    config_kwargs: dict[str, Any] = {}
    s = ServerConnection(server_config(**config_kwargs))
    object.__setattr__(s._config, "key", other.key)
    c = ClientConnection(client_config(versions=versions))
    client_events, server_events = pump(c, s)
    refused_by(client_events, AlertDescription.DECRYPT_ERROR, Category.BAD_SIGNATURE)
    peer_alerted(server_events, AlertDescription.DECRYPT_ERROR)


@pytest.mark.parametrize("versions", [(TLS13,), (TLS12,)])
def test_client_key_not_matching_its_certificate(versions: tuple[int, ...]) -> None:
    mismatched = make_leaf(ca(), server=False, names=())
    config = client_config(cert_kind="p256", versions=versions)
    object.__setattr__(config, "key", mismatched.key)
    s = ServerConnection(server_config(client_auth=ClientAuthMode.REQUIRED))
    c = ClientConnection(config)
    _, server_events = pump(c, s)
    refused_by(server_events, AlertDescription.DECRYPT_ERROR, Category.BAD_SIGNATURE)


@pytest.mark.parametrize("versions", [(TLS13,), (TLS12,)])
def test_an_empty_certificate_verify_signature_is_decrypt_error(versions: tuple[int, ...],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 15: signature<0..2^16-1> (RFC 8446 §4.4.3; RFC 5246 DigitallySigned) decodes when empty, then
    fails to verify: decrypt_error. It used to be decode_error, from a minimum length of 1 in the parser."""
    monkeypatch.setattr("tls.client.sign", lambda key, scheme, data: b"")
    s = ServerConnection(server_config(client_auth=ClientAuthMode.REQUIRED))
    c = ClientConnection(client_config(cert_kind="p256", versions=versions))
    _, server_events = pump(c, s)
    refused_by(server_events, AlertDescription.DECRYPT_ERROR, Category.BAD_SIGNATURE)


@pytest.mark.parametrize("versions", [(TLS13,), (TLS12,)])
def test_an_empty_alert_record_is_unexpected_message(versions: tuple[int, ...]) -> None:
    """Issue 15: RFC 8446 §5.4 names unexpected_message for an Alert record with no content (it was
    decode_error, as a malformed alert); RFC 5246 §6.2.1 forbids them and names no alert, so the same."""
    c, s = _connected(versions)
    c._write_record(ContentType.ALERT, b"")
    refused_and_told(c, s, c.data_to_send(), AlertDescription.UNEXPECTED_MESSAGE, Category.UNEXPECTED_MESSAGE)


def test_bad_server_finished() -> None:
    c = ClientConnection(client_config())
    flight = server_flight_13(c, ServerConnection(server_config()))
    assert flight.messages[-1][0] == HandshakeType.FINISHED
    c.receive_data(flight.seal([*flight.messages[:-1], reframe(flight.messages[-1], flip_last_byte)]))
    refused_by(c.events(), AlertDescription.DECRYPT_ERROR, Category.BAD_FINISHED)


def test_bad_client_finished() -> None:
    c = ClientConnection(client_config())
    s = ServerConnection(server_config())
    flight = server_flight_13(c, s)
    answer = client_flight_13(c, flight)
    assert [m[0] for m in answer] == [HandshakeType.FINISHED]
    s.receive_data(seal13([reframe(answer[0], flip_last_byte)], flight.keys.client_hs, flight.keys.suite))
    refused_by(s.events(), AlertDescription.DECRYPT_ERROR, Category.BAD_FINISHED)


def test_bad_tls12_server_finished() -> None:
    c = ClientConnection(client_config(versions=(TLS12,)))
    s = ServerConnection(server_config())
    s.receive_data(c.data_to_send())
    c.receive_data(s.data_to_send())
    s.receive_data(c.data_to_send())
    state = c.state
    assert isinstance(state, AwaitChangeCipherSpec12)
    c.receive_data(tamper_tls12_finished(s.data_to_send(), state, c._random, flip_last_byte))
    refused_by(c.events(), AlertDescription.DECRYPT_ERROR, Category.BAD_FINISHED)


def test_bad_tls12_client_finished() -> None:
    c = ClientConnection(client_config(versions=(TLS12,)))
    s = ServerConnection(server_config())
    s.receive_data(c.data_to_send())
    c.receive_data(s.data_to_send())
    records = split_records(c.data_to_send())
    s.receive_data(wire([r for r in records if r.content_type == ContentType.HANDSHAKE][:1]))  # ClientKeyExchange
    state = s.state
    assert isinstance(state, AwaitChangeCipherSpec)
    s.receive_data(tamper_tls12_finished(wire(records[1:]), state, b"", flip_last_byte))
    refused_by(s.events(), AlertDescription.DECRYPT_ERROR, Category.BAD_FINISHED)


@pytest.mark.parametrize("versions", [(TLS13,), (TLS12,)])
def test_missing_required_client_certificate(versions: tuple[int, ...]) -> None:
    _, _, client_events, server_events = run({"client_auth": ClientAuthMode.REQUIRED}, {"versions": versions})
    expected = AlertDescription.CERTIFICATE_REQUIRED if versions == (TLS13,) else AlertDescription.HANDSHAKE_FAILURE
    refused_by(server_events, expected, Category.NO_CERTIFICATE)
    # A TLS 1.3 client has finished its side before the server decides; it then learns of the refusal.
    assert any(getattr(e, "description", None) == expected for e in client_events)
    assert client_events[-1] == Closed(clean=False)


def test_client_certificate_from_another_ca() -> None:
    stranger = make_ca("Stranger CA")
    leaf = make_leaf(stranger, server=False, names=())
    _, _, _, server_events = run({"client_auth": ClientAuthMode.REQUIRED}, {"chain": (leaf.der,), "key": leaf.key})
    refused_by(server_events, AlertDescription.UNKNOWN_CA, Category.UNTRUSTED_CHAIN)


def test_server_certificate_used_as_client_certificate() -> None:
    leaf = server_leaf()
    _, _, _, server_events = run({"client_auth": ClientAuthMode.REQUIRED}, {"chain": (leaf.der,), "key": leaf.key})
    refused_by(server_events, AlertDescription.UNSUPPORTED_CERTIFICATE, Category.WRONG_EXTENDED_KEY_USAGE)


def test_expired_server_certificate() -> None:
    leaf = make_leaf(ca(), not_before=NOW - timedelta(days=400), not_after=NOW - timedelta(days=1))
    s = ServerConnection(server_config())
    object.__setattr__(s._config, "chain", (leaf.der,))
    object.__setattr__(s._config, "key", leaf.key)
    c = ClientConnection(client_config())
    client_events, _ = pump(c, s)
    refused_by(client_events, AlertDescription.CERTIFICATE_EXPIRED, Category.EXPIRED)


def test_server_name_mismatch() -> None:
    _, _, client_events, _ = run({}, {"server_name": "bounty.example"})
    refused_by(client_events, AlertDescription.BAD_CERTIFICATE, Category.NAME_MISMATCH)


def test_server_chain_longer_than_the_cap() -> None:
    leaf = server_leaf()
    s = ServerConnection(server_config())
    object.__setattr__(s._config, "chain", (leaf.der,) + (ca().der,) * 9)
    c = ClientConnection(client_config(limits=Limits(x509=ValidationLimits(max_chain_certificates=8))))
    client_events, _ = pump(c, s)
    refused_by(client_events, AlertDescription.BAD_CERTIFICATE, Category.PATH_TOO_LONG)


def test_client_chain_longer_than_the_cap() -> None:
    config = client_config(cert_kind="p256")
    object.__setattr__(config, "chain", config.chain + (ca().der,) * 5)
    limits = Limits(x509=ValidationLimits(max_chain_certificates=4))
    s = ServerConnection(server_config(client_auth=ClientAuthMode.REQUIRED, limits=limits))
    _, server_events = pump(ClientConnection(config), s)
    refused_by(server_events, AlertDescription.BAD_CERTIFICATE, Category.PATH_TOO_LONG)


def test_downgrade_sentinel() -> None:
    """A 1.3-capable server pushed to 1.2 (by an attacker stripping supported_versions from the ClientHello)
    marks its random; the 1.3-capable client refuses."""
    c = ClientConnection(client_config())
    s = ServerConnection(server_config())
    s.receive_data(edit_hello(c.data_to_send(), parse_client_hello, serialize_client_hello,
                              without(ExtensionType.SUPPORTED_VERSIONS)))
    c.receive_data(s.data_to_send())
    refused_by(c.events(), AlertDescription.ILLEGAL_PARAMETER, Category.DOWNGRADE_SENTINEL)


@pytest.mark.parametrize(("dropped", "category"), [
    (ExtensionType.EXTENDED_MASTER_SECRET, Category.NO_EXTENDED_MASTER_SECRET),
    (ExtensionType.RENEGOTIATION_INFO, Category.NO_RENEGOTIATION_INFO),
])
def test_server_without_ems_or_renegotiation_info(dropped: int, category: Category) -> None:
    c = ClientConnection(client_config(versions=(TLS12,)))
    s = ServerConnection(server_config())
    s.receive_data(c.data_to_send())
    c.receive_data(edit_hello(s.data_to_send(), parse_server_hello, serialize_server_hello, without(dropped)))
    refused_by(c.events(), AlertDescription.HANDSHAKE_FAILURE, category)


def _connected(versions: tuple[int, ...]) -> tuple[ClientConnection, ServerConnection]:
    c = ClientConnection(client_config(versions=versions))
    s = ServerConnection(server_config())
    client_events, server_events = pump(c, s)
    assert any(isinstance(e, HandshakeComplete) for e in client_events + server_events)
    return c, s


def _renegotiation_refused_with_a_warning(asker: ClientConnection | ServerConnection,
                                          refuser: ClientConnection | ServerConnection) -> None:
    """RFC 5246 §7.2.2: `refuser` answers with a warning no_renegotiation, records the category in a
    RequestRefused event and goes on: application data still flows both ways."""
    events = refuser.events()
    assert events == [RequestRefused(AlertDescription.NO_RENEGOTIATION, Category.RENEGOTIATION_ATTEMPT,
                                     "renegotiation is refused")], events
    assert not refuser.closed
    asker.receive_data(refuser.data_to_send())
    # Our engine never asks to renegotiate, so an unrequested no_renegotiation ends it: only the level counts.
    assert asker.events()[0] == AlertReceived(AlertLevel.WARNING, AlertDescription.NO_RENEGOTIATION)


def _renegotiate(c: ClientConnection, s: ServerConnection) -> bytes:
    c._queue_handshake(1, client_hello()[9:], False)
    c._flush_handshake()
    return c.data_to_send()


def test_client_initiated_renegotiation_is_refused_with_a_warning_and_the_connection_goes_on() -> None:
    """Issue 15: no_renegotiation used to be sent as a fatal alert."""
    c, s = _connected((TLS12,))
    s.receive_data(_renegotiate(c, s))
    c.send_application_data(b"still here")
    s.receive_data(c.data_to_send())
    warning = s.data_to_send()
    assert s.events()[-1] == ApplicationData(b"still here")
    s.send_application_data(b"and so are we")
    c.receive_data(warning + s.data_to_send())
    assert c.events()[0] == AlertReceived(AlertLevel.WARNING, AlertDescription.NO_RENEGOTIATION)


def test_a_client_that_insists_on_renegotiating_is_refused() -> None:
    """The second request after our warning ends the connection (Limits.max_renegotiation_refusals)."""
    c, s = _connected((TLS12,))
    s.receive_data(_renegotiate(c, s))
    assert isinstance(s.events()[0], RequestRefused)
    s.receive_data(_renegotiate(c, s))
    refused_by(s.events(), AlertDescription.HANDSHAKE_FAILURE, Category.RENEGOTIATION_ATTEMPT)
    assert s.closed


def test_no_warning_follows_our_close_notify() -> None:
    c, s = _connected((TLS12,))
    s.close()
    s.data_to_send()
    s.receive_data(_renegotiate(c, s))
    assert [type(e) for e in s.events()] == [RequestRefused]
    assert s.data_to_send() == b""


def test_hello_request_is_refused_with_a_warning() -> None:
    c, s = _connected((TLS12,))
    s._queue_handshake(0, b"", False)
    s._flush_handshake()
    c.receive_data(s.data_to_send())
    _renegotiation_refused_with_a_warning(s, c)


def test_hello_request_with_a_body_is_a_decode_error() -> None:
    c, s = _connected((TLS12,))
    s._queue_handshake(0, b"\x00", False)
    s._flush_handshake()
    refused_and_told(s, c, s.data_to_send(), AlertDescription.DECODE_ERROR, Category.DECODE_ERROR)


def test_hello_request_from_the_client_is_an_unexpected_message() -> None:
    """RFC 5246 §7.4.1.1: HelloRequest is the server's message. From the client after a TLS 1.2 handshake it
    is unexpected_message (fatal), not a renegotiation request to refuse with a warning (audit F1)."""
    c, s = _connected((TLS12,))
    c._queue_handshake(HandshakeType.HELLO_REQUEST, b"", False)
    c._flush_handshake()
    refused_and_told(c, s, c.data_to_send(), AlertDescription.UNEXPECTED_MESSAGE, Category.UNEXPECTED_MESSAGE)
    assert s.closed
    assert s._renegotiation_refusals == 0


def test_client_hello_from_the_server_is_an_unexpected_message() -> None:
    """RFC 5246 §7.4.1.2: ClientHello is the client's message. From the server after a TLS 1.2 handshake it is
    unexpected_message (fatal), not a renegotiation request to refuse with a warning (audit F1)."""
    c, s = _connected((TLS12,))
    s._queue_handshake(HandshakeType.CLIENT_HELLO, client_hello()[9:], False)
    s._flush_handshake()
    refused_and_told(s, c, s.data_to_send(), AlertDescription.UNEXPECTED_MESSAGE, Category.UNEXPECTED_MESSAGE)
    assert c.closed
    assert c._renegotiation_refusals == 0


def test_right_role_renegotiation_is_still_refused_with_a_warning_and_counted() -> None:
    """The negative of the two above: each role's own renegotiation request is refused as before, once with a
    warning and counted, and the connection goes on."""
    c, s = _connected((TLS12,))
    s.receive_data(_renegotiate(c, s))
    _renegotiation_refused_with_a_warning(c, s)
    assert s._renegotiation_refusals == 1
    c, s = _connected((TLS12,))
    s._queue_handshake(HandshakeType.HELLO_REQUEST, b"", False)
    s._flush_handshake()
    c.receive_data(s.data_to_send())
    _renegotiation_refused_with_a_warning(s, c)
    assert c._renegotiation_refusals == 1


def refused_and_told(sender: ClientConnection | ServerConnection, receiver: ClientConnection | ServerConnection,
                     data: bytes, alert: int, category: Category) -> None:
    """`receiver` refuses `data` with `alert` and `category`, and `sender` reads that alert off the wire (under
    the connection's keys where there are some)."""
    receiver.receive_data(data)
    refused_by(receiver.events(), alert, category)
    sender.receive_data(receiver.data_to_send())
    assert AlertReceived(AlertLevel.FATAL, alert) in sender.events()


@pytest.mark.parametrize("versions", [(TLS13,), (TLS12,)])
@pytest.mark.parametrize("msg_type", [1, 2, 8, 11, 13, 15, 20])
def test_unexpected_messages_after_the_handshake(versions: tuple[int, ...], msg_type: int) -> None:
    c, s = _connected(versions)
    c._queue_handshake(msg_type, b"\x00" * 40, False)
    c._flush_handshake()
    if versions == (TLS12,) and msg_type == 1:  # a ClientHello after a TLS 1.2 handshake asks to renegotiate
        s.receive_data(c.data_to_send())
        _renegotiation_refused_with_a_warning(c, s)
        return
    refused_and_told(c, s, c.data_to_send(), AlertDescription.UNEXPECTED_MESSAGE, Category.UNEXPECTED_MESSAGE)


def test_client_refuses_messages_out_of_order() -> None:
    """A server that skips EncryptedExtensions (sends Certificate first) is refused."""
    s = ServerConnection(server_config())
    c = ClientConnection(client_config())
    s.receive_data(c.data_to_send())
    flight = s.data_to_send()
    # Replace the server's protected flight by a plaintext Certificate right after ServerHello.
    sh_length = int.from_bytes(flight[3:5], "big")
    refused_and_told(s, c, flight[: 5 + sh_length] + plaintext_record(22, frame(11, b"\x00\x00\x00\x00")),
                     AlertDescription.UNEXPECTED_MESSAGE, Category.UNEXPECTED_MESSAGE)


@pytest.mark.parametrize(
    "state_bytes",
    [
        plaintext_record(22, frame(20, b"\x00" * 12)),  # Finished instead of ClientKeyExchange
        plaintext_record(20, b"\x01"),  # early ChangeCipherSpec (CVE-2014-0224 shape)
        plaintext_record(22, frame(15, b"\x04\x03\x00\x01\x00")),  # CertificateVerify without a certificate
    ],
)
def test_tls12_server_state_machine(state_bytes: bytes) -> None:
    s = ServerConnection(server_config())
    c = ClientConnection(client_config(versions=(TLS12,)))
    s.receive_data(c.data_to_send())
    s.data_to_send()
    s.receive_data(state_bytes)
    failure = failure_of(s.events())
    assert (failure.alert, failure.category) == (AlertDescription.UNEXPECTED_MESSAGE, Category.UNEXPECTED_MESSAGE)


@pytest.mark.parametrize("payload", [b"\x01\x01", b"\x02", b""])
def test_tls13_malformed_ccs(payload: bytes) -> None:
    s = ServerConnection(server_config())
    s.receive_data(client_hello())
    s.data_to_send()
    assert_refused(s, plaintext_record(20, payload), AlertDescription.UNEXPECTED_MESSAGE,
                   Category.UNEXPECTED_MESSAGE, plaintext=False)


def test_tls13_ccs_twice() -> None:
    s = ServerConnection(server_config())
    s.receive_data(client_hello())
    s.receive_data(plaintext_record(20, b"\x01"))
    assert s.events() == []
    s.data_to_send()
    assert_refused(s, plaintext_record(20, b"\x01"), AlertDescription.UNEXPECTED_MESSAGE,
                   Category.UNEXPECTED_MESSAGE, plaintext=False)


def test_tls13_ccs_after_the_handshake() -> None:
    c, s = _connected((TLS13,))
    refused_and_told(c, s, plaintext_record(20, b"\x01"), AlertDescription.UNEXPECTED_MESSAGE,
                     Category.UNEXPECTED_MESSAGE)


@pytest.mark.parametrize("versions", [(TLS13,), (TLS12,)])
def test_heartbeat_record_after_the_handshake(versions: tuple[int, ...]) -> None:
    c, s = _connected(versions)
    heartbeat = b"\x18\x03\x03\x00\x03\x01\x40\x00"
    refused_and_told(c, s, heartbeat, AlertDescription.UNEXPECTED_MESSAGE, Category.HEARTBEAT)
    c, s = _connected(versions)
    refused_and_told(s, c, heartbeat, AlertDescription.UNEXPECTED_MESSAGE, Category.HEARTBEAT)


def _oversized_protected_record(engine: ClientConnection | ServerConnection) -> bytes:
    """A record sealed under `engine`'s real write key (its own record protection, which does not check
    sizes) whose ciphertext fits the record limit (2^14 + 256) but whose content does not: 2^14 + 1 bytes of
    data (RFC 8446 §5.4, RFC 5246 §6.2.3)."""
    assert engine._write is not None
    record = engine._write.encrypt(23, b"x" * (2**14 + 1))
    assert len(record) - 5 <= 2**14 + 256
    return record


@pytest.mark.parametrize("versions", [(TLS13,), (TLS12,)])
def test_oversized_protected_record(versions: tuple[int, ...]) -> None:
    """The record layer lets the record through (it fits 2^14 + 256 bytes); decryption finds its content too long."""
    c, s = _connected(versions)
    refused_and_told(c, s, _oversized_protected_record(c), AlertDescription.RECORD_OVERFLOW,
                     Category.RECORD_OVERFLOW)
    c, s = _connected(versions)
    refused_and_told(s, c, _oversized_protected_record(s), AlertDescription.RECORD_OVERFLOW,
                     Category.RECORD_OVERFLOW)


@pytest.mark.parametrize("versions", [(TLS13,), (TLS12,)])
def test_oversized_record_header_after_the_handshake(versions: tuple[int, ...]) -> None:
    c, s = _connected(versions)
    refused_and_told(c, s, bytes((23, 3, 3)) + (2**14 + 257).to_bytes(2, "big"), AlertDescription.RECORD_OVERFLOW,
                     Category.RECORD_OVERFLOW)


class _EarlyDataClient(ClientConnection):
    """A client whose first ClientHello offers early_data (as a resuming client would); its second does not."""

    def _hello_extensions(self, shares: Mapping[int, KeyShare], cookie: bytes) -> Extensions:
        extensions = super()._hello_extensions(shares, cookie)
        first = not hasattr(self, "state")  # the first ClientHello is built before there is a state
        return (*extensions, (ExtensionType.EARLY_DATA, b"")) if first else extensions


def _early_data_client() -> ClientConnection:
    """Shares X25519 only, so that a server preferring secp256r1 answers with a HelloRetryRequest."""
    return _EarlyDataClient(client_config(key_share_groups=(NamedGroup.X25519,)))


EARLY_RECORD = bytes((23, 3, 3, 0, 40)) + b"\xee" * 40


def test_refused_early_data_is_skipped_after_hello_retry() -> None:
    """RFC 8446 §4.2.10: a server that answers with a HelloRetryRequest skips the client's early data (records of
    outer type application_data, which it has no key for) up to the second ClientHello."""
    s = ServerConnection(server_config(groups=(NamedGroup.SECP256R1,)))
    c = _early_data_client()
    s.receive_data(c.data_to_send() + EARLY_RECORD + EARLY_RECORD)
    assert s.events() == []
    assert isinstance(s.state, AwaitClientHello2)
    c.receive_data(s.data_to_send())
    assert c.events() == []
    s.receive_data(EARLY_RECORD)  # still in flight when the HelloRetryRequest reached the client
    client_events, server_events = pump(c, s)
    assert any(isinstance(e, HandshakeComplete) and e.group == "secp256r1" for e in client_events)
    assert any(isinstance(e, HandshakeComplete) for e in server_events)


def test_early_data_skip_ends_at_the_second_client_hello() -> None:
    s = ServerConnection(server_config(groups=(NamedGroup.SECP256R1,)))
    c = _early_data_client()
    s.receive_data(c.data_to_send())
    c.receive_data(s.data_to_send())
    s.receive_data(c.data_to_send())
    s.data_to_send()
    # With handshake keys in place, a record that does not open is a forgery, not early data.
    assert_refused(s, EARLY_RECORD, AlertDescription.BAD_RECORD_MAC, Category.BAD_MAC, plaintext=False)


def test_too_much_refused_early_data_after_hello_retry() -> None:
    s = ServerConnection(server_config(groups=(NamedGroup.SECP256R1,), limits=Limits(max_early_data_skip=100)))
    c = _early_data_client()
    s.receive_data(c.data_to_send() + EARLY_RECORD + EARLY_RECORD)
    assert s.events() == []
    assert_refused(s, EARLY_RECORD, AlertDescription.BAD_RECORD_MAC, Category.EARLY_DATA)


def test_application_data_after_hello_retry_without_early_data_offer() -> None:
    s = ServerConnection(server_config(groups=(NamedGroup.SECP256R1,)))
    s.receive_data(client_hello())
    assert isinstance(s.state, AwaitClientHello2)
    s.data_to_send()
    assert_refused(s, EARLY_RECORD, AlertDescription.UNEXPECTED_MESSAGE, Category.UNEXPECTED_MESSAGE)


def test_largest_refused_early_data_record_is_skipped() -> None:
    """A 0-RTT record of exactly 2^14 + 256 bytes, the most RFC 8446 §5.2 allows, is accepted and skipped."""
    s = ServerConnection(server_config(limits=Limits(max_early_data_skip=2**15)))
    c = _early_data_client()
    s.receive_data(c.data_to_send() + bytes((23, 3, 3)) + (2**14 + 256).to_bytes(2, "big") + b"\xee" * (2**14 + 256))
    assert s.events() == []
    client_events, server_events = pump(c, s)
    assert any(isinstance(e, HandshakeComplete) for e in client_events)
    assert any(isinstance(e, HandshakeComplete) for e in server_events)


@pytest.mark.parametrize("versions", [(TLS13,), (TLS12,)])
def test_tampered_record_is_bad_mac(versions: tuple[int, ...]) -> None:
    c, s = _connected(versions)
    c.send_application_data(b"hello")
    wire = bytearray(c.data_to_send())
    wire[-3] ^= 0x40
    refused_and_told(c, s, bytes(wire), AlertDescription.BAD_RECORD_MAC, Category.BAD_MAC)


def test_too_much_refused_early_data_without_hello_retry() -> None:
    """The skip limit holds where records are skipped because they fail under the handshake key, too."""
    s = ServerConnection(server_config(limits=Limits(max_early_data_skip=100)))
    s.receive_data(client_hello(add=((ExtensionType.EARLY_DATA, b""),)))
    s.data_to_send()
    s.receive_data((bytes((23, 3, 3, 0, 80)) + b"\xee" * 80) * 2)
    failure = failure_of(s.events())
    assert (failure.alert, failure.category) == (AlertDescription.BAD_RECORD_MAC, Category.EARLY_DATA)


def test_key_update_flood_is_bounded() -> None:
    c, s = _connected((TLS13,))
    for _ in range(40):
        c.key_update(request_peer=False)
    s.receive_data(c.data_to_send())
    failure = failure_of(s.events())
    assert failure.category is Category.RESOURCE_LIMIT


def test_empty_record_flood_is_bounded() -> None:
    c, s = _connected((TLS13,))
    assert c._write is not None
    wire = b"".join(c._write.encrypt(23, b"") for _ in range(40))
    s.receive_data(wire)
    assert failure_of(s.events()).category is Category.RESOURCE_LIMIT


def test_peer_alert_during_handshake_is_reported() -> None:
    s = ServerConnection(server_config())
    c = ClientConnection(client_config())
    s.receive_data(c.data_to_send())
    c.receive_data(plaintext_record(21, b"\x02\x28"))
    events = c.events()
    assert [type(e).__name__ for e in events] == ["AlertReceived", "Closed"]
    assert not any(isinstance(e, HandshakeFailed) for e in events)

