"""The narrow bridge to `tls.x509`: validate a peer's chain, and map an X.509 refusal to the alert we send.

The engine never looks inside certificates itself except for the leaf's public key, which it needs to
check CertificateVerify / ServerKeyExchange signatures, and the kind of our own leaf's key (an
id-RSASSA-PSS key signs rsa_pss_pss_*, an rsaEncryption key rsa_pss_rsae_*).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import rsa

from tls import x509
from tls.errors import ProtocolError


class Validator(Protocol):
    def __call__(self, chain: Sequence[bytes], *, anchors: Sequence[bytes], purpose: x509.Purpose,
                 name: x509.PeerName | None, time: datetime, limits: x509.ValidationLimits) -> x509.ValidatedPath: ...


def peer_name(name: str | None) -> x509.PeerName | None:
    """The expected server identity: an IP address literal or a DNS name."""
    if name is None:
        return None
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return x509.PeerName("DNS", name)
    return x509.PeerName("IP", name)


def validate_chain(validator: Validator | None, chain: Sequence[bytes], *, anchors: Sequence[bytes],
                   purpose: x509.Purpose, name: str | None, now: datetime, limits: x509.ValidationLimits) -> object:
    """Validate the peer's chain within `limits`; return the leaf's public key (parsed once, by the validator)."""
    check = validator if validator is not None else x509.validate
    try:
        path = check(chain, anchors=anchors, purpose=purpose, name=peer_name(name), time=now, limits=limits)
        return path.leaf.public_key()
    except x509.X509Error as err:
        raise ProtocolError(err.category, f"peer certificate: {err.reason}") from None


def leaf_public_key(der: bytes) -> object:
    """The leaf's subject public key as a `cryptography` key object (for handshake signatures)."""
    try:
        return x509.parse_certificate(der).public_key()
    except x509.X509Error as err:
        raise ProtocolError(err.category, f"peer leaf: {err.reason}") from None


def own_pss_key(key: object, chain: Sequence[bytes]) -> x509.RsaPssPublicKey | None:
    """Our leaf's key when it is an id-RSASSA-PSS key, which decides that we sign with rsa_pss_pss_* only.

    `cryptography` loads an RSA-PSS private key (as `openssl genpkey -algorithm RSA-PSS` writes) as a plain
    RSA key and drops its restrictions, so our certificate is the only record of them. A leaf we cannot
    parse is left to the peer to refuse: we then sign as for an rsaEncryption key."""
    if not isinstance(key, rsa.RSAPrivateKey) or not chain:
        return None
    try:
        info = x509.parse_certificate(chain[0]).public_key_info
        leaf_key = x509.load_public_key(info) if info.kind is x509.KeyKind.RSA_PSS else None
    except x509.X509Error:
        return None
    return leaf_key if isinstance(leaf_key, x509.RsaPssPublicKey) else None
