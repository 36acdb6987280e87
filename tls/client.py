"""The client engine: TLS 1.3 with HelloRetryRequest and TLS 1.2 ECDHE+AEAD, downgrade-protected.

The ClientHello is produced at construction (read it with `data_to_send()`). States are explicit; each
accepts only the messages listed for it in `_EXPECTED`. `python -m tls.client` runs `adapters.tls_cli.client_main`.
"""

from __future__ import annotations

from enum import Enum, auto

from cryptography.hazmat.primitives.asymmetric import rsa

from outcomes.category import Category
from tls import x509
from tls.config import ClientConfig, NoValidation
from tls.constants import (
    DOWNGRADE_TLS11,
    DOWNGRADE_TLS12,
    HRR_RANDOM,
    TLS12,
    TLS13,
    ContentType,
    ExtensionType,
    HandshakeType,
)
from tls.errors import ProtocolError, illegal, unexpected
from tls.extensions import (
    Extensions,
    find,
    parse_cookie,
    parse_hrr_group,
    parse_renegotiation_info,
    parse_selected_version,
    parse_server_share,
    parse_u16_list16,
    serialize_client_shares,
    serialize_client_versions,
    serialize_server_name,
    serialize_u16_list16,
)
from tls.groups import KeyShare
from tls.handshake_common import (
    CLIENT_CV_CONTEXT,
    SERVER_CV_CONTEXT,
    HandshakeConnection,
    certificate_verify_content,
    check_finished,
    keys12,
    refuse_version,
)
from tls.keyschedule import KeySchedule13, extended_master_secret, finished12
from tls.messages import (
    Certificate12,
    Certificate13,
    CertificateVerify,
    ClientHello,
    ClientKeyExchange,
    Finished,
    ServerHello,
    parse_certificate12,
    parse_certificate13,
    parse_certificate_request12,
    parse_certificate_request13,
    parse_certificate_verify,
    parse_empty,
    parse_encrypted_extensions,
    parse_finished,
    parse_new_session_ticket,
    parse_server_hello,
    parse_server_key_exchange,
    serialize_certificate12,
    serialize_certificate13,
    serialize_certificate_verify,
    serialize_client_hello,
    serialize_client_key_exchange,
    serialize_finished,
)
from tls.peer import leaf_public_key, validate_chain
from tls.record import plaintext_record
from tls.signatures import (
    CERTIFICATE_SCHEMES,
    HANDSHAKE_SCHEMES_12,
    HANDSHAKE_SCHEMES_13,
    choose_scheme,
    offered_schemes,
    sign,
    verify,
)
from tls.suites import SUITES, SuiteInfo


class State(Enum):
    WAIT_SERVER_HELLO = auto()
    WAIT_SERVER_HELLO_2 = auto()
    WAIT_ENCRYPTED_EXTENSIONS = auto()
    WAIT_CERTIFICATE_OR_REQUEST = auto()
    WAIT_CERTIFICATE_13 = auto()
    WAIT_CERTIFICATE_VERIFY_13 = auto()
    WAIT_FINISHED_13 = auto()
    WAIT_CERTIFICATE_12 = auto()
    WAIT_SERVER_KEY_EXCHANGE = auto()
    WAIT_REQUEST_OR_DONE = auto()
    WAIT_SERVER_HELLO_DONE = auto()
    WAIT_CHANGE_CIPHER_SPEC = auto()
    WAIT_FINISHED_12 = auto()
    CONNECTED = auto()


H = HandshakeType
_EXPECTED: dict[State, frozenset[int]] = {
    State.WAIT_SERVER_HELLO: frozenset({H.SERVER_HELLO}),
    State.WAIT_SERVER_HELLO_2: frozenset({H.SERVER_HELLO}),
    State.WAIT_ENCRYPTED_EXTENSIONS: frozenset({H.ENCRYPTED_EXTENSIONS}),
    State.WAIT_CERTIFICATE_OR_REQUEST: frozenset({H.CERTIFICATE, H.CERTIFICATE_REQUEST}),
    State.WAIT_CERTIFICATE_13: frozenset({H.CERTIFICATE}),
    State.WAIT_CERTIFICATE_VERIFY_13: frozenset({H.CERTIFICATE_VERIFY}),
    State.WAIT_FINISHED_13: frozenset({H.FINISHED}),
    State.WAIT_CERTIFICATE_12: frozenset({H.CERTIFICATE}),
    State.WAIT_SERVER_KEY_EXCHANGE: frozenset({H.SERVER_KEY_EXCHANGE}),
    State.WAIT_REQUEST_OR_DONE: frozenset({H.CERTIFICATE_REQUEST, H.SERVER_HELLO_DONE}),
    State.WAIT_SERVER_HELLO_DONE: frozenset({H.SERVER_HELLO_DONE}),
    State.WAIT_FINISHED_12: frozenset({H.FINISHED}),
}

_NOT_IN_ENCRYPTED_EXTENSIONS = frozenset({
    ExtensionType.KEY_SHARE, ExtensionType.SUPPORTED_VERSIONS, ExtensionType.PRE_SHARED_KEY,
    ExtensionType.SIGNATURE_ALGORITHMS, ExtensionType.SIGNATURE_ALGORITHMS_CERT, ExtensionType.COOKIE,
    ExtensionType.PSK_KEY_EXCHANGE_MODES,
    ExtensionType.EXTENDED_MASTER_SECRET, ExtensionType.RENEGOTIATION_INFO, ExtensionType.EC_POINT_FORMATS,
})


def _is_dns_name(name: str) -> bool:
    return any(c.isalpha() for c in name) and ":" not in name


class ClientConnection(HandshakeConnection):
    def __init__(self, config: ClientConfig) -> None:
        super().__init__(config.limits, config.padding)
        self._config = config
        self.state = State.WAIT_SERVER_HELLO
        self._shares: dict[int, KeyShare] = {}
        self._client_hs_secret = b""
        self._server_hs_secret = b""
        self._certificate_request: tuple[bytes, tuple[int, ...]] | None = None
        self._compat_ccs_sent = False
        self._hrr_suite: SuiteInfo | None = None
        self._server_random = b""
        self._master = b""
        self._group12_share: KeyShare | None = None
        self._server_public = b""
        self._handlers = {  # which message types each state accepts is in _EXPECTED
            H.SERVER_HELLO: self._on_server_hello,
            H.ENCRYPTED_EXTENSIONS: self._on_encrypted_extensions,
            H.CERTIFICATE_REQUEST: self._on_certificate_request,
            H.CERTIFICATE: self._on_certificate,
            H.CERTIFICATE_VERIFY: self._on_certificate_verify,
            H.SERVER_KEY_EXCHANGE: self._on_server_key_exchange,
            H.SERVER_HELLO_DONE: self._on_server_hello_done,
            H.FINISHED: self._on_finished,
        }
        for group in config.key_share_groups:
            self._shares[group] = KeyShare(group, config.random(KeyShare.random_length(group)))
        tls13 = TLS13 in config.versions
        self._random = config.random(32)
        self._session_id = config.random(32) if tls13 else b""
        self._client_hello = ClientHello(TLS12, self._random, self._session_id,
                                         tuple(s for s in config.suites if SUITES[s].version in config.versions),
                                         b"\x00", self._hello_extensions(None, b""))
        self._offered = {t for t, _ in self._client_hello.extensions}
        raw = self._queue_handshake(H.CLIENT_HELLO, serialize_client_hello(self._client_hello))
        self._hs_out = []
        self._messages12 = [raw]
        self._out.append(plaintext_record(ContentType.HANDSHAKE, raw, version=0x0301))

    def _hello_extensions(self, only_share: int | None, cookie: bytes) -> Extensions:
        config = self._config
        extensions: list[tuple[int, bytes]] = []
        if config.server_name is not None and _is_dns_name(config.server_name):
            extensions.append((ExtensionType.SERVER_NAME, serialize_server_name(config.server_name)))
        extensions.append((ExtensionType.SUPPORTED_GROUPS, serialize_u16_list16(config.groups)))
        if TLS12 in config.versions:
            extensions += [(ExtensionType.EC_POINT_FORMATS, b"\x01\x00"),
                           (ExtensionType.EXTENDED_MASTER_SECRET, b""),
                           (ExtensionType.RENEGOTIATION_INFO, b"\x00")]
        extensions.append((ExtensionType.SIGNATURE_ALGORITHMS,
                           serialize_u16_list16(offered_schemes(TLS12 in config.versions))))
        extensions.append((ExtensionType.SIGNATURE_ALGORITHMS_CERT, serialize_u16_list16(CERTIFICATE_SCHEMES)))
        if TLS13 in config.versions:
            versions = [v for v in (TLS13, TLS12) if v in config.versions]
            extensions.append((ExtensionType.SUPPORTED_VERSIONS, serialize_client_versions(versions)))
            shares = [(g, s.public) for g, s in self._shares.items() if only_share is None or g == only_share]
            extensions.append((ExtensionType.KEY_SHARE, serialize_client_shares(shares)))
            if cookie:
                extensions.append((ExtensionType.COOKIE, len(cookie).to_bytes(2, "big") + cookie))
        return tuple(extensions)

    # ---- dispatch -----------------------------------------------------------------------------------

    def _handle_message(self, msg_type: int, body: memoryview, raw: bytes) -> None:
        if self.state is State.CONNECTED:
            self._handle_post_handshake(msg_type, body)
            return
        if msg_type not in _EXPECTED.get(self.state, frozenset()):
            raise unexpected(f"handshake message {msg_type} in state {self.state.name}")
        if self.version == TLS12:
            self._messages12.append(raw)
        self._handlers[HandshakeType(msg_type)](body, raw)

    def _handle_other_post_handshake(self, msg_type: int, body: memoryview) -> None:
        if self.version == TLS13 and msg_type == H.NEW_SESSION_TICKET:
            parse_new_session_ticket(body)  # we do not resume; a well-formed ticket is dropped
            return
        raise unexpected(f"handshake message {msg_type} after the handshake")

    def _handle_ccs(self, content: bytes | memoryview) -> None:
        if self.version != TLS12:
            super()._handle_ccs(content)
            return
        self._accept_ccs12(content, self.state, State.WAIT_CHANGE_CIPHER_SPEC)
        self.state = State.WAIT_FINISHED_12

    # ---- ServerHello / HelloRetryRequest ------------------------------------------------------------

    def _check_offered(self, extensions: Extensions, where: str) -> None:
        for ext_type, _ in extensions:
            if ext_type not in self._offered and ext_type != ExtensionType.COOKIE:
                raise ProtocolError(Category.UNSOLICITED_EXTENSION,
                                    f"{where}: extension {ext_type} we did not offer")

    def _offered_suite(self, code: int, version: int) -> SuiteInfo:
        info = SUITES.get(code)
        if info is None or info.version != version or code not in self._client_hello.cipher_suites:
            raise illegal(f"server chose cipher suite {code:#06x} we did not offer")
        return info

    def _on_server_hello(self, body: memoryview, raw: bytes) -> None:
        sh = parse_server_hello(body)
        self._check_offered(sh.extensions, "ServerHello")
        if sh.compression_method != 0:
            raise ProtocolError(Category.COMPRESSION, "server chose compression")
        selected = find(sh.extensions, ExtensionType.SUPPORTED_VERSIONS)
        if selected is not None:
            version = parse_selected_version(selected)
            if sh.legacy_version != TLS12:
                raise illegal(f"TLS 1.3 ServerHello with legacy_version {sh.legacy_version:#06x}")
            if version != TLS13 or TLS13 not in self._config.versions:
                raise illegal(f"server selected version {version:#06x} through supported_versions")
        elif sh.legacy_version == TLS12 and TLS12 in self._config.versions:
            version = TLS12
        elif sh.legacy_version <= TLS12:
            # Below 1.2, or 1.2 when we offered only 1.3: no version in common (RFC 8446 §4.1.3).
            raise refuse_version(sh.legacy_version)
        else:
            raise illegal(f"server chose version {sh.legacy_version:#06x} without supported_versions")
        if sh.random == HRR_RANDOM:
            if version != TLS13 or self.state is not State.WAIT_SERVER_HELLO:
                raise unexpected("HelloRetryRequest where none may come")
            self._on_hello_retry(sh, raw)
            return
        if self.state is State.WAIT_SERVER_HELLO_2 and version != TLS13:
            raise illegal("version changed after HelloRetryRequest")
        self.version = version
        self._reader.expected_version = TLS12
        self._server_random = sh.random
        suite = self._suite = self._offered_suite(sh.cipher_suite, version)
        if version == TLS13:
            self._server_hello_13(sh, suite, raw)
        else:
            self._server_hello_12(sh, suite, raw)

    def _on_hello_retry(self, hrr: ServerHello, raw: bytes) -> None:
        suite = self._offered_suite(hrr.cipher_suite, TLS13)
        if hrr.session_id != self._session_id:
            raise illegal("HelloRetryRequest does not echo our session id")
        group_ext = find(hrr.extensions, ExtensionType.KEY_SHARE)
        cookie_ext = find(hrr.extensions, ExtensionType.COOKIE)
        cookie = parse_cookie(cookie_ext) if cookie_ext is not None else b""
        if group_ext is None and not cookie:
            raise illegal("HelloRetryRequest that would change nothing")
        shares = self._shares
        if group_ext is not None:
            group = parse_hrr_group(group_ext)
            if group not in self._config.groups or group in shares:
                raise illegal(f"HelloRetryRequest for group {group}")
            shares[group] = KeyShare(group, self._config.random(KeyShare.random_length(group)))
            only = group
        else:
            only = next(iter(shares))
        self._shares = {only: shares[only]}
        self._hrr_suite = suite
        self._transcript.restart_after_hrr(suite.hash_name)
        self._transcript.add(raw)
        ch = ClientHello(TLS12, self._random, self._session_id, self._client_hello.cipher_suites, b"\x00",
                         self._hello_extensions(only, cookie))
        self._client_hello = ch
        self._offered = {t for t, _ in ch.extensions}
        self._send_ccs()
        self._compat_ccs_sent = True
        self._queue_handshake(H.CLIENT_HELLO, serialize_client_hello(ch))
        self._flush_handshake()
        self.version = TLS13
        self.state = State.WAIT_SERVER_HELLO_2

    def _server_hello_13(self, sh: ServerHello, suite: SuiteInfo, raw: bytes) -> None:
        if sh.session_id != self._session_id:
            raise illegal("ServerHello does not echo our session id")
        if self._hrr_suite is not None and suite.suite != self._hrr_suite.suite:
            raise illegal("ServerHello suite differs from the HelloRetryRequest's")
        share_ext = find(sh.extensions, ExtensionType.KEY_SHARE)
        if share_ext is None:
            raise ProtocolError(Category.MISSING_EXTENSION,
                                "ServerHello without key_share")
        group, public = parse_server_share(share_ext)
        share = self._shares.get(group)
        if share is None:
            raise illegal(f"server key share for group {group} we did not send")
        self._group = group
        shared = share.exchange(public)
        if self._hrr_suite is None:
            self._transcript.set_hash(suite.hash_name)
        self._transcript.add(raw)
        ks = self._ks = KeySchedule13(suite.hash_name)
        ks.set_shared_secret(shared)
        self._client_hs_secret, self._server_hs_secret = ks.handshake_traffic(self._transcript.digest())
        self._set_read_13(self._server_hs_secret)
        self.state = State.WAIT_ENCRYPTED_EXTENSIONS

    def _on_encrypted_extensions(self, body: memoryview, raw: bytes) -> None:
        message = parse_encrypted_extensions(body)
        for ext_type, _ in message.extensions:
            if ext_type in _NOT_IN_ENCRYPTED_EXTENSIONS:
                raise illegal(f"extension {ext_type} does not belong in EncryptedExtensions")
        self._check_offered(message.extensions, "EncryptedExtensions")
        self._transcript.add(raw)
        self.state = State.WAIT_CERTIFICATE_OR_REQUEST

    def _on_certificate_request(self, body: memoryview, raw: bytes) -> None:
        if self.version == TLS13:
            request = parse_certificate_request13(body)
            if request.context:
                # RFC 8446 §4.3.2: the context is for post-handshake authentication only, which we never offer.
                raise illegal("CertificateRequest in the handshake with a non-empty request context")
            algorithms = find(request.extensions, ExtensionType.SIGNATURE_ALGORITHMS)
            if algorithms is None:
                raise ProtocolError(Category.MISSING_EXTENSION,
                                    "CertificateRequest without signature_algorithms")
            self._certificate_request = (request.context,
                                         parse_u16_list16(algorithms, "signature_algorithms"))
            self._transcript.add(raw)
            self.state = State.WAIT_CERTIFICATE_13
        else:
            request12 = parse_certificate_request12(body)
            self._certificate_request = (b"", request12.signature_algorithms)
            self._transcript.add(raw)
            self.state = State.WAIT_SERVER_HELLO_DONE

    def _on_certificate(self, body: memoryview, raw: bytes) -> None:
        limit = self._limits.max_chain_length
        if self.version == TLS13:
            message = parse_certificate13(body, limit)
            if message.context:
                raise illegal("server Certificate with a request context")
            chain = message.chain
        else:
            chain = parse_certificate12(body, limit).chain
        if not chain:
            raise ProtocolError(Category.NO_SERVER_CERTIFICATE, "server sent no certificate")
        config = self._config
        if not isinstance(config.anchors, NoValidation):
            self._peer_key = validate_chain(config.validator, chain, anchors=config.anchors,
                                            purpose=x509.Purpose.SERVER_AUTH, name=config.server_name,
                                            now=config.time())
            self._peer_validated = True
        else:
            self._peer_key = leaf_public_key(chain[0])
        self._peer_chain = chain
        self._transcript.add(raw)
        self.state = State.WAIT_CERTIFICATE_VERIFY_13 if self.version == TLS13 else State.WAIT_SERVER_KEY_EXCHANGE

    def _on_certificate_verify(self, body: memoryview, raw: bytes) -> None:
        message = parse_certificate_verify(body)
        content = certificate_verify_content(SERVER_CV_CONTEXT, self._transcript.digest())
        verify(self._peer_key, message.scheme, message.signature, content, HANDSHAKE_SCHEMES_13)
        self._transcript.add(raw)
        self.state = State.WAIT_FINISHED_13

    def _on_finished(self, body: memoryview, raw: bytes) -> None:
        if self.version == TLS13:
            self._on_finished_13(body, raw)
        else:
            self._on_finished_12(body, raw)

    def _on_finished_13(self, body: memoryview, raw: bytes) -> None:
        assert self._ks is not None
        assert self._suite is not None
        ks = self._ks
        message = parse_finished(body, self._suite.hash_length)
        check_finished(ks.finished(self._server_hs_secret, self._transcript.digest()), message.verify_data, "server")
        self._transcript.add(raw)
        client_app, server_app = ks.application_traffic(self._transcript.digest())
        if not self._compat_ccs_sent:
            self._send_ccs()
            self._compat_ccs_sent = True
        self._set_write_13(self._client_hs_secret)
        if self._certificate_request is not None:
            self._send_client_certificate_13(*self._certificate_request)
        verify_data = ks.finished(self._client_hs_secret, self._transcript.digest())
        self._queue_handshake(H.FINISHED, serialize_finished(Finished(verify_data)))
        self._set_write_13(client_app)
        self._set_read_13(server_app)
        self._complete()

    def _send_client_certificate_13(self, context: bytes, algorithms: tuple[int, ...]) -> None:
        config = self._config
        scheme = (choose_scheme(config.key, algorithms, True, config.pss_key)
                  if config.key is not None and config.chain else None)
        chain = config.chain if scheme is not None else ()
        certificate = Certificate13(context, tuple((der, ()) for der in chain))
        self._queue_handshake(H.CERTIFICATE, serialize_certificate13(certificate))
        if scheme is not None and config.key is not None:
            content = certificate_verify_content(CLIENT_CV_CONTEXT, self._transcript.digest())
            signature = sign(config.key, scheme, content)
            self._queue_handshake(H.CERTIFICATE_VERIFY,
                                  serialize_certificate_verify(CertificateVerify(scheme, signature)))

    def _complete(self) -> None:
        self.state = State.CONNECTED
        self._report_complete(self._config.server_name)

    # ---- TLS 1.2 ------------------------------------------------------------------------------------

    def _server_hello_12(self, sh: ServerHello, suite: SuiteInfo, raw: bytes) -> None:
        if TLS13 in self._config.versions and sh.random[-8:] in (DOWNGRADE_TLS12, DOWNGRADE_TLS11):
            raise ProtocolError(Category.DOWNGRADE_SENTINEL, "downgrade sentinel in ServerHello.random")
        if find(sh.extensions, ExtensionType.EXTENDED_MASTER_SECRET) is None:
            raise ProtocolError(Category.NO_EXTENDED_MASTER_SECRET,
                                "server does not use extended master secret")
        renegotiation_info = find(sh.extensions, ExtensionType.RENEGOTIATION_INFO)
        if renegotiation_info is None or parse_renegotiation_info(renegotiation_info):
            raise ProtocolError(Category.NO_RENEGOTIATION_INFO,
                                "server does not indicate secure renegotiation")
        self._transcript.set_hash(suite.hash_name)
        self._transcript.add(raw)
        self._messages12.append(raw)
        self.state = State.WAIT_CERTIFICATE_12

    def _on_server_key_exchange(self, body: memoryview, raw: bytes) -> None:
        assert self._suite is not None
        message = parse_server_key_exchange(body)
        if message.group not in self._config.groups:
            raise illegal(f"server chose group {message.group} we did not offer")
        if message.scheme not in HANDSHAKE_SCHEMES_12:
            raise illegal(f"server signed with scheme {message.scheme:#06x} we did not offer")
        rsa_key = isinstance(self._peer_key, rsa.RSAPublicKey | x509.RsaPssPublicKey)
        if self._suite.auth != ("rsa" if rsa_key else "ecdsa"):
            raise ProtocolError(Category.CERTIFICATE_KEY_MISMATCH,
                                "certificate key does not fit the cipher suite")
        verify(self._peer_key, message.scheme, message.signature,
               self._random + self._server_random + message.params, HANDSHAKE_SCHEMES_12, curve_bound=False)
        self._group = message.group
        self._group12_share = KeyShare(message.group, self._config.random(KeyShare.random_length(message.group)))
        self._server_public = message.public
        self._transcript.add(raw)
        self.state = State.WAIT_REQUEST_OR_DONE

    def _on_server_hello_done(self, body: memoryview, raw: bytes) -> None:
        parse_empty(body, "ServerHelloDone")
        assert self._suite is not None
        assert self._group12_share is not None
        self._transcript.add(raw)
        config = self._config
        scheme: int | None = None
        if self._certificate_request is not None:
            algorithms = self._certificate_request[1]
            if config.key is not None and config.chain:
                scheme = choose_scheme(config.key, algorithms, False, config.pss_key)
            chain = config.chain if scheme is not None else ()
            self._messages12.append(self._queue_handshake(H.CERTIFICATE,
                                                          serialize_certificate12(Certificate12(chain))))
        share = self._group12_share
        premaster = share.exchange(self._server_public)
        self._messages12.append(self._queue_handshake(
            H.CLIENT_KEY_EXCHANGE, serialize_client_key_exchange(ClientKeyExchange(share.public))))
        suite = self._suite
        self._master = extended_master_secret(suite.hash_name, premaster, self._transcript.digest())
        if scheme is not None and config.key is not None:
            signature = sign(config.key, scheme, b"".join(self._messages12))
            self._queue_handshake(H.CERTIFICATE_VERIFY,
                                  serialize_certificate_verify(CertificateVerify(scheme, signature)))
        client_write, server_write = keys12(suite, self._master, self._random, self._server_random)
        self._pending_read = server_write
        self._send_ccs()
        self._write = client_write
        verify_data = finished12(suite.hash_name, self._master, b"client finished", self._transcript.digest())
        self._queue_handshake(H.FINISHED, verify_data)
        self._flush_handshake()
        self.state = State.WAIT_CHANGE_CIPHER_SPEC

    def _on_finished_12(self, body: memoryview, raw: bytes) -> None:
        assert self._suite is not None
        message = parse_finished(body, 12)
        expected = finished12(self._suite.hash_name, self._master, b"server finished", self._transcript.digest())
        check_finished(expected, message.verify_data, "server")
        self._transcript.add(raw)
        self._complete()

