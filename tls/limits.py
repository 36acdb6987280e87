"""Every bound the engine enforces, in one place. Exceeding one is a `ProtocolError` with a category the
appliance counts (resource-limit, record-overflow, path-too-long), never an unbounded buffer."""

from __future__ import annotations

from dataclasses import dataclass, field

from tls.x509.limits import ValidationLimits

MAX_PLAINTEXT = 2**14
"""RFC 8446 §5.1: a record's plaintext never exceeds 2^14 bytes."""
MAX_CIPHERTEXT_13 = 2**14 + 256
"""RFC 8446 §5.2: TLS 1.3 ciphertext may be at most 2^14 + 256 bytes."""
MAX_CIPHERTEXT_12 = 2**14 + 2048
"""RFC 5246 §6.2.3: TLS 1.2 allows 2048 bytes of expansion; our AEAD suites need far less (we still cap it)."""

MAX_DNS_NAME_OCTETS = 255
"""RFC 1035 §2.3.4: a domain name is at most 255 octets in wire form (each label plus its length octet, plus
the root's zero octet), so a host name written without the trailing dot has at most 253 characters. RFC 6066
§3 makes the SNI HostName a DNS host name; its 2^16-1 byte length field is not the bound."""
MAX_DNS_LABEL_OCTETS = 63
"""RFC 1035 §2.3.4: a label is at most 63 octets."""


@dataclass(frozen=True)
class Limits:
    """Named limits for one connection. Defaults suit the appliance; tests shrink them to reach the edges."""

    max_handshake_message: int = 32 * 1024
    """Largest handshake message body we reassemble (a Certificate with a few chain members fits easily)."""
    handshake_buffer: int = 64 * 1024
    """Most bytes of handshake data buffered before they form whole messages."""
    max_record_ciphertext: int = MAX_CIPHERTEXT_13
    """Records longer than this are refused with record_overflow (RFC 8446's bound, also applied to 1.2)."""
    max_empty_records: int = 32
    """Consecutive records carrying no data (empty application data, padding only) before we give up."""
    max_warning_alerts: int = 4
    """user_canceled or other warning alerts tolerated in a row."""
    max_ccs: int = 1
    """Middlebox-compatibility ChangeCipherSpec records accepted in a TLS 1.3 handshake."""
    max_key_updates: int = 32
    """KeyUpdate messages accepted in a row without application data in between."""
    max_early_data_skip: int = 16 * 1024
    """Bytes of refused 0-RTT data a server skips before it stops trusting that it is early data."""
    max_renegotiation_refusals: int = 1
    """TLS 1.2 renegotiation requests (a ClientHello or HelloRequest after the handshake) answered with a
    warning no_renegotiation (RFC 5246 §7.2.2) before the next one ends the connection: a peer that ignores
    the refusal cannot make us answer forever."""
    max_post_handshake_messages: int = 64
    """NewSessionTicket or other post-handshake messages accepted in a row without application data."""

    x509: ValidationLimits = field(default_factory=ValidationLimits)
    """The peer's chain: how many certificates its Certificate message may carry (`max_chain_certificates`,
    the one cap on chain length) and what validating them may cost."""

DEFAULT_LIMITS = Limits()
