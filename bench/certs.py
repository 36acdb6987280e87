"""The one X.509 certificate builder of the benchmarks and the tests (issue 16): shared by both.

It lives in bench/ because the benchmarks may not import tests/ (an import-linter contract) while the tests
may import bench; every test or benchmark that makes a certificate with `cryptography`'s `CertificateBuilder`
does it through `issue` here (tests/tls/x509/factory.py, tests/tls/pki.py, tests/appliance/certs.py,
tests/integration/craft.py, tests/image/test_vm_network.py, bench/x509.py and bench/tls_handshake.py are thin
uses of it). A frozen `Spec` holds every field a test varies; its defaults make a valid TLS server leaf.
DER-level tricks (fields the builder would never emit, re-signing edited TBS bytes) stay with their tests.
The production boot CA (appliance/pki.py) is not built here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
KeyType = Literal["p256", "p384", "p521", "rsa2048", "rsa3072", "ed25519", "rsa1024"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
_CURVES: dict[str, ec.EllipticCurve] = {"p256": ec.SECP256R1(), "p384": ec.SECP384R1(), "p521": ec.SECP521R1()}
UNKNOWN_CRITICAL = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00")


def new_key(kind: KeyType = "p256") -> PrivateKey:
    if kind in _CURVES:
        return ec.generate_private_key(_CURVES[kind])
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(65537, int(kind.removeprefix("rsa")))


def new_ec_key() -> ec.EllipticCurvePrivateKey:
    """A fresh P-256 key, typed as such (the appliance's identities hold EC keys only)."""
    return ec.generate_private_key(ec.SECP256R1())


@cache
def shared_key(kind: KeyType, index: int = 0) -> PrivateKey:
    """Keys are slow to make (RSA especially); tests that only need *a* key of a type share these."""
    return new_key(kind)


@dataclass(frozen=True)
class Issued:
    certificate: x509.Certificate
    key: PrivateKey
    name: x509.Name

    @property
    def cert(self) -> x509.Certificate:
        return self.certificate

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass(frozen=True)
class Spec:
    """What to put in a certificate; defaults make a valid TLS server leaf."""

    subject: str | x509.Name = "leaf.example.com"
    issuer_name: x509.Name | None = None  # None: the issuer's subject (own subject when self-signed)
    ca: bool | None = False  # None: no basicConstraints at all
    path_length: int | None = None
    bc_critical: bool = True
    key_usage: Sequence[str] | None = ("digital_signature",)
    eku: Sequence[x509.ObjectIdentifier] | None = (ExtendedKeyUsageOID.SERVER_AUTH,)
    eku_critical: bool = False
    dns: Sequence[str] = ("leaf.example.com",)
    ips: Sequence[str] = ()
    emails: Sequence[str] = ()
    san: bool = True
    aki: bool = True  # from the issuer's key (none when self-signed), unless `aki_key_id` is given
    aki_key_id: bytes | None = None  # claim this issuer key identifier, whoever signs
    ski: bool = True
    ski_key_id: bytes | None = None  # claim this subject key identifier instead of the key's own
    not_before: datetime = NOW - timedelta(days=30)
    not_after: datetime = NOW + timedelta(days=30)
    serial: int | None = 0x1234  # None: a random serial
    permitted: Sequence[x509.GeneralName] | None = None
    excluded: Sequence[x509.GeneralName] | None = None
    extra: Sequence[tuple[x509.ExtensionType, bool]] = field(default_factory=tuple)
    unknown_critical: bool = False  # add UNKNOWN_CRITICAL (a private OID marked critical)
    hash: hashes.HashAlgorithm | None = field(default_factory=hashes.SHA256)
    pss: bool = False


CA_USAGE = ("key_cert_sign", "crl_sign")
_KU_FIELDS = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


def ca_spec(subject: str | x509.Name = "Test CA", **changes: object) -> Spec:
    values: dict[str, object] = {
        "subject": subject,
        "ca": True,
        "key_usage": CA_USAGE,
        "eku": None,
        "dns": (),
        "san": False,
    }
    values.update(changes)
    return Spec(**values)  # type: ignore[arg-type]


def issue(
    spec: Spec,
    *,
    issuer: Issued | None = None,
    key: PrivateKey | None = None,
    signing_key: PrivateKey | None = None,
) -> Issued:
    """Build and sign a certificate for `key` (default: a shared P-256 key); `issuer=None` makes it
    self-signed. `signing_key` signs instead of the issuer's key: the issuer's name and key identifier with
    a wrong signature."""
    key = key or shared_key("p256", 1 if spec.ca else 0)
    subject = spec.subject if isinstance(spec.subject, x509.Name) else name(spec.subject)
    issuer_name = spec.issuer_name or (issuer.name if issuer else subject)
    signing_key = signing_key or (issuer.key if issuer else key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number() if spec.serial is None else spec.serial)
        .not_valid_before(spec.not_before)
        .not_valid_after(spec.not_after)
    )
    if spec.ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(spec.ca, spec.path_length), critical=spec.bc_critical)
    if spec.key_usage is not None:
        flags = {f: f in spec.key_usage for f in _KU_FIELDS}
        builder = builder.add_extension(x509.KeyUsage(**flags), critical=True)
    if spec.eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(spec.eku)), critical=spec.eku_critical)
    if spec.san:
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in spec.dns]
        names += [x509.IPAddress(ipaddress.ip_address(i)) for i in spec.ips]
        names += [x509.RFC822Name(e) for e in spec.emails]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if spec.ski_key_id is not None:
        builder = builder.add_extension(x509.SubjectKeyIdentifier(spec.ski_key_id), critical=False)
    elif spec.ski:
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    if spec.aki_key_id is not None:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier(spec.aki_key_id, None, None), critical=False)
    elif spec.aki and issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    if spec.permitted is not None or spec.excluded is not None:
        builder = builder.add_extension(
            x509.NameConstraints(
                permitted_subtrees=list(spec.permitted) if spec.permitted is not None else None,
                excluded_subtrees=list(spec.excluded) if spec.excluded is not None else None,
            ),
            critical=True,
        )
    for extension, critical in spec.extra:
        builder = builder.add_extension(extension, critical=critical)
    if spec.unknown_critical:
        builder = builder.add_extension(UNKNOWN_CRITICAL, critical=True)
    algorithm = None if isinstance(signing_key, ed25519.Ed25519PrivateKey) else spec.hash
    if spec.pss and isinstance(signing_key, rsa.RSAPrivateKey):
        pss_hash = spec.hash or hashes.SHA256()
        pss = padding.PSS(mgf=padding.MGF1(pss_hash), salt_length=pss_hash.digest_size)
        certificate = builder.sign(signing_key, pss_hash, rsa_padding=pss)  # type: ignore[arg-type]
    else:
        certificate = builder.sign(signing_key, algorithm)  # type: ignore[arg-type]
    return Issued(certificate, key, subject)


def as_issuer(certificate: x509.Certificate, key: PrivateKey) -> Issued:
    """An existing certificate and its key (a boot CA loaded from disk, say) as an `issue` issuer."""
    return Issued(certificate, key, certificate.subject)


@dataclass
class Pki:
    """root -> intermediate -> leaf, all valid at NOW, with the DER lists `validate` takes."""

    root: Issued
    intermediate: Issued
    leaf: Issued

    @property
    def chain(self) -> list[bytes]:
        return [self.leaf.der, self.intermediate.der]

    @property
    def anchors(self) -> list[bytes]:
        return [self.root.der]


def make_pki(key_type: KeyType = "p256", leaf: Spec | None = None, intermediate: Spec | None = None) -> Pki:
    root = issue(ca_spec("Test Root"), key=shared_key(key_type, 10))
    inter = issue(intermediate or ca_spec("Test Intermediate"), issuer=root, key=shared_key(key_type, 11))
    end = issue(leaf or Spec(), issuer=inter, key=shared_key(key_type, 12))
    return Pki(root, inter, end)


@dataclass(frozen=True)
class Impostors:
    """A leaf (with its key, to sign a CertificateVerify) and the certificates that impersonate its anchor."""

    leaf: Issued
    impostors: tuple[bytes, ...]

    @property
    def chain(self) -> list[bytes]:
        return [self.leaf.der, *self.impostors]


def impostor_chain(anchor: x509.Certificate, count: int, leaf: Spec, padding: Sequence[str] = ()) -> Impostors:
    """Issue 15's attack on path building: `count` CA certificates with the anchor's name and key identifier
    but their own keys, each signed by the next one's key (the last self-signed), and `leaf` signed by the
    first's. Every link among them verifies; none reaches the anchor, whose key only the anchor holds.
    `padding` adds DNS names to each impostor (the reported chain was 25 KB: parse work as well as
    signatures). One builder for the unit test, the benchmark and the attack on the booted image."""
    key_id = anchor.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    claims: dict[str, object] = {"issuer_name": anchor.subject, "aki_key_id": key_id, "serial": None,
                                 "not_before": leaf.not_before, "not_after": leaf.not_after}
    fake = ca_spec(anchor.subject, ski_key_id=key_id, san=bool(padding), dns=tuple(padding), **claims)
    keys = [new_ec_key() for _ in range(count)]
    impostors = tuple(issue(fake, key=key, signing_key=keys[index + 1] if index + 1 < count else key).der
                      for index, key in enumerate(keys))
    signed = issue(replace(leaf, issuer_name=anchor.subject, aki_key_id=key_id, ski=False, serial=None),
                   key=new_ec_key(), signing_key=keys[0])
    return Impostors(signed, impostors)
