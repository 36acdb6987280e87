"""Handshakes with id-RSASSA-PSS certificate keys (rsa_pss_pss_*), in memory, both versions and both roles.

The PKI is made by the `openssl` command (see psspki.py); certificates are valid from now, so these tests
use the wall clock as the engines' time. Every handshake signature is read back, so each test shows
which scheme was used and with which kind of key, not only that the handshake finished: the schemes are
read from the signatures on the wire (`signature_schemes`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from outcomes.category import Category
from tests.tls.flights import (
    client_flight_13,
    open_server_flight_13,
    seal13,
    server_flight_13,
    split_messages,
    split_records,
)
from tests.tls.hello import client_hello
from tests.tls.psspki import HAVE_OPENSSL, PemPair, PssPki
from tests.tls.pump import pump
from tests.tls.refusal import assert_refused, failure_of
from tls import x509
from tls.alerts import AlertDescription
from tls.client import ClientConnection
from tls.config import ClientAuth, ClientAuthMode, ClientConfig, ServerConfig
from tls.constants import TLS12, TLS13, ContentType, HandshakeType
from tls.constants import ExtensionType as E
from tls.constants import SignatureScheme as S
from tls.events import HandshakeComplete
from tls.extensions import find, parse_u16_list16, serialize_u16_list16
from tls.messages import (
    parse_certificate_request13,
    parse_certificate_verify,
    parse_client_hello,
    parse_server_key_exchange,
)
from tls.record import Record
from tls.server import ServerConnection

pytestmark = pytest.mark.skipif(not HAVE_OPENSSL, reason="openssl command not installed")


@dataclass(frozen=True)
class Pkis:
    pki: PssPki
    server: PemPair  # PSS key restricted to SHA-256
    server_384: PemPair  # PSS key restricted to SHA-384
    client: PemPair  # PSS key without parameters
    rsae_server: PemPair  # rsaEncryption key under the same PSS CA


@pytest.fixture(scope="module")
def pkis(tmp_path_factory: pytest.TempPathFactory) -> Pkis:
    pki = PssPki(Path(tmp_path_factory.mktemp("pss")))
    return Pkis(pki, pki.leaf("server", server=True, hash_name="sha256"),
                pki.leaf("server384", server=True, hash_name="sha384"),
                pki.leaf("client", server=False), pki.leaf("rsae", server=True, key_algorithm="RSA"))


def signature_schemes(c: ClientConnection, s: ServerConnection) -> dict[str, int]:
    """Run the handshake's first flights by hand and read, from the wire, the scheme of each handshake
    signature: {"client": scheme the client verified, "server": scheme the server verified}. TLS 1.3
    flights are opened with the keys the client's state holds; TLS 1.2 signatures travel in the clear."""
    found: dict[str, int] = {}
    s.receive_data(c.data_to_send())
    if s.version == TLS12:
        hello = s.data_to_send()
        server_messages = split_messages(b"".join(bytes(r.payload) for r in split_records(hello)))
        found.update(_schemes("client", server_messages))
        c.receive_data(hello)
        answer = c.data_to_send()
        found.update(_schemes("server", split_messages(b"".join(
            bytes(r.payload) for r in _until_change_cipher_spec(split_records(answer))))))
        s.receive_data(answer)
        return found
    flight = open_server_flight_13(c, s.data_to_send())
    found.update(_schemes("client", flight.messages))
    messages = client_flight_13(c, flight)
    found.update(_schemes("server", messages))
    s.receive_data(seal13(messages, flight.keys.client_hs, flight.keys.suite))
    return found


def _until_change_cipher_spec(records: list[Record]) -> list[Record]:
    """The handshake records sent in the clear: after ChangeCipherSpec comes the encrypted Finished, whose
    record is of the handshake type too but whose first byte is ciphertext (read as a message type, one time
    in 128 it was a CertificateVerify or a ServerKeyExchange, and parsing it failed)."""
    clear = []
    for record in records:
        if record.content_type == ContentType.CHANGE_CIPHER_SPEC:
            break
        if record.content_type == ContentType.HANDSHAKE:
            clear.append(record)
    return clear


def _schemes(role: str, messages: list[bytes]) -> dict[str, int]:
    for message in messages:
        if message[0] == HandshakeType.SERVER_KEY_EXCHANGE:
            return {role: parse_server_key_exchange(memoryview(message)[4:]).scheme}
        if message[0] == HandshakeType.CERTIFICATE_VERIFY:
            return {role: parse_certificate_verify(memoryview(message)[4:]).scheme}
    return {}


def now() -> datetime:
    return datetime.now(UTC)


def server_config(pkis: Pkis, leaf: PemPair, *, client_auth: bool = False, **kwargs: Any) -> ServerConfig:
    auth = ClientAuth(ClientAuthMode.REQUIRED, (pkis.pki.ca.der,)) if client_auth else None
    return ServerConfig(chain=(leaf.der,), key=leaf.key, random=os.urandom, time=now, client_auth=auth, **kwargs)


def client_config(pkis: Pkis, leaf: PemPair | None = None, **kwargs: Any) -> ClientConfig:
    credentials: dict[str, Any] = {"chain": (leaf.der,), "key": leaf.key} if leaf is not None else {}
    return ClientConfig(random=os.urandom, time=now, anchors=(pkis.pki.ca.der,), server_name="localhost",
                        **credentials, **kwargs)


def handshake(server: ServerConfig, client: ClientConfig) -> tuple[HandshakeComplete, HandshakeComplete]:
    done_c, done_s, _ = handshake_signed(server, client)
    return done_c, done_s


def handshake_signed(server: ServerConfig, client: ClientConfig) -> tuple[
        HandshakeComplete, HandshakeComplete, dict[str, int]]:
    """A completed handshake, and the scheme of each handshake signature (see `signature_schemes`)."""
    c, s = ClientConnection(client), ServerConnection(server)
    schemes = signature_schemes(c, s)
    client_events, server_events = pump(c, s)
    done_c = [e for e in client_events if isinstance(e, HandshakeComplete)]
    done_s = [e for e in server_events if isinstance(e, HandshakeComplete)]
    assert len(done_c) == len(done_s) == 1, (client_events, server_events)
    return done_c[0], done_s[0], schemes


def leaf_key(done: HandshakeComplete) -> object:
    return x509.parse_certificate(done.peer_chain[0]).public_key()


@pytest.mark.parametrize(("version", "name"), [(TLS13, "TLSv1.3"), (TLS12, "TLSv1.2")])
def test_pss_key_server_and_client_certificates(pkis: Pkis, version: int, name: str) -> None:
    done_c, done_s, schemes = handshake_signed(server_config(pkis, pkis.server, client_auth=True),
                                               client_config(pkis, pkis.client, versions=(version,)))
    assert done_c.version == done_s.version == name
    assert done_c.peer_validated
    assert done_s.peer_validated
    if version == TLS12:
        assert done_c.cipher_suite.startswith("TLS_ECDHE_RSA")
    assert set(schemes) == {"client", "server"}
    # The server's key is restricted to SHA-256; the client's has no parameters: our first preference.
    assert schemes["client"] == S.RSA_PSS_PSS_SHA256
    assert schemes["server"] == S.RSA_PSS_PSS_SHA256
    server_key, client_key = leaf_key(done_c), leaf_key(done_s)
    assert isinstance(server_key, x509.RsaPssPublicKey)
    assert server_key.hash_name == "sha256"
    assert isinstance(client_key, x509.RsaPssPublicKey)
    assert client_key.hash_name is None


@pytest.mark.parametrize("version", [TLS13, TLS12])
def test_restricted_key_signs_with_its_own_hash(pkis: Pkis, version: int) -> None:
    _, _, schemes = handshake_signed(server_config(pkis, pkis.server_384), client_config(pkis, versions=(version,)))
    assert schemes == {"client": S.RSA_PSS_PSS_SHA384}


def test_rsa_encryption_leaf_under_a_pss_ca_uses_rsae(pkis: Pkis) -> None:
    """A PSS-key CA signs an rsaEncryption leaf: the chain validates, the handshake uses rsa_pss_rsae."""
    _, _, schemes = handshake_signed(server_config(pkis, pkis.rsae_server), client_config(pkis))
    assert schemes == {"client": S.RSA_PSS_RSAE_SHA256}


def test_our_pss_key_is_read_from_our_certificate(pkis: Pkis) -> None:
    assert server_config(pkis, pkis.server).pss_key == x509.parse_certificate(pkis.server.der).public_key()
    assert server_config(pkis, pkis.rsae_server).pss_key is None
    assert client_config(pkis).pss_key is None


def forced(config: ServerConfig, pss_key: x509.RsaPssPublicKey | None) -> ServerConfig:
    """A server that signs as if its certificate key were `pss_key`: a peer lying about its key type."""
    config.__dict__["pss_key"] = pss_key
    return config


def unrestricted(pair: PemPair) -> x509.RsaPssPublicKey:
    key = pair.key.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    return x509.RsaPssPublicKey(key)


@pytest.mark.parametrize("version", [TLS13, TLS12])
@pytest.mark.parametrize("case", ["hash-outside-restriction", "rsae-from-pss-key", "pss-from-rsae-key"])
def test_client_refuses_a_signature_that_does_not_fit_the_certificate_key(pkis: Pkis, version: int,
                                                                           case: str) -> None:
    if case == "hash-outside-restriction":  # the certificate says SHA-384 only; the server signs SHA-256
        config = forced(server_config(pkis, pkis.server_384), unrestricted(pkis.server_384))
    elif case == "rsae-from-pss-key":  # an id-RSASSA-PSS certificate, but an rsa_pss_rsae signature
        config = forced(server_config(pkis, pkis.server), None)
    else:  # an rsaEncryption certificate, but an rsa_pss_pss signature
        config = forced(server_config(pkis, pkis.rsae_server), unrestricted(pkis.rsae_server))
    c, s = ClientConnection(client_config(pkis, versions=(version,))), ServerConnection(config)
    client_events, _ = pump(c, s)
    failure = failure_of(client_events)
    assert (failure.alert, failure.category) == (AlertDescription.ILLEGAL_PARAMETER,
                                                  Category.WRONG_SIGNATURE_SCHEME), failure


@pytest.mark.parametrize("version", [TLS13, TLS12])
def test_server_refuses_a_client_signature_that_does_not_fit_the_certificate_key(pkis: Pkis, version: int) -> None:
    """The client's certificate is an rsaEncryption one but it signs rsa_pss_pss."""
    client = client_config(pkis, pkis.rsae_server, versions=(version,))
    client.__dict__["pss_key"] = unrestricted(pkis.rsae_server)
    # The rsae leaf has serverAuth only; validation would stop first, so accept any chain here.
    config = server_config(pkis, pkis.server, client_auth=True, validator=_leaf_key_only)
    c, s = ClientConnection(client), ServerConnection(config)
    _, server_events = pump(c, s)
    failure = failure_of(server_events)
    assert (failure.alert, failure.category) == (AlertDescription.ILLEGAL_PARAMETER,
                                                  Category.WRONG_SIGNATURE_SCHEME), failure


def _leaf_key_only(chain: Any, **_: Any) -> Any:
    @dataclass(frozen=True)
    class Path:
        leaf: x509.Certificate

    return Path(x509.parse_certificate(chain[0]))


def test_server_with_pss_key_refuses_a_client_without_rsa_pss_pss(pkis: Pkis) -> None:
    schemes = serialize_u16_list16([S.RSA_PSS_RSAE_SHA256, S.ECDSA_SECP256R1_SHA256, S.RSA_PKCS1_SHA256])
    hello = client_hello(drop=(E.SIGNATURE_ALGORITHMS,), add=((E.SIGNATURE_ALGORITHMS, schemes),))
    assert_refused(ServerConnection(server_config(pkis, pkis.server)), hello, AlertDescription.HANDSHAKE_FAILURE,
                   Category.NO_SHARED_SIGNATURE_ALGORITHM)


def test_server_with_sha384_pss_key_refuses_a_client_offering_only_sha256(pkis: Pkis) -> None:
    schemes = serialize_u16_list16([S.RSA_PSS_PSS_SHA256, S.RSA_PSS_PSS_SHA512])
    hello = client_hello(drop=(E.SIGNATURE_ALGORITHMS,), add=((E.SIGNATURE_ALGORITHMS, schemes),))
    assert_refused(ServerConnection(server_config(pkis, pkis.server_384)), hello,
                   AlertDescription.HANDSHAKE_FAILURE, Category.NO_SHARED_SIGNATURE_ALGORITHM)


def _offered(extensions: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    algorithms = find(extensions, E.SIGNATURE_ALGORITHMS)
    algorithms_cert = find(extensions, E.SIGNATURE_ALGORITHMS_CERT)
    assert algorithms is not None
    assert algorithms_cert is not None
    return parse_u16_list16(algorithms, "sa"), parse_u16_list16(algorithms_cert, "sac")


@pytest.mark.parametrize("versions", [(TLS13, TLS12), (TLS13,), (TLS12,)])
def test_client_hello_separates_handshake_and_certificate_schemes(pkis: Pkis, versions: tuple[int, ...]) -> None:
    """signature_algorithms: what we accept in CertificateVerify/ServerKeyExchange (both PSS flavours; PKCS#1
    only with TLS 1.2 on offer; no P-521). signature_algorithms_cert: what the validator verifies."""
    c = ClientConnection(client_config(pkis, versions=versions))
    record = c.data_to_send()
    hello = parse_client_hello(memoryview(record)[9:])
    handshake_schemes, cert_schemes = _offered(hello.extensions)
    pss_pss = {S.RSA_PSS_PSS_SHA256, S.RSA_PSS_PSS_SHA384, S.RSA_PSS_PSS_SHA512}
    pkcs1 = {S.RSA_PKCS1_SHA256, S.RSA_PKCS1_SHA384, S.RSA_PKCS1_SHA512}
    assert pss_pss <= set(handshake_schemes)
    assert pss_pss <= set(cert_schemes)
    assert S.ECDSA_SECP521R1_SHA512 not in handshake_schemes
    assert S.ECDSA_SECP521R1_SHA512 in cert_schemes
    assert pkcs1 <= set(cert_schemes)
    assert (pkcs1 <= set(handshake_schemes)) == (TLS12 in versions)
    assert bool(pkcs1 & set(handshake_schemes)) == (TLS12 in versions)


def test_certificate_request_separates_handshake_and_certificate_schemes(pkis: Pkis) -> None:
    c = ClientConnection(client_config(pkis, pkis.client))
    flight = server_flight_13(c, ServerConnection(server_config(pkis, pkis.server, client_auth=True)))
    requests = [parse_certificate_request13(memoryview(m)[4:]) for m in flight.messages
                if m[0] == HandshakeType.CERTIFICATE_REQUEST]
    assert len(requests) == 1
    handshake_schemes, cert_schemes = _offered(requests[0].extensions)
    assert S.RSA_PSS_PSS_SHA256 in handshake_schemes
    assert S.RSA_PKCS1_SHA256 not in handshake_schemes  # never in a TLS 1.3 CertificateVerify
    assert {S.RSA_PSS_PSS_SHA256, S.RSA_PKCS1_SHA256, S.ECDSA_SECP521R1_SHA512} <= set(cert_schemes)
