"""Alert levels and descriptions (RFC 8446 §6, RFC 5246 §7.2), and the one table that says which alert a
failure category sends (ocaml-tls's `alert_of_failure`).

Raise sites name a `Category` only: the alert is looked up here, so one kind of failure can never be told to
the peer in two different ways depending on which line noticed it, and a test can check the whole mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from types import MappingProxyType
from typing import Final

from outcomes.category import Category


class AlertLevel(IntEnum):
    WARNING = 1
    FATAL = 2


class AlertDescription(IntEnum):
    CLOSE_NOTIFY = 0
    UNEXPECTED_MESSAGE = 10
    BAD_RECORD_MAC = 20
    RECORD_OVERFLOW = 22
    HANDSHAKE_FAILURE = 40
    BAD_CERTIFICATE = 42
    UNSUPPORTED_CERTIFICATE = 43
    CERTIFICATE_REVOKED = 44
    CERTIFICATE_EXPIRED = 45
    CERTIFICATE_UNKNOWN = 46
    ILLEGAL_PARAMETER = 47
    UNKNOWN_CA = 48
    ACCESS_DENIED = 49
    DECODE_ERROR = 50
    DECRYPT_ERROR = 51
    PROTOCOL_VERSION = 70
    INSUFFICIENT_SECURITY = 71
    INTERNAL_ERROR = 80
    INAPPROPRIATE_FALLBACK = 86
    USER_CANCELED = 90
    NO_RENEGOTIATION = 100
    MISSING_EXTENSION = 109
    UNSUPPORTED_EXTENSION = 110
    UNRECOGNIZED_NAME = 112
    CERTIFICATE_REQUIRED = 116
    NO_APPLICATION_PROTOCOL = 120


def alert_name(description: int) -> str:
    """A readable name for any alert number, including ones we never send."""
    try:
        return AlertDescription(description).name.lower()
    except ValueError:
        return f"alert_{description}"


C = Category
A = AlertDescription
ALERT_OF: Final[Mapping[Category, AlertDescription]] = MappingProxyType({
    # first bytes and records
    C.NOT_TLS: A.UNEXPECTED_MESSAGE,
    C.BAD_RECORD_VERSION: A.PROTOCOL_VERSION,
    C.SSLV2: A.PROTOCOL_VERSION,
    C.SSLV3: A.PROTOCOL_VERSION,
    C.OLD_TLS_VERSION: A.PROTOCOL_VERSION,
    C.RECORD_OVERFLOW: A.RECORD_OVERFLOW,
    C.BAD_MAC: A.BAD_RECORD_MAC,
    C.EARLY_DATA: A.BAD_RECORD_MAC,  # refused 0-RTT beyond the skip limit: records we cannot open
    # a malformed message, and (as OpenSSL does) a certificate whose DER does not parse
    C.DECODE_ERROR: A.DECODE_ERROR,
    C.DUPLICATE_EXTENSION: A.ILLEGAL_PARAMETER,
    # negotiation
    C.HEARTBEAT: A.UNEXPECTED_MESSAGE,  # a heartbeat record, or the extension that would ask for them
    C.COMPRESSION: A.ILLEGAL_PARAMETER,
    C.NO_SHARED_CIPHER: A.HANDSHAKE_FAILURE,
    C.NO_SHARED_GROUP: A.HANDSHAKE_FAILURE,  # see ALERT_REASONS
    C.OBSOLETE_GROUP: A.ILLEGAL_PARAMETER,  # see ALERT_REASONS
    C.NO_SHARED_SIGNATURE_ALGORITHM: A.HANDSHAKE_FAILURE,
    C.MISSING_EXTENSION: A.MISSING_EXTENSION,
    C.NO_RENEGOTIATION_INFO: A.HANDSHAKE_FAILURE,
    C.NO_EXTENDED_MASTER_SECRET: A.HANDSHAKE_FAILURE,
    C.RENEGOTIATION_ATTEMPT: A.HANDSHAKE_FAILURE,  # after WARNING_OF's warning: see ALERT_REASONS
    C.DOWNGRADE: A.INAPPROPRIATE_FALLBACK,  # RFC 7507
    C.DOWNGRADE_SENTINEL: A.ILLEGAL_PARAMETER,  # RFC 8446 §4.1.3
    C.UNEXPECTED_MESSAGE: A.UNEXPECTED_MESSAGE,  # also an empty alert or handshake record: see ALERT_REASONS
    C.ILLEGAL_PARAMETER: A.ILLEGAL_PARAMETER,
    C.UNSOLICITED_EXTENSION: A.UNSUPPORTED_EXTENSION,  # RFC 8446 §4.2
    C.BAD_FINISHED: A.DECRYPT_ERROR,
    # peer authentication
    C.NO_CERTIFICATE: A.CERTIFICATE_REQUIRED,  # TLS 1.2 has no such alert: see `wire_alert`
    C.NO_SERVER_CERTIFICATE: A.DECODE_ERROR,  # RFC 8446 §4.4.2.4
    C.CERTIFICATE_KEY_MISMATCH: A.UNSUPPORTED_CERTIFICATE,
    C.BAD_SIGNATURE: A.DECRYPT_ERROR,  # see ALERT_REASONS
    C.WRONG_SIGNATURE_SCHEME: A.ILLEGAL_PARAMETER,  # see ALERT_REASONS
    C.UNTRUSTED_CHAIN: A.UNKNOWN_CA,
    C.PATH_BUILDING_LIMIT: A.UNKNOWN_CA,
    C.CHAIN_SIGNATURE_INVALID: A.BAD_CERTIFICATE,
    C.CA_AS_LEAF: A.BAD_CERTIFICATE,
    C.NOT_V3: A.BAD_CERTIFICATE,
    C.PATH_TOO_LONG: A.BAD_CERTIFICATE,  # a Certificate message or a path longer than we accept
    C.NAME_MISMATCH: A.BAD_CERTIFICATE,
    C.NAME_CONSTRAINTS: A.BAD_CERTIFICATE,
    C.WRONG_KEY_USAGE: A.UNSUPPORTED_CERTIFICATE,
    C.WRONG_EXTENDED_KEY_USAGE: A.UNSUPPORTED_CERTIFICATE,
    C.WEAK_ALGORITHM: A.UNSUPPORTED_CERTIFICATE,
    C.UNSUPPORTED_CRITICAL_EXTENSION: A.UNSUPPORTED_CERTIFICATE,
    C.EXPIRED: A.CERTIFICATE_EXPIRED,
    C.NOT_YET_VALID: A.CERTIFICATE_EXPIRED,
    # Exceeding one of our bounds: the peer sent a length or a count we refuse (see ALERT_REASONS).
    C.RESOURCE_LIMIT: A.ILLEGAL_PARAMETER,
    # an invariant of ours failed (a bug): the connection ends like any refusal, never with an exception
    C.INTERNAL_ERROR: A.INTERNAL_ERROR,
})
"""Every category the engine (and `tls.x509`) can refuse with, and the one alert it sends. The categories
left out (timeout, peer-alert, connection-reset, success, ...) are decided above the engine, never raised."""

ALERT_REASONS: Final[Mapping[Category, str]] = MappingProxyType({
    C.NO_SHARED_GROUP: (
        "RFC 8446 §4.1.1 / §4.2.8: a server that cannot negotiate a group (only groups we do not implement, "
        "even in key_share, and no HelloRetryRequest possible) aborts with handshake_failure; a key_share entry "
        "for a group not in supported_groups is the client breaking a MUST, illegal_parameter (ILLEGAL_PARAMETER)."),
    C.OBSOLETE_GROUP: (
        "RFC 8446 §4.2.7: obsolete_RESERVED groups MUST NOT be offered by a TLS 1.3 implementation, and a "
        "key_share exists only in TLS 1.3; §4.2.8 lets the server abort a key_share that breaks its rules with "
        "illegal_parameter. It used to fall through to 'no group in common' (handshake_failure), which claims "
        "a negotiation failure where the peer sent a value the RFC forbids."),
    C.WRONG_SIGNATURE_SCHEME: (
        "RFC 8446 §4.4.3: the scheme MUST be one offered in signature_algorithms and (§4.2.3) fit the "
        "certificate's key; a scheme field inconsistent with the offer or the key is RFC 8446 §6.2 / RFC 5246 "
        "§7.2.2 illegal_parameter ('a field ... inconsistent with other fields'). It is decided before any "
        "cryptography, and is the alert the client already sent for a ServerKeyExchange scheme it did not offer."),
    C.BAD_SIGNATURE: (
        "RFC 8446 §4.4.3: 'If the verification fails, the receiver MUST terminate the handshake with a "
        "decrypt_error alert' (RFC 5246 §7.2.2 likewise). An empty signature is well-formed "
        "(signature<0..2^16-1> in RFC 8446 §4.4.3 and in RFC 5246's DigitallySigned) and fails to verify: "
        "decrypt_error, not decode_error as the old minimum length of 1 made it."),
    C.UNEXPECTED_MESSAGE: (
        "RFC 8446 §5.4: Handshake and Alert records with zero-length content MUST be answered with "
        "unexpected_message; an empty alert record used to be decode_error as a malformed alert."),
    C.RESOURCE_LIMIT: (
        "No RFC names an alert for a handshake message longer than an implementation accepts. decode_error "
        "(RFC 8446 §6.2) is for a field outside the range the RFC specifies or a length inconsistent with the "
        "encoding, and a 40 KB Certificate is neither; illegal_parameter, a handshake field (the 24-bit length) "
        "with a value we refuse, is what OpenSSL and BoringSSL send (SSL_R_EXCESSIVE_MESSAGE_SIZE). A message "
        "longer than its own structure allows (a Finished, a KeyUpdate: tls.connection.RFC_MAX_BODY) is decode_error "
        "whatever its length, checked before our limit: its length is incorrect by the RFC."),
    C.RENEGOTIATION_ATTEMPT: (
        "RFC 5246 §7.2.2: no_renegotiation 'is always a warning', so the first refusal is a warning and the "
        "connection goes on (WARNING_OF); a peer that tries again after it ends the connection with "
        "handshake_failure, the alert for 'unable to negotiate an acceptable set of security parameters'."),
    C.ILLEGAL_PARAMETER: (
        "An SNI HostName that is not a DNS host name (RFC 6066 §3; RFC 1035: 255 octets, labels of 63) "
        "decodes as HostName<1..2^16-1>; it is the field's value that is wrong: illegal_parameter."),
})
"""Why the table says what it says where a choice was argued (issue 15): a test prints these."""

WARNING_OF: Final[Mapping[Category, AlertDescription]] = MappingProxyType({
    C.RENEGOTIATION_ATTEMPT: A.NO_RENEGOTIATION,
})
"""Categories refused without ending the connection: the warning-level alert each sends the first time
(`Limits.max_renegotiation_refusals`). RFC 5246 §7.2.2 makes no_renegotiation a warning, always."""
del C, A

_TLS12_STAND_INS: Final[Mapping[int, AlertDescription]] = MappingProxyType({
    AlertDescription.CERTIFICATE_REQUIRED: AlertDescription.HANDSHAKE_FAILURE,  # RFC 5246 §7.4.6
})


def wire_alert(alert: AlertDescription, tls12: bool) -> AlertDescription:
    """The alert as sent: TLS 1.2 peers get the RFC 5246 alert where the table names one TLS 1.3 added."""
    return _TLS12_STAND_INS.get(alert, alert) if tls12 else alert
