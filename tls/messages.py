"""Handshake message codecs: one frozen dataclass per message, `parse_*(body)` and `serialize_*(msg)` paired.

Parsers take the message body (after the 4-byte handshake header), check every length, and reject
trailing bytes. Semantic checks (which suite, which version) belong to the state machines.
"""

from __future__ import annotations

from dataclasses import dataclass

from outcomes.category import Category
from tls.codec import Reader, u8, u16, u16_values, u24, vec8, vec16, vec24
from tls.constants import HandshakeType
from tls.errors import ProtocolError, decode_error, illegal
from tls.extensions import Extensions, parse_extensions, serialize_extensions


def frame(msg_type: int, body: bytes) -> bytes:
    """A whole handshake message: type, 24-bit length, body."""
    return b"".join((bytes((msg_type,)), u24(len(body)), body))


@dataclass(frozen=True)
class ClientHello:
    """RFC 8446 §4.1.2, laid out as TLS 1.2's (RFC 5246 §7.4.1.2) so one codec serves both versions: the server
    picks the version from it, and the client keeps its own in `Offer` to check the ServerHello against."""

    legacy_version: int
    random: bytes
    session_id: bytes
    cipher_suites: tuple[int, ...]
    compression_methods: bytes
    extensions: Extensions


def parse_client_hello(body: memoryview | bytes) -> ClientHello:
    r = Reader(body, "ClientHello")
    version = r.u16()
    random = bytes(r.raw(32))
    session_id = bytes(r.vec(1, 0, 32))
    suites = u16_values(r.vec(2, 2, 65534), "ClientHello: cipher_suites")
    compression = bytes(r.vec(1, 1))
    extensions = parse_extensions(r, "ClientHello") if r.remaining else ()
    r.end()
    return ClientHello(version, random, session_id, suites, compression, extensions)


def serialize_client_hello(ch: ClientHello) -> bytes:
    parts = [u16(ch.legacy_version), ch.random, vec8(ch.session_id), vec16(b"".join(u16(s) for s in ch.cipher_suites)),
             vec8(ch.compression_methods)]
    if ch.extensions:
        parts.append(serialize_extensions(ch.extensions))
    return b"".join(parts)


@dataclass(frozen=True)
class ServerHello:
    """Also a HelloRetryRequest when `random` is HRR_RANDOM."""

    legacy_version: int
    random: bytes
    session_id: bytes
    cipher_suite: int
    compression_method: int
    extensions: Extensions


def parse_server_hello(body: memoryview | bytes) -> ServerHello:
    r = Reader(body, "ServerHello")
    version = r.u16()
    random = bytes(r.raw(32))
    session_id = bytes(r.vec(1, 0, 32))
    suite = r.u16()
    compression = r.u8()
    extensions = parse_extensions(r, "ServerHello") if r.remaining else ()
    r.end()
    return ServerHello(version, random, session_id, suite, compression, extensions)


def serialize_server_hello(sh: ServerHello) -> bytes:
    return (u16(sh.legacy_version) + sh.random + vec8(sh.session_id) + u16(sh.cipher_suite)
            + u8(sh.compression_method) + serialize_extensions(sh.extensions))


@dataclass(frozen=True)
class EncryptedExtensions:
    """RFC 8446 §4.3.1: the TLS 1.3 server's answers to extensions that are not needed to set up keys, sent
    encrypted under the handshake keys."""

    extensions: Extensions


def parse_encrypted_extensions(body: memoryview | bytes) -> EncryptedExtensions:
    r = Reader(body, "EncryptedExtensions")
    extensions = parse_extensions(r, "EncryptedExtensions")
    r.end()
    return EncryptedExtensions(extensions)


def serialize_encrypted_extensions(ee: EncryptedExtensions) -> bytes:
    return serialize_extensions(ee.extensions)


@dataclass(frozen=True)
class Certificate13:
    """RFC 8446 §4.4.2: each certificate comes with its own extensions, and `context` echoes a CertificateRequest's
    (empty in the handshake). `chain` is the DER list without them, as TLS 1.2's Certificate carries it."""

    context: bytes
    entries: tuple[tuple[bytes, Extensions], ...]

    @property
    def chain(self) -> tuple[bytes, ...]:
        return tuple(der for der, _ in self.entries)


def parse_certificate13(body: memoryview | bytes, max_entries: int) -> Certificate13:
    """`max_entries` is checked while parsing so a long chain costs no more than `max_entries` entries."""
    r = Reader(body, "Certificate")
    context = bytes(r.vec(1))
    entries_reader = r.sub(3, "certificate_list")
    r.end()
    entries: list[tuple[bytes, Extensions]] = []
    while entries_reader.remaining:
        if len(entries) >= max_entries:
            raise chain_too_long(max_entries)
        der = bytes(entries_reader.vec(3, 1))
        extensions = parse_extensions(entries_reader, "CertificateEntry")
        entries.append((der, extensions))
    return Certificate13(context, tuple(entries))


def serialize_certificate13(msg: Certificate13) -> bytes:
    entries = b"".join(vec24(der) + serialize_extensions(ext) for der, ext in msg.entries)
    return vec8(msg.context) + vec24(entries)


@dataclass(frozen=True)
class Certificate12:
    """RFC 5246 §7.4.2 and §7.4.6: the sender's chain as DER, leaf first; a client with no certificate to offer
    sends it empty."""

    chain: tuple[bytes, ...]


def parse_certificate12(body: memoryview | bytes, max_entries: int) -> Certificate12:
    r = Reader(body, "Certificate")
    certs_reader = r.sub(3, "certificate_list")
    r.end()
    certs: list[bytes] = []
    while certs_reader.remaining:
        if len(certs) >= max_entries:
            raise chain_too_long(max_entries)
        certs.append(bytes(certs_reader.vec(3, 1)))
    return Certificate12(tuple(certs))


def serialize_certificate12(msg: Certificate12) -> bytes:
    return vec24(b"".join(vec24(der) for der in msg.chain))


def chain_too_long(limit: int) -> ProtocolError:
    return ProtocolError(Category.PATH_TOO_LONG,
                         f"certificate chain longer than {limit}")


@dataclass(frozen=True)
class CertificateRequest13:
    """RFC 8446 §4.3.2: what the server will accept as a client certificate, said in extensions (signature_algorithms
    is required); `context` is only for post-handshake authentication, which we neither send nor accept."""

    context: bytes
    extensions: Extensions


def parse_certificate_request13(body: memoryview | bytes) -> CertificateRequest13:
    r = Reader(body, "CertificateRequest")
    context = bytes(r.vec(1))
    extensions = parse_extensions(r, "CertificateRequest")
    r.end()
    return CertificateRequest13(context, extensions)


def serialize_certificate_request13(msg: CertificateRequest13) -> bytes:
    return vec8(msg.context) + serialize_extensions(msg.extensions)


@dataclass(frozen=True)
class CertificateRequest12:
    """RFC 5246 §7.4.4: the certificate types and signature algorithms the server accepts, and the CAs it names
    (`authorities`, kept as raw bytes: we send it empty and never read it)."""

    certificate_types: bytes
    signature_algorithms: tuple[int, ...]
    authorities: bytes


def parse_certificate_request12(body: memoryview | bytes) -> CertificateRequest12:
    r = Reader(body, "CertificateRequest")
    types = bytes(r.vec(1, 1))
    algs = u16_values(r.vec(2, 2), "CertificateRequest: signature_algorithms")
    authorities = bytes(r.vec(2))
    r.end()
    return CertificateRequest12(types, algs, authorities)


def serialize_certificate_request12(msg: CertificateRequest12) -> bytes:
    return (vec8(msg.certificate_types) + vec16(b"".join(u16(a) for a in msg.signature_algorithms))
            + vec16(msg.authorities))


@dataclass(frozen=True)
class CertificateVerify:
    """RFC 8446 §4.4.3, and TLS 1.2's (RFC 5246 §7.4.8) with the same layout: a signature scheme and a signature
    proving the sender holds its certificate's key."""

    scheme: int
    signature: bytes


def parse_certificate_verify(body: memoryview | bytes) -> CertificateVerify:
    """`signature<0..2^16-1>` in both RFC 8446 §4.4.3 and RFC 5246's DigitallySigned (§4.7): an empty
    signature is well-formed, so it is a signature that fails to verify (decrypt_error), not decode_error."""
    r = Reader(body, "CertificateVerify")
    scheme = r.u16()
    signature = bytes(r.vec(2))
    r.end()
    return CertificateVerify(scheme, signature)


def serialize_certificate_verify(msg: CertificateVerify) -> bytes:
    return u16(msg.scheme) + vec16(msg.signature)


@dataclass(frozen=True)
class Finished:
    """RFC 8446 §4.4.4 / RFC 5246 §7.4.9: the MAC over the transcript that proves both sides saw the same
    handshake. Its length is the suite's hash length in TLS 1.3 and 12 in TLS 1.2, which the parser is given."""

    verify_data: bytes


def parse_finished(body: memoryview | bytes, length: int) -> Finished:
    if len(body) != length:
        raise decode_error(f"Finished: {len(body)} bytes, expected {length}")
    return Finished(bytes(body))


def serialize_finished(msg: Finished) -> bytes:
    return msg.verify_data


@dataclass(frozen=True)
class KeyUpdate:
    """RFC 8446 §4.6.3: the sender has moved to its next traffic secret, and asks the peer to do the same when
    `update_requested`."""

    update_requested: bool


def parse_key_update(body: memoryview | bytes) -> KeyUpdate:
    r = Reader(body, "KeyUpdate")
    value = r.u8()
    r.end()
    if value not in (0, 1):
        raise illegal(f"KeyUpdate: request_update {value}")
    return KeyUpdate(value == 1)


def serialize_key_update(msg: KeyUpdate) -> bytes:
    return u8(1 if msg.update_requested else 0)


@dataclass(frozen=True)
class NewSessionTicket:
    """RFC 8446 §4.6.1: a resumption ticket. We do not resume: the client parses a ticket only to refuse a
    malformed one, then drops it."""

    lifetime: int
    age_add: int
    nonce: bytes
    ticket: bytes
    extensions: Extensions


def parse_new_session_ticket(body: memoryview | bytes) -> NewSessionTicket:
    r = Reader(body, "NewSessionTicket")
    lifetime = r.u32()
    age_add = r.u32()
    nonce = bytes(r.vec(1))
    ticket = bytes(r.vec(2, 1))
    extensions = parse_extensions(r, "NewSessionTicket")
    r.end()
    return NewSessionTicket(lifetime, age_add, nonce, ticket, extensions)


def serialize_new_session_ticket(msg: NewSessionTicket) -> bytes:
    return (msg.lifetime.to_bytes(4, "big") + msg.age_add.to_bytes(4, "big") + vec8(msg.nonce) + vec16(msg.ticket)
            + serialize_extensions(msg.extensions))


NAMED_CURVE = 3


@dataclass(frozen=True)
class ServerKeyExchange:
    """ECDHE parameters (RFC 8422 §5.4) and the signature over randoms + params."""

    group: int
    public: bytes
    scheme: int
    signature: bytes

    @property
    def params(self) -> bytes:
        return u8(NAMED_CURVE) + u16(self.group) + vec8(self.public)


def parse_server_key_exchange(body: memoryview | bytes) -> ServerKeyExchange:
    r = Reader(body, "ServerKeyExchange")
    curve_type = r.u8()
    if curve_type != NAMED_CURVE:
        raise decode_error(f"ServerKeyExchange: curve type {curve_type} is not named_curve")
    group = r.u16()
    public = bytes(r.vec(1, 1))
    scheme = r.u16()
    signature = bytes(r.vec(2))  # DigitallySigned: <0..2^16-1>, as in CertificateVerify
    r.end()
    return ServerKeyExchange(group, public, scheme, signature)


def serialize_server_key_exchange(msg: ServerKeyExchange) -> bytes:
    return msg.params + u16(msg.scheme) + vec16(msg.signature)


@dataclass(frozen=True)
class ClientKeyExchange:
    """RFC 5246 §7.4.7 with RFC 8422 §5.7: the client's ECDHE public point, the only exchange our suites use."""

    public: bytes


def parse_client_key_exchange(body: memoryview | bytes) -> ClientKeyExchange:
    r = Reader(body, "ClientKeyExchange")
    public = bytes(r.vec(1, 1))
    r.end()
    return ClientKeyExchange(public)


def serialize_client_key_exchange(msg: ClientKeyExchange) -> bytes:
    return vec8(msg.public)


def parse_empty(body: memoryview | bytes, what: str) -> None:
    """ServerHelloDone, HelloRequest, EndOfEarlyData: bodies that must be empty."""
    if len(body):
        raise decode_error(f"{what}: must be empty")


MESSAGE_NAMES = {t.value: t.name for t in HandshakeType}
