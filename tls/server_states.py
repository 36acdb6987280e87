"""The server's handshake states, each a frozen dataclass holding exactly what is known and needed there.

Why: a handler receives its state as an argument and can only read what that state carries, so "the client's
chain is validated before its CertificateVerify is checked" is a type fact (`AwaitCertificateVerify13.peer`),
not a nullable field that an `assert` hopes is set. Which message each state accepts is in `tls.server`'s
dispatch table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from tls.config import ClientAuth
from tls.groups import KeyShare
from tls.keyschedule import KeySchedule13
from tls.messages import ClientHello
from tls.record import Protection12
from tls.states import Peer
from tls.suites import SuiteInfo


@dataclass(frozen=True, slots=True)
class Start:
    """Nothing received yet: only a ClientHello may come."""


START: Final = Start()


@dataclass(frozen=True, slots=True)
class AwaitClientHello2:
    """We sent a HelloRetryRequest for `group`: the second ClientHello must repeat the first's random and
    session id, keep `suite`, and carry exactly that one key share."""

    first: ClientHello
    suite: SuiteInfo
    group: int
    compat_ccs_sent: bool


@dataclass(frozen=True, slots=True)
class Keys13:
    """A TLS 1.3 handshake after our flight: the client's flight is read under `client_hs`, and its
    Finished switches reading to `client_app`."""

    suite: SuiteInfo
    group: int
    ks: KeySchedule13
    client_hs: bytes
    client_app: bytes
    server_name: str | None


@dataclass(frozen=True, slots=True)
class AwaitCertificate13:
    """Our flight went with a CertificateRequest (`auth` is the policy that sent it): the client's Certificate
    (RFC 8446 §4.4.2) comes first, empty when it has none, which `auth.mode` allows or refuses."""

    keys: Keys13
    auth: ClientAuth


@dataclass(frozen=True, slots=True)
class AwaitCertificateVerify13:
    """The client's chain is validated (`peer`): its CertificateVerify (RFC 8446 §4.4.3) must sign the transcript
    with the leaf's key. Reached only when the client sent a certificate."""

    keys: Keys13
    peer: Peer


@dataclass(frozen=True, slots=True)
class AwaitFinished13:
    """The client's Finished (RFC 8446 §4.4.4) ends the handshake; `peer` is the verified client, or ANONYMOUS when
    we asked for no certificate or it sent none."""

    keys: Keys13
    peer: Peer


@dataclass(frozen=True, slots=True)
class Hello12:
    """What our TLS 1.2 ServerHello flight fixed: the suite, our ECDHE share and both randoms."""

    suite: SuiteInfo
    group: int
    share: KeyShare
    client_random: bytes
    server_random: bytes
    server_name: str | None


@dataclass(frozen=True, slots=True)
class Keys12:
    """The TLS 1.2 master secret and record protection, in force once each side's ChangeCipherSpec passes."""

    master: bytes
    pending_read: Protection12
    pending_write: Protection12


@dataclass(frozen=True, slots=True)
class AwaitCertificate12:
    """Our TLS 1.2 flight ended with a CertificateRequest (`auth` is the policy that sent it): the client's
    Certificate (RFC 5246 §7.4.6) comes first, empty when it has none, which `auth.mode` allows or refuses."""

    hello: Hello12
    auth: ClientAuth


@dataclass(frozen=True, slots=True)
class AwaitClientKeyExchange:
    """Waiting for the client's ECDHE share (RFC 5246 §7.4.7, RFC 8422 §5.7), from which the extended master
    secret (RFC 7627) and both directions' keys are derived; `peer` is the client's validated chain or ANONYMOUS."""

    hello: Hello12
    peer: Peer


@dataclass(frozen=True, slots=True)
class AwaitCertificateVerify12:
    """The client sent a certificate: its CertificateVerify (RFC 5246 §7.4.8) must sign every handshake message
    before it with the leaf's key, proving it holds that key."""

    hello: Hello12
    peer: Peer
    keys: Keys12


@dataclass(frozen=True, slots=True)
class AwaitChangeCipherSpec:
    """The keys are derived (`keys`): the client's ChangeCipherSpec switches reading to `keys.pending_read`: the
    server's one state that accepts a TLS 1.2 ChangeCipherSpec."""

    hello: Hello12
    peer: Peer
    keys: Keys12


@dataclass(frozen=True, slots=True)
class AwaitFinished12:
    """The client's ChangeCipherSpec came: its Finished (RFC 5246 §7.4.9) must carry the verify_data of the master
    secret over the transcript; then we send our CCS and Finished."""

    hello: Hello12
    peer: Peer
    keys: Keys12
