"""What a peer of an engine computes from the engine's own state: the peer's record keys, its Finished, its
handshake signatures. Read from the engine's state dataclasses (and its transcript), never patched in.

Why: after the ServerHello everything is encrypted and bound to the transcript, so mutated bytes would only
ever reach the AEAD check and the Finished comparison. A peer that seals each message under the keys the engine
expects, and signs and finishes over the transcript the engine holds, lets the fuzzer change any message and
still reach the states after it (the same idea as BoringSSL's fuzzer mode, without changing the engine). The
engine still checks everything: a Finished computed here over a transcript the engine did not agree to would
fail its comparison, and the peer can only sign with keys whose certificates the CA issued (the fixtures).
"""

from __future__ import annotations

from collections.abc import Mapping

from cryptography.hazmat.primitives import serialization

from tls import client_states, server_states
from tls.client import ClientConnection
from tls.constants import HandshakeType, NamedGroup
from tls.groups import SUPPORTED_GROUPS, KeyShare
from tls.handshake_common import CLIENT_CV_CONTEXT, SERVER_CV_CONTEXT, certificate_verify_content, keys12
from tls.keyschedule import finished12, traffic_key_iv
from tls.messages import (
    CertificateVerify,
    ServerKeyExchange,
    frame,
    serialize_certificate_verify,
    serialize_server_key_exchange,
)
from tls.record import Protection12, Protection13
from tls.server import ServerConnection
from tls.signatures import HANDSHAKE_SCHEMES_12, HANDSHAKE_SCHEMES_13, PrivateKey, schemes_for_key, sign
from tls.states import Connected13
from tls.suites import SuiteInfo

Engine = ServerConnection | ClientConnection
Protection = Protection13 | Protection12
_SKE_SHARE = b"fuzz-server-key-exchange-share!!" * 2
"""Our ECDHE private half when the scripted server signs its own ServerKeyExchange (64 bytes: any group)."""


def _suite13(state: object) -> SuiteInfo | None:
    if isinstance(state, Connected13):
        return state.suite
    suite = getattr(getattr(state, "keys", None), "suite", None)
    return suite if isinstance(suite, SuiteInfo) else None


def peer_protection(engine: Engine) -> Protection | None:
    """A fresh copy of the protection the engine reads with (None: it reads plaintext, or the state no longer
    says which keys): the peer seals with one copy and, when recording, opens the real peer's records with
    another."""
    read = engine._read
    if isinstance(read, Protection13):
        suite = _suite13(engine.state)
        if suite is None:
            return None
        return Protection13(suite, *traffic_key_iv(suite.hash_name, engine._read_secret, suite.key_length))
    if read is None:
        return None
    state = engine.state
    if isinstance(state, server_states.AwaitFinished12):
        hello = state.hello
        return keys12(hello.suite, state.keys.master, hello.client_random, hello.server_random)[0]
    if isinstance(state, client_states.AwaitFinished12) and isinstance(engine, ClientConnection):
        return keys12(state.hello.suite, state.master, engine._random, state.hello.server_random)[1]
    return None


def finished(engine: Engine) -> bytes | None:
    """The peer's whole Finished message for the engine's current state, or None when it awaits none."""
    state = engine.state
    digest = engine._transcript.digest
    if isinstance(state, server_states.AwaitFinished13):
        verify_data = state.keys.ks.finished(state.keys.client_hs, digest())
    elif isinstance(state, client_states.AwaitFinished13):
        verify_data = state.keys.ks.finished(state.keys.server_hs, digest())
    elif isinstance(state, server_states.AwaitFinished12):
        verify_data = finished12(state.hello.suite.hash_name, state.keys.master, b"client finished", digest())
    elif isinstance(state, client_states.AwaitFinished12):
        verify_data = finished12(state.hello.suite.hash_name, state.master, b"server finished", digest())
    else:
        return None
    return frame(HandshakeType.FINISHED, verify_data)


def leaf_spki(chain: tuple[bytes, ...]) -> bytes | None:
    """The leaf's SubjectPublicKeyInfo as `cryptography` encodes it (None: no leaf, or one it cannot load)."""
    from cryptography import x509  # noqa: PLC0415 (only here: the engine never sees this parser)

    if not chain:
        return None
    try:
        public = x509.load_der_x509_certificate(chain[0]).public_key()
    except ValueError:
        return None
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _pick(key: PrivateKey, allowed: tuple[int, ...], tls13: bool, choice: bytes) -> int | None:
    schemes = [s for s in schemes_for_key(key, tls13) if s in allowed]
    if not schemes:
        return None
    return schemes[choice[0] % len(schemes)] if choice else schemes[0]


def signed(engine: Engine, keys: Mapping[bytes, PrivateKey], choice: bytes) -> bytes | None:
    """The peer's signed message the state awaits (CertificateVerify, or a TLS 1.2 server's ServerKeyExchange),
    signed with the key of the certificate the peer sent, if we hold it; else None. `choice` picks the scheme
    (and the group of a ServerKeyExchange) among those the key can make."""
    state = engine.state
    if isinstance(state, server_states.AwaitCertificateVerify13 | client_states.AwaitCertificateVerify13):
        context = CLIENT_CV_CONTEXT if isinstance(engine, ServerConnection) else SERVER_CV_CONTEXT
        content = certificate_verify_content(context, engine._transcript.digest())
        return _verify_message(state.peer.chain, keys, allowed=HANDSHAKE_SCHEMES_13, tls13=True, choice=choice,
                               content=content)
    if isinstance(state, server_states.AwaitCertificateVerify12):
        content = b"".join(engine._messages12)
        return _verify_message(state.peer.chain, keys, allowed=HANDSHAKE_SCHEMES_12, tls13=False, choice=choice,
                               content=content)
    if isinstance(state, client_states.AwaitServerKeyExchange) and isinstance(engine, ClientConnection):
        key = keys.get(leaf_spki(state.peer.chain) or b"")
        scheme = _pick(key, HANDSHAKE_SCHEMES_12, False, choice) if key is not None else None
        if key is None or scheme is None:
            return None
        wanted = int.from_bytes(choice[1:3], "big") if len(choice) >= 3 else NamedGroup.X25519
        group = wanted if wanted in SUPPORTED_GROUPS else NamedGroup.X25519
        share = KeyShare(group, _SKE_SHARE[: KeyShare.random_length(group)])
        params = ServerKeyExchange(group, share.public, scheme, b"").params
        signature = sign(key, scheme, engine._random + state.hello.server_random + params)
        return frame(HandshakeType.SERVER_KEY_EXCHANGE,
                     serialize_server_key_exchange(ServerKeyExchange(group, share.public, scheme, signature)))
    return None


def _verify_message(chain: tuple[bytes, ...], keys: Mapping[bytes, PrivateKey], *, allowed: tuple[int, ...],
                    tls13: bool, choice: bytes, content: bytes) -> bytes | None:
    key = keys.get(leaf_spki(chain) or b"")
    scheme = _pick(key, allowed, tls13, choice) if key is not None else None
    if key is None or scheme is None:
        return None
    return frame(HandshakeType.CERTIFICATE_VERIFY,
                 serialize_certificate_verify(CertificateVerify(scheme, sign(key, scheme, content))))
