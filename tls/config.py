"""What an application configures for a connection. Randomness and time are passed in here so that the
engine never reads a clock or a random source itself (the adapters supply `os.urandom` and the wall clock)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from functools import cached_property
from typing import Final

from tls import x509
from tls.constants import TLS12, TLS13, NamedGroup
from tls.groups import SUPPORTED_GROUPS
from tls.limits import DEFAULT_LIMITS, Limits
from tls.messages import Certificate13, serialize_certificate13
from tls.peer import Validator, own_pss_key
from tls.signatures import PrivateKey, schemes_for_key
from tls.suites import DEFAULT_SUITES_12, DEFAULT_SUITES_13

RandomSource = Callable[[int], bytes]
Clock = Callable[[], datetime]


class ClientAuthMode(Enum):
    OPTIONAL = "optional"
    REQUIRED = "required"


@dataclass(frozen=True)
class ClientAuth:
    """A server's policy for client certificates: ask for one, validate it against `anchors` (DER)."""

    mode: ClientAuthMode
    anchors: tuple[bytes, ...]


@dataclass(frozen=True)
class Credential:
    """One certificate chain (DER, leaf first) with its private key, and the leaf's key if it is an
    id-RSASSA-PSS key (we then sign rsa_pss_pss_*). Build one with `Credential.of`, which parses that once."""

    chain: tuple[bytes, ...]
    key: PrivateKey
    pss_key: x509.RsaPssPublicKey | None

    @classmethod
    def of(cls, chain: tuple[bytes, ...], key: PrivateKey) -> Credential:
        return cls(chain, key, own_pss_key(key, chain))

    # What the credential alone decides is worked out once, on first use, not in every handshake it serves.

    @cached_property
    def schemes13(self) -> tuple[int, ...]:
        """The schemes this credential signs TLS 1.3 handshakes with, our preference first."""
        return schemes_for_key(self.key, True, self.pss_key)

    @cached_property
    def schemes12(self) -> tuple[int, ...]:
        """The schemes this credential signs TLS 1.2 handshakes with, our preference first."""
        return schemes_for_key(self.key, False, self.pss_key)

    @cached_property
    def certificate13(self) -> bytes:
        """The body of a TLS 1.3 server's Certificate message for this chain (empty request context, no
        extensions per entry): the same bytes in every handshake."""
        return serialize_certificate13(Certificate13(b"", tuple((der, ()) for der in self.chain)))


@dataclass(frozen=True)
class ServerConfig:
    """What a server connection is given: its credentials, its policy (versions, suites, groups, client
    authentication, limits), and the randomness and clock it uses, since the engine reads no OS source itself.
    Frozen: `pss_key` and `credentials` are computed from it once and would go stale if it changed."""

    chain: tuple[bytes, ...]
    """Our certificate chain, DER, leaf first: the preferred credential (see `more_credentials`)."""
    key: PrivateKey
    random: RandomSource
    time: Clock
    client_auth: ClientAuth | None = None
    versions: tuple[int, ...] = (TLS13, TLS12)
    suites: tuple[int, ...] = DEFAULT_SUITES_13 + DEFAULT_SUITES_12
    groups: tuple[int, ...] = SUPPORTED_GROUPS
    """Our preference order; a client that offered none of these as a key share gets a HelloRetryRequest."""
    limits: Limits = DEFAULT_LIMITS
    padding: int = 0
    """Pad TLS 1.3 records to a multiple of this many bytes (0: no padding)."""
    validator: Validator | None = None
    """Chain validator; None means `tls.x509.validate`."""
    more_credentials: tuple[Credential, ...] = ()
    """Further (chain, key) pairs, in our order of preference after `chain`/`key`. Why: one certificate cannot
    serve every client (an ECDSA one refuses clients that verify RSA signatures only), so the server picks,
    per ClientHello, the first credential the client can verify (its signature_algorithms; in TLS 1.2 also
    a cipher suite of the key's kind and, for ECDSA, the curve in its supported_groups)."""

    @cached_property
    def pss_key(self) -> x509.RsaPssPublicKey | None:
        """Our leaf's key if it is an id-RSASSA-PSS key (we then sign rsa_pss_pss_*); parsed once per config."""
        return own_pss_key(self.key, self.chain)

    @cached_property
    def credentials(self) -> tuple[Credential, ...]:
        """Every credential, preferred first: `chain`/`key`, then `more_credentials`."""
        return (Credential(self.chain, self.key, self.pss_key), *self.more_credentials)


@dataclass(frozen=True)
class NoValidation:
    """The named opt-out from validating the server's chain. A client that trusts whatever the server sends
    is almost always a bug, so it must be asked for by name (`NO_VALIDATION_FOR_TESTS`), never by leaving a
    field out: a forgotten `anchors` fails at construction instead of silently accepting any server."""


NO_VALIDATION_FOR_TESTS: Final = NoValidation()
"""Pass as `ClientConfig.anchors` to accept any server chain (tests, `tls_cli client --insecure`);
`HandshakeComplete.peer_validated` is then False."""


@dataclass(frozen=True)
class ClientConfig:
    """What a client connection is given: the anchors to validate the server against (no default, so validation is
    switched off only by name), the name to check, an optional client certificate, its policy, and the
    randomness and clock it uses, since the engine reads no OS source itself."""

    random: RandomSource
    time: Clock
    anchors: tuple[bytes, ...] | NoValidation
    """Trust anchors (DER) for the server's chain, or `NO_VALIDATION_FOR_TESTS`. There is no default and None
    is refused: validation is on unless switched off by name (as pyca's verifier needs a store to exist)."""
    server_name: str | None = None
    """Sent as SNI and checked against the certificate; None: no name check and no SNI."""
    chain: tuple[bytes, ...] = ()
    key: PrivateKey | None = None
    versions: tuple[int, ...] = (TLS13, TLS12)
    suites: tuple[int, ...] = DEFAULT_SUITES_13 + DEFAULT_SUITES_12
    groups: tuple[int, ...] = SUPPORTED_GROUPS
    key_share_groups: tuple[int, ...] = field(default=(NamedGroup.X25519,))
    """Groups we send a share for in the first ClientHello (the rest only after a HelloRetryRequest)."""
    limits: Limits = DEFAULT_LIMITS
    padding: int = 0
    validator: Validator | None = None

    def __post_init__(self) -> None:
        anchors: object = self.anchors
        if not isinstance(anchors, NoValidation | tuple):
            raise TypeError("ClientConfig.anchors must be a tuple of DER certificates or NO_VALIDATION_FOR_TESTS, "
                            f"not {anchors!r}")

    @cached_property
    def pss_key(self) -> x509.RsaPssPublicKey | None:
        """Our leaf's key if it is an id-RSASSA-PSS key (we then sign rsa_pss_pss_*); parsed once per config."""
        return own_pss_key(self.key, self.chain)
