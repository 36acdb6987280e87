"""Path building: depth-first from the leaf through untrusted intermediates to a trust anchor.

Why depth-first with backtracking: the peer may send several certificates for the same logical CA
(cross-signs, expired and renewed ones), so the first issuer that matches by name may not lead to an
anchor. Why hard caps: the same freedom lets an attacker send many same-named certificates to make the
search exponential, so every candidate examined is charged to `max_candidates` and exceeding it aborts the
whole validation, and the path length is capped too. Each (child, issuer) signature is verified at most
once per call.

Candidates for a certificate's issuer: anchors first (shortest path), then intermediates, whose subject
equals the child's issuer name byte-for-byte and whose subjectKeyIdentifier, when both sides have key
identifiers, equals the child's authorityKeyIdentifier. A (subject, key) pair already in the path is never
added again, which breaks cycles even through distinct certificates for the same logical CA.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from outcomes.category import Category
from tls.x509.checks import check_ca
from tls.x509.constraints import Budget, check_name_constraints
from tls.x509.errors import X509Error
from tls.x509.limits import ValidationLimits
from tls.x509.model import Certificate
from tls.x509.purpose import Purpose
from tls.x509.signature import verify_signature


@dataclass
class PathSearch:
    """State of one path-building run (one `validate` call); discarded afterwards."""

    anchors: Sequence[Certificate]
    intermediates: Sequence[Certificate]
    purpose: Purpose
    time: datetime
    limits: ValidationLimits
    candidates_examined: int = 0
    budget: Budget = field(init=False)
    _verified: dict[tuple[int, int], X509Error | None] = field(default_factory=dict)
    _error: X509Error | None = None
    _error_depth: int = -1

    def __post_init__(self) -> None:
        self.budget = Budget(self.limits.max_name_constraint_checks)

    def build(self, leaf: Certificate) -> tuple[Certificate, ...]:
        found = self._extend([leaf])
        if found is not None:
            return found
        if self._error is not None:
            raise self._error
        raise X509Error(Category.UNTRUSTED_CHAIN, f"no trusted issuer found for issuer {leaf.issuer}")

    def _extend(self, path: list[Certificate]) -> tuple[Certificate, ...] | None:
        for candidate, is_anchor in self._candidates(path):
            self.candidates_examined += 1
            if self.candidates_examined > self.limits.max_candidates:
                raise X509Error(
                    Category.PATH_BUILDING_LIMIT,
                    f"path building examined more than {self.limits.max_candidates} issuer candidates",
                )
            try:
                self._check_link(path, candidate, is_anchor)
            except X509Error as error:
                self._record(error, len(path))
                continue
            if is_anchor:
                return (*path, candidate)
            path.append(candidate)
            found = self._extend(path)
            if found is not None:
                return found
            path.pop()
        return None

    def _candidates(self, path: list[Certificate]) -> Iterator[tuple[Certificate, bool]]:
        child = path[-1]
        issuer = child.issuer.der
        aki = child.authority_key_identifier
        wanted_key_id = aki.key_identifier if aki is not None else None
        in_path = {(c.subject.der, c.spki_der) for c in path}
        for pool, is_anchor in ((self.anchors, True), (self.intermediates, False)):
            for candidate in pool:
                if candidate.subject.der != issuer:
                    continue
                ski = candidate.subject_key_identifier
                if wanted_key_id is not None and ski is not None and ski != wanted_key_id:
                    continue
                if (candidate.subject.der, candidate.spki_der) in in_path:
                    continue
                yield candidate, is_anchor

    def _check_link(self, path: list[Certificate], ca: Certificate, is_anchor: bool) -> None:
        """May `ca` sign path[-1] here? Cheap rules first, the signature, then name constraints."""
        if len(path) + 1 > self.limits.max_path_length:
            raise X509Error(Category.PATH_TOO_LONG, f"path longer than {self.limits.max_path_length} certificates")
        check_ca(ca, self.purpose, self.time, anchor=is_anchor)
        # Intermediates below `ca` (the leaf is not one); self-issued ones do not count (RFC 5280 6.1.4 (l)).
        below = sum(1 for c in path[1:] if not c.self_issued)
        constraints = ca.basic_constraints
        if constraints is not None and constraints.path_length is not None and below > constraints.path_length:
            raise X509Error(
                Category.PATH_TOO_LONG, f"pathLenConstraint {constraints.path_length} of {ca.describe()} exceeded"
            )
        depth = below + (0 if is_anchor or ca.self_issued else 1)
        if depth > self.limits.max_chain_depth:
            raise X509Error(Category.PATH_TOO_LONG, f"more than {self.limits.max_chain_depth} intermediates")
        self._verify(path[-1], ca)
        if ca.name_constraints is not None:
            for index, certificate in enumerate(path):
                if index and certificate.self_issued:
                    continue  # RFC 5280 6.1.3 (b): self-issued intermediates are exempt
                check_name_constraints(ca.name_constraints, certificate, self.budget)

    def _verify(self, child: Certificate, issuer: Certificate) -> None:
        key = (id(child), id(issuer))
        if key not in self._verified:
            try:
                verify_signature(issuer.public_key(), child.signature_algorithm, child.signature, child.tbs_der)
            except X509Error as error:
                self._verified[key] = error
            else:
                self._verified[key] = None
        refusal = self._verified[key]
        if refusal is not None:
            raise refusal

    def _record(self, error: X509Error, depth: int) -> None:
        """Keep the refusal from the deepest link tried: it is the most specific reason."""
        if depth > self._error_depth:
            self._error = error
            self._error_depth = depth
