"""The work one `validate` call spends, charged before it is spent against that call's `ValidationLimits`.

Why a meter and not only caps on the input: what a chain costs is not its length but what path building
does with it. A peer chooses every certificate's size, names and key identifiers, so it chooses how many
candidates match, how many certificates get parsed (from half a signature check for a small certificate
to about eight for a 10 KB one holding MAX_SAN_ENTRIES names) and how many signatures get verified. Each
of these is counted here as it happens and refused once its limit would be passed, so the worst case of
any chain is a fixed amount of work, whatever the search order meets. A caller may pass its own `Work` to
see what a validation spent, refused or not.
"""

from __future__ import annotations

from dataclasses import dataclass

from outcomes.category import Category
from tls.x509.errors import X509Error
from tls.x509.limits import ValidationLimits


class WorkLimitError(X509Error):
    """A work limit was reached: the whole validation stops (it is not one refused link among others)."""

    def __init__(self, reason: str) -> None:
        super().__init__(Category.PATH_BUILDING_LIMIT, reason)


@dataclass
class Work:
    """Counters for one validation; each `charge_*` refuses (and does not count) work past its limit."""

    candidates: int = 0
    signature_checks: int = 0
    signature_work: int = 0  # in units of the cheapest verification (keys.verify_cost)
    certificates_parsed: int = 0
    parse_bytes: int = 0

    def charge_candidate(self, limits: ValidationLimits) -> None:
        if self.candidates >= limits.max_candidates:
            raise WorkLimitError(f"path building examined more than {limits.max_candidates} issuer candidates")
        self.candidates += 1

    def charge_signature(self, limits: ValidationLimits, cost: int) -> None:
        """One verification costing `cost` units (keys.verify_cost): both its count and its cost are bounded."""
        if self.signature_checks >= limits.max_signature_checks:
            raise WorkLimitError(f"path building needed more than {limits.max_signature_checks} signature checks")
        if self.signature_work + cost > limits.max_signature_work:
            raise WorkLimitError(f"path building needed more than {limits.max_signature_work} units of signature "
                                 "work (dear keys)")
        self.signature_checks += 1
        self.signature_work += cost

    def charge_parse(self, size: int, limits: ValidationLimits) -> None:
        if self.parse_bytes + size > limits.max_parse_bytes:
            raise WorkLimitError(f"validation would parse more than {limits.max_parse_bytes} bytes of certificates")
        self.parse_bytes += size
        self.certificates_parsed += 1
