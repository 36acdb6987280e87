"""The boot PKI: a fresh CA and three leaves at every start (DESIGN.md, "Boot PKI").

Why fresh at every boot: the CA key is the only thing that can mint a certificate the vault accepts, so
it never touches the disk. It is needed only to issue the three leaves: `generate` returns a `BootPKI`
(CA key included) that the composition root holds just long enough to issue them (and, in test mode, to
export them), then keeps only `BootPKI.issued()`, which has the CA certificate and no CA key (rule 5).
ECDSA P-256 because generating four keys must not slow the boot (it takes milliseconds) and every TLS
peer we care about speaks it. Keys and serials come from the random source the composition root passes
(`appliance.sources`); OpenSSL still draws the ECDSA nonces of the four signatures itself.

- CA: BasicConstraints critical CA:TRUE pathlen:0, KeyUsage critical keyCertSign|cRLSign.
- server (10000): CA:FALSE, digitalSignature, EKU serverAuth.
- client (10001, 10002, where the appliance is the TLS client): CA:FALSE, digitalSignature, EKU clientAuth.
- web (443): like server, plus the SAN the browser checks.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from appliance.sources import RandomSource

CA_VALIDITY = datetime.timedelta(days=3650)
LEAF_VALIDITY = datetime.timedelta(days=3650)
BACKDATE = datetime.timedelta(minutes=5)  # tolerate a peer clock slightly behind ours
WEB_NAMES = ("pinata.local", "localhost")
WEB_ADDRESSES = ("127.0.0.1",)
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
KEY_DRAW_BYTES = 40
"""A P-256 key is drawn as 64 bits more than the order's 256 and reduced (FIPS 186-4 B.4.1, "extra random
bits"): the bias of the reduction is then below 2**-64, with no rejection loop."""


@dataclass(frozen=True)
class Identity:
    """A leaf certificate and its key, as the TLS engines take them."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


@dataclass(frozen=True)
class IssuedPKI:
    """What the running appliance keeps of the boot PKI: the CA's certificate (the one trust anchor) and the
    three leaves with their keys. No CA key: nothing left in the process can mint a certificate."""

    ca_certificate: x509.Certificate
    server: Identity
    client: Identity
    web: Identity

    @property
    def ca_der(self) -> bytes:
        return self.ca_certificate.public_bytes(serialization.Encoding.DER)

    @property
    def ca_pem(self) -> bytes:
        return self.ca_certificate.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class BootPKI:
    """The PKI as issued, CA key included: for the boot (until the leaves exist), test export, and tests."""

    ca: Identity
    server: Identity
    client: Identity
    web: Identity

    @property
    def ca_der(self) -> bytes:
        return self.ca.cert_der

    @property
    def ca_pem(self) -> bytes:
        return self.ca.cert_pem

    def issued(self) -> IssuedPKI:
        """The part that outlives the boot; the caller drops this object (and with it the CA key)."""
        return IssuedPKI(self.ca.certificate, self.server, self.client, self.web)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Piñata"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _draw(random: RandomSource, size: int) -> int:
    """`size` bytes from `random` as an integer; a source that gives fewer is refused (a short read would
    silently make a weaker key or a guessable serial)."""
    data = random(size)
    if len(data) != size:
        raise ValueError(f"the random source gave {len(data)} bytes, not {size}")
    return int.from_bytes(data, "big")


def _serial(random: RandomSource) -> int:
    return _draw(random, 16) >> 1  # positive, at most 127 bits


def new_key(random: RandomSource) -> ec.EllipticCurvePrivateKey:
    """A P-256 key from `random` (see KEY_DRAW_BYTES): in [1, order - 1] whatever the bytes."""
    return ec.derive_private_key(_draw(random, KEY_DRAW_BYTES) % (P256_ORDER - 1) + 1, ec.SECP256R1())


def _make_ca(now: datetime.datetime, random: RandomSource) -> Identity:
    key = new_key(random)
    name = _name("Piñata boot CA")
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(_serial(random))
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return Identity(cert, key)


def make_leaf(
    ca: Identity,
    common_name: str,
    usage: x509.ObjectIdentifier,
    now: datetime.datetime,
    random: RandomSource,
    *,
    san: x509.SubjectAlternativeName | None = None,
) -> Identity:
    """A leaf issued directly by `ca`."""
    key = new_key(random)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(_serial(random))
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + LEAF_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    return Identity(builder.sign(ca.key, hashes.SHA256()), key)


def generate(now: datetime.datetime, random: RandomSource, web_names: tuple[str, ...] = WEB_NAMES) -> BootPKI:
    ca = _make_ca(now, random)
    web_san = x509.SubjectAlternativeName(
        [x509.DNSName(n) for n in web_names] + [x509.IPAddress(ipaddress.ip_address(a)) for a in WEB_ADDRESSES]
    )
    return BootPKI(
        ca=ca,
        server=make_leaf(ca, "Piñata mutual-TLS server", ExtendedKeyUsageOID.SERVER_AUTH, now, random),
        client=make_leaf(ca, "Piñata client", ExtendedKeyUsageOID.CLIENT_AUTH, now, random),
        web=make_leaf(ca, web_names[0], ExtendedKeyUsageOID.SERVER_AUTH, now, random, san=web_san),
    )


def export(pki: BootPKI, directory: Path) -> list[Path]:
    """Test mode only (`--test-pki DIR`): write every key and certificate, the CA key included, so tests
    can build good and bad chains. The caller refuses this in a production image.

    Each file appears whole or not at all (written beside it, then renamed): whoever watches the directory
    (the test image's init copies the files out as soon as they all exist) never reads a half-written key."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for label, identity in (("ca", pki.ca), ("server", pki.server), ("client", pki.client), ("web", pki.web)):
        cert_path = directory / f"{label}.pem"
        key_path = directory / f"{label}.key"
        _write_whole(cert_path, identity.cert_pem, 0o644)
        _write_whole(key_path, identity.key_pem, 0o600)
        written += [cert_path, key_path]
    return written


def _write_whole(path: Path, data: bytes, mode: int) -> None:
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(partial, path)
