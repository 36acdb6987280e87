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
    keys: Keys13
    auth: ClientAuth


@dataclass(frozen=True, slots=True)
class AwaitCertificateVerify13:
    keys: Keys13
    peer: Peer


@dataclass(frozen=True, slots=True)
class AwaitFinished13:
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
    hello: Hello12
    auth: ClientAuth


@dataclass(frozen=True, slots=True)
class AwaitClientKeyExchange:
    hello: Hello12
    peer: Peer


@dataclass(frozen=True, slots=True)
class AwaitCertificateVerify12:
    hello: Hello12
    peer: Peer
    keys: Keys12


@dataclass(frozen=True, slots=True)
class AwaitChangeCipherSpec:
    hello: Hello12
    peer: Peer
    keys: Keys12


@dataclass(frozen=True, slots=True)
class AwaitFinished12:
    hello: Hello12
    peer: Peer
    keys: Keys12
