"""Host name syntax and SAN matching: wildcards only whole left-most label, over two labels or more."""

from __future__ import annotations

import ipaddress
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outcomes.category import Category
from tls.x509 import PeerName, X509Error
from tls.x509.hostname import check_peer_name, dns_matches, is_dns_name, is_mailbox, mailbox_equal
from tls.x509.model import GeneralNames


@pytest.mark.parametrize(
    ("pattern", "host", "expected"),
    [
        ("example.com", "example.com", True),
        ("Example.COM", "example.com", True),
        ("example.com", "www.example.com", False),
        ("*.example.com", "www.example.com", True),
        ("*.example.com", "WWW.Example.Com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "a.b.example.com", False),
        ("*.com", "example.com", False),
        ("*.example.com", "www.example.org", False),
        ("www.example.com", "*.example.com", False),
    ],
)
def test_dns_matches(pattern: str, host: str, expected: bool) -> None:
    assert dns_matches(pattern, host) is expected


@pytest.mark.parametrize(
    ("name", "wildcard", "expected"),
    [
        ("example.com", False, True),
        ("xn--n3h.example", False, True),
        ("a-b.example", False, True),
        ("*.example.com", True, True),
        ("*.example.com", False, False),
        ("*", True, False),
        ("f*.example.com", True, False),
        ("www.*.example.com", True, False),
        ("foo_bar.example.com", False, False),
        ("-a.example", False, False),
        ("a-.example", False, False),
        ("example.com.", False, False),
        ("", False, False),
        ("a..b", False, False),
        ("a" * 64 + ".com", False, False),
        ("a" * 63 + ".com", False, True),
        ("a.b.c", False, True),
        (".".join(["a" * 60] * 5), False, False),
        ("8.8.8.8", False, False),
        ("*.8.8.8", True, False),
        ("host.0x1F", False, False),
        ("host.0x", False, False),
        ("example.123", False, False),
        ("8.8.8.8.example", False, True),
        ("0x1f.example", False, True),
        ("123abc", False, True),
    ],
)
def test_dns_syntax(name: str, wildcard: bool, expected: bool) -> None:
    assert is_dns_name(name, allow_wildcard=wildcard) is expected


def _label_by_label(name: str, wildcard: bool) -> bool:
    """The definition `is_dns_name` matches with one regular expression: LDH labels of 1 to 63 characters, no
    hyphen first or last, at most 253 in all, an optional '*' label first, the last label not a number."""
    labels = name.split(".")
    if wildcard and labels[0] == "*":
        labels = labels[1:]
    ldh = set(string.ascii_letters + string.digits + "-")
    if not 0 < len(name) <= 253 or not labels:
        return False
    for label in labels:
        if not 0 < len(label) <= 63 or not ldh.issuperset(label) or label[0] == "-" or label[-1] == "-":
            return False
    last = labels[-1].lower()
    if last.startswith("0x"):
        return not set(string.hexdigits).issuperset(last[2:])
    return not set(string.digits).issuperset(last)


# Pieces of labels, mostly LDH so that many names are valid or nearly so: hyphens, one other character each
# (a non-ASCII letter and digit among them), "0x", and a run long enough that a few make a label over 63
# characters and a few labels a name over 253.
_LDH_PIECES = st.sampled_from(["a", "Z", "0", "9", "-", "0x", "f" * 30])
_OTHER_PIECES = st.sampled_from(["*", "_", "\n", " ", "é", "\u0661"])
_LABELS = st.lists(st.one_of(_LDH_PIECES, _LDH_PIECES, _LDH_PIECES, _OTHER_PIECES), max_size=5).map("".join)


@settings(max_examples=500)
@given(labels=st.lists(_LABELS, min_size=1, max_size=10), wildcard=st.booleans())
def test_dns_syntax_is_the_label_by_label_definition(labels: list[str], wildcard: bool) -> None:
    name = ".".join(labels)
    assert is_dns_name(name, allow_wildcard=wildcard) is _label_by_label(name, wildcard)


@pytest.mark.parametrize(
    ("address", "expected"),
    [("me@example.com", True), ("**@example.com", True), ("a@b@example.com", False), ("@example.com", False),
     ("me@", False), ("me example@x.com", False), ("me@bad_domain.com", False)],
)
def test_mailbox_syntax(address: str, expected: bool) -> None:
    assert is_mailbox(address) is expected


def test_mailbox_equality_is_case_sensitive_only_in_the_local_part() -> None:
    assert mailbox_equal("Me@Example.COM", "Me@example.com")
    assert not mailbox_equal("me@example.com", "Me@example.com")


SAN = GeneralNames(
    dns=("*.example.com", "example.org"),
    ips=(ipaddress.ip_address("192.0.2.1").packed, ipaddress.ip_address("2001:db8::1").packed),
    emails=("me@example.com",),
)


@pytest.mark.parametrize(
    "name",
    [PeerName("DNS", "www.example.com"), PeerName("DNS", "EXAMPLE.org"), PeerName("IP", "192.0.2.1"),
     PeerName("IP", "2001:0db8:0::1"), PeerName("RFC822", "me@EXAMPLE.com")],
)
def test_peer_name_found(name: PeerName) -> None:
    check_peer_name(SAN, name)


@pytest.mark.parametrize(
    "name",
    [
        PeerName("DNS", "example.com"),
        PeerName("DNS", "192.0.2.1"),
        PeerName("DNS", "www_1.example.com"),
        PeerName("IP", "192.0.2.2"),
        PeerName("IP", "not-an-ip"),
        PeerName("IP", "www.example.com"),
        PeerName("RFC822", "you@example.com"),
        PeerName("RFC822", "not a mailbox"),
        PeerName("URI", "https://example.com"),  # type: ignore[arg-type]
    ],
)
def test_peer_name_refused(name: PeerName) -> None:
    with pytest.raises(X509Error) as info:
        check_peer_name(SAN, name)
    assert info.value.category is Category.NAME_MISMATCH


def test_no_san_means_no_name() -> None:
    with pytest.raises(X509Error, match="no subjectAltName"):
        check_peer_name(None, PeerName("DNS", "example.com"))
