"""Path building: depth-first from the leaf through the peer's certificates to a trust anchor.

Why depth-first with backtracking: the peer may send several certificates for the same logical CA
(cross-signs, expired and renewed ones), so the first issuer that matches by name may not lead to an
anchor. Why bounded work: the same freedom lets an attacker send many certificates that match by name to
make the search expensive, so the work is metered (`tls.x509.work`: candidates examined, signature checks,
bytes parsed) and exceeding any limit aborts the whole validation; the path length is capped too.

Work is spent only where a path could end, cheapest comparison first:
1. The peer's certificates are not parsed up front. Each is peeked (names, key bytes, key identifier,
   no schema decode), and parsed only when a path reaches it and its signature on the certificate below
   verifies: a schema decode costs about ten signature checks, and most of what an attacker sends should
   cost neither.
2. Candidates for a certificate's issuer: anchors first (shortest path), then the peer's certificates,
   whose subject equals the child's issuer name byte-for-byte and whose subjectKeyIdentifier, when both
   sides have key identifiers, equals the child's authorityKeyIdentifier. A (subject, key) pair already in
   the path is never added again, which breaks cycles even through distinct certificates for the same CA.
3. A certificate that names a trust anchor's subject and key identifier but holds another key is an
   impostor: a key identifier names one key, and the anchor's key is known. It is refused on those bytes,
   before any signature check or parse. With one anchor (the appliance), every certificate claiming to be
   the anchor is either a copy of it or refused for free.
4. A signature is verified at most once per (certificate, issuer key), whatever number of certificates
   carry that key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from outcomes.category import Category
from tls.x509.checks import check_ca
from tls.x509.constraints import Budget, check_name_constraints
from tls.x509.der import check_der
from tls.x509.errors import X509Error
from tls.x509.keys import PublicKey, load_public_key, parse_spki
from tls.x509.limits import ValidationLimits
from tls.x509.model import Certificate, CertificateSummary
from tls.x509.parse import parse_certificate_data, peek_certificate
from tls.x509.purpose import Purpose
from tls.x509.signature import verify_signature
from tls.x509.work import Work, WorkLimitError


@dataclass
class _PeerCertificate:
    """A certificate the peer sent beyond the leaf: peeked up front, parsed at most once, when reached."""

    summary: CertificateSummary
    parsed: Certificate | None = None
    malformed: bool = False


@dataclass
class PathSearch:
    """State of one path-building run (one `validate` call); discarded afterwards.

    `peer_der` is what the peer sent after the leaf, as DER. Certificates that cannot be read are set
    aside (`set_aside`): a peer may send junk that is not on the path, and it matters only if no path
    is found."""

    anchors: Sequence[Certificate]
    peer_der: Sequence[bytes]
    purpose: Purpose
    time: datetime
    limits: ValidationLimits
    work: Work = field(default_factory=Work)
    set_aside: list[X509Error] = field(default_factory=list)
    budget: Budget = field(init=False)
    _peers: list[_PeerCertificate] = field(init=False)
    _impostor_keys: dict[tuple[bytes, bytes], set[bytes]] = field(init=False)
    _keys: dict[bytes, PublicKey | X509Error] = field(default_factory=dict)
    _verified: dict[tuple[bytes, bytes], X509Error | None] = field(default_factory=dict)
    _error: X509Error | None = None
    _error_depth: int = -1

    def __post_init__(self) -> None:
        self.budget = Budget(self.limits.max_name_constraint_checks)
        self._peers = []
        seen: set[bytes] = set()
        for der in self.peer_der:
            if der in seen:
                continue
            seen.add(der)
            try:
                self._peers.append(_PeerCertificate(peek_certificate(der)))
            except X509Error as error:
                self.set_aside.append(error)
        # (subject, key identifier) of each anchor -> the keys that may legitimately carry that identity.
        self._impostor_keys = {}
        for anchor in self.anchors:
            if anchor.subject_key_identifier is not None:
                identity = (anchor.subject.der, anchor.subject_key_identifier)
                self._impostor_keys.setdefault(identity, set()).add(anchor.spki_der)

    def build(self, leaf: Certificate) -> tuple[Certificate, ...]:
        # The leaf is not a candidate for anything (a sent copy of it is not a second certificate).
        self._peers = [peer for peer in self._peers if peer.summary.der != leaf.der]
        found = self._extend([leaf])
        if found is not None:
            return found
        if self._error is not None:
            raise self._error
        raise X509Error(Category.UNTRUSTED_CHAIN, f"no trusted issuer found for issuer {leaf.issuer}")

    def _extend(self, path: list[Certificate]) -> tuple[Certificate, ...] | None:
        for candidate in self._candidates(path):
            self.work.charge_candidate(self.limits)
            try:
                ca = self._link(path, candidate)
            except WorkLimitError:
                raise
            except X509Error as error:
                self._record(error, len(path))
                continue
            if ca is None:
                continue
            if isinstance(candidate, Certificate):
                return (*path, ca)
            path.append(ca)
            found = self._extend(path)
            if found is not None:
                return found
            path.pop()
        return None

    def _candidates(self, path: list[Certificate]) -> Iterator[Certificate | _PeerCertificate]:
        """Anchors, then peer certificates, that may have issued path[-1]: compared on bytes only."""
        child = path[-1]
        aki = child.authority_key_identifier
        wanted_key_id = aki.key_identifier if aki is not None else None
        in_path = {(c.subject.der, c.spki_der) for c in path}

        def may_issue(summary: CertificateSummary) -> bool:
            if summary.subject != child.issuer.der:
                return False
            ski = summary.subject_key_identifier
            if wanted_key_id is not None and ski is not None and ski != wanted_key_id:
                return False
            return (summary.subject, summary.spki) not in in_path

        for anchor in self.anchors:
            if may_issue(anchor.summary):
                yield anchor
        for peer in self._peers:
            summary = peer.summary
            if peer.malformed or not may_issue(summary):
                continue
            ski = summary.subject_key_identifier
            keys = self._impostor_keys.get((summary.subject, ski)) if ski is not None else None
            if keys is not None and summary.spki not in keys:
                self._record(
                    X509Error(
                        Category.UNTRUSTED_CHAIN,
                        "a certificate has a trust anchor's subject and key identifier but another key",
                    ),
                    len(path),
                )
                continue
            yield peer

    def _link(self, path: list[Certificate], candidate: Certificate | _PeerCertificate) -> Certificate | None:
        """May the candidate sign path[-1] here? Returns it parsed, or None if it had to be set aside.

        Order by cost: path length (arithmetic); for an anchor, already parsed, its role rules; the
        signature; then, for a peer certificate, the parse and its role rules; pathLenConstraint and name
        constraints last (they need the parsed certificates)."""
        summary = candidate.summary
        if len(path) + 1 > self.limits.max_path_length:
            raise X509Error(Category.PATH_TOO_LONG, f"path longer than {self.limits.max_path_length} certificates")
        # Intermediates below the candidate (the leaf is not one); self-issued ones do not count (RFC 5280
        # 6.1.4 (l)).
        below = sum(1 for c in path[1:] if not c.self_issued)
        is_anchor = isinstance(candidate, Certificate)
        depth = below + (0 if is_anchor or summary.self_issued else 1)
        if depth > self.limits.max_chain_depth:
            raise X509Error(Category.PATH_TOO_LONG, f"more than {self.limits.max_chain_depth} intermediates")
        if isinstance(candidate, Certificate):
            check_ca(candidate, self.purpose, self.time, anchor=True)
            self._verify(path[-1], summary.spki, candidate.public_key)
            ca = candidate
        else:
            self._verify(path[-1], summary.spki, lambda: self._peer_key(summary.spki))
            parsed = self._parse(candidate)
            if parsed is None:
                return None
            check_ca(parsed, self.purpose, self.time, anchor=False)
            ca = parsed
        constraints = ca.basic_constraints
        if constraints is not None and constraints.path_length is not None and below > constraints.path_length:
            raise X509Error(
                Category.PATH_TOO_LONG, f"pathLenConstraint {constraints.path_length} of {ca.describe()} exceeded"
            )
        if ca.name_constraints is not None:
            for index, certificate in enumerate(path):
                if index and certificate.self_issued:
                    continue  # RFC 5280 6.1.3 (b): self-issued intermediates are exempt
                check_name_constraints(ca.name_constraints, certificate, self.budget)
        return ca

    def _parse(self, peer: _PeerCertificate) -> Certificate | None:
        """Parse a peer certificate once, charged to the parse budget; set it aside if malformed."""
        if peer.parsed is None:
            self.work.charge_parse(len(peer.summary.der), self.limits)
            try:
                peer.parsed = parse_certificate_data(peer.summary.der)
            except X509Error as error:
                self.set_aside.append(error)
                peer.malformed = True
                return None
        return peer.parsed

    def _peer_key(self, spki: bytes) -> PublicKey:
        """A peer certificate's key, from its SubjectPublicKeyInfo bytes alone, loaded once per key."""
        key = self._keys.get(spki)
        if key is None:
            try:
                check_der(spki)  # the peek did not walk it; the key reader expects checked DER
                key = load_public_key(parse_spki(spki))
            except X509Error as error:
                key = error
            self._keys[spki] = key
        if isinstance(key, X509Error):
            raise key
        return key

    def _verify(self, child: Certificate, issuer_spki: bytes, issuer_key: Callable[[], PublicKey]) -> None:
        """Verify child's signature with the issuer's key, charged once per (child, key)."""
        memo = (child.der, issuer_spki)
        if memo not in self._verified:
            key = issuer_key()
            self.work.charge_signature(self.limits)
            try:
                verify_signature(key, child.signature_algorithm, child.signature, child.tbs_der)
            except X509Error as error:
                self._verified[memo] = error
            else:
                self._verified[memo] = None
        refusal = self._verified[memo]
        if refusal is not None:
            raise refusal

    def _record(self, error: X509Error, depth: int) -> None:
        """Keep the refusal from the deepest link tried: it is the most specific reason."""
        if depth > self._error_depth:
            self._error = error
            self._error_depth = depth
