"""validate(): the one entry point the TLS engine calls with what a peer sent.

Order of work is chosen so that cheap refusals come first and nothing the peer controls can make a call
expensive: count and size bounds before parsing, the leaf's own rules before any path building, and path
building under the caps of `ValidationLimits`, its work metered per call (`tls.x509.work`). Only the leaf is
parsed here; path building parses the peer's other certificates only once a path through them reaches
an anchor with every signature verified.
Certificates that cannot be read are set aside (a peer may send junk that is not on the path); if no path
is found, the first such refusal is reported.

Trust anchors come from our configuration, not the peer, so their parsed form is kept in a small bounded
cache keyed by their exact DER: the boot CA is parsed once, not once per handshake.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from outcomes.category import Category
from tls.x509.checks import check_leaf
from tls.x509.der import BYTES_LIKE
from tls.x509.errors import X509Error, decode_error
from tls.x509.limits import ANCHOR_CACHE_SIZE, DEFAULT_LIMITS, ValidationLimits
from tls.x509.model import Certificate
from tls.x509.parse import parse_certificate_data
from tls.x509.path import PathSearch
from tls.x509.purpose import PeerName, Purpose
from tls.x509.work import Work


@dataclass(frozen=True)
class ValidatedPath:
    """A path that passed validation: leaf first, trust anchor last."""

    certificates: tuple[Certificate, ...]

    @property
    def leaf(self) -> Certificate:
        return self.certificates[0]

    @property
    def anchor(self) -> Certificate:
        return self.certificates[-1]


class _AnchorCache:
    """Parsed trust anchors by DER, least recently used evicted beyond `ANCHOR_CACHE_SIZE`."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.evictions = 0
        self._entries: OrderedDict[bytes, Certificate | X509Error] = OrderedDict()

    def get(self, der: bytes) -> Certificate | X509Error:
        entry = self._entries.get(der)
        if entry is None:
            try:
                entry = parse_certificate_data(der)
            except X509Error as error:
                # Kept without its traceback: a traceback holds the frames of everyone up the stack at the
                # time, locals and all, for as long as the entry lives (found by test_key_reach: the wallet
                # key's bytes reachable through a cached refusal's frames).
                entry = error.with_traceback(None)
            self._entries[der] = entry
            if len(self._entries) > self.size:
                self._entries.popitem(last=False)
                self.evictions += 1
        else:
            self._entries.move_to_end(der)
        return entry


ANCHOR_CACHE = _AnchorCache(ANCHOR_CACHE_SIZE)


def validate(
    chain: Sequence[bytes],
    *,
    anchors: Sequence[bytes],
    purpose: Purpose,
    name: PeerName | None,
    time: datetime,
    limits: ValidationLimits = DEFAULT_LIMITS,
    work: Work | None = None,
) -> ValidatedPath:
    """Validate a peer's certificate chain (DER, leaf first) for `purpose` at `time` (naive = UTC).

    `name=None` skips the name check (client certificates are authenticated by chain alone).
    `work`, if given, is charged with what this call spends (see `tls.x509.work`), refused or not.
    Raises X509Error on any refusal; returns the path that was found.
    """
    if not chain:
        raise X509Error(Category.NO_CERTIFICATE, "peer sent no certificate")
    if len(chain) > limits.max_chain_certificates:
        raise X509Error(
            Category.PATH_BUILDING_LIMIT, f"peer sent {len(chain)} certificates (limit {limits.max_chain_certificates})"
        )
    if len(anchors) > limits.max_anchors:
        raise X509Error(Category.PATH_BUILDING_LIMIT, f"more than {limits.max_anchors} trust anchors")
    for der in (*chain, *anchors):
        if not isinstance(der, BYTES_LIKE):
            raise decode_error("certificate must be bytes")
        if len(der) > limits.max_cert_size:
            raise decode_error(f"certificate larger than {limits.max_cert_size} bytes")
    chain = [bytes(der) for der in chain]
    at = _whole_seconds(time)
    work = Work() if work is None else work

    work.charge_parse(len(chain[0]), limits)
    leaf = parse_certificate_data(chain[0])
    check_leaf(leaf, purpose, name, at)

    trusted: list[Certificate] = []
    set_aside: list[X509Error] = []
    for der in anchors:
        entry = ANCHOR_CACHE.get(bytes(der))
        if isinstance(entry, X509Error):
            set_aside.append(entry)
        else:
            trusted.append(entry)

    search = PathSearch(trusted, chain[1:], purpose, at, limits, work, set_aside)
    try:
        return ValidatedPath(search.build(leaf))
    except X509Error as error:
        if error.category is Category.UNTRUSTED_CHAIN and search.set_aside:
            raise X509Error(
                Category.UNTRUSTED_CHAIN, f"{error.reason}; a certificate was set aside: {search.set_aside[0].reason}"
            ) from error
        raise


def _whole_seconds(time: datetime) -> datetime:
    """Certificate validity has one-second granularity; compare at the floor of `time` (x509-limbo), in UTC.
    A time already in UTC (what callers pass) is not converted again, and one on a whole second is kept."""
    if time.tzinfo is None:
        time = time.replace(tzinfo=UTC)
    elif time.tzinfo is not UTC:
        time = time.astimezone(UTC)
    return time.replace(microsecond=0) if time.microsecond else time
