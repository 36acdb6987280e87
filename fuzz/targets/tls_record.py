"""The TLS record layer (tls/record.py): framing a byte stream into records, and opening and sealing them
under TLS 1.3 and TLS 1.2 protection.

Chunks: RAW bytes into the record reader (records of type application_data are then opened, as the engine
would, and mostly fail authentication); SEAL13, an inner plaintext the fuzzer writes whole (content, type
byte, padding) sealed under the reader's TLS 1.3 key, so that opening succeeds and what follows the AEAD is
reached; ROUND13 and ROUND12, content sealed by the layer's own `encrypt` and opened again.

What must hold: only ProtocolError escapes; framing gives back exactly the bytes it consumed, header for header;
the reader never holds more than one record's worth; what `encrypt` seals, `decrypt` opens to the same type and
content; an opened TLS 1.3 record never yields more than 2^14 bytes of content.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fuzz import chunks
from fuzz.errors import require
from tls.constants import ContentType
from tls.errors import ProtocolError
from tls.limits import MAX_CIPHERTEXT_13, MAX_PLAINTEXT
from tls.record import HEADER, TAG, Protection12, Protection13, RecordReader
from tls.suites import SUITES

RAW, SEAL13, ROUND13, ROUND12, SET_VERSION = range(5)
SUITE13 = SUITES[0x1301]
SUITE12 = SUITES[0xCCA9]
KEY13, IV13 = bytes(range(16)), bytes(range(100, 112))
KEY12, IV12 = bytes(range(32)), bytes(range(50, 62))


class _Layer:
    def __init__(self) -> None:
        self.reader = RecordReader(MAX_CIPHERTEXT_13)
        self.open13 = Protection13(SUITE13, KEY13, IV13)
        self.open12 = Protection12(SUITE12, KEY12, IV12)
        self.seal12 = Protection12(SUITE12, KEY12, IV12)
        self.aead = AESGCM(KEY13)
        self.seq13 = 0
        self.stream = b""
        self.consumed = b""

    def feed(self, data: bytes) -> None:
        self.stream += data
        for record in self.reader.feed(data):
            whole = record.header + bytes(record.payload)
            self.consumed += whole
            require(record.header[0] == record.content_type and len(record.header) == HEADER,
                    "record header and fields disagree")
            require(int.from_bytes(record.header[3:5], "big") == len(record.payload), "record length wrong")
            require(len(record.payload) <= MAX_CIPHERTEXT_13, "record longer than the limit")
            if record.content_type == ContentType.APPLICATION_DATA:
                inner_type, content = self.open13.decrypt(record)
                self.seq13 += 1
                require(len(content) <= MAX_PLAINTEXT and inner_type != 0, "opened record out of bounds")
        require(self.stream.startswith(self.consumed), "framing returned bytes that did not arrive")
        require(len(self.stream) - len(self.consumed) == self.reader.buffered, "framing lost or kept bytes")
        require(self.reader.buffered <= HEADER + MAX_CIPHERTEXT_13, "reader holds more than a record")

    def seal13(self, inner: bytes) -> bytes:
        """A TLS 1.3 record whose whole inner plaintext (content, type, zeros) the fuzzer chose."""
        length = min(len(inner) + TAG, 0xFFFF)
        header = bytes((ContentType.APPLICATION_DATA, 3, 3, length >> 8, length & 0xFF))
        nonce = (int.from_bytes(IV13, "big") ^ self.seq13).to_bytes(12, "big")
        return header + self.aead.encrypt(nonce, inner[: length - TAG], header)


def _round_trip(kind: int, body: bytes) -> None:
    content_type = body[0] if body else ContentType.HANDSHAKE
    content = body[1 : 1 + MAX_PLAINTEXT]
    if kind == ROUND13:
        sealer, opener = Protection13(SUITE13, KEY13, IV13, padding=len(body) % 64), Protection13(SUITE13, KEY13, IV13)
        record = next(iter(RecordReader(MAX_CIPHERTEXT_13).feed(sealer.encrypt(content_type, content))))
        opened = opener.decrypt(record)
    else:
        sealer12, opener12 = Protection12(SUITE12, KEY12, IV12), Protection12(SUITE12, KEY12, IV12)
        record = next(iter(RecordReader(MAX_CIPHERTEXT_13).feed(sealer12.encrypt(content_type, content))))
        opened = (record.content_type, opener12.decrypt(record))
    require(opened == (content_type, content), "decrypt(encrypt(x)) is not x")


def fuzz_one(data: bytes) -> None:
    layer = _Layer()
    try:
        for kind, body in chunks.split(data, 5):
            if kind == RAW:
                layer.feed(body)
            elif kind == SEAL13:
                layer.feed(layer.seal13(body))
            elif kind == SET_VERSION:
                layer.reader.expected_version = 0x0303
            elif body[:1] in (b"\x14", b"\x15", b"\x16", b"\x17") or not body:
                _round_trip(kind, body)
    except ProtocolError:
        return


def seeds() -> dict[str, bytes]:
    plain = bytes((22, 3, 1, 0, 5)) + b"hello"
    return {
        "plaintext": chunks.join([(RAW, plain), (SET_VERSION, b""), (RAW, bytes((21, 3, 3, 0, 2, 1, 0)))]),
        "split": chunks.join([(RAW, plain[:3]), (RAW, plain[3:])]),
        "sealed": chunks.join([(RAW, plain), (SEAL13, b"GET /\x17"), (SEAL13, b"\x16" + bytes(30))]),
        "round-trips": chunks.join([(ROUND13, b"\x17data"), (ROUND12, b"\x16hello"), (ROUND13, b"\x15\x01\x00")]),
        "not-tls": chunks.join([(RAW, b"please give key\r\n")]),
        "sslv2": chunks.join([(RAW, bytes((0x80, 0x2E, 0x01, 0x00, 0x02)))]),
    }
