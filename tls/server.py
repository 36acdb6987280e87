"""The server engine: TLS 1.3 (RFC 8446) and TLS 1.2 ECDHE+AEAD (RFC 5246, 7627, 5746), strict by design.

States are frozen dataclasses (`tls.server_states`); the table at the end maps (state class, message type)
to the handler, and any other pair is unexpected_message. Its command-line peer is
`python -m adapters.tls_cli server`.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import NamedTuple

from cryptography.hazmat.primitives.asymmetric import ec

from outcomes.category import Category
from tls import x509
from tls.config import ClientAuth, ClientAuthMode, Credential, ServerConfig
from tls.connection import SERVER_POST_HANDSHAKE
from tls.constants import (
    DOWNGRADE_TLS12,
    HRR_RANDOM,
    SSL30,
    TLS12,
    TLS13,
    TLS_EMPTY_RENEGOTIATION_INFO_SCSV,
    TLS_FALLBACK_SCSV,
    ContentType,
    ExtensionType,
    HandshakeType,
    NamedGroup,
)
from tls.errors import InvariantError, ProtocolError, illegal
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
from tls.groups import KeyShare, is_obsolete_group
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
    parse_empty,
    parse_finished,
    serialize_certificate12,
    serialize_certificate_request12,
    serialize_certificate_request13,
    serialize_certificate_verify,
    serialize_encrypted_extensions,
    serialize_finished,
    serialize_server_hello,
    serialize_server_key_exchange,
)
from tls.peer import validate_chain
from tls.record import Protection13, Record
from tls.server_states import (
    START,
    AwaitCertificate12,
    AwaitCertificate13,
    AwaitCertificateVerify12,
    AwaitCertificateVerify13,
    AwaitChangeCipherSpec,
    AwaitClientHello2,
    AwaitClientKeyExchange,
    AwaitFinished12,
    AwaitFinished13,
    Hello12,
    Keys12,
    Keys13,
    Start,
)
from tls.signatures import (
    CERTIFICATE_SCHEMES,
    HANDSHAKE_SCHEMES_12,
    HANDSHAKE_SCHEMES_13,
    PrivateKey,
    first_offered,
    sign,
    verify,
)
from tls.states import ANONYMOUS, CHANGE_CIPHER_SPEC, CONNECTED_12, Connected12, Connected13, Peer
from tls.suites import SUITES, SuiteInfo

NO_EXTENSIONS = serialize_encrypted_extensions(EncryptedExtensions(()))
SNI_ACKNOWLEDGED = serialize_encrypted_extensions(EncryptedExtensions(((ExtensionType.SERVER_NAME, b""),)))
"""Our TLS 1.3 EncryptedExtensions bodies: nothing to answer, or the empty server_name that says we used the
client's name (RFC 6066 §3). They are all we ever send, so they are built once."""


def _curve_group(key: object) -> int | None:
    """The named group of an ECDSA key (None for Ed25519 and RSA keys)."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {"secp256r1": NamedGroup.SECP256R1, "secp384r1": NamedGroup.SECP384R1,
                "secp521r1": NamedGroup.SECP521R1}.get(key.curve.name)
    return None


class Signer(NamedTuple):
    """The credential chosen for this ClientHello and the scheme it signs with."""

    credential: Credential
    scheme: int


class ServerConnection(HandshakeConnection):
    def __init__(self, config: ServerConfig) -> None:
        super().__init__(config.limits, config.padding)
        self._config = config
        self.state: ServerState = START
        self._early_skip = 0
        """Bytes of refused 0-RTT data still to skip (record level: it spans handshake states)."""

    # ---- records ------------------------------------------------------------------------------------

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
            raise ProtocolError(Category.EARLY_DATA, "more refused early data than the limit allows")

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
        """The version to speak. legacy_version is checked before supported_versions: RFC 8446 Appendix D.5
        makes a hello with legacy_version 0x0300 or lower a protocol_version abort whatever it offers in
        supported_versions (an SSLv3-era hello is never a TLS 1.3 client)."""
        ours = self._config.versions
        if ch.legacy_version <= SSL30:
            raise refuse_version(ch.legacy_version)
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

    def _common_checks(self, ch: ClientHello, version: int) -> tuple[tuple[int, ...], str | None]:
        """Refusals that do not depend on the version's key exchange; (the client's signature schemes, SNI)."""
        if ch.compression_methods != b"\x00":
            raise ProtocolError(Category.COMPRESSION, "compression offered" if version == TLS12 and b"\x00" in
                                ch.compression_methods else "compression methods other than null only")
        if find(ch.extensions, ExtensionType.HEARTBEAT) is not None:
            raise ProtocolError(Category.HEARTBEAT, "heartbeat extension refused")
        if TLS_FALLBACK_SCSV in ch.cipher_suites and version < max(self._config.versions):
            raise ProtocolError(Category.DOWNGRADE, "TLS_FALLBACK_SCSV with a lower version than we support")
        for index, (ext_type, _) in enumerate(ch.extensions):
            if ext_type == ExtensionType.PRE_SHARED_KEY and index != len(ch.extensions) - 1:
                raise illegal("pre_shared_key is not the last extension")
        server_name = find(ch.extensions, ExtensionType.SERVER_NAME)
        name = parse_server_name(server_name) if server_name is not None else None
        signature_algorithms = find(ch.extensions, ExtensionType.SIGNATURE_ALGORITHMS)
        if signature_algorithms is None:
            raise ProtocolError(Category.MISSING_EXTENSION, "no signature_algorithms")
        return parse_u16_list16(signature_algorithms, "signature_algorithms"), name

    def _choose_credential(self, ch: ClientHello, version: int, offered: tuple[int, ...]) -> Signer:
        """The first of our credentials (preference order) this client can verify, and the scheme to sign
        with. When none fits, the refusal is the preferred credential's: with one credential, exactly what
        it was before there could be several."""
        first_error: ProtocolError | None = None
        for credential in self._config.credentials:
            try:
                return Signer(credential, self._fit(credential, ch, version, offered))
            except ProtocolError as err:
                first_error = first_error or err
        if first_error is None:
            raise InvariantError("a server config without credentials")
        raise first_error

    def _fit(self, credential: Credential, ch: ClientHello, version: int, offered: tuple[int, ...]) -> int:
        """The scheme `credential` signs with for this client, or the refusal saying why it cannot serve it."""
        scheme = first_offered(credential.schemes13 if version == TLS13 else credential.schemes12, offered)
        if scheme is None:
            raise ProtocolError(Category.NO_SHARED_SIGNATURE_ALGORITHM, "no signature scheme for our key")
        if version == TLS12:
            self._choose_suite(ch, version, credential.key)
            certificate_curve = _curve_group(credential.key)
            if certificate_curve is not None and certificate_curve not in self._client_groups(ch, required=False):
                # RFC 8422 §5.1: in TLS 1.2 the client's groups also bound the curve of an ECDSA certificate.
                raise ProtocolError(Category.NO_SHARED_GROUP, "client does not accept our certificate's curve")
        return scheme

    def _choose_suite(self, ch: ClientHello, version: int, key: PrivateKey) -> SuiteInfo:
        offered = set(ch.cipher_suites)
        kind = key_kind(key) if version == TLS12 else None  # TLS 1.3 suites are not bound to a key type
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
                raise ProtocolError(Category.MISSING_EXTENSION, "no supported_groups")
            return (NamedGroup.SECP256R1,)
        return parse_u16_list16(groups, "supported_groups")

    def _on_client_hello(self, state: Start, body: memoryview, raw: bytes) -> None:
        ch = parse_client_hello(body)
        version = self._choose_version(ch, find(ch.extensions, ExtensionType.SUPPORTED_VERSIONS))
        offered, server_name = self._common_checks(ch, version)
        signer = self._choose_credential(ch, version, offered)
        self.version = version
        self._transcript.add(raw)
        if version == TLS13:
            self._client_hello_13(ch, signer, server_name, None)
        else:
            self._client_hello_12(ch, raw, signer, server_name)

    def _accept_client_chain(self, auth: ClientAuth, chain: tuple[bytes, ...]) -> Peer:
        """Validate a client chain; ANONYMOUS when the client sent none and that is allowed."""
        if not chain:
            if auth.mode is ClientAuthMode.REQUIRED:
                raise ProtocolError(Category.NO_CERTIFICATE, "client sent no certificate")
            return ANONYMOUS
        key = validate_chain(self._config.validator, chain, anchors=auth.anchors,
                             purpose=x509.Purpose.CLIENT_AUTH, name=None, now=self._config.time(),
                             limits=self._limits.x509)
        return Peer(chain, key, validated=True)

    # ---- TLS 1.3 ------------------------------------------------------------------------------------

    def _client_hello_13(self, ch: ClientHello, signer: Signer, server_name: str | None,
                         retry: AwaitClientHello2 | None) -> None:
        suite = self._choose_suite(ch, TLS13, signer.credential.key)
        if retry is not None and suite.suite != retry.suite.suite:
            raise illegal("second ClientHello changed the cipher suite")
        client_groups = self._client_groups(ch, required=True)
        shares_ext = find(ch.extensions, ExtensionType.KEY_SHARE)
        if shares_ext is None:
            raise ProtocolError(Category.MISSING_EXTENSION, "no key_share")
        shares = parse_client_shares(shares_ext)
        for group, _ in shares:
            if group not in client_groups:
                raise illegal(f"key_share for group {group} not in supported_groups")
            if is_obsolete_group(group):
                raise ProtocolError(Category.OBSOLETE_GROUP, f"key_share for obsolete group {group:#06x}")
        share_of = dict(shares)
        early_data = find(ch.extensions, ExtensionType.EARLY_DATA) is not None
        if retry is not None:
            if len(shares) != 1 or shares[0][0] != retry.group:
                raise illegal("second ClientHello does not carry exactly the requested key share")
            if early_data:
                raise illegal("early_data after HelloRetryRequest")
        if early_data:
            # RFC 8446 §4.2.10: 0-RTT is refused; skip what the client sends under its early key.
            self._early_skip = self._limits.max_early_data_skip
        chosen = next((g for g in self._config.groups if g in share_of), None)
        if chosen is None:
            retry_group = next((g for g in self._config.groups if g in client_groups), None)
            if retry_group is None:
                raise ProtocolError(Category.NO_SHARED_GROUP, "no key exchange group in common")
            self._send_hello_retry(ch, suite, retry_group)
            return
        ks, client_hs, server_hs = self._send_server_hello_13(
            ch, suite, chosen, share_of[chosen], first=retry is None,
            compat_ccs_sent=retry is not None and retry.compat_ccs_sent)
        self._send_server_flight_13(ks, suite=suite, group=chosen, client_hs=client_hs, server_hs=server_hs,
                                    signer=signer, server_name=server_name)

    def _send_hello_retry(self, ch: ClientHello, suite: SuiteInfo, group: int) -> None:
        hrr = ServerHello(TLS12, HRR_RANDOM, ch.session_id, suite.suite, 0,
                          ((ExtensionType.SUPPORTED_VERSIONS, TLS13.to_bytes(2, "big")),
                           (ExtensionType.KEY_SHARE, group.to_bytes(2, "big"))))
        self._transcript.restart_after_hrr(suite.hash_name)
        self._queue_handshake(HandshakeType.SERVER_HELLO, serialize_server_hello(hrr))
        self._flush_handshake()
        if ch.session_id:
            self._send_ccs()
        self._to(AwaitClientHello2(ch, suite, group, compat_ccs_sent=bool(ch.session_id)))

    def _on_client_hello_2(self, state: AwaitClientHello2, body: memoryview, raw: bytes) -> None:
        ch = parse_client_hello(body)
        first = state.first
        self._early_skip = 0  # the client's early data ends where its second ClientHello begins
        if ch.session_id != first.session_id or ch.random != first.random:
            raise illegal("second ClientHello differs from the first")
        version = self._choose_version(ch, find(ch.extensions, ExtensionType.SUPPORTED_VERSIONS))
        if version != TLS13:
            raise illegal("second ClientHello changed the version")
        offered, server_name = self._common_checks(ch, version)
        signer = self._choose_credential(ch, version, offered)
        self._transcript.add(raw)
        self._client_hello_13(ch, signer, server_name, state)

    def _send_server_hello_13(self, ch: ClientHello, suite: SuiteInfo, group: int, peer_share: bytes, *,
                              first: bool, compat_ccs_sent: bool) -> tuple[KeySchedule13, bytes, bytes]:
        """ServerHello and the middlebox-compatibility CCS (once); (key schedule, client and server
        handshake traffic secrets)."""
        config = self._config
        share = KeyShare(group, config.random(KeyShare.random_length(group)))
        shared = share.exchange(peer_share)
        sh = ServerHello(TLS12, config.random(32), ch.session_id, suite.suite, 0,
                         ((ExtensionType.SUPPORTED_VERSIONS, TLS13.to_bytes(2, "big")),
                          (ExtensionType.KEY_SHARE, serialize_server_share(group, share.public))))
        self._reader.expected_version = TLS12
        if first:
            self._transcript.set_hash(suite.hash_name)
        self._queue_handshake(HandshakeType.SERVER_HELLO, serialize_server_hello(sh))
        ks = KeySchedule13(suite.hash_name)
        ks.set_shared_secret(shared)
        client_hs, server_hs = ks.handshake_traffic(self._transcript.digest())
        self._flush_handshake()
        if ch.session_id and not compat_ccs_sent:
            self._send_ccs()
        self._set_write_13(suite, server_hs)
        return ks, client_hs, server_hs

    def _send_server_flight_13(self, ks: KeySchedule13, *, suite: SuiteInfo, group: int, client_hs: bytes,
                               server_hs: bytes, signer: Signer, server_name: str | None) -> None:
        """EncryptedExtensions .. Finished under our handshake key, then switch to the application keys."""
        config = self._config
        self._queue_handshake(HandshakeType.ENCRYPTED_EXTENSIONS, SNI_ACKNOWLEDGED if server_name else NO_EXTENSIONS)
        auth = config.client_auth
        if auth is not None:
            request = CertificateRequest13(b"", (
                (ExtensionType.SIGNATURE_ALGORITHMS, serialize_u16_list16(HANDSHAKE_SCHEMES_13)),
                (ExtensionType.SIGNATURE_ALGORITHMS_CERT, serialize_u16_list16(CERTIFICATE_SCHEMES))))
            self._queue_handshake(HandshakeType.CERTIFICATE_REQUEST, serialize_certificate_request13(request))
        credential, scheme = signer
        self._queue_handshake(HandshakeType.CERTIFICATE, credential.certificate13)
        content = certificate_verify_content(SERVER_CV_CONTEXT, self._transcript.digest())
        self._queue_handshake(HandshakeType.CERTIFICATE_VERIFY, serialize_certificate_verify(
            CertificateVerify(scheme, sign(credential.key, scheme, content))))
        verify_data = ks.finished(server_hs, self._transcript.digest())
        self._queue_handshake(HandshakeType.FINISHED, serialize_finished(Finished(verify_data)))
        client_app, server_app = ks.application_traffic(self._transcript.digest())
        self._set_write_13(suite, server_app)
        self._set_read_13(suite, client_hs)
        keys = Keys13(suite, group, ks, client_hs, client_app, server_name)
        self._to(AwaitCertificate13(keys, auth) if auth is not None else AwaitFinished13(keys, ANONYMOUS))

    def _on_certificate_13(self, state: AwaitCertificate13, body: memoryview, raw: bytes) -> None:
        message = parse_certificate13(body, self._limits.x509.max_chain_certificates)
        if message.context:
            raise illegal("client Certificate with a request context we did not send")
        self._transcript.add(raw)
        peer = self._accept_client_chain(state.auth, message.chain)
        self._to(AwaitCertificateVerify13(state.keys, peer) if peer.chain else AwaitFinished13(state.keys, peer))

    def _on_certificate_verify_13(self, state: AwaitCertificateVerify13, body: memoryview, raw: bytes) -> None:
        message = parse_certificate_verify(body)
        content = certificate_verify_content(CLIENT_CV_CONTEXT, self._transcript.digest())
        verify(state.peer.key, message.scheme, message.signature, content, HANDSHAKE_SCHEMES_13)
        self._transcript.add(raw)
        self._to(AwaitFinished13(state.keys, state.peer))

    def _on_finished_13(self, state: AwaitFinished13, body: memoryview, raw: bytes) -> None:
        keys = state.keys
        message = parse_finished(body, keys.suite.hash_length)
        check_finished(keys.ks.finished(keys.client_hs, self._transcript.digest()), message.verify_data, "client")
        self._transcript.add(raw)
        self._early_skip = 0
        self._set_read_13(keys.suite, keys.client_app)
        self._complete(Connected13(keys.suite, keys.ks), version=TLS13, suite=keys.suite, group=keys.group,
                       peer=state.peer, server_name=keys.server_name)

    # ---- TLS 1.2 ------------------------------------------------------------------------------------

    def _check_hello_12(self, ch: ClientHello) -> tuple[int, bytes | None]:
        """TLS 1.2 policy: EMS, secure renegotiation, uncompressed points, a group for us and our
        certificate's curve (checked with the credential, `_fit`). (The ECDHE group, the client's point formats
        extension or None.)"""
        ems = find(ch.extensions, ExtensionType.EXTENDED_MASTER_SECRET)
        if ems is None:
            raise ProtocolError(Category.NO_EXTENDED_MASTER_SECRET, "client does not offer extended master secret")
        parse_empty(ems, "extended_master_secret")  # RFC 7627 §5.1: its extension_data is empty
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
        group = next((g for g in self._config.groups if g in client_groups), None)
        if group is None:
            raise ProtocolError(Category.NO_SHARED_GROUP, "no ECDHE group in common")
        return group, point_formats

    def _client_hello_12(self, ch: ClientHello, raw: bytes, signer: Signer, server_name: str | None) -> None:
        config = self._config
        credential, scheme = signer
        suite = self._choose_suite(ch, TLS12, credential.key)
        group, point_formats = self._check_hello_12(ch)
        self._reader.expected_version = TLS12
        self._transcript.set_hash(suite.hash_name)
        self._messages12 = [raw]
        random = config.random(32)
        if TLS13 in config.versions:
            random = random[:24] + DOWNGRADE_TLS12
        extensions: Extensions = ((ExtensionType.RENEGOTIATION_INFO, b"\x00"),
                                  (ExtensionType.EXTENDED_MASTER_SECRET, b""))
        if point_formats is not None:
            extensions += ((ExtensionType.EC_POINT_FORMATS, b"\x01\x00"),)
        sh = ServerHello(TLS12, random, b"", suite.suite, 0, extensions)
        self._queue_handshake(HandshakeType.SERVER_HELLO, serialize_server_hello(sh))
        self._queue_handshake(HandshakeType.CERTIFICATE, serialize_certificate12(Certificate12(credential.chain)))
        share = KeyShare(group, config.random(KeyShare.random_length(group)))
        unsigned = ServerKeyExchange(group, share.public, scheme, b"")
        signature = sign(credential.key, scheme, ch.random + random + unsigned.params)
        ske = ServerKeyExchange(group, share.public, scheme, signature)
        self._queue_handshake(HandshakeType.SERVER_KEY_EXCHANGE, serialize_server_key_exchange(ske))
        auth = config.client_auth
        if auth is not None:
            request = CertificateRequest12(b"\x40\x01", HANDSHAKE_SCHEMES_12, b"")
            self._queue_handshake(HandshakeType.CERTIFICATE_REQUEST, serialize_certificate_request12(request))
        self._queue_handshake(HandshakeType.SERVER_HELLO_DONE, b"")
        self._messages12 += self._hs_out[:]
        self._flush_handshake()
        hello = Hello12(suite, group, share, ch.random, random, server_name)
        self._to(AwaitCertificate12(hello, auth) if auth is not None else AwaitClientKeyExchange(hello, ANONYMOUS))

    def _on_certificate_12(self, state: AwaitCertificate12, body: memoryview, raw: bytes) -> None:
        message = parse_certificate12(body, self._limits.x509.max_chain_certificates)
        self._transcript.add(raw)
        self._to(AwaitClientKeyExchange(state.hello, self._accept_client_chain(state.auth, message.chain)))

    def _on_client_key_exchange(self, state: AwaitClientKeyExchange, body: memoryview, raw: bytes) -> None:
        hello = state.hello
        message = parse_client_key_exchange(body)
        premaster = hello.share.exchange(message.public)
        self._transcript.add(raw)
        master = extended_master_secret(hello.suite.hash_name, premaster, self._transcript.digest())
        keys = Keys12(master, *keys12(hello.suite, master, hello.client_random, hello.server_random))
        if state.peer.chain:
            self._to(AwaitCertificateVerify12(hello, state.peer, keys))
        else:
            self._to(AwaitChangeCipherSpec(hello, state.peer, keys))

    def _on_certificate_verify_12(self, state: AwaitCertificateVerify12, body: memoryview, raw: bytes) -> None:
        message = parse_certificate_verify(body)
        signed = b"".join(self._messages12[:-1])
        verify(state.peer.key, message.scheme, message.signature, signed, HANDSHAKE_SCHEMES_12, curve_bound=False)
        self._transcript.add(raw)
        self._to(AwaitChangeCipherSpec(state.hello, state.peer, state.keys))

    def _on_change_cipher_spec(self, state: AwaitChangeCipherSpec, body: memoryview, raw: bytes) -> None:
        self._read = state.keys.pending_read
        self._to(AwaitFinished12(state.hello, state.peer, state.keys))

    def _on_finished_12(self, state: AwaitFinished12, body: memoryview, raw: bytes) -> None:
        suite, master = state.hello.suite, state.keys.master
        message = parse_finished(body, 12)
        expected = finished12(suite.hash_name, master, b"client finished", self._transcript.digest())
        check_finished(expected, message.verify_data, "client")
        self._transcript.add(raw)
        verify_data = finished12(suite.hash_name, master, b"server finished", self._transcript.digest())
        self._send_ccs()
        self._write = state.keys.pending_write
        self._queue_handshake(HandshakeType.FINISHED, verify_data)
        self._flush_handshake()
        self._complete(CONNECTED_12, version=TLS12, suite=suite, group=state.hello.group, peer=state.peer,
                       server_name=state.hello.server_name)


ServerState = (Start | AwaitClientHello2 | AwaitCertificate13 | AwaitCertificateVerify13 | AwaitFinished13
               | AwaitCertificate12 | AwaitClientKeyExchange | AwaitCertificateVerify12 | AwaitChangeCipherSpec
               | AwaitFinished12 | Connected13 | Connected12)

H = HandshakeType
ServerConnection._handlers = MappingProxyType({
    **SERVER_POST_HANDSHAKE,
    (Start, H.CLIENT_HELLO): ServerConnection._on_client_hello,
    (AwaitClientHello2, H.CLIENT_HELLO): ServerConnection._on_client_hello_2,
    (AwaitCertificate13, H.CERTIFICATE): ServerConnection._on_certificate_13,
    (AwaitCertificateVerify13, H.CERTIFICATE_VERIFY): ServerConnection._on_certificate_verify_13,
    (AwaitFinished13, H.FINISHED): ServerConnection._on_finished_13,
    (AwaitCertificate12, H.CERTIFICATE): ServerConnection._on_certificate_12,
    (AwaitClientKeyExchange, H.CLIENT_KEY_EXCHANGE): ServerConnection._on_client_key_exchange,
    (AwaitCertificateVerify12, H.CERTIFICATE_VERIFY): ServerConnection._on_certificate_verify_12,
    (AwaitChangeCipherSpec, CHANGE_CIPHER_SPEC): ServerConnection._on_change_cipher_spec,
    (AwaitFinished12, H.FINISHED): ServerConnection._on_finished_12,
})
"""(state class, message type) → handler: every pair not listed is unexpected_message."""

ServerConnection._transitions = frozenset({
    (Start, AwaitClientHello2),
    (Start, AwaitCertificate13), (AwaitClientHello2, AwaitCertificate13),
    (Start, AwaitFinished13), (AwaitClientHello2, AwaitFinished13),
    (AwaitCertificate13, AwaitCertificateVerify13), (AwaitCertificate13, AwaitFinished13),
    (AwaitCertificateVerify13, AwaitFinished13),
    (AwaitFinished13, Connected13),
    (Start, AwaitCertificate12), (Start, AwaitClientKeyExchange),
    (AwaitCertificate12, AwaitClientKeyExchange),
    (AwaitClientKeyExchange, AwaitCertificateVerify12), (AwaitClientKeyExchange, AwaitChangeCipherSpec),
    (AwaitCertificateVerify12, AwaitChangeCipherSpec),
    (AwaitChangeCipherSpec, AwaitFinished12),
    (AwaitFinished12, Connected12),
})
"""(from, to): the only state changes `_to` lets a handler make."""

