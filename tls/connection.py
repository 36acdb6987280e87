"""What client and server engines share: records in and out, handshake reassembly, alerts, closing,
application data and TLS 1.3 key changes. The role-specific handshake lives in `tls.server` / `tls.client`.

Sans-I/O: bytes go in through `receive_data`, bytes come out of `data_to_send`, and what happened comes out
of `events`. Any protocol violation ends the connection with one alert and one `HandshakeFailed` event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from outcomes.category import Category
from tls.alerts import WARNING_OF, AlertDescription, AlertLevel, wire_alert
from tls.constants import TLS12, TLS13, ContentType, HandshakeType
from tls.errors import InvariantError, ProtocolError, StateError, decode_error, unexpected
from tls.events import AlertReceived, ApplicationData, Closed, Event, HandshakeFailed, RequestRefused
from tls.keyschedule import Transcript, traffic_key_iv
from tls.limits import MAX_PLAINTEXT, Limits
from tls.messages import KeyUpdate, frame, parse_empty, parse_key_update, serialize_key_update
from tls.record import Protection12, Protection13, Record, RecordReader, plaintext_record
from tls.states import CHANGE_CIPHER_SPEC, Connected12, Connected13, Handler, HandlerTable
from tls.suites import SuiteInfo

HS_HEADER = 4
RFC_MAX_BODY: Final[Mapping[int, int]] = {
    HandshakeType.HELLO_REQUEST: 0, HandshakeType.END_OF_EARLY_DATA: 0, HandshakeType.SERVER_HELLO_DONE: 0,
    HandshakeType.KEY_UPDATE: 1,
    HandshakeType.FINISHED: 48,  # Hash.length in TLS 1.3 (SHA-384 at most in our suites), 12 in TLS 1.2
}
"""Handshake messages whose body the RFCs fix in size (RFC 8446 §4, RFC 5246 §7.4): one declared longer is
refused with decode_error before any size limit of ours is consulted (ALERT_REASONS[RESOURCE_LIMIT])."""


class Connection:
    """Base engine. A subclass sets `state` and `_handlers`, its (state class, message type) → handler table,
    which also holds its role's post-handshake entries (`SERVER_POST_HANDSHAKE` / `CLIENT_POST_HANDSHAKE`)."""

    state: object
    _handlers: HandlerTable
    _transitions: frozenset[tuple[type, type]]

    def __init__(self, limits: Limits, padding: int) -> None:
        self._limits = limits
        self._padding = padding
        self._reader = RecordReader(limits.max_record_ciphertext)
        self._read: Protection13 | Protection12 | None = None
        self._write: Protection13 | Protection12 | None = None
        self._events: list[Event] = []
        self._out: list[bytes] = []
        self._hs_in = bytearray()
        self._hs_out: list[bytes] = []
        self._transcript = Transcript()
        self._messages12: list[bytes] = []
        self.version: int | None = None
        self._read_secret = b""
        self._write_secret = b""
        self.handshake_complete = False
        self._closed = False
        self._sent_close = False
        self._received_close = False
        self._empty_records = 0
        self._warning_alerts = 0
        self._ccs_seen = 0
        self._key_updates = 0
        self._post_handshake = 0
        self._renegotiation_refusals = 0

    # ---- public interface -------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the peer. `b""` means the transport reached end of file."""
        if self._closed:
            return
        if not data:
            self._closed = True
            self._events.append(Closed(clean=False))
            return
        try:
            for record in self._reader.feed(data):
                self._handle_record(record)
                if self.closed:
                    break
        except ProtocolError as err:
            self._fail(err)
        except Exception as err:  # noqa: BLE001 - a bug of ours still ends in a refusal, not in the caller
            self._fail(ProtocolError(Category.INTERNAL_ERROR, f"internal error: {type(err).__name__}"))

    def events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> bytes:
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data

    @property
    def closed(self) -> bool:
        return self._closed

    def send_application_data(self, data: bytes) -> None:
        write = self._write
        if not self.handshake_complete or self._closed or self._sent_close or write is None:
            raise StateError("cannot send application data now")
        view = memoryview(data)
        if isinstance(write, Protection13) and not self._padding:
            if view:
                self._out.append(write.seal_application_data(view))
            return
        append = self._out.append
        for start in range(0, len(view), MAX_PLAINTEXT):
            append(write.encrypt(ContentType.APPLICATION_DATA, view[start : start + MAX_PLAINTEXT]))

    def close(self) -> None:
        """Send close_notify. The connection is Closed once the peer's close_notify arrives (or at EOF)."""
        if self._closed or self._sent_close:
            return
        self._send_alert(AlertLevel.WARNING, AlertDescription.CLOSE_NOTIFY)
        self._sent_close = True
        if self._received_close or not self.handshake_complete:
            self._finish(clean=self.handshake_complete)

    def key_update(self, request_peer: bool = True) -> None:
        """TLS 1.3 KeyUpdate: switch our sending key, optionally asking the peer to switch theirs."""
        state = self.state
        if not isinstance(state, Connected13) or self._closed or self._sent_close:
            raise StateError("KeyUpdate needs an established TLS 1.3 connection")
        self._send_key_update(state, request_peer)

    def _to(self, new: object) -> None:
        """Every state change goes through here and must be listed in the engine's transition table: a
        handler that would move to a state it may not reach is a bug, refused as internal_error."""
        if (type(self.state), type(new)) not in self._transitions:
            raise InvariantError(f"state change {type(self.state).__name__} -> {type(new).__name__}")
        self.state = new

    # ---- output -------------------------------------------------------------------------------------

    def _write_record(self, content_type: int, data: bytes | memoryview) -> None:
        if self._write is None:
            self._out.append(plaintext_record(content_type, bytes(data)))
        else:
            self._out.append(self._write.encrypt(content_type, data))

    def _queue_handshake(self, msg_type: int, body: bytes, transcript: bool = True) -> bytes:
        message = frame(msg_type, body)
        if transcript:
            self._transcript.add(message)
        self._hs_out.append(message)
        return message

    def _flush_handshake(self) -> None:
        """Send queued handshake messages, coalesced into as few records as fit (one AEAD call each)."""
        if not self._hs_out:
            return
        data = b"".join(self._hs_out)
        self._hs_out = []
        view = memoryview(data)
        for start in range(0, len(view), MAX_PLAINTEXT):
            self._write_record(ContentType.HANDSHAKE, view[start : start + MAX_PLAINTEXT])

    def _send_alert(self, level: int, description: int) -> None:
        self._flush_handshake()
        self._write_record(ContentType.ALERT, bytes((level, description)))

    def _send_ccs(self) -> None:
        self._flush_handshake()
        self._out.append(plaintext_record(ContentType.CHANGE_CIPHER_SPEC, b"\x01"))

    # ---- TLS 1.3 keys -------------------------------------------------------------------------------

    def _set_read_13(self, suite: SuiteInfo, secret: bytes) -> None:
        if self._hs_in:
            raise unexpected("handshake message spans a key change")
        self._read = Protection13(suite, *traffic_key_iv(suite.hash_name, secret, suite.key_length))
        self._read_secret = secret

    def _set_write_13(self, suite: SuiteInfo, secret: bytes) -> None:
        self._flush_handshake()
        key, iv = traffic_key_iv(suite.hash_name, secret, suite.key_length)
        self._write = Protection13(suite, key, iv, self._padding)
        self._write_secret = secret

    def _send_key_update(self, state: Connected13, request_peer: bool) -> None:
        self._queue_handshake(HandshakeType.KEY_UPDATE, serialize_key_update(KeyUpdate(request_peer)), False)
        self._set_write_13(state.suite, state.ks.next_traffic_secret(self._write_secret))

    def _on_key_update(self, state: Connected13, body: memoryview, raw: bytes) -> None:
        message = parse_key_update(body)
        self._key_updates += 1
        if self._key_updates > self._limits.max_key_updates:
            raise ProtocolError(Category.RESOURCE_LIMIT, "too many KeyUpdates without application data")
        self._set_read_13(state.suite, state.ks.next_traffic_secret(self._read_secret))
        if message.update_requested and not self._sent_close:
            self._send_key_update(state, False)
            self._flush_handshake()

    def _on_renegotiation(self, state: Connected12, body: memoryview, raw: bytes) -> None:
        """We never renegotiate. RFC 5246 §7.2.2 makes no_renegotiation a warning, always, so the first
        request is refused with a warning and the connection goes on (the peer decides whether to carry on
        without renegotiating, RFC 5746 §4.2 / §4.4); one more than `max_renegotiation_refusals` means the
        peer ignores the answer, and ends the connection (RENEGOTIATION_ATTEMPT's fatal alert). Each role's table
        sends here only the request its peer's role may make: a ClientHello to the server, a HelloRequest to
        the client (RFC 5246 §7.4.1.1, §7.4.1.2); the other role's message is unexpected_message."""
        if raw[0] == HandshakeType.HELLO_REQUEST:
            parse_empty(body, "HelloRequest")
        self._renegotiation_refusals += 1
        if self._renegotiation_refusals > self._limits.max_renegotiation_refusals:
            raise ProtocolError(Category.RENEGOTIATION_ATTEMPT, "renegotiation asked for again after our refusal")
        alert = WARNING_OF[Category.RENEGOTIATION_ATTEMPT]
        if not self._sent_close:  # nothing may follow our close_notify
            self._send_alert(AlertLevel.WARNING, alert)
        self._events.append(RequestRefused(int(alert), Category.RENEGOTIATION_ATTEMPT, "renegotiation is refused"))

    # ---- input --------------------------------------------------------------------------------------

    def _handle_record(self, record: Record) -> None:
        content_type = record.content_type
        read = self._read
        if read is None:
            content: bytes | memoryview = record.payload
            if len(content) > MAX_PLAINTEXT:
                raise ProtocolError(Category.RECORD_OVERFLOW,
                                    f"plaintext record of {len(content)} bytes")
        elif isinstance(read, Protection13):
            if content_type == ContentType.CHANGE_CIPHER_SPEC:
                self._handle_ccs(record.payload)
                return
            if content_type == ContentType.ALERT and not self.handshake_complete:
                # The peer may fail before it has our keys; its alert then comes in the clear.
                self._handle_alert(record.payload)
                return
            opened = self._decrypt_13(read, record)
            if opened is None:
                return
            content_type, content = opened
        else:
            content = read.decrypt(record)
        if content_type == ContentType.APPLICATION_DATA:
            self._handle_application_data(content)
        elif content_type == ContentType.HANDSHAKE:
            self._handle_handshake_bytes(content)
        elif content_type == ContentType.ALERT:
            self._handle_alert(content)
        elif content_type == ContentType.CHANGE_CIPHER_SPEC:
            if isinstance(read, Protection13):
                raise unexpected("ChangeCipherSpec inside a protected TLS 1.3 record")
            self._handle_ccs(content)
        else:
            raise unexpected(f"record content type {content_type}")

    def _decrypt_13(self, read: Protection13, record: Record) -> tuple[int, bytes] | None:
        """(inner type, content), or None for a record to skip (a server refusing 0-RTT overrides this)."""
        return read.decrypt(record)

    def _handle_application_data(self, content: bytes | memoryview) -> None:
        if not self.handshake_complete:
            raise unexpected("application data before the handshake completed")
        if not content:
            self._empty_records += 1
            if self._empty_records > self._limits.max_empty_records:
                raise ProtocolError(Category.RESOURCE_LIMIT,
                                    "too many empty records")
            return
        self._empty_records = 0
        self._key_updates = 0
        self._post_handshake = 0
        self._events.append(ApplicationData(bytes(content)))

    def _handle_ccs(self, content: bytes | memoryview) -> None:
        """TLS 1.2: dispatched like a handshake message (it switches read keys, in one state only).
        TLS 1.3 middlebox-compatibility CCS (RFC 8446 §5): one byte 0x01, between ClientHello and the
        peer's Finished, ignored."""
        if bytes(content) != b"\x01":
            raise unexpected("malformed ChangeCipherSpec")
        if self.version == TLS12:
            state = self.state
            handler = self._handlers.get((type(state), CHANGE_CIPHER_SPEC))
            if handler is None:
                raise unexpected(f"ChangeCipherSpec in state {type(state).__name__}")
            if self._hs_in:
                raise unexpected("handshake message spans ChangeCipherSpec")
            handler(self, state, memoryview(b""), b"")
            return
        if self.version != TLS13:
            raise unexpected("ChangeCipherSpec before the version is known")
        if self.handshake_complete:
            raise unexpected("ChangeCipherSpec after the handshake")
        self._ccs_seen += 1
        if self._ccs_seen > self._limits.max_ccs:
            raise unexpected("more ChangeCipherSpec records than middlebox compatibility needs")

    def _handle_alert(self, content: bytes | memoryview) -> None:
        if not content:
            # RFC 8446 §5.4: an Alert record with zero-length content MUST be answered with unexpected_message
            # (like an empty handshake record); RFC 5246 §6.2.1 forbids them too and names no alert.
            raise unexpected("empty alert record")
        if len(content) != 2:
            raise decode_error(f"alert of {len(content)} bytes")
        level, description = content[0], content[1]
        self._events.append(AlertReceived(level, description))
        if description == AlertDescription.CLOSE_NOTIFY:
            self._received_close = True
            if not self.handshake_complete:
                self._finish(clean=False)
                return
            if not self._sent_close:
                self._send_alert(AlertLevel.WARNING, AlertDescription.CLOSE_NOTIFY)
                self._sent_close = True
            self._finish(clean=True)
            return
        if description == AlertDescription.USER_CANCELED and level == AlertLevel.WARNING:
            self._warning_alerts += 1
            if self._warning_alerts > self._limits.max_warning_alerts:
                raise ProtocolError(Category.RESOURCE_LIMIT,
                                    "too many warning alerts")
            return
        # Every other alert ends the connection, whatever level the peer claims (RFC 8446 §6).
        self._finish(clean=False)

    def _handle_handshake_bytes(self, content: bytes | memoryview) -> None:
        if not content:
            raise unexpected("empty handshake record")
        buf = self._hs_in
        buf += content
        # Both size refusals send illegal_parameter: each means the peer declared a handshake message longer
        # than we hold, and the same fault must not get two different alerts depending on which bound trips
        # first. RFC 8446 §6.2 has no alert for "too large for this implementation"; unexpected_message (a
        # message not allowed in this state) and decode_error (a length inconsistent with the encoding) would
        # both misstate it, while illegal_parameter (a handshake field with a value we refuse) fits the length
        # field, and is what OpenSSL sends for an excessive message size.
        if len(buf) > self._limits.handshake_buffer:
            raise ProtocolError(Category.RESOURCE_LIMIT,
                                "handshake buffer limit exceeded")
        while len(buf) >= HS_HEADER and not self.closed:
            length = (buf[1] << 16) | (buf[2] << 8) | buf[3]
            handler = self._handlers.get((type(self.state), buf[0]))
            if handler is None:
                # Decided from the header: a message this state never takes is unexpected_message, whatever
                # its length.
                raise unexpected(f"handshake message {buf[0]} in state {type(self.state).__name__}")
            if length > RFC_MAX_BODY.get(buf[0], length):
                # Longer than the message's own structure allows: decode_error, as its parser would say, and
                # the same alert whether or not the length also exceeds our limit below.
                raise decode_error(f"handshake message {buf[0]} of {length} bytes is longer than its structure")
            if length > self._limits.max_handshake_message:
                raise ProtocolError(Category.RESOURCE_LIMIT,
                                    f"handshake message of {length} bytes exceeds the limit")
            if len(buf) < HS_HEADER + length:
                break
            message = bytes(buf[: HS_HEADER + length])
            del buf[: HS_HEADER + length]
            self._handle_message(handler, memoryview(message)[HS_HEADER:], message)

    def _handle_message(self, handler: Handler, body: memoryview, raw: bytes) -> None:
        """The one dispatch: `handler` is what the (state class, message type) pair picked from the table."""
        state = self.state
        if self.handshake_complete:
            self._post_handshake += 1
            if self._post_handshake > self._limits.max_post_handshake_messages:
                raise ProtocolError(Category.RESOURCE_LIMIT, "too many post-handshake messages")
        if self.version == TLS12 and not self.handshake_complete:
            self._messages12.append(raw)  # TLS 1.2 CertificateVerify signs the messages themselves
        handler(self, state, body, raw)

    # ---- ending -------------------------------------------------------------------------------------

    def _fail(self, err: ProtocolError) -> None:
        if self._closed:
            return
        self._hs_out = []
        alert = wire_alert(err.alert, self.version == TLS12)
        self._write_record(ContentType.ALERT, bytes((AlertLevel.FATAL, alert)))
        self._events.append(HandshakeFailed(int(alert), err.category, err.reason))
        self._finish(clean=False)

    def _finish(self, clean: bool) -> None:
        if not self._closed:
            self._closed = True
            self._events.append(Closed(clean=clean))


POST_HANDSHAKE_13: HandlerTable = {
    (Connected13, HandshakeType.KEY_UPDATE): Connection._on_key_update,
}
"""What may come after either role's TLS 1.3 handshake."""

SERVER_POST_HANDSHAKE: HandlerTable = {
    **POST_HANDSHAKE_13,
    (Connected12, HandshakeType.CLIENT_HELLO): Connection._on_renegotiation,
}
"""The server's post-handshake entries. After TLS 1.2 only a ClientHello, a client's renegotiation request
(RFC 5246 §7.4.1.2), refused. A HelloRequest is a server's message (§7.4.1.1): from the client it is
unexpected_message, as is anything else not in the table."""

CLIENT_POST_HANDSHAKE: HandlerTable = {
    **POST_HANDSHAKE_13,
    (Connected12, HandshakeType.HELLO_REQUEST): Connection._on_renegotiation,
}
"""The client's post-handshake entries (its engine adds NewSessionTicket). After TLS 1.2 only a HelloRequest,
the server's renegotiation request (RFC 5246 §7.4.1.1), refused. A ClientHello is a client's message
(§7.4.1.2): from the server it is unexpected_message, as is anything else not in the table."""
