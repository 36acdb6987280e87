"""The comparison engine: Python's `ssl` (OpenSSL) over MemoryBIOs, behind our engine's interface.

Why it exists: DESIGN.md asks for the TLS layer to be swappable so our engine can be measured against
OpenSSL in the same run, and so endpoint tests have a reference. Production never uses it.

Known differences from our engine, stated rather than hidden:
- Python 3.11's `ssl` exposes only the peer's leaf (`getpeercert(binary_form=True)`), so `peer_chain` holds
  the leaf alone; the appliance's CA issues leaves directly, so that is the whole path here.
- OpenSSL chooses which alert it sends; `HandshakeFailed.alert` is the conventional alert for the category.
- The key-exchange group is not exposed by `ssl` in 3.11 and is reported as "unknown".
"""

from __future__ import annotations

import contextlib
import ssl
import tempfile
from enum import Enum, auto
from pathlib import Path

from appliance.pki import Identity, IssuedPKI
from outcomes.category import Category
from tls.events import AlertReceived, ApplicationData, Closed, Event, HandshakeComplete, HandshakeFailed

READ_CHUNK = 16384

_VERIFY_CODES = {
    2: Category.UNTRUSTED_CHAIN,  # unable to get issuer certificate
    4: Category.CHAIN_SIGNATURE_INVALID,  # unable to decrypt certificate signature
    7: Category.CHAIN_SIGNATURE_INVALID,  # certificate signature failure
    9: Category.NOT_YET_VALID,
    10: Category.EXPIRED,
    18: Category.UNTRUSTED_CHAIN,  # self-signed leaf
    19: Category.UNTRUSTED_CHAIN,  # self-signed certificate in chain
    20: Category.UNTRUSTED_CHAIN,  # unable to get local issuer
    21: Category.UNTRUSTED_CHAIN,  # unable to verify the first certificate
    22: Category.PATH_TOO_LONG,
    24: Category.CA_AS_LEAF,  # invalid CA certificate
    25: Category.PATH_TOO_LONG,  # path length constraint exceeded
    26: Category.WRONG_EXTENDED_KEY_USAGE,  # unsupported certificate purpose
    32: Category.WRONG_KEY_USAGE,
}

_REASONS = {
    "HTTP_REQUEST": Category.NOT_TLS,
    "HTTPS_PROXY_REQUEST": Category.NOT_TLS,
    "WRONG_VERSION_NUMBER": Category.BAD_RECORD_VERSION,
    "UNSUPPORTED_PROTOCOL": Category.OLD_TLS_VERSION,
    "NO_SHARED_CIPHER": Category.NO_SHARED_CIPHER,
    "NO_SUITABLE_KEY_SHARE": Category.NO_SHARED_GROUP,
    "NO_SHARED_GROUPS": Category.NO_SHARED_GROUP,
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": Category.NO_CERTIFICATE,
    "DECRYPTION_FAILED_OR_BAD_RECORD_MAC": Category.BAD_MAC,
    "BAD_RECORD_MAC": Category.BAD_MAC,
    "UNEXPECTED_MESSAGE": Category.UNEXPECTED_MESSAGE,
    "UNEXPECTED_RECORD": Category.UNEXPECTED_MESSAGE,
    "CCS_RECEIVED_EARLY": Category.UNEXPECTED_MESSAGE,
    "BAD_SIGNATURE": Category.BAD_SIGNATURE,
    "WRONG_SIGNATURE_TYPE": Category.WRONG_SIGNATURE_SCHEME,
    "PACKET_LENGTH_TOO_LONG": Category.RECORD_OVERFLOW,
    "ENCRYPTED_LENGTH_TOO_LONG": Category.RECORD_OVERFLOW,
    "DATA_LENGTH_TOO_LONG": Category.RECORD_OVERFLOW,
    "RECORD_TOO_LARGE": Category.RECORD_OVERFLOW,
    "UNSAFE_LEGACY_RENEGOTIATION_DISABLED": Category.NO_RENEGOTIATION_INFO,
    "NO_RENEGOTIATION": Category.RENEGOTIATION_ATTEMPT,
    "INAPPROPRIATE_FALLBACK": Category.DOWNGRADE,
    "EXCESSIVE_MESSAGE_SIZE": Category.RESOURCE_LIMIT,
}

_ALERT_FOR = {
    Category.NOT_TLS: 10, Category.BAD_RECORD_VERSION: 70, Category.OLD_TLS_VERSION: 70, Category.SSLV2: 70,
    Category.SSLV3: 70, Category.NO_SHARED_CIPHER: 40, Category.NO_SHARED_GROUP: 40, Category.NO_CERTIFICATE: 116,
    Category.BAD_MAC: 20, Category.UNEXPECTED_MESSAGE: 10, Category.BAD_SIGNATURE: 51, Category.RECORD_OVERFLOW: 22,
    Category.EXPIRED: 45, Category.NOT_YET_VALID: 45, Category.UNTRUSTED_CHAIN: 48, Category.PATH_TOO_LONG: 48,
    Category.CHAIN_SIGNATURE_INVALID: 42, Category.WRONG_EXTENDED_KEY_USAGE: 43, Category.WRONG_KEY_USAGE: 43,
    Category.CA_AS_LEAF: 42, Category.DOWNGRADE: 86, Category.DECODE_ERROR: 50, Category.WRONG_SIGNATURE_SCHEME: 47,
}

# Alert names OpenSSL reports for alerts it received ("TLSV1_ALERT_UNKNOWN_CA") -> description code.
_ALERT_CODES = {
    "UNEXPECTED_MESSAGE": 10, "BAD_RECORD_MAC": 20, "RECORD_OVERFLOW": 22, "HANDSHAKE_FAILURE": 40,
    "BAD_CERTIFICATE": 42, "UNSUPPORTED_CERTIFICATE": 43, "CERTIFICATE_REVOKED": 44, "CERTIFICATE_EXPIRED": 45,
    "CERTIFICATE_UNKNOWN": 46, "ILLEGAL_PARAMETER": 47, "UNKNOWN_CA": 48, "ACCESS_DENIED": 49, "DECODE_ERROR": 50,
    "DECRYPT_ERROR": 51, "PROTOCOL_VERSION": 70, "INSUFFICIENT_SECURITY": 71, "INTERNAL_ERROR": 80,
    "INAPPROPRIATE_FALLBACK": 86, "USER_CANCELLED": 90, "MISSING_EXTENSION": 109, "UNSUPPORTED_EXTENSION": 110,
    "UNRECOGNIZED_NAME": 112, "CERTIFICATE_REQUIRED": 116, "NO_APPLICATION_PROTOCOL": 120,
}

TLS_RECORD_TYPES = range(20, 25)  # change_cipher_spec .. heartbeat


def classify_first_bytes(data: bytes) -> Category | None:
    """What the first bytes of a connection say before any TLS parsing: garbage, SSLv2, SSLv3 or fine."""
    if not data:
        return None
    if data[0] & 0x80:
        return Category.SSLV2  # SSLv2 record header (2-byte length with the top bit set)
    if data[0] not in TLS_RECORD_TYPES:
        return Category.NOT_TLS
    if len(data) >= 11 and data[0] == 22 and data[1:3] == b"\x03\x00" and data[9:11] == b"\x03\x00":
        return Category.SSLV3  # an SSLv3 record carrying an SSLv3 ClientHello
    return None


def classify_error(error: ssl.SSLError) -> tuple[Category, str]:
    reason = error.reason or type(error).__name__
    if isinstance(error, ssl.SSLCertVerificationError):
        category = _VERIFY_CODES.get(error.verify_code, Category.UNTRUSTED_CHAIN)
        return category, f"certificate verify failed: {error.verify_message}"
    if isinstance(error, ssl.SSLEOFError):
        return Category.CONNECTION_RESET, "peer closed during the handshake"
    if reason.startswith(("TLSV1_ALERT_", "SSLV3_ALERT_", "TLSV13_ALERT_")):
        return Category.PEER_ALERT, reason.lower()
    return _REASONS.get(reason, Category.DECODE_ERROR), reason.lower()


def _alert_code(reason: str) -> int:
    for prefix in ("TLSV1_ALERT_", "SSLV3_ALERT_", "TLSV13_ALERT_"):
        if reason.startswith(prefix):
            return _ALERT_CODES.get(reason[len(prefix) :], 0)
    return 0


class _State(Enum):
    HANDSHAKE = auto()
    OPEN = auto()
    CLOSED = auto()


class StdlibEngine:
    def __init__(self, context: ssl.SSLContext, *, server_side: bool, verify_peer: bool) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(self._incoming, self._outgoing, server_side=server_side)
        self._server_side = server_side
        self._verify_peer = verify_peer
        self._state = _State.HANDSHAKE
        self._events: list[Event] = []
        self._seen_bytes = False
        if not server_side:
            self._step()

    def receive_data(self, data: bytes) -> None:
        if self._state is _State.CLOSED:
            return
        if not data:
            self._incoming.write_eof()
        else:
            if self._server_side and not self._seen_bytes:
                category = classify_first_bytes(data)
                if category is not None:
                    self._fail(category, "first bytes are not a TLS 1.x handshake record")
                    return
            self._seen_bytes = True
            self._incoming.write(data)
        self._step()

    def events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> bytes:
        return self._outgoing.read()

    def send_application_data(self, data: bytes) -> None:
        if self._state is not _State.OPEN:
            raise RuntimeError("TLS connection is not open")
        self._ssl.write(data)

    def close(self) -> None:
        if self._state is _State.OPEN:
            with contextlib.suppress(ssl.SSLWantReadError, ssl.SSLError):
                self._ssl.unwrap()  # queues close_notify; the peer's answer is not needed
        if self._state is not _State.CLOSED:
            self._state = _State.CLOSED
            self._events.append(Closed(clean=True))

    def _fail(self, category: Category, reason: str) -> None:
        self._state = _State.CLOSED
        self._events += [HandshakeFailed(_ALERT_FOR.get(category, 40), category, reason), Closed(clean=False)]

    def _step(self) -> None:
        if self._state is _State.HANDSHAKE:
            try:
                self._ssl.do_handshake()
            except ssl.SSLWantReadError:
                return
            except ssl.SSLError as error:
                category, reason = classify_error(error)
                if category is Category.PEER_ALERT:
                    self._events.append(AlertReceived(2, _alert_code(error.reason or "")))
                self._fail(category, reason)
                return
            self._state = _State.OPEN
            leaf = self._ssl.getpeercert(binary_form=True)
            cipher = self._ssl.cipher()
            self._events.append(
                HandshakeComplete(
                    version=self._ssl.version() or "unknown",
                    cipher_suite=cipher[0] if cipher else "unknown",
                    group="unknown",
                    peer_chain=(leaf,) if leaf else (),
                    peer_validated=self._verify_peer and bool(leaf),
                    server_name=None,
                )
            )
        if self._state is _State.OPEN:
            self._read_application_data()

    def _read_application_data(self) -> None:
        while True:
            try:
                data = self._ssl.read(READ_CHUNK)
            except ssl.SSLWantReadError:
                return
            except ssl.SSLZeroReturnError:
                self._state = _State.CLOSED
                self._events.append(Closed(clean=True))
                return
            except ssl.SSLError as error:
                self._state = _State.CLOSED
                if (error.reason or "").startswith(("TLSV1_ALERT_", "SSLV3_ALERT_")):
                    self._events.append(AlertReceived(2, _alert_code(error.reason or "")))
                self._events.append(Closed(clean=False))
                return
            if not data:  # `ssl` reports the peer's close_notify as an empty read
                self._state = _State.CLOSED
                self._events.append(Closed(clean=True))
                return
            self._events.append(ApplicationData(data))


def _load_identity(context: ssl.SSLContext, identity: Identity, directory: Path, label: str) -> None:
    # `ssl` loads keys only from files: a private temporary directory, deleted right after loading.
    cert_path, key_path = directory / f"{label}.pem", directory / f"{label}.key"
    cert_path.write_bytes(identity.cert_pem)
    key_path.write_bytes(identity.key_pem)
    context.load_cert_chain(cert_path, key_path)
    for index, alternate in enumerate(identity.alternates):
        # OpenSSL keeps one certificate per key type and picks per ClientHello, as our engine does.
        cert_path, key_path = directory / f"{label}-alt{index}.pem", directory / f"{label}-alt{index}.key"
        cert_path.write_bytes(alternate.cert_pem)
        key_path.write_bytes(alternate.key_pem)
        context.load_cert_chain(cert_path, key_path)


class StdlibFactory:
    name = "stdlib"

    def __init__(self, pki: IssuedPKI) -> None:
        ca_der = pki.ca_der
        self._plain: dict[str, ssl.SSLContext] = {}
        with tempfile.TemporaryDirectory(prefix="pinata-ssl-") as tmp:
            directory = Path(tmp)
            for label, identity in (("web", pki.web), ("server", pki.server)):
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.minimum_version = ssl.TLSVersion.TLSv1_2
                _load_identity(context, identity, directory, label)
                self._plain[label] = context
            self._mutual = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._mutual.minimum_version = ssl.TLSVersion.TLSv1_2
            _load_identity(self._mutual, pki.server, directory, "mutual")
            self._mutual.load_verify_locations(cadata=ca_der)
            self._mutual.verify_mode = ssl.CERT_REQUIRED
            self._client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            self._client.minimum_version = ssl.TLSVersion.TLSv1_2
            self._client.check_hostname = False  # we connect to an address; the vault checks the chain
            self._client.verify_mode = ssl.CERT_REQUIRED
            self._client.load_verify_locations(cadata=ca_der)
            _load_identity(self._client, pki.client, directory, "client")
        self._identities = {pki.web.cert_der: "web", pki.server.cert_der: "server"}

    def server(self, identity: Identity, *, require_client_cert: bool) -> StdlibEngine:
        if require_client_cert:
            return StdlibEngine(self._mutual, server_side=True, verify_peer=True)
        context = self._plain[self._identities[identity.cert_der]]
        return StdlibEngine(context, server_side=True, verify_peer=False)

    def client(self, identity: Identity) -> StdlibEngine:
        return StdlibEngine(self._client, server_side=False, verify_peer=True)
