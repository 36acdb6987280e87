"""Certificates for negative tests: good and bad leaves under (or beside) a boot CA."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from appliance.pki import Identity

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
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    issuer = subject if spec.self_signed else ca.certificate.subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(spec.not_before)
        .not_valid_after(spec.not_after)
        .add_extension(x509.BasicConstraints(ca=spec.ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=spec.digital_signature, content_commitment=False,
                key_encipherment=not spec.digital_signature, data_encipherment=False, key_agreement=False,
                key_cert_sign=spec.ca, crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
    )
    if not spec.self_signed:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    if spec.eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(spec.eku)), critical=False)
    if spec.unknown_critical:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00"), critical=True
        )
    if spec.self_signed:
        signer: ec.EllipticCurvePrivateKey = key
    elif spec.wrong_signing_key:
        signer = ec.generate_private_key(ec.SECP256R1())
    else:
        signer = ca.key
    return Identity(builder.sign(signer, hashes.SHA256()), key)


def load_ca(pki: Path) -> Identity:
    """The boot CA (certificate and key) as `--test-pki` exported it."""
    cert = x509.load_pem_x509_certificate((pki / "ca.pem").read_bytes())
    key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return Identity(cert, key)


def write_identity(identity: Identity, directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    cert.write_bytes(identity.cert_pem)
    key.write_bytes(identity.key_pem)
    return cert, key
