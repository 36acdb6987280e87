"""Events a TLS engine hands to the layer above it.

Both our engine (`tls.server.ServerConnection`, `tls.client.ClientConnection`) and the appliance's
stdlib-`ssl` comparison engine emit exactly these, so the layers above cannot tell them apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from outcomes.category import Category


@dataclass(frozen=True)
class HandshakeComplete:
    """The handshake finished; `peer_chain` is the peer's certificate chain as sent (DER, leaf first),
    empty when the peer did not authenticate. `peer_validated` says whether it passed the configured
    validator against the configured anchors (always False when no validation was asked for)."""

    version: str  # "TLSv1.3" or "TLSv1.2"
    cipher_suite: str  # IANA name, e.g. "TLS_AES_128_GCM_SHA256"
    group: str  # e.g. "x25519", "secp256r1"
    peer_chain: tuple[bytes, ...]
    peer_validated: bool
    server_name: str | None = None


@dataclass(frozen=True)
class ApplicationData:
    """Application data the peer sent after the handshake, decrypted and in order. Never empty: our engine counts
    empty records against a limit instead of handing them up."""

    data: bytes


@dataclass(frozen=True)
class AlertReceived:
    """The peer sent an alert. Fatal alerts are followed by `Closed`."""

    level: int
    description: int


@dataclass(frozen=True)
class HandshakeFailed:
    """We refused the connection: `alert` is the alert we sent (already in `data_to_send`),
    `category` the failure category recorded for it, `reason` a human-readable explanation
    (safe to log: never contains key material)."""

    alert: int
    category: Category
    reason: str


@dataclass(frozen=True)
class RequestRefused:
    """We refused something the peer asked for with a warning-level `alert` and the connection goes on
    (RFC 5246 §7.2.2: a TLS 1.2 renegotiation gets no_renegotiation, always a warning). `category` is what a
    layer above may record for it; if the peer insists, the refusal becomes a `HandshakeFailed`."""

    alert: int
    category: Category
    reason: str


@dataclass(frozen=True)
class Closed:
    """The connection is over: after a close_notify in both directions, a fatal alert, or a failure.
    No more data will be accepted or produced except what is already in `data_to_send`."""

    clean: bool


Event = HandshakeComplete | ApplicationData | AlertReceived | HandshakeFailed | RequestRefused | Closed
