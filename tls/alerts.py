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
    C.NO_SHARED_GROUP: A.HANDSHAKE_FAILURE,
    C.NO_SHARED_SIGNATURE_ALGORITHM: A.HANDSHAKE_FAILURE,
    C.MISSING_EXTENSION: A.MISSING_EXTENSION,
    C.NO_RENEGOTIATION_INFO: A.HANDSHAKE_FAILURE,
    C.NO_EXTENDED_MASTER_SECRET: A.HANDSHAKE_FAILURE,
    C.RENEGOTIATION_ATTEMPT: A.NO_RENEGOTIATION,
    C.DOWNGRADE: A.INAPPROPRIATE_FALLBACK,  # RFC 7507
    C.DOWNGRADE_SENTINEL: A.ILLEGAL_PARAMETER,  # RFC 8446 §4.1.3
    C.UNEXPECTED_MESSAGE: A.UNEXPECTED_MESSAGE,
    C.ILLEGAL_PARAMETER: A.ILLEGAL_PARAMETER,
    C.UNSOLICITED_EXTENSION: A.UNSUPPORTED_EXTENSION,  # RFC 8446 §4.2
    C.BAD_FINISHED: A.DECRYPT_ERROR,
    # peer authentication
    C.NO_CERTIFICATE: A.CERTIFICATE_REQUIRED,  # TLS 1.2 has no such alert: see `wire_alert`
    C.NO_SERVER_CERTIFICATE: A.DECODE_ERROR,  # RFC 8446 §4.4.2.4
    C.CERTIFICATE_KEY_MISMATCH: A.UNSUPPORTED_CERTIFICATE,
    C.BAD_SIGNATURE: A.DECRYPT_ERROR,  # also a scheme not allowed where it is used: that signature cannot verify
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
    # Exceeding one of our bounds: the peer sent a length or a count we refuse. illegal_parameter is what
    # OpenSSL sends for an excessive message size; unexpected_message or decode_error would misstate it.
    C.RESOURCE_LIMIT: A.ILLEGAL_PARAMETER,
    # an invariant of ours failed (a bug): the connection ends like any refusal, never with an exception
    C.INTERNAL_ERROR: A.INTERNAL_ERROR,
})
"""Every category the engine (and `tls.x509`) can refuse with, and the one alert it sends. The categories
left out (timeout, peer-alert, connection-reset, success, ...) are decided above the engine, never raised."""
del C, A

_TLS12_STAND_INS: Final[Mapping[int, AlertDescription]] = MappingProxyType({
    AlertDescription.CERTIFICATE_REQUIRED: AlertDescription.HANDSHAKE_FAILURE,  # RFC 5246 §7.4.6
})


def wire_alert(alert: AlertDescription, tls12: bool) -> AlertDescription:
    """The alert as sent: TLS 1.2 peers get the RFC 5246 alert where the table names one TLS 1.3 added."""
    return _TLS12_STAND_INS.get(alert, alert) if tls12 else alert
