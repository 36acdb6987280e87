"""The one exception type that leaves `tls.x509`.

Every refusal, whether the bytes are malformed or the chain is untrusted, is an `X509Error` carrying a
failure category (for statistics and the ledger) and a reason that is safe to log: it never contains key
material and quotes at most short, already-validated fragments of the certificate.
"""

from __future__ import annotations

from outcomes.category import Category


class X509Error(Exception):
    """A certificate or chain was refused; `category` says why in stable vocabulary."""

    def __init__(self, category: Category, reason: str) -> None:
        super().__init__(f"{category.value}: {reason}")
        self.category = category
        self.reason = reason


def decode_error(reason: str) -> X509Error:
    """Shorthand for the most common refusal: the bytes are not a well-formed certificate."""
    return X509Error(Category.DECODE_ERROR, reason)
