"""Peer-chain validation as the vault and the endpoints see it: one call, a category on refusal.

There is exactly one validator, `tls.x509.validate`, with the boot CA as the only anchor. This module only
narrows its interface to what the appliance needs (a chain, a purpose, a time) and adds one belt-and-braces
check: the validated path must end at the boot CA itself.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from outcomes.category import Category
from tls import x509


class Purpose(StrEnum):
    """What the peer's leaf must be good for: a peer that connects to us is a client; a peer we connect
    to (10001 connect-back, 10002 reverse) is a server."""

    CLIENT = "clientAuth"
    SERVER = "serverAuth"


_X509_PURPOSE = {Purpose.CLIENT: x509.Purpose.CLIENT_AUTH, Purpose.SERVER: x509.Purpose.SERVER_AUTH}


@dataclass(frozen=True)
class PeerRejectedError(Exception):
    category: Category
    reason: str

    def __str__(self) -> str:
        return f"{self.category}: {self.reason}"


Validator = Callable[[Sequence[bytes], Purpose, datetime.datetime], None]
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

    def __call__(self, chain: Sequence[bytes], purpose: Purpose, now: datetime.datetime) -> None:
        if not chain:
            raise PeerRejectedError(Category.NO_CERTIFICATE, "peer sent no certificate")
        try:
            path = x509.validate(
                tuple(chain), anchors=(self._anchor_der,), purpose=_X509_PURPOSE[purpose], name=None, time=now,
                limits=self._limits,
            )
        except x509.X509Error as exc:
            raise PeerRejectedError(exc.category, exc.reason) from exc
        if path.certificates[-1].der != self._anchor_der:
            raise PeerRejectedError(Category.UNTRUSTED_CHAIN, "validated path does not end at the boot CA")
