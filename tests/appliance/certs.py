"""Certificates for negative tests: good and bad leaves under (or beside) a boot CA, built by bench.certs.

`Spec` names the few things the appliance tests vary; `mint` turns it into the shared builder's Spec."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from appliance.pki import Identity
from bench import certs

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class Spec:
    eku: tuple[x509.ObjectIdentifier, ...] | None = (ExtendedKeyUsageOID.CLIENT_AUTH,)
    ca: bool = False
    digital_signature: bool = True
    not_before: datetime.datetime = NOW - DAY
    not_after: datetime.datetime = NOW + 30 * DAY
    self_signed: bool = False
    wrong_signing_key: bool = False  # issuer name of the CA, signature by another key
    unknown_critical: bool = False


def mint(ca: Identity, spec: Spec, common_name: str = "test peer") -> Identity:
    key = certs.new_ec_key()
    usage = ("digital_signature",) if spec.digital_signature else ("key_encipherment",)
    built = certs.Spec(
        common_name, ca=spec.ca, key_usage=usage + (("key_cert_sign",) if spec.ca else ()), eku=spec.eku,
        san=False, ski=False, not_before=spec.not_before, not_after=spec.not_after, serial=None,
        unknown_critical=spec.unknown_critical,
    )
    issuer = None if spec.self_signed else certs.as_issuer(ca.certificate, ca.key)
    wrong = certs.new_ec_key() if spec.wrong_signing_key and not spec.self_signed else None
    return Identity(certs.issue(built, issuer=issuer, key=key, signing_key=wrong).der, key)


def load_ca(pki: Path) -> Identity:
    """The boot CA (certificate and key) as `--test-pki` exported it."""
    cert = x509.load_pem_x509_certificate((pki / "ca.pem").read_bytes())
    key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return Identity(cert.public_bytes(serialization.Encoding.DER), key)


def write_identity(identity: Identity, directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    cert.write_bytes(identity.cert_pem)
    key.write_bytes(identity.key_pem)
    return cert, key
