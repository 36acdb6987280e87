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
    """Our ClientHello is sent: a ServerHello for TLS 1.3 or 1.2 (RFC 8446 §4.1.3) or a HelloRetryRequest
    (§4.1.4) may come, and its version, suite and extensions are checked against `offer`."""

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
    """TLS 1.3 after the ServerHello, under the handshake keys: EncryptedExtensions (RFC 8446 §4.3.1) may answer
    only the extension types we offered (`offered`), and none that belong in another message."""

    keys: Keys13
    offered: frozenset[int]


@dataclass(frozen=True, slots=True)
class AwaitCertificateOrRequest13:
    """TLS 1.3 after EncryptedExtensions: a CertificateRequest (RFC 8446 §4.3.2), or the server's Certificate
    (§4.4.2) when it asks for no client certificate."""

    keys: Keys13


@dataclass(frozen=True, slots=True)
class AwaitCertificate13:
    """The server sent a CertificateRequest accepting `request` signature schemes."""

    keys: Keys13
    request: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class AwaitCertificateVerify13:
    """The server's chain is accepted (`peer`): its CertificateVerify (RFC 8446 §4.4.3) must sign the transcript
    with the leaf's key. `request` rides along to our flight after the server's Finished."""

    keys: Keys13
    request: tuple[int, ...] | None
    """The schemes of the server's CertificateRequest, None when it asked for no certificate."""
    peer: Peer


@dataclass(frozen=True, slots=True)
class AwaitFinished13:
    """The server's signature is verified: its Finished (RFC 8446 §4.4.4) ends its flight, and we answer with a
    certificate if `request` asked for one, then our Finished."""

    keys: Keys13
    request: tuple[int, ...] | None
    peer: Peer


@dataclass(frozen=True, slots=True)
class Hello12:
    """What a TLS 1.2 ServerHello fixes for the rest of the handshake: the suite, and the server random that the
    ServerKeyExchange signature and the key block (RFC 5246 §6.3) are computed over."""

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
    """TLS 1.2 after the ServerHello: the server's Certificate (RFC 5246 §7.4.2). Every suite we offer is ECDHE
    signed with a certificate, so it cannot be left out."""

    hello: Hello12


@dataclass(frozen=True, slots=True)
class AwaitServerKeyExchange:
    """The server's chain is accepted: its ServerKeyExchange (RFC 5246 §7.4.3, ECDHE parameters per RFC 8422
    §5.4) must be signed by the leaf's key over both randoms and the parameters."""

    hello: Hello12
    peer: Peer


@dataclass(frozen=True, slots=True)
class AwaitRequestOrDone:
    """The server's ECDHE parameters are verified and our share made (`exchange`): a CertificateRequest
    (RFC 5246 §7.4.4) or the ServerHelloDone (§7.4.5) comes next."""

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
    """Our flight through Finished is sent: the server's ChangeCipherSpec switches reading to `pending_read`, the
    server write keys derived from `master` (RFC 5246 §6.3), held here until it comes."""

    hello: Hello12
    peer: Peer
    group: int
    master: bytes
    pending_read: Protection12


@dataclass(frozen=True, slots=True)
class AwaitFinished12:
    """The server's ChangeCipherSpec came: its Finished (RFC 5246 §7.4.9) must carry the verify_data of `master`
    over the transcript; `group` and `peer` go into the HandshakeComplete event."""

    hello: Hello12
    peer: Peer
    group: int
    master: bytes
