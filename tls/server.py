"""The server engine: TLS 1.3 (RFC 8446) and TLS 1.2 ECDHE+AEAD (RFC 5246, 7627, 5746), strict by design.

States are explicit; each state accepts exactly the handshake messages listed in `_EXPECTED`, anything
else is unexpected_message. Its command-line peer is `python -m adapters.tls_cli server`.
"""

from __future__ import annotations

from enum import Enum, auto

from cryptography.hazmat.primitives.asymmetric import ec

from outcomes.category import Category
from tls import x509
from tls.config import ClientAuthMode, ServerConfig
from tls.constants import (
    DOWNGRADE_TLS12,
    HRR_RANDOM,
    TLS12,
    TLS13,
    TLS_EMPTY_RENEGOTIATION_INFO_SCSV,
    TLS_FALLBACK_SCSV,
    ContentType,
    ExtensionType,
    HandshakeType,
    NamedGroup,
)
from tls.errors import ProtocolError, illegal, unexpected
from tls.extensions import (
    Extensions,
    find,
    parse_client_shares,
    parse_client_versions,
    parse_point_formats,
    parse_renegotiation_info,
    parse_server_name,
    parse_u16_list16,
    serialize_server_share,
    serialize_u16_list16,
)
from tls.groups import KeyShare
from tls.handshake_common import (
    CLIENT_CV_CONTEXT,
    SERVER_CV_CONTEXT,
    HandshakeConnection,
    certificate_verify_content,
    check_finished,
    key_kind,
    keys12,
    refuse_version,
)
from tls.keyschedule import KeySchedule13, extended_master_secret, finished12
from tls.messages import (
    Certificate12,
    Certificate13,
    CertificateRequest12,
    CertificateRequest13,
    CertificateVerify,
    ClientHello,
    EncryptedExtensions,
    Finished,
    ServerHello,
    ServerKeyExchange,
    parse_certificate12,
    parse_certificate13,
    parse_certificate_verify,
    parse_client_hello,
    parse_client_key_exchange,
    parse_finished,
    serialize_certificate12,
    serialize_certificate13,
    serialize_certificate_request12,
    serialize_certificate_request13,
    serialize_certificate_verify,
    serialize_encrypted_extensions,
    serialize_finished,
    serialize_server_hello,
    serialize_server_key_exchange,
)
from tls.peer import validate_chain
from tls.record import Protection12, Protection13, Record
from tls.signatures import CERTIFICATE_SCHEMES, HANDSHAKE_SCHEMES_12, HANDSHAKE_SCHEMES_13, choose_scheme, sign, verify
from tls.suites import SUITES, SuiteInfo


class State(Enum):
    START = auto()
    WAIT_CLIENT_HELLO_2 = auto()
    WAIT_CERTIFICATE_13 = auto()
    WAIT_CERTIFICATE_VERIFY_13 = auto()
    WAIT_FINISHED_13 = auto()
    WAIT_CERTIFICATE_12 = auto()
    WAIT_CLIENT_KEY_EXCHANGE = auto()
    WAIT_CERTIFICATE_VERIFY_12 = auto()
    WAIT_CHANGE_CIPHER_SPEC = auto()
    WAIT_FINISHED_12 = auto()
    CONNECTED = auto()


_EXPECTED: dict[State, HandshakeType] = {
    State.START: HandshakeType.CLIENT_HELLO,
    State.WAIT_CLIENT_HELLO_2: HandshakeType.CLIENT_HELLO,
    State.WAIT_CERTIFICATE_13: HandshakeType.CERTIFICATE,
    State.WAIT_CERTIFICATE_VERIFY_13: HandshakeType.CERTIFICATE_VERIFY,
    State.WAIT_FINISHED_13: HandshakeType.FINISHED,
    State.WAIT_CERTIFICATE_12: HandshakeType.CERTIFICATE,
    State.WAIT_CLIENT_KEY_EXCHANGE: HandshakeType.CLIENT_KEY_EXCHANGE,
    State.WAIT_CERTIFICATE_VERIFY_12: HandshakeType.CERTIFICATE_VERIFY,
    State.WAIT_FINISHED_12: HandshakeType.FINISHED,
}



def _curve_group(key: object) -> int | None:
    """The named group of an ECDSA key (None for Ed25519 and RSA keys)."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {"secp256r1": NamedGroup.SECP256R1, "secp384r1": NamedGroup.SECP384R1,
                "secp521r1": NamedGroup.SECP521R1}.get(key.curve.name)
    return None


class ServerConnection(HandshakeConnection):
    def __init__(self, config: ServerConfig) -> None:
        super().__init__(config.limits, config.padding)
        self._config = config
        self.state = State.START
        self._client_hello: ClientHello | None = None
        self._client_hello_raw = b""
        self._scheme = 0
        self._server_name: str | None = None
        self._client_hs_secret = b""
        self._client_app_secret = b""
        self._early_skip = 0
        self._compat_ccs_sent = False
        # TLS 1.2 only
        self._key_share: KeyShare | None = None
        self._client_random = b""
        self._server_random = b""
        self._master = b""
        self._pending_write: Protection12 | None = None
        self._handlers = {
            State.START: self._on_client_hello,
            State.WAIT_CLIENT_HELLO_2: self._on_client_hello_2,
            State.WAIT_CERTIFICATE_13: self._on_certificate_13,
            State.WAIT_CERTIFICATE_VERIFY_13: self._on_certificate_verify_13,
            State.WAIT_FINISHED_13: self._on_finished_13,
            State.WAIT_CERTIFICATE_12: self._on_certificate_12,
            State.WAIT_CLIENT_KEY_EXCHANGE: self._on_client_key_exchange,
            State.WAIT_CERTIFICATE_VERIFY_12: self._on_certificate_verify_12,
            State.WAIT_FINISHED_12: self._on_finished_12,
        }

    # ---- dispatch -----------------------------------------------------------------------------------

    def _handle_message(self, msg_type: int, body: memoryview, raw: bytes) -> None:
        if self.state is State.CONNECTED:
            self._handle_post_handshake(msg_type, body)
            return
        expected = _EXPECTED.get(self.state)
        if expected is None or msg_type != expected:
            raise unexpected(f"handshake message {msg_type} in state {self.state.name}")
        if self.version == TLS12:
            self._messages12.append(raw)
        self._handlers[self.state](body, raw)

    def _handle_ccs(self, content: bytes | memoryview) -> None:
        if self.version != TLS12:
            super()._handle_ccs(content)
            return
        self._accept_ccs12(content, self.state, State.WAIT_CHANGE_CIPHER_SPEC)
        self.state = State.WAIT_FINISHED_12

    def _handle_record(self, record: Record) -> None:
        """After a HelloRetryRequest that refused 0-RTT we hold no keys yet, so the client's early data
        comes as records with outer type application_data: skip them until the second ClientHello."""
        if self._read is None and self._early_skip > 0 and record.content_type == ContentType.APPLICATION_DATA:
            self._skip_early_data(len(record.payload))
            return
        super()._handle_record(record)

    def _skip_early_data(self, length: int) -> None:
        """Count skipped early data against the limit: a client cannot make us discard records forever."""
        self._early_skip -= length
        if self._early_skip < 0:
            raise ProtocolError(Category.EARLY_DATA,
                                "more refused early data than the limit allows")

    def _decrypt_13(self, read: Protection13, record: Record) -> tuple[int, bytes] | None:
        """While refusing 0-RTT, records that fail under the handshake key are the client's early data:
        skip them (None), up to a limit, until one opens (RFC 8446 §4.2.10)."""
        if self._early_skip <= 0:
            return read.decrypt(record)
        try:
            opened = read.decrypt(record)
        except ProtocolError as err:
            if err.category is not Category.BAD_MAC:
                raise
            self._skip_early_data(len(record.payload))
            return None
        self._early_skip = 0
        return opened

    # ---- ClientHello --------------------------------------------------------------------------------

    def _choose_version(self, ch: ClientHello, versions_ext: bytes | None) -> int:
        ours = self._config.versions
        if versions_ext is not None:
            offered = parse_client_versions(versions_ext)
            real = [v for v in offered if (v & 0x0F0F) != 0x0A0A]  # ignore GREASE
            for version in (TLS13, TLS12):
                if version in real and version in ours:
                    return version
            raise refuse_version(max(real, default=ch.legacy_version))
        if ch.legacy_version >= TLS12 and TLS12 in ours:
            return TLS12
        raise refuse_version(ch.legacy_version)

    def _common_checks(self, ch: ClientHello, version: int) -> None:
        if ch.compression_methods != b"\x00":
            if version == TLS12 and b"\x00" in ch.compression_methods:
                raise ProtocolError(Category.COMPRESSION, "compression offered")
            raise ProtocolError(Category.COMPRESSION, "compression methods other than null only")
        if find(ch.extensions, ExtensionType.HEARTBEAT) is not None:
            raise ProtocolError(Category.HEARTBEAT,
                                "heartbeat extension refused")
        if TLS_FALLBACK_SCSV in ch.cipher_suites and version < max(self._config.versions):
            raise ProtocolError(Category.DOWNGRADE,
                                "TLS_FALLBACK_SCSV with a lower version than we support")
        for index, (ext_type, _) in enumerate(ch.extensions):
            if ext_type == ExtensionType.PRE_SHARED_KEY and index != len(ch.extensions) - 1:
                raise illegal("pre_shared_key is not the last extension")
        server_name = find(ch.extensions, ExtensionType.SERVER_NAME)
        self._server_name = parse_server_name(server_name) if server_name is not None else None
        signature_algorithms = find(ch.extensions, ExtensionType.SIGNATURE_ALGORITHMS)
        if signature_algorithms is None:
            raise ProtocolError(Category.MISSING_EXTENSION,
                                "no signature_algorithms")
        scheme = choose_scheme(self._config.key, parse_u16_list16(signature_algorithms, "signature_algorithms"),
                               version == TLS13, self._config.pss_key)
        if scheme is None:
            raise ProtocolError(Category.NO_SHARED_SIGNATURE_ALGORITHM, "no signature scheme for our key")
        self._scheme = scheme

    def _choose_suite(self, ch: ClientHello, version: int) -> SuiteInfo:
        offered = set(ch.cipher_suites)
        kind = key_kind(self._config.key)
        for code in self._config.suites:
            info = SUITES.get(code)
            if info is None or info.version != version or code not in offered:
                continue
            if version == TLS12 and info.auth != kind:
                continue
            return info
        raise ProtocolError(Category.NO_SHARED_CIPHER, "no cipher suite in common")

    def _client_groups(self, ch: ClientHello, required: bool) -> tuple[int, ...]:
        groups = find(ch.extensions, ExtensionType.SUPPORTED_GROUPS)
        if groups is None:
            if required:
                raise ProtocolError(Category.MISSING_EXTENSION,
                                    "no supported_groups")
            return (NamedGroup.SECP256R1,)
        return parse_u16_list16(groups, "supported_groups")

    def _on_client_hello(self, body: memoryview, raw: bytes) -> None:
        ch = parse_client_hello(body)
        version = self._choose_version(ch, find(ch.extensions, ExtensionType.SUPPORTED_VERSIONS))
        self._common_checks(ch, version)
        self.version = version
        self._client_hello = ch
        self._client_hello_raw = raw
        self._transcript.add(raw)
        if version == TLS13:
            self._client_hello_13(ch, retry=False)
        else:
            self._client_hello_12(ch)

    # ---- TLS 1.3 ------------------------------------------------------------------------------------

    def _client_hello_13(self, ch: ClientHello, retry: bool) -> None:
        suite = self._choose_suite(ch, TLS13)
        if self._suite is not None and suite.suite != self._suite.suite:
            raise illegal("second ClientHello changed the cipher suite")
        self._suite = suite
        client_groups = self._client_groups(ch, required=True)
        shares_ext = find(ch.extensions, ExtensionType.KEY_SHARE)
        if shares_ext is None:
            raise ProtocolError(Category.MISSING_EXTENSION, "no key_share")
        shares = parse_client_shares(shares_ext)
        for group, _ in shares:
            if group not in client_groups:
                raise illegal(f"key_share for group {group} not in supported_groups")
        share_of = dict(shares)
        if retry:
            if len(shares) != 1 or shares[0][0] != self._group:
                raise illegal("second ClientHello does not carry exactly the requested key share")
            if find(ch.extensions, ExtensionType.EARLY_DATA) is not None:
                raise illegal("early_data after HelloRetryRequest")
        if find(ch.extensions, ExtensionType.EARLY_DATA) is not None:
            # RFC 8446 §4.2.10: 0-RTT is refused; skip what the client sends under its early key.
            self._early_skip = self._limits.max_early_data_skip
        chosen = next((g for g in self._config.groups if g in share_of), None)
        if chosen is None:
            retry_group = next((g for g in self._config.groups if g in client_groups), None)
            if retry_group is None:
                raise ProtocolError(Category.NO_SHARED_GROUP, "no key exchange group in common")
            self._send_hello_retry(ch, suite, retry_group)
            return
        self._group = chosen
        self._send_server_flight_13(ch, suite, share_of[chosen])

    def _send_hello_retry(self, ch: ClientHello, suite: SuiteInfo, group: int) -> None:
        self._group = group
        hrr = ServerHello(TLS12, HRR_RANDOM, ch.session_id, suite.suite, 0,
                          ((ExtensionType.SUPPORTED_VERSIONS, TLS13.to_bytes(2, "big")),
                           (ExtensionType.KEY_SHARE, group.to_bytes(2, "big"))))
        self._transcript.restart_after_hrr(suite.hash_name)
        self._queue_handshake(HandshakeType.SERVER_HELLO, serialize_server_hello(hrr))
        self._flush_handshake()
        if ch.session_id:
            self._send_ccs()
            self._compat_ccs_sent = True
        self.state = State.WAIT_CLIENT_HELLO_2

    def _on_client_hello_2(self, body: memoryview, raw: bytes) -> None:
        ch = parse_client_hello(body)
        first = self._client_hello
        assert first is not None
        self._early_skip = 0  # the client's early data ends where its second ClientHello begins
        if ch.session_id != first.session_id or ch.random != first.random:
            raise illegal("second ClientHello differs from the first")
        version = self._choose_version(ch, find(ch.extensions, ExtensionType.SUPPORTED_VERSIONS))
        if version != TLS13:
            raise illegal("second ClientHello changed the version")
        self._common_checks(ch, version)
        self._transcript.add(raw)
        self._client_hello = ch
        self._client_hello_13(ch, retry=True)

    def _send_server_flight_13(self, ch: ClientHello, suite: SuiteInfo, peer_share: bytes) -> None:
        config = self._config
        share = KeyShare(self._group, config.random(KeyShare.random_length(self._group)))
        shared = share.exchange(peer_share)
        sh = ServerHello(TLS12, config.random(32), ch.session_id, suite.suite, 0,
                         ((ExtensionType.SUPPORTED_VERSIONS, TLS13.to_bytes(2, "big")),
                          (ExtensionType.KEY_SHARE, serialize_server_share(self._group, share.public))))
        self._reader.expected_version = TLS12
        if self.state is State.START:
            self._transcript.set_hash(suite.hash_name)
        self._queue_handshake(HandshakeType.SERVER_HELLO, serialize_server_hello(sh))
        ks = self._ks = KeySchedule13(suite.hash_name)
        ks.set_shared_secret(shared)
        client_hs, server_hs = ks.handshake_traffic(self._transcript.digest())
        self._flush_handshake()
        if ch.session_id and not self._compat_ccs_sent:
            self._send_ccs()
            self._compat_ccs_sent = True
        self._set_write_13(server_hs)
        self._queue_handshake(HandshakeType.ENCRYPTED_EXTENSIONS, serialize_encrypted_extensions(
            EncryptedExtensions(((ExtensionType.SERVER_NAME, b""),) if self._server_name else ())))
        auth = config.client_auth
        if auth is not None:
            request = CertificateRequest13(b"", (
                (ExtensionType.SIGNATURE_ALGORITHMS, serialize_u16_list16(HANDSHAKE_SCHEMES_13)),
                (ExtensionType.SIGNATURE_ALGORITHMS_CERT, serialize_u16_list16(CERTIFICATE_SCHEMES))))
            self._queue_handshake(HandshakeType.CERTIFICATE_REQUEST, serialize_certificate_request13(request))
        certificate = Certificate13(b"", tuple((der, ()) for der in config.chain))
        self._queue_handshake(HandshakeType.CERTIFICATE, serialize_certificate13(certificate))
        content = certificate_verify_content(SERVER_CV_CONTEXT, self._transcript.digest())
        signature = sign(config.key, self._scheme, content)
        self._queue_handshake(HandshakeType.CERTIFICATE_VERIFY,
                              serialize_certificate_verify(CertificateVerify(self._scheme, signature)))
        verify_data = ks.finished(server_hs, self._transcript.digest())
        self._queue_handshake(HandshakeType.FINISHED, serialize_finished(Finished(verify_data)))
        client_app, server_app = ks.application_traffic(self._transcript.digest())
        self._set_write_13(server_app)
        self._client_hs_secret = client_hs
        self._client_app_secret = client_app
        self._set_read_13(client_hs)
        self.state = State.WAIT_CERTIFICATE_13 if auth is not None else State.WAIT_FINISHED_13

    def _on_certificate_13(self, body: memoryview, raw: bytes) -> None:
        message = parse_certificate13(body, self._limits.max_chain_length)
        if message.context:
            raise illegal("client Certificate with a request context we did not send")
        self._transcript.add(raw)
        if self._accept_client_chain(message.chain):
            self.state = State.WAIT_CERTIFICATE_VERIFY_13
        else:
            self.state = State.WAIT_FINISHED_13

    def _accept_client_chain(self, chain: tuple[bytes, ...]) -> bool:
        """Validate a client chain; False when the client sent none and that is allowed."""
        auth = self._config.client_auth
        assert auth is not None
        if not chain:
            if auth.mode is ClientAuthMode.REQUIRED:
                raise ProtocolError(Category.NO_CERTIFICATE, "client sent no certificate")
            return False
        self._peer_key = validate_chain(self._config.validator, chain, anchors=auth.anchors,
                                        purpose=x509.Purpose.CLIENT_AUTH, name=None, now=self._config.time())
        self._peer_chain = chain
        self._peer_validated = True
        return True

    def _on_certificate_verify_13(self, body: memoryview, raw: bytes) -> None:
        message = parse_certificate_verify(body)
        content = certificate_verify_content(CLIENT_CV_CONTEXT, self._transcript.digest())
        verify(self._peer_key, message.scheme, message.signature, content, HANDSHAKE_SCHEMES_13)
        self._transcript.add(raw)
        self.state = State.WAIT_FINISHED_13

    def _on_finished_13(self, body: memoryview, raw: bytes) -> None:
        assert self._ks is not None
        assert self._suite is not None
        message = parse_finished(body, self._suite.hash_length)
        check_finished(self._ks.finished(self._client_hs_secret, self._transcript.digest()), message.verify_data,
                       "client")
        self._transcript.add(raw)
        self._early_skip = 0
        self._set_read_13(self._client_app_secret)
        self._complete()

    def _complete(self) -> None:
        self.state = State.CONNECTED
        self._report_complete(self._server_name)

    # ---- TLS 1.2 ------------------------------------------------------------------------------------

    def _client_hello_12(self, ch: ClientHello) -> None:
        config = self._config
        suite = self._choose_suite(ch, TLS12)
        self._suite = suite
        if find(ch.extensions, ExtensionType.EXTENDED_MASTER_SECRET) is None:
            raise ProtocolError(Category.NO_EXTENDED_MASTER_SECRET, "client does not offer extended master secret")
        renegotiation_info = find(ch.extensions, ExtensionType.RENEGOTIATION_INFO)
        if renegotiation_info is not None:
            if parse_renegotiation_info(renegotiation_info):
                raise ProtocolError(Category.NO_RENEGOTIATION_INFO, "non-empty renegotiation_info in a new handshake")
        elif TLS_EMPTY_RENEGOTIATION_INFO_SCSV not in ch.cipher_suites:
            raise ProtocolError(Category.NO_RENEGOTIATION_INFO, "client does not indicate secure renegotiation")
        point_formats = find(ch.extensions, ExtensionType.EC_POINT_FORMATS)
        if point_formats is not None and 0 not in parse_point_formats(point_formats):
            raise illegal("client does not accept uncompressed points")
        client_groups = self._client_groups(ch, required=False)
        group = next((g for g in config.groups if g in client_groups), None)
        if group is None:
            raise ProtocolError(Category.NO_SHARED_GROUP, "no ECDHE group in common")
        certificate_curve = _curve_group(config.key)
        if certificate_curve is not None and certificate_curve not in client_groups:
            # RFC 8422 §5.1: in TLS 1.2 the client's groups also bound the curve of an ECDSA certificate.
            raise ProtocolError(Category.NO_SHARED_GROUP, "client does not accept our certificate's curve")
        self._group = group
        self._reader.expected_version = TLS12
        self._transcript.set_hash(suite.hash_name)
        self._messages12 = [self._client_hello_raw]
        self._client_random = ch.random
        random = config.random(32)
        if TLS13 in config.versions:
            random = random[:24] + DOWNGRADE_TLS12
        self._server_random = random
        extensions: Extensions = ((ExtensionType.RENEGOTIATION_INFO, b"\x00"),
                                  (ExtensionType.EXTENDED_MASTER_SECRET, b""))
        if point_formats is not None:
            extensions += ((ExtensionType.EC_POINT_FORMATS, b"\x01\x00"),)
        sh = ServerHello(TLS12, random, b"", suite.suite, 0, extensions)
        self._queue_handshake(HandshakeType.SERVER_HELLO, serialize_server_hello(sh))
        self._queue_handshake(HandshakeType.CERTIFICATE, serialize_certificate12(Certificate12(config.chain)))
        share = self._key_share = KeyShare(group, config.random(KeyShare.random_length(group)))
        unsigned = ServerKeyExchange(group, share.public, self._scheme, b"")
        signature = sign(config.key, self._scheme, ch.random + random + unsigned.params)
        ske = ServerKeyExchange(group, share.public, self._scheme, signature)
        self._queue_handshake(HandshakeType.SERVER_KEY_EXCHANGE, serialize_server_key_exchange(ske))
        if config.client_auth is not None:
            request = CertificateRequest12(b"\x40\x01", HANDSHAKE_SCHEMES_12, b"")
            self._queue_handshake(HandshakeType.CERTIFICATE_REQUEST, serialize_certificate_request12(request))
        self._queue_handshake(HandshakeType.SERVER_HELLO_DONE, b"")
        self._messages12 += self._hs_out[:]
        self._flush_handshake()
        self.state = State.WAIT_CERTIFICATE_12 if config.client_auth is not None else State.WAIT_CLIENT_KEY_EXCHANGE

    def _on_certificate_12(self, body: memoryview, raw: bytes) -> None:
        message = parse_certificate12(body, self._limits.max_chain_length)
        self._transcript.add(raw)
        self._accept_client_chain(message.chain)
        self.state = State.WAIT_CLIENT_KEY_EXCHANGE

    def _on_client_key_exchange(self, body: memoryview, raw: bytes) -> None:
        assert self._key_share is not None
        assert self._suite is not None
        message = parse_client_key_exchange(body)
        premaster = self._key_share.exchange(message.public)
        self._transcript.add(raw)
        self._master = extended_master_secret(self._suite.hash_name, premaster, self._transcript.digest())
        self._pending_read, self._pending_write = keys12(self._suite, self._master, self._client_random,
                                                         self._server_random)
        self.state = State.WAIT_CERTIFICATE_VERIFY_12 if self._peer_chain else State.WAIT_CHANGE_CIPHER_SPEC

    def _on_certificate_verify_12(self, body: memoryview, raw: bytes) -> None:
        message = parse_certificate_verify(body)
        signed = b"".join(self._messages12[:-1])
        verify(self._peer_key, message.scheme, message.signature, signed, HANDSHAKE_SCHEMES_12, curve_bound=False)
        self._transcript.add(raw)
        self.state = State.WAIT_CHANGE_CIPHER_SPEC

    def _on_finished_12(self, body: memoryview, raw: bytes) -> None:
        assert self._suite is not None
        message = parse_finished(body, 12)
        expected = finished12(self._suite.hash_name, self._master, b"client finished", self._transcript.digest())
        check_finished(expected, message.verify_data, "client")
        self._transcript.add(raw)
        verify_data = finished12(self._suite.hash_name, self._master, b"server finished", self._transcript.digest())
        self._send_ccs()
        self._write = self._pending_write
        self._queue_handshake(HandshakeType.FINISHED, verify_data)
        self._flush_handshake()
        self._complete()

