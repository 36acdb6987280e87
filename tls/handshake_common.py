"""Pieces of the handshake that both roles use: version choice helpers, CertificateVerify content, the
TLS 1.2 key block, the Finished check, and the base class that reports a finished handshake."""

from __future__ import annotations

import hmac

from cryptography.hazmat.primitives.asymmetric import rsa

from outcomes.category import Category
from tls.connection import Connection
from tls.constants import SSL30, TLS12, VERSION_NAMES, group_name
from tls.errors import ProtocolError
from tls.events import HandshakeComplete
from tls.keyschedule import key_block12
from tls.record import Protection12
from tls.signatures import PrivateKey
from tls.states import Connected12, Connected13, Peer
from tls.suites import SuiteInfo

SERVER_CV_CONTEXT = b"TLS 1.3, server CertificateVerify"
CLIENT_CV_CONTEXT = b"TLS 1.3, client CertificateVerify"


def certificate_verify_content(context: bytes, transcript_hash: bytes) -> bytes:
    """RFC 8446 §4.4.3: 64 spaces, the context string, a zero byte, the transcript hash."""
    return b" " * 64 + context + b"\x00" + transcript_hash


def refuse_version(highest: int) -> ProtocolError:
    """The refusal for a peer whose best version is below what we speak, in its category."""
    if highest <= SSL30:
        return ProtocolError(Category.SSLV3, f"version {highest:#06x} (SSLv3)")
    if highest < TLS12:
        return ProtocolError(Category.OLD_TLS_VERSION,
                             f"version {highest:#06x} is older than TLS 1.2")
    return ProtocolError(Category.OLD_TLS_VERSION,
                         f"no version in common (peer's best {highest:#06x})")


def keys12(suite: SuiteInfo, master: bytes, client_random: bytes, server_random: bytes) -> tuple[
        Protection12, Protection12]:
    """(client write, server write) record protection from the TLS 1.2 key block (no MAC keys: AEAD)."""
    iv_length = 4 if suite.aead == "aes-gcm" else 12
    block = key_block12(suite.hash_name, master, client_random, server_random, 2 * (suite.key_length + iv_length))
    k = suite.key_length
    client_key, server_key = block[:k], block[k : 2 * k]
    client_iv, server_iv = block[2 * k : 2 * k + iv_length], block[2 * k + iv_length :]
    return Protection12(suite, client_key, client_iv), Protection12(suite, server_key, server_iv)


def key_kind(key: PrivateKey) -> str:
    """"rsa" or "ecdsa" (Ed25519 counts as ecdsa for TLS 1.2 suites, RFC 8422 §5.1.1)."""
    return "rsa" if isinstance(key, rsa.RSAPrivateKey) else "ecdsa"


def check_finished(expected: bytes, received: bytes, sender: str) -> None:
    """The peer's Finished must equal the one we compute, compared in constant time: it is what proves that
    both sides saw the same handshake (RFC 8446 §4.4.4, RFC 5246 §7.4.9)."""
    if not hmac.compare_digest(expected, received):
        raise ProtocolError(Category.BAD_FINISHED, f"{sender} Finished is wrong")


class HandshakeConnection(Connection):
    """The handshake steps both roles take alike. Each role's states are its own frozen dataclasses
    (`tls.server_states`, `tls.client_states`); what is shared after the handshake is in `tls.states`."""

    def _complete(self, connected: Connected13 | Connected12, *, version: int, suite: SuiteInfo, group: int,
                  peer: Peer, server_name: str | None) -> None:
        self._to(connected)
        self.version = version
        self.handshake_complete = True
        self._messages12 = []
        self._events.append(HandshakeComplete(
            version=VERSION_NAMES[version], cipher_suite=suite.name, group=group_name(group),
            peer_chain=peer.chain, peer_validated=peer.validated, server_name=server_name))
