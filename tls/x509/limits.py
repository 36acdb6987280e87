"""Every bound the X.509 code enforces, in one place.

Parsing limits are module constants because they protect the parser itself; validation limits are a frozen
dataclass so that a caller (or a conformance case) can tighten them per call. Exceeding any of them is a
refusal with a category, never a slow path.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- parsing: bounds on one certificate ---------------------------------------------------------------
# Largest certificate accepted. Real web certificates are 1-4 KiB; with many SCTs and SANs rarely 8 KiB.
MAX_CERT_SIZE = 16 * 1024
# Deepest nesting of constructed DER values; an X.509 certificate needs about 8.
MAX_DER_DEPTH = 16
# Most DER values (TLVs) walked in one certificate or extension; bounds the integrity pass.
MAX_DER_NODES = 4096
# Most relative distinguished names in one Name, and attributes across all of them.
MAX_NAME_RDNS = 32
MAX_NAME_ATTRIBUTES = 64
# Longest attribute value in a Name, in octets (RFC 5280's upper bounds are at most 64..255 characters).
MAX_NAME_VALUE_SIZE = 1024
# Most entries in a SubjectAltName (the largest in x509-limbo's live web chains: 163, microsoft.com), and
# GeneralSubtrees per NameConstraints (permitted + excluded). Parsing cost grows with the entries (about
# 0.5 ms per certificate at this bound); name-constraint work is bounded separately per validation.
MAX_SAN_ENTRIES = 256
MAX_NAME_CONSTRAINT_SUBTREES = 128
# Most extensions in one certificate, and EKU purposes / policies in one extension.
MAX_EXTENSIONS = 32
MAX_EKU_PURPOSES = 32
MAX_POLICIES = 32
# Serial numbers: RFC 5280 4.1.2.2 allows at most 20 octets.
MAX_SERIAL_OCTETS = 20

# --- validation: bounds on one call of `validate` -------------------------------------------------------
# Bounded LRU of parsed trust anchors keyed by their exact DER (the anchors are ours, not the peer's).
ANCHOR_CACHE_SIZE = 64


@dataclass(frozen=True)
class ValidationLimits:
    """Bounds on one path validation. The defaults suit a TLS handshake with a web-like or private PKI."""

    # Intermediates that do not count as self-issued, between leaf and anchor (limbo's max_chain_depth).
    max_chain_depth: int = 6
    # Certificates in a built path, leaf and anchor included, self-issued ones too: an absolute cap.
    max_path_length: int = 10
    # Certificates a peer may send (leaf + intermediates); more is refused before any parsing.
    max_chain_certificates: int = 12
    # Trust anchors considered per call.
    max_anchors: int = 256
    # Issuer candidates examined during path building, across all branches: those that pass the cheap
    # comparisons (name, key identifier, not an impostor of an anchor) and reach the costly checks.
    max_candidates: int = 32
    # Work per call (tls.x509.work): signature verifications, and DER bytes fully parsed (the leaf, and the
    # peer's certificates on a path whose signatures reach an anchor; anchors are parsed once and cached).
    # A parse costs what its size makes it cost (half a check for a small certificate, about eight for a
    # 10 KB one full of names), so its budget is in bytes.
    # The most any x509-limbo case needs is 4 checks and 9.8 KB (microsoft.com's live chain); these allow half
    # as much again and three times that, and a largest leaf plus a largest intermediate (2 x MAX_CERT_SIZE).
    # No more checks than that: a chain of certificates that each verify one link but never reach the anchor
    # costs its checks before the refusal, and once parsing became cheap (issue 17) those checks are the whole
    # of its cost: 16 let eleven forged intermediates cost 4.2 normal chains' worth of CPU, 8 about 3, 6 about
    # 2.5 (`python -m bench x509`).
    max_signature_checks: int = 6
    # ... and what those checks may cost together, in units of one RSA-2048 or P-256 verification
    # (tls.x509.keys.verify_cost: an RSA-4096 check costs 4, an RSA-8192 one with a 32-bit exponent 32).
    max_signature_work: int = 32
    max_parse_bytes: int = 2 * MAX_CERT_SIZE
    # Name-constraint comparisons (names x subtrees) summed over the path.
    max_name_constraint_checks: int = 8192
    # Size of one DER certificate.
    max_cert_size: int = MAX_CERT_SIZE


DEFAULT_LIMITS = ValidationLimits()
