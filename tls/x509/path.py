"""Path building: depth-first from the leaf through the peer's certificates to a trust anchor.

Why depth-first with backtracking: the peer may send several certificates for the same logical CA
(cross-signs, expired and renewed ones), so the first issuer that matches by name may not lead to an
anchor. Why bounded work: the same freedom lets an attacker send many certificates that match by name to
make the search expensive, so the work is metered (`tls.x509.work`: candidates examined, signature checks,
bytes parsed) and exceeding any limit aborts the whole validation; the path length is capped too.

Work is spent only where a path could end, cheapest first:
1. The peer's certificates are not parsed up front. Each is peeked (names, key bytes, key identifiers,
   signed bytes; no full parse), the search runs on these, and a certificate is parsed only once a
   path through it reaches an anchor with every signature verified. A parse costs from half a signature
   check (a small certificate) to several (a large one), and a path to the anchor needs the anchor's
   signature, which an attacker without its key cannot make: whatever such a peer sends, no certificate
   but its leaf is parsed.
   The role rules (checks.check_ca, pathLenConstraint, name constraints) then run on the parsed path,
   from the leaf up; a link they refuse unwinds the search to that link's depth, as if it had been
   refused there, so (work limits permitting) the path found is the one a search that parsed
   everything first would find; only the reason reported for a refused chain may differ.
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

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from outcomes.category import Category
from tls.x509.checks import check_ca
from tls.x509.constraints import Budget, check_name_constraints
from tls.x509.errors import X509Error
from tls.x509.keys import PublicKey, PublicKeyInfo, load_public_key, parse_spki, verify_cost
from tls.x509.limits import ValidationLimits
from tls.x509.model import Certificate, SignatureAlgorithm
from tls.x509.parse import parse_certificate_data
from tls.x509.peek import CertificateSummary, peek_certificate
from tls.x509.purpose import Purpose
from tls.x509.signature import parse_signature_algorithm, verify_signature
from tls.x509.work import Work, WorkLimitError


@dataclass
class _Node:
    """A certificate the search may put in a path: the leaf and anchors come parsed, the peer's other
    certificates peeked, parsed at most once (`malformed` once the parse refused it)."""

    summary: CertificateSummary
    parsed: Certificate | None = None
    anchor: bool = False
    malformed: bool = False
    algorithm: SignatureAlgorithm | X509Error | None = None


class _Unwind(Exception):  # noqa: N818 - control flow inside the search, never escapes build()
    """A link in a found path was refused by the role rules: back to the search at that link's depth."""

    def __init__(self, depth: int, error: X509Error | None) -> None:
        super().__init__(depth)
        self.depth = depth
        self.error = error


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
    _anchors: list[_Node] = field(init=False)
    _peers: list[_Node] = field(init=False)
    _by_subject: dict[bytes, list[_Node]] = field(default_factory=dict)
    _impostor_keys: dict[tuple[bytes, bytes], set[bytes]] = field(init=False)
    _keys: dict[bytes, tuple[PublicKeyInfo, PublicKey] | X509Error] = field(default_factory=dict)
    _verified: dict[tuple[bytes, bytes], X509Error | None] = field(default_factory=dict)
    _error: X509Error | None = None
    _error_depth: int = -1

    def __post_init__(self) -> None:
        self.budget = Budget(self.limits.max_name_constraint_checks)
        self._anchors = [_Node(anchor.summary, anchor, anchor=True) for anchor in self.anchors]
        self._peers = []
        seen: set[bytes] = set()
        for der in self.peer_der:
            if der in seen:
                continue
            seen.add(der)
            try:
                self._peers.append(_Node(peek_certificate(der)))
            except X509Error as error:
                self.set_aside.append(error)
        # (subject, key identifier) of each anchor -> the keys that may legitimately carry that identity.
        self._impostor_keys = {}
        for anchor in self.anchors:
            if anchor.subject_key_identifier is not None:
                identity = (anchor.subject.der, anchor.subject_key_identifier)
                self._impostor_keys.setdefault(identity, set()).add(anchor.spki_der)

    def build(self, leaf: Certificate) -> tuple[Certificate, ...]:
        # The leaf is not a candidate for anything (a sent copy of it is not a second certificate). The others
        # are found by subject: a child's issuer name picks its candidates without a scan of every peer.
        for peer in self._peers:
            if peer.summary.der != leaf.der:
                self._by_subject.setdefault(peer.summary.subject, []).append(peer)
        found = self._extend([_Node(leaf.summary, leaf)])
        if found is not None:
            return found
        if self._error is not None:
            raise self._error
        raise X509Error(Category.UNTRUSTED_CHAIN, f"no trusted issuer found for issuer {leaf.issuer}")

    def _extend(self, path: list[_Node]) -> tuple[Certificate, ...] | None:
        depth = len(path)  # of the link between path[-1] and each candidate
        for candidate in self._candidates(path):
            self.work.charge_candidate(self.limits)
            try:
                self._link(path, candidate)
            except WorkLimitError:
                raise
            except X509Error as error:
                self._record(error, depth)
                continue
            path.append(candidate)
            try:
                found = self._complete(path) if candidate.anchor else self._extend(path)
            except _Unwind as unwind:
                if unwind.depth != depth:
                    raise
                if unwind.error is not None:
                    self._record(unwind.error, depth)
                found = None
            finally:
                path.pop()
            if found is not None:
                return found
        return None

    def _candidates(self, path: list[_Node]) -> Iterator[_Node]:
        """Anchors, then peer certificates, that may have issued path[-1]: compared on bytes only."""
        child = path[-1].summary
        wanted_key_id = child.authority_key_identifier
        in_path = {(node.summary.subject, node.summary.spki) for node in path}

        def may_issue(summary: CertificateSummary) -> bool:
            if summary.subject != child.issuer:
                return False
            ski = summary.subject_key_identifier
            if wanted_key_id is not None and ski is not None and ski != wanted_key_id:
                return False
            return (summary.subject, summary.spki) not in in_path

        for anchor in self._anchors:
            if may_issue(anchor.summary):
                yield anchor
        for peer in self._by_subject.get(child.issuer, ()):
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

    def _link(self, path: list[_Node], candidate: _Node) -> None:
        """What can be decided about candidate -> path[-1] before parsing: lengths, an anchor's role rules
        (it is parsed already), the signature."""
        if len(path) + 1 > self.limits.max_path_length:
            raise X509Error(Category.PATH_TOO_LONG, f"path longer than {self.limits.max_path_length} certificates")
        # Intermediates below the candidate (the leaf is not one); self-issued ones do not count (RFC 5280
        # 6.1.4 (l)).
        below = sum(1 for node in path[1:] if not node.summary.self_issued)
        depth = below + (0 if candidate.anchor or candidate.summary.self_issued else 1)
        if depth > self.limits.max_chain_depth:
            raise X509Error(Category.PATH_TOO_LONG, f"more than {self.limits.max_chain_depth} intermediates")
        if candidate.anchor and candidate.parsed is not None:
            check_ca(candidate.parsed, self.purpose, self.time, anchor=True)
        self._verify(path[-1], candidate)

    def _complete(self, path: list[_Node]) -> tuple[Certificate, ...]:
        """Every signature on `path` (leaf ... anchor) verified: parse what is not parsed yet and apply the
        role rules link by link from the leaf up. A refused link raises _Unwind with its depth."""
        certificates: list[Certificate] = []
        for depth, node in enumerate(path):
            certificate = self._parse(node)
            if certificate is None:
                raise _Unwind(depth, None)  # set aside: as if it had never been a candidate
            if depth:
                try:
                    self._check_role(certificates, certificate, anchor=node.anchor)
                except WorkLimitError:
                    raise
                except X509Error as error:
                    raise _Unwind(depth, error) from error
            certificates.append(certificate)
        return tuple(certificates)

    def _check_role(self, below: list[Certificate], ca: Certificate, *, anchor: bool) -> None:
        """The rules for `ca` as the issuer of below[-1] (an anchor's own rules ran before its signature)."""
        if not anchor:
            check_ca(ca, self.purpose, self.time, anchor=False)
        intermediates = sum(1 for c in below[1:] if not c.self_issued)
        constraints = ca.basic_constraints
        if constraints is not None and constraints.path_length is not None and intermediates > constraints.path_length:
            raise X509Error(
                Category.PATH_TOO_LONG, f"pathLenConstraint {constraints.path_length} of {ca.describe()} exceeded"
            )
        if ca.name_constraints is not None:
            for index, certificate in enumerate(below):
                if index and certificate.self_issued:
                    continue  # RFC 5280 6.1.3 (b): self-issued intermediates are exempt
                check_name_constraints(ca.name_constraints, certificate, self.budget)

    def _parse(self, node: _Node) -> Certificate | None:
        """Parse a peer certificate once, charged to the parse budget; set it aside if malformed. Its key, if
        it was decoded to verify a signature, is not decoded again: the same bytes decode the same way."""
        if node.parsed is None and not node.malformed:
            self.work.charge_parse(len(node.summary.der), self.limits)
            try:
                decoded = self._keys.get(node.summary.spki)
                known_key = decoded[0] if isinstance(decoded, tuple) else None
                parsed = parse_certificate_data(node.summary.der, known_key)
                if parsed.summary != node.summary:  # the search ran on the peek: it must be what was parsed
                    raise X509Error(Category.DECODE_ERROR, "certificate fields differ from their first reading")
            except X509Error as error:
                self.set_aside.append(error)
                node.malformed = True
            else:
                node.parsed = parsed
        return node.parsed

    def _issuer_key(self, issuer: _Node) -> tuple[PublicKeyInfo, PublicKey]:
        """The issuer's key, decoded and as a `cryptography` object: a parsed certificate's own, else from the
        SubjectPublicKeyInfo bytes, once per key (and the issuer's parse takes that decoding, see `_parse`)."""
        if issuer.parsed is not None:
            return issuer.parsed.public_key_info, issuer.parsed.public_key()
        spki = issuer.summary.spki
        entry = self._keys.get(spki)
        if entry is None:
            try:
                info = parse_spki(spki)  # the key reader checks its own DER
                entry = (info, load_public_key(info))
            except X509Error as error:
                entry = error
            self._keys[spki] = entry
        if isinstance(entry, X509Error):
            raise entry
        return entry

    def _algorithm(self, child: _Node) -> SignatureAlgorithm:
        """The algorithm `child` is signed with, from the parse or, before it, from the peeked bytes."""
        if child.parsed is not None:
            return child.parsed.signature_algorithm
        if child.algorithm is None:
            try:
                child.algorithm = parse_signature_algorithm(child.summary.signature_algorithm)
            except X509Error as error:
                child.algorithm = error
        if isinstance(child.algorithm, X509Error):
            raise child.algorithm
        return child.algorithm

    def _verify(self, child: _Node, issuer: _Node) -> None:
        """Verify child's signature with the issuer's key, charged once per (child, key)."""
        memo = (child.summary.der, issuer.summary.spki)
        if memo not in self._verified:
            info, key = self._issuer_key(issuer)
            algorithm = self._algorithm(child)
            self.work.charge_signature(self.limits, verify_cost(info))
            try:
                verify_signature(key, algorithm, child.summary.signature, child.summary.tbs)
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
