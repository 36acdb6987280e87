"""The record layer: framing incoming bytes into records (integrity checks first) and record protection.

Framing never decrypts: the connection decrypts each record with whatever keys are current when it gets
to it, because keys change between records. Protection objects hold one AEAD object per key, built once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from outcomes.category import Category
from tls.constants import ContentType
from tls.errors import ProtocolError, unexpected
from tls.limits import MAX_PLAINTEXT
from tls.suites import SuiteInfo

HEADER = 5
TAG = 16
VALID_TYPES = frozenset({20, 21, 22, 23})
SEQ_LIMIT = 2**64 - 1
SCRATCH_LIMIT = 2**18 + 2**12
"""Largest sealing buffer a connection keeps between writes (16 full records); larger writes get their own."""


@dataclass(frozen=True)
class Record:
    """One record as framed (RFC 8446 §5.1, RFC 5246 §6.2), not yet decrypted: the connection decrypts it with the
    keys current when it gets to it. `header` is kept for the AEAD's additional data, and `payload` is a view
    into the reader's buffer, not a copy."""

    content_type: int
    version: int
    header: bytes
    payload: memoryview


def _overflow(reason: str) -> ProtocolError:
    return ProtocolError(Category.RECORD_OVERFLOW, reason)


def _heartbeat() -> ProtocolError:
    """RFC 6520 records (the Heartbleed vector) are never accepted, negotiated or not."""
    return ProtocolError(Category.HEARTBEAT, "heartbeat record")


def _bad_version(reason: str) -> ProtocolError:
    return ProtocolError(Category.BAD_RECORD_VERSION, reason)


class RecordReader:
    """Cuts a byte stream into records. The very first bytes of a connection are classified before any
    framing, so that garbage ("please give key"), SSLv2 hellos and other protocols get their own category."""

    def __init__(self, max_ciphertext: int) -> None:
        self._pending = b""
        self._max_ciphertext = max_ciphertext
        self._first = True
        self.expected_version: int | None = None
        """Once a version is negotiated, every record must carry 0x0303 (TLS 1.2 and 1.3 both do)."""

    @property
    def buffered(self) -> int:
        return len(self._pending)

    def _classify_start(self, data: bytes) -> None:
        first = data[0]
        if first == ContentType.HEARTBEAT:
            raise _heartbeat()
        if first in VALID_TYPES:
            if len(data) >= 2 and data[1] != 3:
                raise _bad_version(f"record major version {data[1]}")
            self._first = False
            return
        if first & 0x80:
            if len(data) < 3:
                return
            if data[2] == 1:
                raise ProtocolError(Category.SSLV2, "SSLv2 ClientHello")
        raise ProtocolError(Category.NOT_TLS,
                            f"not TLS: first bytes {bytes(data[:8])!r}")

    def feed(self, data: bytes) -> Iterator[Record]:
        """Yield each whole record in what has arrived; keep the rest. `data` must be immutable bytes
        (payload views point into it)."""
        buf = self._pending + data if self._pending else data
        self._pending = b""
        if self._first and buf:
            self._classify_start(buf)
            if self._first:
                self._pending = buf
                return
        view = memoryview(buf)
        offset = 0
        end = len(buf)
        try:
            while end - offset >= HEADER:
                content_type = buf[offset]
                version = (buf[offset + 1] << 8) | buf[offset + 2]
                length = (buf[offset + 3] << 8) | buf[offset + 4]
                if content_type not in VALID_TYPES:
                    if content_type == ContentType.HEARTBEAT:
                        raise _heartbeat()
                    raise unexpected(f"record content type {content_type}")
                if buf[offset + 1] != 3:
                    raise _bad_version(f"record version {version:#06x}")
                if self.expected_version is not None and version != self.expected_version:
                    raise _bad_version(f"record version {version:#06x} after negotiation")
                if length > self._max_ciphertext:
                    raise _overflow(f"record of {length} bytes")
                if end - offset - HEADER < length:
                    break
                header = buf[offset : offset + HEADER]
                payload = view[offset + HEADER : offset + HEADER + length]
                offset += HEADER + length
                yield Record(content_type, version, header, payload)
        finally:
            self._pending = buf[offset:]


def _make_aead(info: SuiteInfo, key: bytes) -> AESGCM | ChaCha20Poly1305:
    return AESGCM(key) if info.aead == "aes-gcm" else ChaCha20Poly1305(key)


def _bad_mac() -> ProtocolError:
    return ProtocolError(Category.BAD_MAC, "record failed authentication")


class Protection13:
    """One direction of TLS 1.3 record protection under one traffic secret."""

    def __init__(self, info: SuiteInfo, key: bytes, iv: bytes, padding: int = 0) -> None:
        self._aead = _make_aead(info, key)
        self._iv = int.from_bytes(iv, "big")
        self._seq = 0
        self._padding = padding
        self._scratch = bytearray()

    def _nonce(self) -> bytes:
        """The nonce for the current sequence number; the caller advances `_seq` once the record is good."""
        if self._seq >= SEQ_LIMIT:
            raise ProtocolError(Category.RESOURCE_LIMIT, "sequence number exhausted")
        return (self._iv ^ self._seq).to_bytes(12, "big")

    def decrypt(self, record: Record) -> tuple[int, bytes]:
        """(inner content type, content). Raises bad_record_mac, record_overflow or unexpected_message."""
        if record.content_type != ContentType.APPLICATION_DATA:
            raise unexpected(f"unprotected record of type {record.content_type} after keys were set")
        if len(record.payload) > MAX_PLAINTEXT + 256:
            raise _overflow("ciphertext too long")
        try:
            plaintext = self._aead.decrypt(self._nonce(), record.payload, record.header)
        except InvalidTag:
            raise _bad_mac() from None
        self._seq += 1
        if len(plaintext) > MAX_PLAINTEXT + 1:
            raise _overflow("inner plaintext longer than 2^14 + 1")
        if plaintext and plaintext[-1]:  # the common case: no padding, one copy
            return plaintext[-1], plaintext[:-1]
        stripped = plaintext.rstrip(b"\x00")
        if not stripped:
            raise unexpected("protected record without a content type")
        return stripped[-1], stripped[:-1]

    def encrypt(self, content_type: int, data: bytes | memoryview) -> bytes:
        pad = 0
        if self._padding:
            pad = min(-(len(data) + 1) % self._padding, MAX_PLAINTEXT - len(data))
        inner = b"".join((data, bytes((content_type,)), bytes(pad)))
        length = len(inner) + TAG
        header = bytes((23, 3, 3, length >> 8, length & 0xFF))
        sealed = self._aead.encrypt(self._nonce(), inner, header)
        self._seq += 1
        return header + sealed

    def seal_application_data(self, data: memoryview) -> bytes:
        """All of `data` as application_data records, sealed into a scratch buffer this direction keeps and
        copied out once. Why: per record, `encrypt` makes three short-lived copies, and for a large write
        their freed space joins the write's joined buffer at the top of the C heap, where glibc gives it
        back to the kernel and takes it again on every write (measured: half the bulk throughput, depending
        on heap layout). Padded connections use `encrypt`."""
        count = -(-len(data) // MAX_PLAINTEXT)
        size = len(data) + count * (HEADER + 1 + TAG)
        scratch = self._scratch
        if len(scratch) < size:
            scratch = bytearray(size)
            if size <= SCRATCH_LIMIT:
                self._scratch = scratch
        view = memoryview(scratch)
        at = 0
        for start in range(0, len(data), MAX_PLAINTEXT):
            chunk = data[start : start + MAX_PLAINTEXT]
            length = len(chunk) + 1 + TAG
            header = bytes((23, 3, 3, length >> 8, length & 0xFF))
            view[at : at + HEADER] = header
            self._aead.encrypt_into(self._nonce(), b"".join((chunk, b"\x17")), header,
                                    view[at + HEADER : at + HEADER + length])
            self._seq += 1
            at += HEADER + length
        return bytes(view[:size])


class Protection12:
    """One direction of TLS 1.2 AEAD record protection (RFC 5288 GCM with explicit nonce, RFC 7905 ChaCha20)."""

    def __init__(self, info: SuiteInfo, key: bytes, iv: bytes) -> None:
        self._aead = _make_aead(info, key)
        self._gcm = info.aead == "aes-gcm"
        self._iv = iv  # 4-byte salt for GCM, 12-byte IV for ChaCha20
        self._iv_int = int.from_bytes(iv, "big")
        self._seq = 0

    def _take_seq(self) -> int:
        if self._seq >= SEQ_LIMIT:
            raise ProtocolError(Category.RESOURCE_LIMIT, "sequence number exhausted")
        seq = self._seq
        self._seq += 1
        return seq

    def decrypt(self, record: Record) -> bytes:
        seq = self._take_seq()
        payload = record.payload
        if self._gcm:
            if len(payload) < 8 + TAG:
                raise _bad_mac()
            nonce = self._iv + bytes(payload[:8])
            payload = payload[8:]
        else:
            if len(payload) < TAG:
                raise _bad_mac()
            nonce = (self._iv_int ^ seq).to_bytes(12, "big")
        plain_length = len(payload) - TAG
        if plain_length > MAX_PLAINTEXT:
            raise _overflow("TLS 1.2 plaintext longer than 2^14")
        aad = seq.to_bytes(8, "big") + record.header[:3] + plain_length.to_bytes(2, "big")
        try:
            return self._aead.decrypt(nonce, payload, aad)
        except InvalidTag:
            raise _bad_mac() from None

    def encrypt(self, content_type: int, data: bytes | memoryview) -> bytes:
        seq = self._take_seq()
        aad = seq.to_bytes(8, "big") + bytes((content_type, 3, 3)) + len(data).to_bytes(2, "big")
        if self._gcm:
            explicit = seq.to_bytes(8, "big")
            body = explicit + self._aead.encrypt(self._iv + explicit, bytes(data), aad)
        else:
            body = self._aead.encrypt((self._iv_int ^ seq).to_bytes(12, "big"), bytes(data), aad)
        return bytes((content_type, 3, 3, len(body) >> 8, len(body) & 0xFF)) + body


def plaintext_record(content_type: int, data: bytes, version: int = 0x0303) -> bytes:
    return bytes((content_type, version >> 8, version & 0xFF, len(data) >> 8, len(data) & 0xFF)) + data
