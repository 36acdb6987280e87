"""The scripted peer of the TLS engine targets: it plays a fuzz input against one engine, chunk by chunk, and
checks after every step what the appliance relies on.

Chunk kinds (fuzz/chunks.py): RAW bytes as they are; a HANDSHAKE, ALERT or APPLICATION_DATA record, sealed
under the keys the engine reads with once it has any (fuzz/tls_keys.py); a plaintext CCS; the FINISHED or
SIGNED message the engine's state awaits, computed by the peer (the chunk's body when it awaits none); EOF.

What must hold, beyond "no exception": every refusal is one of the engine's own (a HandshakeFailed whose
category is not internal-error); nothing is reported as application data before the handshake completed;
the application cannot send before it completed (StateError), so the secret never leaves before then; when
the handshake completes, the peer has proved what the appliance needs, checked independently of the engine
(`authenticated`); the secret never appears in clear on the wire; the engine's buffers and output stay
within their limits; a closed engine says and sends nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fuzz.errors import PropertyViolationError, require
from fuzz.fixtures import SECRET
from fuzz.tls_keys import Engine, Protection, finished, peer_protection, signed
from outcomes.category import Category
from tls.constants import ContentType, HandshakeType
from tls.errors import StateError
from tls.events import ApplicationData, Event, HandshakeComplete, HandshakeFailed
from tls.limits import MAX_PLAINTEXT
from tls.messages import frame
from tls.record import HEADER, plaintext_record
from tls.signatures import PrivateKey

RAW, HANDSHAKE, CCS, ALERT, APPLICATION_DATA, FINISHED, SIGNED, EOF = range(8)
KINDS = 8
OUTPUT_LIMIT = 256 * 1024
"""Most bytes one input may make the engine send: a flight with its certificates is a few KiB, and every answer
the peer can provoke (alerts, KeyUpdates) is bounded by the engine's limits."""

Authenticated = Callable[[HandshakeComplete], None]
"""Checks that a completed handshake proved what the appliance needs (raises PropertyViolationError if not)."""


class ScriptedPeer:
    def __init__(self, engine: Engine, keys: Mapping[bytes, PrivateKey], authenticated: Authenticated) -> None:
        self.engine = engine
        self._keys = keys
        self._authenticated = authenticated
        self._writer: Protection | None = None
        self._writer_for: object = None
        self.complete = False
        self.sent = 0
        self.initial = engine.data_to_send()
        """What the engine sent before hearing from us (a client's ClientHello)."""

    def deliver(self, kind: int, body: bytes) -> bytes:
        """Play one chunk, check everything, and return what the engine sent in answer."""
        engine = self.engine
        was_closed = engine.closed
        self._play(kind, body)
        out = engine.data_to_send()
        events = engine.events()
        if was_closed:
            require(not out and not events, "a closed engine answered")
        return out + self._check(out, events)

    def _play(self, kind: int, body: bytes) -> None:
        engine = self.engine
        if kind == RAW:
            if body:  # b"" would mean end of file: that is EOF's job
                engine.receive_data(body)
        elif kind == CCS:
            engine.receive_data(plaintext_record(ContentType.CHANGE_CIPHER_SPEC, body or b"\x01"))
        elif kind == EOF:
            engine.receive_data(b"")
        elif kind == FINISHED:
            self._record(ContentType.HANDSHAKE, finished(engine) or frame(HandshakeType.FINISHED, body))
        elif kind == SIGNED:
            message = signed(engine, self._keys, body)
            self._record(ContentType.HANDSHAKE, message or frame(HandshakeType.CERTIFICATE_VERIFY, body))
        else:
            content_type = {HANDSHAKE: ContentType.HANDSHAKE, ALERT: ContentType.ALERT}.get(
                kind, ContentType.APPLICATION_DATA)
            self._record(content_type, body)

    def _record(self, content_type: int, data: bytes) -> None:
        """`data` as records of at most 2^14 bytes, sealed if the engine reads protected records."""
        read = self.engine._read
        if read is not self._writer_for:
            self._writer_for = read
            self._writer = peer_protection(self.engine)
        pieces = [data[i : i + MAX_PLAINTEXT] for i in range(0, len(data), MAX_PLAINTEXT)] or [b""]
        writer = self._writer
        wire = b"".join(writer.encrypt(content_type, piece) if writer is not None
                        else plaintext_record(content_type, piece) for piece in pieces)
        self.engine.receive_data(wire)

    def _check(self, out: bytes, events: list[Event]) -> bytes:
        """Check one step; returns what releasing the secret sent, if the handshake completed in it."""
        engine = self.engine
        released = b""
        self.sent += len(out)
        require(self.sent <= OUTPUT_LIMIT, f"the engine sent {self.sent} bytes")
        require(SECRET not in out, "the secret went out in clear")
        limits = engine._limits
        require(engine._reader.buffered <= HEADER + limits.max_record_ciphertext, "record buffer beyond its limit")
        require(len(engine._hs_in) <= limits.handshake_buffer, "handshake buffer beyond its limit")
        for event in events:
            if isinstance(event, HandshakeFailed):
                require(event.category is not Category.INTERNAL_ERROR, f"internal error: {event.reason}")
            elif isinstance(event, ApplicationData):
                require(self.complete, "application data reported before the handshake completed")
            elif isinstance(event, HandshakeComplete):
                require(not self.complete, "a second HandshakeComplete")
                self.complete = True
                self._authenticated(event)
                released = self._release_secret()
        require(engine.handshake_complete == self.complete, "handshake_complete disagrees with the events")
        if not self.complete:
            try:
                engine.send_application_data(SECRET)
            except StateError:
                pass
            else:
                raise PropertyViolationError("the engine let the application send before the handshake completed")
        return released

    def _release_secret(self) -> bytes:
        """What an endpoint does on success: send the secret. It must leave encrypted, never in clear."""
        engine = self.engine
        if engine.closed:
            return b""
        engine.send_application_data(SECRET)
        out = engine.data_to_send()
        require(bool(out) and SECRET not in out, "the secret was not sent encrypted")
        self.sent += len(out)
        return out
