"""Failure categories: why a connection to the bounty did not get the secret.

The names are stable: they appear in `/stats.json`, on the statistics page and in ledger records,
and they are what the attack suite asserts. Add new members at need; never rename one.
"""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    # first bytes and records
    NOT_TLS = "not-tls"
    BAD_RECORD_VERSION = "bad-record-version"
    SSLV2 = "sslv2"
    SSLV3 = "sslv3"
    OLD_TLS_VERSION = "old-tls-version"
    RECORD_OVERFLOW = "record-overflow"
    BAD_MAC = "bad-mac"
    DECODE_ERROR = "decode-error"
    DUPLICATE_EXTENSION = "duplicate-extension"
    # negotiation
    HEARTBEAT = "heartbeat"
    COMPRESSION = "compression"
    NO_SHARED_CIPHER = "no-shared-cipher"
    NO_SHARED_GROUP = "no-shared-group"
    NO_SHARED_SIGNATURE_ALGORITHM = "no-shared-signature-algorithm"
    MISSING_EXTENSION = "missing-extension"
    NO_RENEGOTIATION_INFO = "no-renegotiation-info"
    NO_EXTENDED_MASTER_SECRET = "no-extended-master-secret"
    RENEGOTIATION_ATTEMPT = "renegotiation-attempt"
    DOWNGRADE = "downgrade"  # TLS_FALLBACK_SCSV below our best version (server)
    DOWNGRADE_SENTINEL = "downgrade-sentinel"  # the RFC 8446 downgrade marker in a TLS 1.2 ServerHello (client)
    EARLY_DATA = "early-data"
    UNEXPECTED_MESSAGE = "unexpected-message"
    ILLEGAL_PARAMETER = "illegal-parameter"
    OBSOLETE_GROUP = "obsolete-group"  # a TLS 1.3 key_share for a group RFC 8446 §4.2.7 reserves as obsolete
    UNSOLICITED_EXTENSION = "unsolicited-extension"  # the server answered with an extension we did not offer
    BAD_FINISHED = "bad-finished"
    # peer authentication
    NO_CERTIFICATE = "no-certificate"
    NO_SERVER_CERTIFICATE = "no-server-certificate"  # an empty server Certificate (RFC 8446: decode_error)
    CERTIFICATE_KEY_MISMATCH = "certificate-key-mismatch"  # TLS 1.2: the leaf's key type is not the suite's
    BAD_SIGNATURE = "bad-signature"  # a signature that does not verify (decrypt_error)
    WRONG_SIGNATURE_SCHEME = "wrong-signature-scheme"  # a scheme not offered or not fitting the key
    UNTRUSTED_CHAIN = "untrusted-chain"
    CHAIN_SIGNATURE_INVALID = "chain-signature-invalid"
    CA_AS_LEAF = "ca-as-leaf"
    WRONG_KEY_USAGE = "wrong-key-usage"
    WRONG_EXTENDED_KEY_USAGE = "wrong-extended-key-usage"
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    NOT_V3 = "not-v3"
    PATH_TOO_LONG = "path-too-long"
    PATH_BUILDING_LIMIT = "path-building-limit"
    NAME_MISMATCH = "name-mismatch"
    NAME_CONSTRAINTS = "name-constraints"
    WEAK_ALGORITHM = "weak-algorithm"
    UNSUPPORTED_CRITICAL_EXTENSION = "unsupported-critical-extension"
    # connection-level
    TIMEOUT = "timeout"
    RESOURCE_LIMIT = "resource-limit"
    PEER_ALERT = "peer-alert"
    CONNECTION_RESET = "connection-reset"
    CONNECT_BACK_FAILED = "connect-back-failed"  # 10001: the caller's port 40001 did not answer
    # web endpoints (80, 443): outcomes of connections that never ask for the secret
    SERVED = "served"  # pages served, connection closed normally
    BAD_REQUEST = "bad-request"  # malformed HTTP (the size limits count as resource-limit)
    INTERNAL_ERROR = "internal-error"  # a bug of ours ended the connection; the service went on
    SUCCESS = "success"
