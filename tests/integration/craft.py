"""Hand-made attack material: raw TLS records and hellos, and good and bad client certificates.

Valid pieces come from our own codecs (tls.messages, tls.record, tests.tls.hello) and are then broken on
purpose; certificates are minted under the exported boot CA (or beside it) with the shared builder
(bench.certs), and the shapes `cryptography` will not build (version 1, a zeroed signature, broken DER)
are made by editing DER.
"""

from __future__ import annotations

import datetime
import os
import socket
import ssl
import struct
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from pyasn1.codec.der import decoder, encoder
from pyasn1_modules import rfc5280

from appliance.pki import Identity
from bench import certs
from tests.integration.lab import read_all
from tls.client import ClientConnection
from tls.config import NO_VALIDATION_FOR_TESTS, ClientConfig
from tls.constants import TLS12, TLS13
from tls.events import AlertReceived, ApplicationData, Closed, HandshakeFailed
from tls.messages import frame
from tls.record import plaintext_record
from tls.signatures import PrivateKey

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)

# -- records and hellos -------------------------------------------------------------------------------

HANDSHAKE, CCS, ALERT, HEARTBEAT = 22, 20, 21, 24


def record(content_type: int, payload: bytes, version: int = 0x0303) -> bytes:
    """A record header and payload, with whatever version and length the attack needs."""
    return struct.pack("!BHH", content_type, version, len(payload)) + payload


def sslv2_hello() -> bytes:
    """An SSLv2-framed CLIENT-HELLO (2-byte header with the high bit set, message type 1)."""
    body = b"\x01\x00\x02" + struct.pack("!HHH", 21, 0, 16) + b"\x07\x00\xc0" * 7 + os.urandom(16)
    return struct.pack("!H", 0x8000 | len(body)) + body


def heartbeat_request(length: int = 0x4000) -> bytes:
    """Heartbleed's shape: a HeartbeatRequest claiming `length` bytes of payload and carrying three."""
    return record(HEARTBEAT, b"\x01" + struct.pack("!H", length) + b"abc")


# -- certificates ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Leaf:
    eku: tuple[x509.ObjectIdentifier, ...] | None = (ExtendedKeyUsageOID.CLIENT_AUTH,)
    digital_signature: bool = True
    not_before: datetime.datetime = NOW - DAY
    not_after: datetime.datetime = NOW + 30 * DAY
    issuer: x509.Name | None = None  # None: the signer's subject
    common_name: str = "attacker"
    ca: bool = False


def new_key() -> ec.EllipticCurvePrivateKey:
    return certs.new_ec_key()


name = certs.name


def _issue(spec: Leaf, issuer: x509.Name, aki_key: ec.EllipticCurvePublicKey, key: ec.EllipticCurvePrivateKey,
           signing_key: ec.EllipticCurvePrivateKey) -> Identity:
    usage = ("digital_signature",) if spec.digital_signature else ("key_encipherment",)
    built = certs.Spec(
        spec.common_name, issuer_name=spec.issuer or issuer, ca=spec.ca,
        key_usage=usage + (("key_cert_sign",) if spec.ca else ()), eku=spec.eku, san=False, ski=spec.ca,
        aki_key_id=x509.SubjectKeyIdentifier.from_public_key(aki_key).digest,
        not_before=spec.not_before, not_after=spec.not_after, serial=None,
    )
    return Identity(certs.issue(built, key=key, signing_key=signing_key).der, key)


def issue(signer: Identity, spec: Leaf, key: ec.EllipticCurvePrivateKey | None = None,
          signing_key: ec.EllipticCurvePrivateKey | None = None) -> Identity:
    """A certificate for `key` (fresh if None) issued in `signer`'s name and signed by `signing_key`
    (default: the signer's key; another key gives the right issuer with a wrong signature). Its AKI is the
    claimed issuer's key identifier, whoever really signs: a forgery points at the real CA."""
    claimed = signer.certificate.subject, signer.key.public_key()
    return _issue(spec, *claimed, key or new_key(), signing_key or signer.key)


def self_signed_leaf() -> Identity:
    """A client-auth leaf signed by its own key (not a CA: it is refused for its issuer, not its shape)."""
    key = new_key()
    return _issue(Leaf(), name("attacker"), key.public_key(), key, key)


def self_signed_ca(subject: str | x509.Name) -> Identity:
    key = new_key()
    spec = certs.ca_spec(subject, not_before=NOW - DAY, not_after=NOW + 30 * DAY, serial=None)
    return Identity(certs.issue(spec, key=key).der, key)


def load_identity(pki: Path, label: str) -> Identity:
    cert = x509.load_pem_x509_certificate((pki / f"{label}.pem").read_bytes())
    key = serialization.load_pem_private_key((pki / f"{label}.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return Identity(cert.public_bytes(serialization.Encoding.DER), key)


def _split(der: bytes) -> tuple[rfc5280.TBSCertificate, bytes]:
    cert, rest = decoder.decode(der, asn1Spec=rfc5280.Certificate())
    assert not rest
    return cert["tbsCertificate"], encoder.encode(cert["signatureAlgorithm"])


def _assemble(tbs_der: bytes, algorithm_der: bytes, signature: bytes) -> bytes:
    bit_string = b"\x00" + signature
    body = tbs_der + algorithm_der + b"\x03" + _der_length(len(bit_string)) + bit_string
    return b"\x30" + _der_length(len(body)) + body


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def version1(signer: Identity) -> Identity:
    """A certificate without the version field (v1) and so without extensions, properly signed."""
    leaf = issue(signer, Leaf())
    tbs, algorithm = _split(leaf.cert_der)
    v1 = rfc5280.TBSCertificate()
    for field_name in ("serialNumber", "signature", "issuer", "validity", "subject", "subjectPublicKeyInfo"):
        v1[field_name] = tbs[field_name]
    tbs_der = encoder.encode(v1)
    signature = signer.key.sign(tbs_der, ec.ECDSA(hashes.SHA256()))
    return Identity(_assemble(tbs_der, algorithm, signature), leaf.key)


def zeroed_signature(signer: Identity) -> bytes:
    """A good leaf's DER with every byte of its signature value zeroed (same length, same structure)."""
    der = issue(signer, Leaf()).cert_der
    tbs, algorithm = _split(der)
    cert, _ = decoder.decode(der, asn1Spec=rfc5280.Certificate())
    signature_length = len(cert["signature"].asOctets())
    return _assemble(encoder.encode(tbs), algorithm, bytes(signature_length))


def malformed_der(signer: Identity) -> bytes:
    """A good leaf's DER with the outer SEQUENCE's length claiming one byte more than there is."""
    der = bytearray(issue(signer, Leaf()).cert_der)
    assert der[1] == 0x82  # two length bytes follow for any real certificate
    length = int.from_bytes(der[2:4], "big") + 1
    der[2:4] = length.to_bytes(2, "big")
    return bytes(der)


# -- a TLS client with our engine, for what no real client will send -----------------------------------


@dataclass
class EngineResult:
    wire: bytes  # every byte the server sent
    plaintext: bytes  # decrypted application data
    failure: str  # why our client saw the handshake end, if it did


def engine_exchange(sock: socket.socket, chain: tuple[bytes, ...], key: PrivateKey,
                    versions: tuple[int, ...] = (TLS13, TLS12)) -> EngineResult:
    """Run our TLS client over a connected socket with an arbitrary chain (sent as given, malformed or
    not) and key (which need not match the certificate) until the server closes."""
    config = ClientConfig(random=os.urandom, time=lambda: datetime.datetime.now(datetime.UTC), chain=chain, key=key,
                          versions=versions, anchors=NO_VALIDATION_FOR_TESTS)
    engine = ClientConnection(config)
    sock.sendall(engine.data_to_send())
    wire, plaintext, failure = b"", b"", ""
    while True:
        try:
            data = sock.recv(65536)
        except (ConnectionError, TimeoutError, OSError):
            break
        if not data:
            break
        wire += data
        engine.receive_data(data)
        for event in engine.events():
            if isinstance(event, ApplicationData):
                plaintext += event.data
            elif isinstance(event, HandshakeFailed | AlertReceived):
                failure = repr(event)
            elif isinstance(event, Closed):
                failure = failure or "closed"
        out = engine.data_to_send()
        if out:
            try:
                sock.sendall(out)
            except OSError:
                break
    wire += read_all(sock)
    return EngineResult(wire, plaintext, failure)


def ssl_exchange(sock: socket.socket, context: ssl.SSLContext) -> bytes:
    """Python's ssl (OpenSSL) as the client over a connected socket, through memory BIOs, until the server
    stops: returns every byte the server sent (its records as they came over the wire: a secret sent in the
    clear would be there) followed by the application data decrypted before any alert or error ended the
    session. A refusal is the expected outcome, so nothing here raises on one; and nothing received before
    it is dropped."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing)
    wire, plaintext = b"", b""
    handshaking, ended = True, False
    while True:
        try:
            if handshaking:
                tls.do_handshake()
                handshaking = False
            while chunk := tls.read(65536):
                plaintext += chunk
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError:  # an alert, a failed verification on our side, or the server's close_notify
            ended = True
        if outgoing.pending:
            try:
                sock.sendall(outgoing.read())
            except OSError:
                break
        if ended:
            break
        try:
            data = sock.recv(65536)
        except OSError:
            break
        if not data:
            break
        wire += data
        incoming.write(data)
    return wire + read_all(sock) + plaintext


def handshake_record(msg_type: int, body: bytes, version: int = 0x0303) -> bytes:
    return plaintext_record(HANDSHAKE, frame(msg_type, body), version=version)


def callback_server_context(pki: Path, directory: Path) -> ssl.SSLContext:
    """What port 10001 connects back to: a TLS server identity from the boot CA (exported to `pki`), written to
    `directory`, that demands the appliance's client certificate."""
    server = issue(load_identity(pki, "ca"), Leaf(eku=(ExtendedKeyUsageOID.SERVER_AUTH,)))
    cert, key = directory / "server.pem", directory / "server.key"
    cert.write_bytes(server.cert_pem)
    key.write_bytes(server.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.load_verify_locations(pki / "ca.pem")
    context.verify_mode = ssl.CERT_REQUIRED
    return context
