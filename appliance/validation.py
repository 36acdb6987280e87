"""Peer-chain validation as the vault sees it: one call, a category on refusal.

The product validator is `tls.x509.validate` (our X.509 code). Until that package exists in the tree,
`DirectValidator` is used instead and says so in the boot log: it accepts exactly the shape of chain the
appliance can ever trust — a leaf signed directly by the boot CA (the CA has pathlen 0) — and refuses
everything else with a category. It is deliberately narrow, not a general path builder.
"""

from __future__ import annotations

import datetime
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID

from tls.failure import Category

MAX_PEER_CHAIN = 4  # certificates a peer may send; we only ever need one
WEAK_HASHES = (hashes.MD5, hashes.SHA1)


class Purpose(StrEnum):
    """What the peer's leaf must be good for: a peer that connects to us is a client; a peer we connect
    to (10001 connect-back, 10002 reverse) is a server."""

    CLIENT = "clientAuth"
    SERVER = "serverAuth"


_EKU = {Purpose.CLIENT: ExtendedKeyUsageOID.CLIENT_AUTH, Purpose.SERVER: ExtendedKeyUsageOID.SERVER_AUTH}


@dataclass(frozen=True)
class PeerRejectedError(Exception):
    category: Category
    reason: str

    def __str__(self) -> str:
        return f"{self.category}: {self.reason}"


Validator = Callable[[Sequence[bytes], Purpose, datetime.datetime], None]
"""validate(chain (DER, leaf first), purpose, now): returns when the chain ends at the anchor;
raises PeerRejectedError otherwise."""


class DirectValidator:
    """Accept a leaf issued directly by `anchor` and valid for `purpose` at `now`; nothing else."""

    name = "direct (tls.x509 not available)"

    def __init__(self, anchor_der: bytes) -> None:
        self._anchor = x509.load_der_x509_certificate(anchor_der)
        self._anchor_der = anchor_der

    def __call__(self, chain: Sequence[bytes], purpose: Purpose, now: datetime.datetime) -> None:
        if not chain:
            raise PeerRejectedError(Category.NO_CERTIFICATE, "peer sent no certificate")
        if len(chain) > MAX_PEER_CHAIN:
            raise PeerRejectedError(Category.PATH_TOO_LONG, f"peer sent {len(chain)} certificates")
        try:
            certs = [x509.load_der_x509_certificate(der) for der in chain]
        except ValueError as exc:
            raise PeerRejectedError(Category.DECODE_ERROR, "certificate does not parse") from exc
        leaf = certs[0]
        if chain[0] == self._anchor_der:
            raise PeerRejectedError(Category.CA_AS_LEAF, "the CA certificate presented as the leaf")
        if leaf.version != x509.Version.v3:
            raise PeerRejectedError(Category.NOT_V3, "leaf is not an X.509 v3 certificate")
        self._check_issued_by_anchor(leaf, certs[1:])
        self._check_leaf(leaf, purpose, now)

    def _check_issued_by_anchor(self, leaf: x509.Certificate, rest: list[x509.Certificate]) -> None:
        if leaf.issuer != self._anchor.subject:
            if any(self._signed_by_anchor(c) for c in rest if c != self._anchor):
                raise PeerRejectedError(Category.PATH_TOO_LONG, "intermediate under a pathlen:0 CA")
            reason = "self-signed leaf" if leaf.issuer == leaf.subject else "leaf not issued by the boot CA"
            raise PeerRejectedError(Category.UNTRUSTED_CHAIN, reason)
        hash_algorithm = leaf.signature_hash_algorithm
        if hash_algorithm is None or isinstance(hash_algorithm, WEAK_HASHES):
            raise PeerRejectedError(Category.WEAK_ALGORITHM, "leaf signed with a weak or unsupported hash")
        if not self._signed_by_anchor(leaf):
            raise PeerRejectedError(Category.CHAIN_SIGNATURE_INVALID, "leaf signature does not verify with the CA key")

    def _signed_by_anchor(self, cert: x509.Certificate) -> bool:
        try:
            cert.verify_directly_issued_by(self._anchor)
        except (ValueError, TypeError, InvalidSignature):
            return False
        return True

    @staticmethod
    def _check_leaf(leaf: x509.Certificate, purpose: Purpose, now: datetime.datetime) -> None:
        if now < leaf.not_valid_before_utc:
            raise PeerRejectedError(Category.NOT_YET_VALID, "leaf not yet valid")
        if now > leaf.not_valid_after_utc:
            raise PeerRejectedError(Category.EXPIRED, "leaf expired")
        known = {
            x509.oid.ExtensionOID.BASIC_CONSTRAINTS, x509.oid.ExtensionOID.KEY_USAGE,
            x509.oid.ExtensionOID.EXTENDED_KEY_USAGE, x509.oid.ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
            x509.oid.ExtensionOID.AUTHORITY_KEY_IDENTIFIER, x509.oid.ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        }
        try:
            extensions = leaf.extensions
        except ValueError as exc:
            raise PeerRejectedError(Category.DECODE_ERROR, "leaf extensions do not parse") from exc
        for extension in extensions:
            if extension.critical and extension.oid not in known:
                oid = extension.oid.dotted_string
                raise PeerRejectedError(Category.UNSUPPORTED_CRITICAL_EXTENSION, f"critical {oid}")
        try:
            if extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
                raise PeerRejectedError(Category.CA_AS_LEAF, "leaf has CA:TRUE")
        except x509.ExtensionNotFound:
            pass
        try:
            if not extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature:
                raise PeerRejectedError(Category.WRONG_KEY_USAGE, "leaf key usage lacks digitalSignature")
        except x509.ExtensionNotFound:
            pass
        try:
            usages = extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound as exc:
            raise PeerRejectedError(Category.WRONG_EXTENDED_KEY_USAGE, "leaf has no extended key usage") from exc
        if _EKU[purpose] not in usages:
            raise PeerRejectedError(Category.WRONG_EXTENDED_KEY_USAGE, f"leaf is not valid for {purpose}")


def make_validator(anchor_der: bytes) -> tuple[Validator, str]:
    """The product validator when `tls.x509` provides one, the direct validator otherwise; the name is logged."""
    try:
        module = importlib.import_module("tls.x509")
    except ImportError:
        module = None
    ours = getattr(module, "validate", None) if module is not None else None
    if ours is None:
        return DirectValidator(anchor_der), DirectValidator.name
    return OursValidator(module, anchor_der), "tls.x509"


class OursValidator:
    """Adapter over `tls.x509.validate(chain, *, anchors, purpose, name, time) -> ValidatedPath`, which
    raises `X509Error(category, reason)`. The boot CA is the only anchor, and the returned path's anchor
    is checked to be it (belt and braces: the vault must never trust anything else)."""

    def __init__(self, module: object, anchor_der: bytes) -> None:
        self._validate = module.validate  # type: ignore[attr-defined]
        self._error: type[Exception] = module.X509Error  # type: ignore[attr-defined]
        self._purpose = module.Purpose  # type: ignore[attr-defined]
        self._anchor_der = anchor_der

    def __call__(self, chain: Sequence[bytes], purpose: Purpose, now: datetime.datetime) -> None:
        if not chain:
            raise PeerRejectedError(Category.NO_CERTIFICATE, "peer sent no certificate")
        try:
            path = self._validate(
                tuple(chain), anchors=(self._anchor_der,), purpose=self._purpose(purpose.value), name=None, time=now
            )
        except self._error as exc:
            raise PeerRejectedError(
                Category(exc.category), str(exc.reason)  # type: ignore[attr-defined]
            ) from exc
        if path.anchor.der != self._anchor_der:
            raise PeerRejectedError(Category.UNTRUSTED_CHAIN, "validated path does not end at the boot CA")
