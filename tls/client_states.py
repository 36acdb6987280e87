"""The client's handshake states, each a frozen dataclass holding exactly what is known and needed there.

Why: the server's answers are checked against what we offered and what it already said, and each check
reads that from the state it arrives in (`AwaitServerHelloDone.request` exists only if the server asked for
a certificate) instead of from nullable fields. Which message each state accepts is in `tls.client`'s
dispatch table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tls.groups import KeyShare
from tls.keyschedule import KeySchedule13
from tls.messages import ClientHello
from tls.record import Protection12
from tls.states import Peer
from tls.suites import SuiteInfo


@dataclass(frozen=True, slots=True)
class Offer:
    """Our latest ClientHello, the extension types it carried, and our private halves of its key shares."""

    hello: ClientHello
    extensions: frozenset[int]
    shares: Mapping[int, KeyShare]


@dataclass(frozen=True, slots=True)
class AwaitServerHello:
    offer: Offer


@dataclass(frozen=True, slots=True)
class AwaitServerHello2:
    """After a HelloRetryRequest: the ServerHello must be TLS 1.3 with the retry's suite."""

    offer: Offer
    hrr_suite: SuiteInfo


@dataclass(frozen=True, slots=True)
class Keys13:
    """A TLS 1.3 handshake after the ServerHello. `retried`: a HelloRetryRequest came (we then sent the
    middlebox-compatibility CCS already)."""

    suite: SuiteInfo
    group: int
    ks: KeySchedule13
    client_hs: bytes
    server_hs: bytes
    retried: bool


@dataclass(frozen=True, slots=True)
class AwaitEncryptedExtensions:
    keys: Keys13
    offered: frozenset[int]


@dataclass(frozen=True, slots=True)
class AwaitCertificateOrRequest13:
    keys: Keys13


@dataclass(frozen=True, slots=True)
class AwaitCertificate13:
    """The server sent a CertificateRequest accepting `request` signature schemes."""

    keys: Keys13
    request: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class AwaitCertificateVerify13:
    keys: Keys13
    request: tuple[int, ...] | None
    """The schemes of the server's CertificateRequest, None when it asked for no certificate."""
    peer: Peer


@dataclass(frozen=True, slots=True)
class AwaitFinished13:
    keys: Keys13
    request: tuple[int, ...] | None
    peer: Peer


@dataclass(frozen=True, slots=True)
class Hello12:
    suite: SuiteInfo
    server_random: bytes


@dataclass(frozen=True, slots=True)
class Exchange12:
    """The server's signed ECDHE parameters and our share for that group."""

    group: int
    share: KeyShare
    server_public: bytes


@dataclass(frozen=True, slots=True)
class AwaitCertificate12:
    hello: Hello12


@dataclass(frozen=True, slots=True)
class AwaitServerKeyExchange:
    hello: Hello12
    peer: Peer


@dataclass(frozen=True, slots=True)
class AwaitRequestOrDone:
    hello: Hello12
    peer: Peer
    exchange: Exchange12


@dataclass(frozen=True, slots=True)
class AwaitServerHelloDone:
    """The server sent a CertificateRequest accepting `request` signature schemes."""

    hello: Hello12
    peer: Peer
    exchange: Exchange12
    request: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class AwaitChangeCipherSpec12:
    hello: Hello12
    peer: Peer
    group: int
    master: bytes
    pending_read: Protection12


@dataclass(frozen=True, slots=True)
class AwaitFinished12:
    hello: Hello12
    peer: Peer
    group: int
    master: bytes
