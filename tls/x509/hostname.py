"""Syntax of DNS names and mailboxes in certificates, and matching a peer name against a SubjectAltName.

Matching follows RFC 6125 / 9525 as the web uses it: SubjectAltName only (the subject CN is never
consulted), case-insensitive ASCII, and a wildcard only as the whole left-most label, standing for exactly
one non-empty label, and only above at least two labels (so `*.com` matches nothing).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

from outcomes.category import Category
from tls.x509.errors import X509Error
from tls.x509.model import GeneralNames
from tls.x509.purpose import PeerName

_DIGITS: Final = frozenset("0123456789")
_HEX_DIGITS: Final = frozenset("0123456789abcdefABCDEF")
MAX_DNS_NAME: Final = 253
MAX_DNS_LABEL: Final = 63
# Mailbox local parts: printable ASCII other than '@' (RFC 5321 atext and dots, plus what quoting allows).
_LOCAL_PART: Final = frozenset(chr(c) for c in range(0x21, 0x7F)) - {"@"}
# One LDH label: 1 to MAX_DNS_LABEL letters, digits and hyphens, neither first nor last a hyphen. A host name is
# checked with one match of the whole name, not label by label in Python (a set test per label walked its
# characters as one-letter strings): at least two per chain validated, the SAN's and the peer's.
_LABEL: Final = rf"[A-Za-z0-9](?:[A-Za-z0-9-]{{0,{MAX_DNS_LABEL - 2}}}[A-Za-z0-9])?"
_DNS_NAME: Final = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}")
_WILDCARD_DNS_NAME: Final = re.compile(rf"(?:\*\.)?(?:{_LABEL}\.)*{_LABEL}")


def is_dns_name(name: str, *, allow_wildcard: bool = False) -> bool:
    """A host name of LDH labels (no trailing dot); with allow_wildcard, a left-most label of exactly '*'.

    A name whose last label is a number is an IP address literal, not a host name: RFC 5280 4.2.1.6 puts
    addresses in iPAddress only, and URL parsers (WHATWG "ends in a number") would read such a name as
    IPv4, so a dNSName "8.8.8.8" must not pass as a name that might then be matched against an address.
    """
    if not 0 < len(name) <= MAX_DNS_NAME:
        return False
    if (_WILDCARD_DNS_NAME if allow_wildcard else _DNS_NAME).fullmatch(name) is None:
        return False
    return not _is_number(name.rpartition(".")[2])


def _is_number(label: str) -> bool:
    """Decimal digits, or 0x with hex digits: the forms an IPv4 parser accepts as the last part."""
    if label[:2].lower() == "0x":
        return _HEX_DIGITS.issuperset(label[2:])
    return _DIGITS.issuperset(label)


def is_mailbox(address: str) -> bool:
    """local@domain with exactly one '@', a non-empty printable local part and a valid domain."""
    local, at, domain = address.rpartition("@")
    return bool(at) and bool(local) and _LOCAL_PART.issuperset(local) and is_dns_name(domain)


def dns_matches(pattern: str, host: str) -> bool:
    """Does SAN dNSName `pattern` (syntax-checked) cover `host` (syntax-checked, no wildcard)?"""
    pattern = pattern.lower()
    host = host.lower()
    if not pattern.startswith("*."):
        return pattern == host
    base = pattern[2:]
    if base.count(".") < 1:
        return False  # *.com, *.local: a wildcard must sit above at least two labels
    label, dot, rest = host.partition(".")
    return bool(dot) and bool(label) and rest == base


def mailbox_equal(a: str, b: str) -> bool:
    """Local parts compare exactly, domains case-insensitively (RFC 5280 7.5)."""
    local_a, _, domain_a = a.rpartition("@")
    local_b, _, domain_b = b.rpartition("@")
    return local_a == local_b and domain_a.lower() == domain_b.lower()


def check_peer_name(san: GeneralNames | None, name: PeerName) -> None:
    """Raise name-mismatch unless the SubjectAltName holds `name`."""
    if san is None:
        raise X509Error(Category.NAME_MISMATCH, "certificate has no subjectAltName")
    if name.kind == "DNS":
        if not is_dns_name(name.value):
            raise X509Error(Category.NAME_MISMATCH, "peer name is not a valid DNS name")
        if any(dns_matches(pattern, name.value) for pattern in san.dns):
            return
    elif name.kind == "IP":
        try:
            packed = ipaddress.ip_address(name.value).packed
        except ValueError as exc:
            raise X509Error(Category.NAME_MISMATCH, "peer name is not a valid IP address") from exc
        if packed in san.ips:
            return
    elif name.kind == "RFC822":
        if not is_mailbox(name.value):
            raise X509Error(Category.NAME_MISMATCH, "peer name is not a valid mailbox")
        if any(mailbox_equal(box, name.value) for box in san.emails):
            return
    else:
        raise X509Error(Category.NAME_MISMATCH, "unknown peer name kind")
    raise X509Error(Category.NAME_MISMATCH, f"{name.kind} name not in the certificate's subjectAltName")
