"""The client engine: TLS 1.3 with HelloRetryRequest and TLS 1.2 ECDHE+AEAD, downgrade-protected.

The ClientHello is produced at construction (read it with `data_to_send()`). States are frozen dataclasses
(`tls.client_states`); the table at the end maps (state class, message type) to the handler, and any other
pair is unexpected_message. Its command-line peer is `python -m adapters.tls_cli client`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from cryptography.hazmat.primitives.asymmetric import rsa

from outcomes.category import Category
from tls import x509
from tls.client_states import (
    AwaitCertificate12,
    AwaitCertificate13,
    AwaitCertificateOrRequest13,
    AwaitCertificateVerify13,
    AwaitChangeCipherSpec12,
    AwaitEncryptedExtensions,
    AwaitFinished12,
    AwaitFinished13,
    AwaitRequestOrDone,
    AwaitServerHello,
    AwaitServerHello2,
    AwaitServerHelloDone,
    AwaitServerKeyExchange,
    Exchange12,
    Hello12,
    Keys13,
    Offer,
)
from tls.config import ClientConfig, NoValidation
from tls.connection import CLIENT_POST_HANDSHAKE
from tls.constants import (
    DOWNGRADE_TLS11,
    DOWNGRADE_TLS12,
    HRR_RANDOM,
    SSL30,
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
    parse_point_formats,
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
    PrivateKey,
    choose_scheme,
    offered_schemes,
    sign,
    verify,
)
from tls.states import CHANGE_CIPHER_SPEC, CONNECTED_12, Connected12, Connected13, Peer
from tls.suites import SUITES, SuiteInfo

H = HandshakeType

_NOT_IN_ENCRYPTED_EXTENSIONS = frozenset({
    ExtensionType.KEY_SHARE, ExtensionType.SUPPORTED_VERSIONS, ExtensionType.PRE_SHARED_KEY,
    ExtensionType.SIGNATURE_ALGORITHMS, ExtensionType.SIGNATURE_ALGORITHMS_CERT, ExtensionType.COOKIE,
    ExtensionType.PSK_KEY_EXCHANGE_MODES,
    ExtensionType.EXTENDED_MASTER_SECRET, ExtensionType.RENEGOTIATION_INFO, ExtensionType.EC_POINT_FORMATS,
})


def _check_extension_bodies_12(extensions: Extensions) -> None:
    """Parse the body of every extension a TLS 1.2 ServerHello may answer with. `_check_offered` only
    checks that we offered the type; accepting an offered type with whatever body came is how a malformed
    ec_point_formats got through. Each body is decoded like the server decodes ours (decode_error when the
    encoding is wrong) and then held to its RFC (illegal_parameter for a value it forbids)."""
    for ext_type, body in extensions:
        if ext_type == ExtensionType.EC_POINT_FORMATS:
            # RFC 8422 §5.2: the server's list, like ours, must contain uncompressed (0).
            if 0 not in parse_point_formats(body):
                raise illegal("server does not accept uncompressed points")
        elif ext_type in (ExtensionType.EXTENDED_MASTER_SECRET, ExtensionType.SERVER_NAME):
            # RFC 7627 §5.1 and RFC 6066 §3: the server's extension_data is empty.
            parse_empty(body, f"ServerHello extension {ext_type}")


def _is_dns_name(name: str) -> bool:
    return any(c.isalpha() for c in name) and ":" not in name


class ClientConnection(HandshakeConnection):
    def __init__(self, config: ClientConfig) -> None:
        super().__init__(config.limits, config.padding)
        self._config = config
        shares = {group: KeyShare(group, config.random(KeyShare.random_length(group)))
                  for group in config.key_share_groups}
        tls13 = TLS13 in config.versions
        self._random = config.random(32)
        self._session_id = config.random(32) if tls13 else b""
        suites = tuple(s for s in config.suites if SUITES[s].version in config.versions)
        hello = ClientHello(TLS12, self._random, self._session_id, suites, b"\x00",
                            self._hello_extensions(shares, b""))
        self.state: ClientState = AwaitServerHello(Offer(hello, frozenset(t for t, _ in hello.extensions), shares))
        raw = self._queue_handshake(H.CLIENT_HELLO, serialize_client_hello(hello))
        self._hs_out = []
        self._messages12 = [raw]
        self._out.append(plaintext_record(ContentType.HANDSHAKE, raw, version=0x0301))

    def _hello_extensions(self, shares: Mapping[int, KeyShare], cookie: bytes) -> Extensions:
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
            extensions.append((ExtensionType.KEY_SHARE, serialize_client_shares([(g, s.public)
                                                                                 for g, s in shares.items()])))
            if cookie:
                extensions.append((ExtensionType.COOKIE, len(cookie).to_bytes(2, "big") + cookie))
        return tuple(extensions)

    def _on_new_session_ticket(self, state: Connected13, body: memoryview, raw: bytes) -> None:
        parse_new_session_ticket(body)  # we do not resume; a well-formed ticket is dropped

    # ---- ServerHello / HelloRetryRequest ------------------------------------------------------------

    @staticmethod
    def _check_offered(extensions: Extensions, offered: frozenset[int], where: str) -> None:
        for ext_type, _ in extensions:
            if ext_type not in offered and ext_type != ExtensionType.COOKIE:
                raise ProtocolError(Category.UNSOLICITED_EXTENSION, f"{where}: extension {ext_type} we did not offer")

    @staticmethod
    def _offered_suite(code: int, version: int, offer: Offer) -> SuiteInfo:
        info = SUITES.get(code)
        if info is None or info.version != version or code not in offer.hello.cipher_suites:
            raise illegal(f"server chose cipher suite {code:#06x} we did not offer")
        return info

    def _server_hello_version(self, sh: ServerHello, offer: Offer) -> int:
        """The version the ServerHello selects, refusing one we did not offer or a malformed selection."""
        self._check_offered(sh.extensions, offer.extensions, "ServerHello")
        if sh.compression_method != 0:
            raise ProtocolError(Category.COMPRESSION, "server chose compression")
        if sh.legacy_version <= SSL30:
            # RFC 8446 Appendix D.5: a ServerHello.legacy_version of 0x0300 or lower is a protocol_version
            # abort, before and whatever supported_versions says.
            raise refuse_version(sh.legacy_version)
        selected = find(sh.extensions, ExtensionType.SUPPORTED_VERSIONS)
        if selected is not None:
            version = parse_selected_version(selected)
            if sh.legacy_version != TLS12:
                raise illegal(f"TLS 1.3 ServerHello with legacy_version {sh.legacy_version:#06x}")
            if version != TLS13 or TLS13 not in self._config.versions:
                raise illegal(f"server selected version {version:#06x} through supported_versions")
            return version
        if sh.legacy_version == TLS12 and TLS12 in self._config.versions:
            return TLS12
        if sh.legacy_version <= TLS12:
            # Below 1.2, or 1.2 when we offered only 1.3: no version in common (RFC 8446 §4.1.3).
            raise refuse_version(sh.legacy_version)
        raise illegal(f"server chose version {sh.legacy_version:#06x} without supported_versions")

    def _on_server_hello(self, state: AwaitServerHello, body: memoryview, raw: bytes) -> None:
        sh = parse_server_hello(body)
        version = self._server_hello_version(sh, state.offer)
        if sh.random == HRR_RANDOM:
            if version != TLS13:
                raise unexpected("HelloRetryRequest where none may come")
            self._on_hello_retry(state.offer, sh, raw)
            return
        self._accept_server_hello(sh, version, state.offer, None, raw)

    def _on_server_hello_2(self, state: AwaitServerHello2, body: memoryview, raw: bytes) -> None:
        sh = parse_server_hello(body)
        version = self._server_hello_version(sh, state.offer)
        if sh.random == HRR_RANDOM:
            raise unexpected("HelloRetryRequest where none may come")
        if version != TLS13:
            raise illegal("version changed after HelloRetryRequest")
        self._accept_server_hello(sh, version, state.offer, state.hrr_suite, raw)

    def _accept_server_hello(self, sh: ServerHello, version: int, offer: Offer, hrr_suite: SuiteInfo | None,
                             raw: bytes) -> None:
        self.version = version
        self._reader.expected_version = TLS12
        suite = self._offered_suite(sh.cipher_suite, version, offer)
        if version == TLS13:
            self._server_hello_13(sh, suite, offer, hrr_suite, raw)
        else:
            self._server_hello_12(sh, suite, raw)

    def _on_hello_retry(self, offer: Offer, hrr: ServerHello, raw: bytes) -> None:
        suite = self._offered_suite(hrr.cipher_suite, TLS13, offer)
        if hrr.session_id != self._session_id:
            raise illegal("HelloRetryRequest does not echo our session id")
        group_ext = find(hrr.extensions, ExtensionType.KEY_SHARE)
        cookie_ext = find(hrr.extensions, ExtensionType.COOKIE)
        cookie = parse_cookie(cookie_ext) if cookie_ext is not None else b""
        if group_ext is None and not cookie:
            raise illegal("HelloRetryRequest that would change nothing")
        if group_ext is not None:
            group = parse_hrr_group(group_ext)
            if group not in self._config.groups or group in offer.shares:
                raise illegal(f"HelloRetryRequest for group {group}")
            shares = {group: KeyShare(group, self._config.random(KeyShare.random_length(group)))}
        else:
            first = next(iter(offer.shares))
            shares = {first: offer.shares[first]}
        self._transcript.restart_after_hrr(suite.hash_name)
        self._transcript.add(raw)
        ch = ClientHello(TLS12, self._random, self._session_id, offer.hello.cipher_suites, b"\x00",
                         self._hello_extensions(shares, cookie))
        self._send_ccs()
        self._queue_handshake(H.CLIENT_HELLO, serialize_client_hello(ch))
        self._flush_handshake()
        self.version = TLS13
        self._to(AwaitServerHello2(Offer(ch, frozenset(t for t, _ in ch.extensions), shares), suite))

    def _server_hello_13(self, sh: ServerHello, suite: SuiteInfo, offer: Offer, hrr_suite: SuiteInfo | None,
                         raw: bytes) -> None:
        if sh.session_id != self._session_id:
            raise illegal("ServerHello does not echo our session id")
        if hrr_suite is not None and suite.suite != hrr_suite.suite:
            raise illegal("ServerHello suite differs from the HelloRetryRequest's")
        share_ext = find(sh.extensions, ExtensionType.KEY_SHARE)
        if share_ext is None:
            raise ProtocolError(Category.MISSING_EXTENSION, "ServerHello without key_share")
        group, public = parse_server_share(share_ext)
        share = offer.shares.get(group)
        if share is None:
            raise illegal(f"server key share for group {group} we did not send")
        shared = share.exchange(public)
        if hrr_suite is None:
            self._transcript.set_hash(suite.hash_name)
        self._transcript.add(raw)
        ks = KeySchedule13(suite.hash_name)
        ks.set_shared_secret(shared)
        client_hs, server_hs = ks.handshake_traffic(self._transcript.digest())
        self._set_read_13(suite, server_hs)
        keys = Keys13(suite, group, ks, client_hs, server_hs, retried=hrr_suite is not None)
        self._to(AwaitEncryptedExtensions(keys, offer.extensions))

    # ---- TLS 1.3 after the ServerHello ----------------------------------------------------------------

    def _on_encrypted_extensions(self, state: AwaitEncryptedExtensions, body: memoryview, raw: bytes) -> None:
        message = parse_encrypted_extensions(body)
        for ext_type, _ in message.extensions:
            if ext_type in _NOT_IN_ENCRYPTED_EXTENSIONS:
                raise illegal(f"extension {ext_type} does not belong in EncryptedExtensions")
        self._check_offered(message.extensions, state.offered, "EncryptedExtensions")
        self._transcript.add(raw)
        self._to(AwaitCertificateOrRequest13(state.keys))

    def _on_certificate_request_13(self, state: AwaitCertificateOrRequest13, body: memoryview, raw: bytes) -> None:
        request = parse_certificate_request13(body)
        if request.context:
            # RFC 8446 §4.3.2: the context is for post-handshake authentication only, which we never offer.
            raise illegal("CertificateRequest in the handshake with a non-empty request context")
        algorithms = find(request.extensions, ExtensionType.SIGNATURE_ALGORITHMS)
        if algorithms is None:
            raise ProtocolError(Category.MISSING_EXTENSION, "CertificateRequest without signature_algorithms")
        self._transcript.add(raw)
        self._to(AwaitCertificate13(state.keys, parse_u16_list16(algorithms, "signature_algorithms")))

    def _on_unrequested_certificate_13(self, state: AwaitCertificateOrRequest13, body: memoryview,
                                       raw: bytes) -> None:
        self._certificate_13(state.keys, None, body, raw)

    def _on_certificate_13(self, state: AwaitCertificate13, body: memoryview, raw: bytes) -> None:
        self._certificate_13(state.keys, state.request, body, raw)

    def _certificate_13(self, keys: Keys13, request: tuple[int, ...] | None, body: memoryview, raw: bytes) -> None:
        message = parse_certificate13(body, self._limits.x509.max_chain_certificates)
        if message.context:
            raise illegal("server Certificate with a request context")
        peer = self._accept_server_chain(message.chain)
        self._transcript.add(raw)
        self._to(AwaitCertificateVerify13(keys, request, peer))

    def _accept_server_chain(self, chain: tuple[bytes, ...]) -> Peer:
        if not chain:
            raise ProtocolError(Category.NO_SERVER_CERTIFICATE, "server sent no certificate")
        config = self._config
        if isinstance(config.anchors, NoValidation):
            return Peer(chain, leaf_public_key(chain[0]), validated=False)
        key = validate_chain(config.validator, chain, anchors=config.anchors, purpose=x509.Purpose.SERVER_AUTH,
                             name=config.server_name, now=config.time(), limits=self._limits.x509)
        return Peer(chain, key, validated=True)

    def _on_certificate_verify_13(self, state: AwaitCertificateVerify13, body: memoryview, raw: bytes) -> None:
        message = parse_certificate_verify(body)
        content = certificate_verify_content(SERVER_CV_CONTEXT, self._transcript.digest())
        verify(state.peer.key, message.scheme, message.signature, content, HANDSHAKE_SCHEMES_13)
        self._transcript.add(raw)
        self._to(AwaitFinished13(state.keys, state.request, state.peer))

    def _on_finished_13(self, state: AwaitFinished13, body: memoryview, raw: bytes) -> None:
        keys = state.keys
        ks, suite = keys.ks, keys.suite
        message = parse_finished(body, suite.hash_length)
        check_finished(ks.finished(keys.server_hs, self._transcript.digest()), message.verify_data, "server")
        self._transcript.add(raw)
        client_app, server_app = ks.application_traffic(self._transcript.digest())
        if not keys.retried:
            self._send_ccs()
        self._set_write_13(suite, keys.client_hs)
        if state.request is not None:
            self._send_client_certificate_13(state.request)
        verify_data = ks.finished(keys.client_hs, self._transcript.digest())
        self._queue_handshake(H.FINISHED, serialize_finished(Finished(verify_data)))
        self._set_write_13(suite, client_app)
        self._set_read_13(suite, server_app)
        self._complete(Connected13(suite, ks), version=TLS13, suite=suite, group=keys.group, peer=state.peer,
                       server_name=self._config.server_name)

    def _client_scheme(self, algorithms: tuple[int, ...], tls13: bool) -> tuple[PrivateKey, int] | None:
        """Our key and the scheme to sign with, if we have a certificate the server's schemes allow."""
        config = self._config
        if config.key is None or not config.chain:
            return None
        scheme = choose_scheme(config.key, algorithms, tls13, config.pss_key)
        return (config.key, scheme) if scheme is not None else None

    def _send_client_certificate_13(self, algorithms: tuple[int, ...]) -> None:
        signer = self._client_scheme(algorithms, True)
        chain = self._config.chain if signer is not None else ()
        self._queue_handshake(H.CERTIFICATE, serialize_certificate13(Certificate13(b"", tuple(
            (der, ()) for der in chain))))
        if signer is not None:
            key, scheme = signer
            content = certificate_verify_content(CLIENT_CV_CONTEXT, self._transcript.digest())
            self._queue_handshake(H.CERTIFICATE_VERIFY,
                                  serialize_certificate_verify(CertificateVerify(scheme, sign(key, scheme, content))))

    # ---- TLS 1.2 ------------------------------------------------------------------------------------

    def _server_hello_12(self, sh: ServerHello, suite: SuiteInfo, raw: bytes) -> None:
        if TLS13 in self._config.versions and sh.random[-8:] in (DOWNGRADE_TLS12, DOWNGRADE_TLS11):
            raise ProtocolError(Category.DOWNGRADE_SENTINEL, "downgrade sentinel in ServerHello.random")
        if find(sh.extensions, ExtensionType.EXTENDED_MASTER_SECRET) is None:
            raise ProtocolError(Category.NO_EXTENDED_MASTER_SECRET, "server does not use extended master secret")
        renegotiation_info = find(sh.extensions, ExtensionType.RENEGOTIATION_INFO)
        if renegotiation_info is None or parse_renegotiation_info(renegotiation_info):
            raise ProtocolError(Category.NO_RENEGOTIATION_INFO, "server does not indicate secure renegotiation")
        _check_extension_bodies_12(sh.extensions)
        self._transcript.set_hash(suite.hash_name)
        self._transcript.add(raw)
        self._messages12.append(raw)
        self._to(AwaitCertificate12(Hello12(suite, sh.random)))

    def _on_certificate_12(self, state: AwaitCertificate12, body: memoryview, raw: bytes) -> None:
        peer = self._accept_server_chain(parse_certificate12(body, self._limits.x509.max_chain_certificates).chain)
        self._transcript.add(raw)
        self._to(AwaitServerKeyExchange(state.hello, peer))

    def _on_server_key_exchange(self, state: AwaitServerKeyExchange, body: memoryview, raw: bytes) -> None:
        message = parse_server_key_exchange(body)
        if message.group not in self._config.groups:
            raise illegal(f"server chose group {message.group} we did not offer")
        if message.scheme not in HANDSHAKE_SCHEMES_12:
            raise illegal(f"server signed with scheme {message.scheme:#06x} we did not offer")
        peer_key = state.peer.key
        rsa_key = isinstance(peer_key, rsa.RSAPublicKey | x509.RsaPssPublicKey)
        if state.hello.suite.auth != ("rsa" if rsa_key else "ecdsa"):
            raise ProtocolError(Category.CERTIFICATE_KEY_MISMATCH, "certificate key does not fit the cipher suite")
        verify(peer_key, message.scheme, message.signature,
               self._random + state.hello.server_random + message.params, HANDSHAKE_SCHEMES_12, curve_bound=False)
        share = KeyShare(message.group, self._config.random(KeyShare.random_length(message.group)))
        self._transcript.add(raw)
        self._to(AwaitRequestOrDone(state.hello, state.peer, Exchange12(message.group, share, message.public)))

    def _on_certificate_request_12(self, state: AwaitRequestOrDone, body: memoryview, raw: bytes) -> None:
        request = parse_certificate_request12(body)
        self._transcript.add(raw)
        self._to(AwaitServerHelloDone(state.hello, state.peer, state.exchange, request.signature_algorithms))

    def _on_unrequested_server_hello_done(self, state: AwaitRequestOrDone, body: memoryview, raw: bytes) -> None:
        self._server_hello_done(state, None, body, raw)

    def _on_server_hello_done(self, state: AwaitServerHelloDone, body: memoryview, raw: bytes) -> None:
        self._server_hello_done(state, state.request, body, raw)

    def _server_hello_done(self, state: AwaitRequestOrDone | AwaitServerHelloDone, request: tuple[int, ...] | None,
                           body: memoryview, raw: bytes) -> None:
        """Our whole TLS 1.2 flight: [Certificate], ClientKeyExchange, [CertificateVerify], CCS, Finished."""
        hello, exchange = state.hello, state.exchange
        parse_empty(body, "ServerHelloDone")
        self._transcript.add(raw)
        signer = self._client_scheme(request, False) if request is not None else None
        if request is not None:
            chain = self._config.chain if signer is not None else ()
            self._messages12.append(self._queue_handshake(H.CERTIFICATE,
                                                          serialize_certificate12(Certificate12(chain))))
        premaster = exchange.share.exchange(exchange.server_public)
        self._messages12.append(self._queue_handshake(
            H.CLIENT_KEY_EXCHANGE, serialize_client_key_exchange(ClientKeyExchange(exchange.share.public))))
        suite = hello.suite
        master = extended_master_secret(suite.hash_name, premaster, self._transcript.digest())
        if signer is not None:
            key, scheme = signer
            signature = sign(key, scheme, b"".join(self._messages12))
            self._queue_handshake(H.CERTIFICATE_VERIFY,
                                  serialize_certificate_verify(CertificateVerify(scheme, signature)))
        client_write, server_write = keys12(suite, master, self._random, hello.server_random)
        self._send_ccs()
        self._write = client_write
        verify_data = finished12(suite.hash_name, master, b"client finished", self._transcript.digest())
        self._queue_handshake(H.FINISHED, verify_data)
        self._flush_handshake()
        self._to(AwaitChangeCipherSpec12(hello, state.peer, exchange.group, master, server_write))

    def _on_change_cipher_spec(self, state: AwaitChangeCipherSpec12, body: memoryview, raw: bytes) -> None:
        self._read = state.pending_read
        self._to(AwaitFinished12(state.hello, state.peer, state.group, state.master))

    def _on_finished_12(self, state: AwaitFinished12, body: memoryview, raw: bytes) -> None:
        suite = state.hello.suite
        message = parse_finished(body, 12)
        expected = finished12(suite.hash_name, state.master, b"server finished", self._transcript.digest())
        check_finished(expected, message.verify_data, "server")
        self._transcript.add(raw)
        self._complete(CONNECTED_12, version=TLS12, suite=suite, group=state.group, peer=state.peer,
                       server_name=self._config.server_name)


ClientState = (AwaitServerHello | AwaitServerHello2 | AwaitEncryptedExtensions | AwaitCertificateOrRequest13
               | AwaitCertificate13 | AwaitCertificateVerify13 | AwaitFinished13 | AwaitCertificate12
               | AwaitServerKeyExchange | AwaitRequestOrDone | AwaitServerHelloDone | AwaitChangeCipherSpec12
               | AwaitFinished12 | Connected13 | Connected12)

C = ClientConnection
C._handlers = MappingProxyType({
    **CLIENT_POST_HANDSHAKE,
    (Connected13, H.NEW_SESSION_TICKET): C._on_new_session_ticket,
    (AwaitServerHello, H.SERVER_HELLO): C._on_server_hello,
    (AwaitServerHello2, H.SERVER_HELLO): C._on_server_hello_2,
    (AwaitEncryptedExtensions, H.ENCRYPTED_EXTENSIONS): C._on_encrypted_extensions,
    (AwaitCertificateOrRequest13, H.CERTIFICATE_REQUEST): C._on_certificate_request_13,
    (AwaitCertificateOrRequest13, H.CERTIFICATE): C._on_unrequested_certificate_13,
    (AwaitCertificate13, H.CERTIFICATE): C._on_certificate_13,
    (AwaitCertificateVerify13, H.CERTIFICATE_VERIFY): C._on_certificate_verify_13,
    (AwaitFinished13, H.FINISHED): C._on_finished_13,
    (AwaitCertificate12, H.CERTIFICATE): C._on_certificate_12,
    (AwaitServerKeyExchange, H.SERVER_KEY_EXCHANGE): C._on_server_key_exchange,
    (AwaitRequestOrDone, H.CERTIFICATE_REQUEST): C._on_certificate_request_12,
    (AwaitRequestOrDone, H.SERVER_HELLO_DONE): C._on_unrequested_server_hello_done,
    (AwaitServerHelloDone, H.SERVER_HELLO_DONE): C._on_server_hello_done,
    (AwaitChangeCipherSpec12, CHANGE_CIPHER_SPEC): C._on_change_cipher_spec,
    (AwaitFinished12, H.FINISHED): C._on_finished_12,
})
"""(state class, message type) → handler: every pair not listed is unexpected_message."""

C._transitions = frozenset({
    (AwaitServerHello, AwaitServerHello2),
    (AwaitServerHello, AwaitEncryptedExtensions), (AwaitServerHello2, AwaitEncryptedExtensions),
    (AwaitEncryptedExtensions, AwaitCertificateOrRequest13),
    (AwaitCertificateOrRequest13, AwaitCertificate13), (AwaitCertificateOrRequest13, AwaitCertificateVerify13),
    (AwaitCertificate13, AwaitCertificateVerify13),
    (AwaitCertificateVerify13, AwaitFinished13),
    (AwaitFinished13, Connected13),
    (AwaitServerHello, AwaitCertificate12),
    (AwaitCertificate12, AwaitServerKeyExchange),
    (AwaitServerKeyExchange, AwaitRequestOrDone),
    (AwaitRequestOrDone, AwaitServerHelloDone), (AwaitRequestOrDone, AwaitChangeCipherSpec12),
    (AwaitServerHelloDone, AwaitChangeCipherSpec12),
    (AwaitChangeCipherSpec12, AwaitFinished12),
    (AwaitFinished12, Connected12),
})
"""(from, to): the only state changes `_to` lets a handler make."""
del C
