"""Peer-chain validation as the vault and the endpoints see it: one call, a category on refusal.

There is exactly one validator, `tls.x509.validate`, with the boot CA as the only anchor. This module only
narrows its interface to what the appliance needs (a chain, a purpose, a time) and adds one belt-and-braces
check: the validated path must end at the boot CA itself.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from outcomes.category import Category
from tls import x509


@dataclass(frozen=True)
class PeerRejectedError(Exception):
    """A peer chain the appliance refuses: the category the refusal is counted under and a reason that is safe to
    log. The one exception a `Validator` raises, whatever failed (an X509Error is turned into it), so an
    endpoint catches a single type."""

    category: Category
    reason: str

    def __str__(self) -> str:
        return f"{self.category}: {self.reason}"


Validator = Callable[[Sequence[bytes], x509.Purpose, datetime.datetime], None]
"""validate(chain (DER, leaf first), purpose, now): returns when the chain ends at the boot CA;
raises PeerRejectedError otherwise."""


class BootCaValidator:
    """`tls.x509.validate` with the boot CA as the only trust anchor and no name check (peers are
    authenticated by their chain alone)."""

    name = "tls.x509"

    def __init__(self, anchor_der: bytes, limits: x509.ValidationLimits = x509.DEFAULT_LIMITS) -> None:
        """`limits`: the X.509 part of the appliance's limits tree (the same bounds the engine applied)."""
        self._anchor_der = anchor_der
        self._limits = limits

    def __call__(self, chain: Sequence[bytes], purpose: x509.Purpose, now: datetime.datetime) -> None:
        if not chain:
            raise PeerRejectedError(Category.NO_CERTIFICATE, "peer sent no certificate")
        try:
            path = x509.validate(
                tuple(chain), anchors=(self._anchor_der,), purpose=purpose, name=None, time=now,
                limits=self._limits,
            )
        except x509.X509Error as exc:
            raise PeerRejectedError(exc.category, exc.reason) from exc
        if path.certificates[-1].der != self._anchor_der:
            raise PeerRejectedError(Category.UNTRUSTED_CHAIN, "validated path does not end at the boot CA")
